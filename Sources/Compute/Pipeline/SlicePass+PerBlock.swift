import Foundation

/// SliceGPT's per-block variant (`slice: {uniform: false}`), as the paper runs it: every place a norm
/// reads the stream (block i's input 2i, its stream after the attention 2i + 1, the last output 2L)
/// gets its own rotation Q_p, from the stream the already sliced model computes there. Place 0 is
/// the embedding's rows; then, block by block, the sliced stream x (in Q_p's basis, `kept` wide)
/// goes through the attention (or the FFN) whose readers are sliced, and the full-width signal
/// x·Q_pᵀ + output is what the next place's PCA sees (its rows normalised, summed into a Gram in the
/// calibrate stage's `hessian` precision). Each residual between places carries SliceGPT's shortcut
/// matrix Q_pᵀ·Q_{p+1} ([kept × kept], `attn_shortcut_Q` and `mlp_shortcut_Q`); writers (o_proj,
/// down_proj) become Q_{p+1}ᵀ·W, the embedding E·Q_0, readers W·diag(g)·Q_p (or the least-squares map
/// of `refit` at their place), the head W·diag(g_final)·Q_2L, every norm √(hidden / kept).
extension SlicePass {
    /// One place's rotation Q_p (hidden × kept), its readers' map (Q_p, or `refit`'s least-squares
    /// map) and the share of the normalised stream's variance kept there.
    struct Place {
        let q: [Float]
        let map: [Float]
        let keptShare: Double
    }

    static func runPerBlock(
        _ s: SliceStage, model: ModelSource, readers: [any TensorFile], files: DecoderModelFiles,
        calibration cal: CalibrateStage, into dir: String, threads: Int, checkContinue: () throws -> Void
    ) throws -> Staged {
        let t0 = DispatchTime.now()
        let c = files.config
        let kept = keptWidth(s, hidden: c.hidden)
        let ids = try cal.windows(files.tokenizer)
        let weights = ModelWeights(readers: readers)
        var sliced = c
        sliced.hidden = kept
        sliced.tied = false
        sliced.shortcuts = true
        let places = try PerBlockPlaces(
            config: c, sliced: sliced, stage: s, calibration: cal, samples: ids.count, threads: threads
        ).run(ids, weights, checkContinue: checkContinue)
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        try writeWeights(
            to: dir + "/model.safetensors", readers: readers, weights: weights, config: c,
            rotations: places.map(\.q), kept: kept, maps: places.map(\.map), threads: threads)
        try StructuredModelPass.writeConfig(model: model, files: files.with(config: sliced), to: dir)
        let source = try ModelSource(path: dir)
        let share = places.map(\.keptShare).reduce(0, +) / Double(places.count)
        let summary = RecipeRunner.SliceSummary(
            hidden: c.hidden, kept: kept, keptVariance: share, seconds: ms(since: t0) / 1000)
        return Staged(model: source, files: try DecoderModelFiles(model: source), summary: summary)
    }

    /// Q_pᵀ·Q_{p+1} [kept × kept]: the residual in place p's basis, re-expressed in the next one's.
    static func shortcut(_ a: [Float], _ b: [Float], n: Int, kept: Int) -> [Float] {
        var c = [Float](repeating: 0, count: kept * kept)
        BLAS.gemm(
            m: kept, n: kept, k: n, a: a, lda: kept, aTransposed: true, b: b, ldb: kept, bTransposed: false, c: &c,
            ldc: kept)
        return c
    }
}

/// The progressive pass of the per-block slice: the sliced model's own stream, place by place.
private struct PerBlockPlaces {
    let config: LlamaConfig
    let sliced: LlamaConfig
    let stage: SliceStage
    let calibration: CalibrateStage
    let plan: ChunkPlan
    let threads: Int

    init(
        config: LlamaConfig, sliced: LlamaConfig, stage: SliceStage, calibration: CalibrateStage, samples: Int,
        threads: Int
    ) {
        (self.config, self.sliced, self.stage, self.calibration, self.threads) = (
            config, sliced, stage, calibration, threads
        )
        plan = ChunkPlan(
            config: sliced, samples: samples, seqLen: calibration.seqLen,
            chunkWindows: DecoderCalibration.chunkWindows(seqLen: calibration.seqLen), threads: threads)
    }

    var n: Int { config.hidden }
    var kept: Int { sliced.hidden }
    var seqLen: Int { calibration.seqLen }

    /// Every place's rotation, in order 0 … 2 × layers.
    func run(_ ids: [[Int32]], _ weights: ModelWeights, checkContinue: () throws -> Void) throws -> [SlicePass.Place] {
        let dense = LlamaDecoder(config: config, samples: ids.count, seqLen: seqLen, threads: threads)
        var full = try dense.embed(ids, weights)
        var places = [try place(of: full)]
        var x = project(full, places[0].q)
        for i in 0..<config.layers {
            for half in 0..<2 {
                let p = 2 * i + half
                let w = try blockWeights(i, half: half, weights, place: places[p])
                let qp = places[p].q
                try plan.forEachChunk { d, r in
                    let xc = x.windows(r, seqLen, threads: threads)
                    var y = try output(i, half: half, d, xc, w)
                    d.add(&y, unproject(xc, qp))
                    full.setWindows(r, seqLen, y, threads: threads)
                }
                places.append(try place(of: full))
                x = project(full, places[p + 1].q)
            }
            try checkContinue()
        }
        return places
    }

