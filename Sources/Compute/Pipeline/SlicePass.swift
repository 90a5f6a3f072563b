import CBLAS
import Foundation

/// A recipe's `slice` stage (SliceGPT, uniform variant), applied to the whole model before any
/// unit runs. The dense model runs over the calibration windows; every vector the residual stream
/// hands a norm (each block's input and its stream after the attention, and the last block's output)
/// is normalised to unit RMS, so no token's massive activation outweighs the rest, and summed into
/// one Gram matrix. Its eigenvectors (LAPACK `dsyevd`, F64) by falling eigenvalue are the rotation
/// Q; the `hidden × kept` leading columns Qₖ are kept. Each norm's weight is folded into the linears
/// that read it; the embedding and those linears become W·Qₖ, o_proj and down_proj (and their
/// biases) Qₖᵀ·W; the head (untied: the tied embedding cannot be both) W_head·diag(g)·Qₖ; every norm
/// weight becomes √(hidden / kept), so a norm over the kept dimensions gives what the original
/// norm over all of them gives. With ratio 0 the model computes the same function (up to rounding).
enum SlicePass {
    /// The staged model and what the pass decided.
    struct Staged {
        let model: ModelSource
        let files: DecoderModelFiles
        let summary: RecipeRunner.SliceSummary
    }

    /// The residual width kept: (1 − ratio) × hidden rounded to a multiple (at least one multiple).
    static func keptWidth(_ s: SliceStage, hidden: Int) -> Int {
        let m = max(1, s.multiple)
        let rounded = Int((Double(hidden) * (1 - s.ratio) / Double(m)).rounded()) * m
        return min(hidden, max(min(m, hidden), rounded))
    }

    static func run(
        _ s: SliceStage, model: ModelSource, readers: [any TensorFile], files: DecoderModelFiles,
        calibration cal: CalibrateStage, into dir: String, threads: Int, checkContinue: () throws -> Void = {}
    ) throws -> Staged {
        let t0 = DispatchTime.now()
        let c = files.config
        let n = c.hidden
        let kept = keptWidth(s, hidden: n)
        let ids = try cal.windows(files.tokenizer)
        let weights = ModelWeights(readers: readers)
        let gram = RowBlockSum(.gram(n: n), threads: threads)
        func add(_ a: Activations) {
            let u = normalised(a, eps: c.eps)
            u.withUnsafeBufferPointer { gram.add($0.baseAddress!, rows: a.rows) }
        }
        try DenseBlockPass.run(config: c, ids: ids, seqLen: cal.seqLen, weights: weights, threads: threads) {
            _, x, _ in
            add(x.stream)
            add(x.mid)
        } blockDone: { _, _ in
            try checkContinue()
        } output: {
            add($0)
        }
        let (q, eigenvalues) = try rotation(gram.result(), n: n, keep: kept)
        let total = eigenvalues.reduce(0, +)
        let keptShare = total > 0 ? eigenvalues.prefix(kept).reduce(0, +) / total : 1
        var sliced = c
        sliced.hidden = kept
        sliced.tied = false
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        try writeWeights(
            to: dir + "/model.safetensors", readers: readers, weights: weights, config: c, q: q, kept: kept,
            threads: threads)
        try StructuredModelPass.writeConfig(model: model, files: files.with(config: sliced), to: dir)
        let source = try ModelSource(path: dir)
        let summary = RecipeRunner.SliceSummary(
            hidden: n, kept: kept, keptVariance: keptShare, seconds: ms(since: t0) / 1000)
        return Staged(model: source, files: try DecoderModelFiles(model: source), summary: summary)
    }

    /// Each row divided by its RMS (√(mean square + eps)).
    static func normalised(_ a: Activations, eps: Float) -> [Float] {
        var out = a.data
        let w = a.width
        for r in 0..<a.rows {
            var ss: Float = 0
            for j in 0..<w { ss += a.data[r * w + j] * a.data[r * w + j] }
            let inv = 1 / (ss / Float(w) + eps).squareRoot()
            for j in 0..<w { out[r * w + j] *= inv }
        }
        return out
    }

    /// The `keep` leading eigenvectors of the symmetric `gram` (n × n) as the columns of an n × keep
    /// row-major matrix, by falling eigenvalue, each signed so its largest component is positive;
    /// and every eigenvalue, falling.
    static func rotation(_ gram: [Float], n: Int, keep: Int) throws -> (q: [Float], eigenvalues: [Double]) {
        var a = gram.map(Double.init)
        var w = [Double](repeating: 0, count: n)
        BLAS.configure()
        let info = LAPACKE_dsyevd(
            LAPACK_ROW_MAJOR, Int8(UInt8(ascii: "V")), Int8(UInt8(ascii: "U")), Int32(n), &a, Int32(n), &w)
        guard info == 0 else {
            throw ComputeError(
                .numerical, "slice: the residual stream's eigendecomposition failed (dsyevd info \(info))")
        }
        var q = [Float](repeating: 0, count: n * keep)
        for k in 0..<keep {
            let col = n - 1 - k
            var big = 0.0
            for i in 0..<n where abs(a[i * n + col]) > abs(big) { big = a[i * n + col] }
            let sign = big < 0 ? -1.0 : 1.0
            for i in 0..<n { q[i * keep + k] = Float(sign * a[i * n + col]) }
        }
        return (q, w.reversed().map { max(0, $0) })
    }

