import Foundation

/// The dense model's forward over the calibration windows, block by block and windows in chunks,
/// handing each chunk's linear-layer inputs to `inputs` and each finished block's weights to `blockDone`;
/// with `output`, each chunk's stream after the last block (the final norm's input) too.
enum DenseBlockPass {
    /// One chunk's inputs of a block's linears.
    struct Inputs {
        /// The residual stream entering the block (the attention norm's input).
        let stream: Activations
        /// The attention norm's output (q/k/v's input).
        let attention: Activations
        /// The attention context (o_proj's input).
        let context: Activations
        /// The residual stream after the attention (the FFN norm's input).
        let mid: Activations
        /// The FFN norm's output (gate/up's input).
        let mlp: Activations
        /// The SwiGLU product (down_proj's input).
        let product: Activations
    }

    static func run(
        config c: LlamaConfig, ids: [[Int32]], seqLen: Int, weights: ModelWeights, threads: Int,
        inputs: (Int, Inputs, WeightSupplier) throws -> Void, blockDone: (Int, WeightSupplier) throws -> Void,
        output: ((Activations) throws -> Void)? = nil
    ) throws {
        let whole = LlamaDecoder(config: c, samples: ids.count, seqLen: seqLen, threads: threads)
        let plan = ChunkPlan(
            config: c, samples: ids.count, seqLen: seqLen,
            chunkWindows: DecoderCalibration.chunkWindows(seqLen: seqLen), threads: threads)
        var x = try whole.embed(ids, weights)
        for i in 0..<c.layers {
            let w = CachedWeights(weights)  // one block's weights, decoded once for all its chunks
            let name = { (part: String) in LlamaNames.block(i, part) }
            try plan.forEachChunk { d, r in
                let xc = x.windows(r, seqLen, threads: threads)
                let n1 = try d.rmsNorm(xc, name("input_layernorm.weight"), w)
                let ctx = try d.attentionContext(i, n1, w)
                var h = try d.linear(name("self_attn.o_proj"), ctx, out: c.hidden, bias: c.outputBias, w)
                d.add(&h, try d.shortcut(name(LlamaNames.attentionShortcut), xc, w))
                let n2 = try d.rmsNorm(h, name("post_attention_layernorm.weight"), w)
                let act = try d.mlpProduct(i, n2, w)
                try inputs(i, Inputs(stream: xc, attention: n1, context: ctx, mid: h, mlp: n2, product: act), w)
                guard i + 1 < c.layers || output != nil else { return }
                var o = try d.linear(name("mlp.down_proj"), act, out: c.hidden, bias: c.outputBias, w)
                d.add(&o, try d.shortcut(name(LlamaNames.mlpShortcut), h, w))
                if i + 1 < c.layers { x.setWindows(r, seqLen, o, threads: threads) } else { try output?(o) }
            }
            try blockDone(i, w)
        }
    }
}