    /// Half 0: o_proj's output of the attention over the sliced stream; 1: down_proj's of the FFN.
    private func output(_ i: Int, half: Int, _ d: LlamaDecoder, _ xc: Activations, _ w: WeightSupplier) throws
        -> Activations
    {
        let b = { (part: String) in LlamaNames.block(i, part) }
        if half == 0 {
            let ctx = try d.attentionContext(i, try d.rmsNorm(xc, b("input_layernorm.weight"), w), w)
            return try d.linear(b("self_attn.o_proj"), ctx, out: n, bias: config.outputBias, w)
        }
        let act = try d.mlpProduct(i, try d.rmsNorm(xc, b("post_attention_layernorm.weight"), w), w)
        return try d.linear(b("mlp.down_proj"), act, out: n, bias: config.outputBias, w)
    }

    /// Block i's weights for one half: its norm √(hidden / kept), its readers W·diag(g)·M_p (M_p the
    /// place's map), its writer and biases as they are (the output is taken at full width).
    private func blockWeights(_ i: Int, half: Int, _ weights: ModelWeights, place: SlicePass.Place) throws
        -> FixedWeights
    {
        let b = { (part: String) in LlamaNames.block(i, part) }
        let w = FixedWeights()
        let norm = half == 0 ? "input_layernorm.weight" : "post_attention_layernorm.weight"
        let g = try weights.tensor(b(norm), count: n)
        try w.set(b(norm), [Float](repeating: Float((Double(n) / Double(kept)).squareRoot()), count: kept), count: kept)
        let readers: [(String, Int)] =
            half == 0
            ? [
                ("self_attn.q_proj", config.qWidth(i)), ("self_attn.k_proj", config.kvWidth(i)),
                ("self_attn.v_proj", config.kvWidth(i))
            ]
            : [("mlp.gate_proj", config.intermediate(i)), ("mlp.up_proj", config.intermediate(i))]
        for (part, rows) in readers {
            var m = try weights.tensor(b(part + ".weight"), count: rows * n)
            for r in 0..<rows { for j in 0..<n { m[r * n + j] *= g[j] } }
            let v = BLAS.gemmRows(m: rows, n: kept, k: n, a: m, b: place.map, bTransposed: false, threads: threads)
            try w.set(b(part + ".weight"), v, count: rows * kept)
            if config.qkvBias && half == 0 {
                try w.set(b(part + ".bias"), try weights.tensor(b(part + ".bias"), count: rows), count: rows)
            }
        }
        let (writer, width) =
            half == 0 ? ("self_attn.o_proj", config.qWidth(i)) : ("mlp.down_proj", config.intermediate(i))
        try w.set(b(writer + ".weight"), try weights.tensor(b(writer + ".weight"), count: n * width), count: n * width)
        if config.outputBias {
            try w.set(b(writer + ".bias"), try weights.tensor(b(writer + ".bias"), count: n), count: n)
        }
        return w
    }

    /// The rotation of the stream held in `full` (every calibration row, hidden wide).
    private func place(of full: Activations) throws -> SlicePass.Place {
        let sum = calibration.hessian.accumulator(n: n, threads: threads)
        try plan.forEachChunk { _, r in
            let f = full.windows(r, seqLen, threads: threads)
            let u = SlicePass.normalised(f, eps: config.eps)
            u.withUnsafeBufferPointer { sum.add($0.baseAddress!, rows: f.rows) }
        }
        let gram = sum.result()
        let (q, eigenvalues) = try SlicePass.rotation(gram, n: n, keep: kept)
        let total = eigenvalues.reduce(0, +)
        let share = total > 0 ? eigenvalues.prefix(kept).reduce(0, +) / total : 1
        let map = stage.refit && kept < n ? SlicePass.readerMap(gram, q: q, n: n, kept: kept) : q
        return SlicePass.Place(q: q, map: map, keptShare: share)
    }

    /// x·Q (rows × kept) of the hidden-wide rows x.
    private func project(_ x: Activations, _ q: [Float]) -> Activations {
        let v = BLAS.gemmRows(m: x.rows, n: kept, k: n, a: x.data, b: q, bTransposed: false, threads: threads)
        return Activations(data: v, rows: x.rows, width: kept)
    }

    /// x·Qᵀ (rows × hidden) of the kept-wide rows x.
    private func unproject(_ x: Activations, _ q: [Float]) -> Activations {
        let v = BLAS.gemmRows(m: x.rows, n: n, k: kept, a: x.data, b: q, bTransposed: true, threads: threads)
        return Activations(data: v, rows: x.rows, width: n)
    }
}