    /// Every input tensor in input order, rotated and sliced, then the untied head if the input had none.
    private static func writeWeights(
        to path: String, readers: [any TensorFile], weights: ModelWeights, config c: LlamaConfig, q: [Float],
        kept: Int, threads: Int
    ) throws {
        let n = c.hidden
        let tensors = readers.flatMap(\.tensors)
        let reads: [String: String] = [
            "self_attn.q_proj.weight": "input_layernorm.weight", "self_attn.k_proj.weight": "input_layernorm.weight",
            "self_attn.v_proj.weight": "input_layernorm.weight",
            "mlp.gate_proj.weight": "post_attention_layernorm.weight",
            "mlp.up_proj.weight": "post_attention_layernorm.weight"
        ]
        let writes: Set<String> = [
            "self_attn.o_proj.weight", "mlp.down_proj.weight", "self_attn.o_proj.bias", "mlp.down_proj.bias"
        ]
        let norms: Set<String> = ["input_layernorm.weight", "post_attention_layernorm.weight"]
        enum Op {
            /// W·diag(norm)·Qₖ (norm nil: W·Qₖ).
            case reads(norm: String?)
            /// Qₖᵀ·W.
            case writes
            /// √(hidden / kept) everywhere.
            case norm
            case copy
        }
        var plan = [(name: String, shape: [Int], op: Op, source: String)]()
        for t in tensors {
            let part = LlamaNames.blockIndex(t.name, layers: c.layers).map { i in
                String(t.name.dropFirst(LlamaNames.block(i, "").count))
            }
            var shape = t.shape
            let op: Op
            if t.name == LlamaNames.embedding {
                op = .reads(norm: nil)
            } else if t.name == LlamaNames.lmHead {
                op = .reads(norm: LlamaNames.finalNorm)
            } else if t.name == LlamaNames.finalNorm {
                op = .norm
            } else if let part, let norm = reads[part] {
                op = .reads(norm: LlamaNames.block(LlamaNames.blockIndex(t.name, layers: c.layers)!, norm))
            } else if let part, writes.contains(part) {
                op = .writes
            } else if let part, norms.contains(part) {
                op = .norm
            } else {
                op = .copy
            }
            switch op {
            case .reads: shape[shape.count - 1] = kept
            case .writes, .norm: shape[0] = kept
            case .copy: break
            }
            plan.append((t.name, shape, op, t.name))
        }
        if c.tied {
            plan.append(
                (LlamaNames.lmHead, [c.vocabSize, kept], .reads(norm: LlamaNames.finalNorm), LlamaNames.embedding))
        }
        let out = try SafeTensorsWriter(path: path, tensors: plan.map { ($0.name, DType.F32, $0.shape) })
        let scale = Float((Double(n) / Double(kept)).squareRoot())
        for p in plan {
            let count = p.shape.reduce(1, *)
            var v: [Float]
            switch p.op {
            case .reads(let norm):
                let rows = p.shape[0]
                var w = try weights.tensor(p.source, count: rows * n)
                if let norm {
                    let g = try weights.tensor(norm, count: n)
                    for r in 0..<rows { for j in 0..<n { w[r * n + j] *= g[j] } }
                }
                v = BLAS.gemmRows(m: rows, n: kept, k: n, a: w, b: q, bTransposed: false, threads: threads)
            case .writes:
                let cols = p.shape.count == 2 ? p.shape[1] : 1
                let w = try weights.tensor(p.source, count: n * cols)
                v = [Float](repeating: 0, count: kept * cols)
                q.withUnsafeBufferPointer { qp in
                    w.withUnsafeBufferPointer { wp in
                        v.withUnsafeMutableBufferPointer { vp in
                            BLAS.gemm(
                                m: kept, n: cols, k: n, a: qp.baseAddress!, lda: kept, aTransposed: true,
                                b: wp.baseAddress!, ldb: cols, bTransposed: false, c: vp.baseAddress!, ldc: cols)
                        }
                    }
                }
            case .norm:
                v = [Float](repeating: scale, count: kept)
            case .copy:
                v = try weights.tensor(p.source, count: count)
            }
            precondition(v.count == count)
            try v.withUnsafeBytes { try out.write(name: p.name, bytes: $0) }
        }
        try out.finish()
    }
}
