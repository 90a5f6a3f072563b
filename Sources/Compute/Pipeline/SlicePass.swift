import CBLAS
import Foundation

/// A recipe's `slice` stage (SliceGPT, uniform variant), applied to the whole model before any
/// unit runs. The dense model runs over the calibration windows; every vector the residual stream
/// hands a norm (each block's input and its stream after the attention, and the last block's output)
/// is normalised to unit RMS, so no token's massive activation outweighs the rest, and summed into
/// one Gram matrix per place (in the calibrate stage's `hessian` precision), and those into one.
/// Its eigenvectors (LAPACK `dsyevd`, F64) by falling eigenvalue are the rotation Q; the
/// `hidden × kept` leading columns Qₖ are kept. Each norm's weight is folded into the linears that
/// read it; the embedding and those linears become W·Qₖ (with `refit`, the readers W·R_p: see
/// `readerMap`), o_proj and down_proj (and their biases) Qₖᵀ·W; the head (untied: the tied
/// embedding cannot be both) W_head·diag(g)·Qₖ; every norm weight becomes √(hidden / kept), so a
/// norm over the kept dimensions gives what the original norm over all of them gives. With ratio 0
/// the model computes the same function (up to rounding).
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
        if !s.uniform {
            return try runPerBlock(
                s, model: model, readers: readers, files: files, calibration: cal, into: dir, threads: threads,
                checkContinue: checkContinue)
        }
        let t0 = DispatchTime.now()
        let c = files.config
        let n = c.hidden
        let kept = keptWidth(s, hidden: n)
        let ids = try cal.windows(files.tokenizer)
        let weights = ModelWeights(readers: readers)
        // One Gram per place a norm reads the stream: block i's input (2i), its stream after the
        // attention (2i + 1), the last block's output (2 × layers).
        var grams = [[Float]]()
        var sums = [GramAccumulator]()
        func add(_ a: Activations, _ sum: GramAccumulator) {
            let u = normalised(a, eps: c.eps)
            u.withUnsafeBufferPointer { sum.add($0.baseAddress!, rows: a.rows) }
        }
        let final = cal.hessian.accumulator(n: n, threads: threads)
        try DenseBlockPass.run(config: c, ids: ids, seqLen: cal.seqLen, weights: weights, threads: threads) {
            _, x, _ in
            if sums.isEmpty { sums = (0..<2).map { _ in cal.hessian.accumulator(n: n, threads: threads) } }
            add(x.stream, sums[0])
            add(x.mid, sums[1])
        } blockDone: { _, _ in
            grams += sums.map { $0.result() }
            sums = []
            try checkContinue()
        } output: {
            add($0, final)
        }
        grams.append(final.result())
        var sum = [Float](repeating: 0, count: n * n)
        for g in grams { for j in 0..<(n * n) { sum[j] += g[j] } }
        let (q, eigenvalues) = try rotation(sum, n: n, keep: kept)
        let total = eigenvalues.reduce(0, +)
        let keptShare = total > 0 ? eigenvalues.prefix(kept).reduce(0, +) / total : 1
        var sliced = c
        sliced.hidden = kept
        sliced.tied = false
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        // A reader's map from the stream: Qₖ, or with `refit` its least-squares map at that place.
        let maps: [[Float]]? = s.refit && kept < n ? grams.map { readerMap($0, q: q, n: n, kept: kept) } : nil
        try writeWeights(
            to: dir + "/model.safetensors", readers: readers, weights: weights, config: c, rotations: [q], kept: kept,
            maps: maps, threads: threads)
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

    /// The least-squares map R (n × kept) of a linear that reads the stream at one place, whose
    /// normalised vectors u have the Gram C there: W·diag(g)·R on the sliced stream's normalised
    /// vector b ≈ f·Qₖᵀu best reproduces W·diag(g)·u, R = C·Qₖ·(Qₖᵀ·C·Qₖ)⁻¹ / f, where
    /// f = √(tr C / tr Qₖᵀ·C·Qₖ) is the mean factor by which a norm over the kept dimensions scales
    /// the vector up
    /// (F64, LAPACK `dposv`; Qₖᵀ·C·Qₖ dampened by 1e-6 × its mean diagonal; Qₖ if it is singular).
    static func readerMap(_ c: [Float], q: [Float], n: Int, kept k: Int) -> [Float] {
        let cd = c.map(Double.init), qd = q.map(Double.init)
        var cq = [Double](repeating: 0, count: n * k)
        cblas_dgemm(
            CblasRowMajor, CblasNoTrans, CblasNoTrans, Int32(n), Int32(k), Int32(n), 1, cd, Int32(n), qd, Int32(k), 0,
            &cq, Int32(k))
        var m = [Double](repeating: 0, count: k * k)
        cblas_dgemm(
            CblasRowMajor, CblasTrans, CblasNoTrans, Int32(k), Int32(k), Int32(n), 1, qd, Int32(k), cq, Int32(k), 0,
            &m, Int32(k))
        let inside = (0..<k).reduce(0.0) { $0 + m[$1 * k + $1] }
        let all = (0..<n).reduce(0.0) { $0 + cd[$1 * n + $1] }
        guard inside > 0 else { return q }
        let f = (all / inside).squareRoot()
        for i in 0..<k { m[i * k + i] += 1e-6 * inside / Double(k) }
        // Solve M·X = (C·Qₖ)ᵀ (k × n), then R = Xᵀ / f.
        var x = [Double](repeating: 0, count: k * n)
        for i in 0..<n { for j in 0..<k { x[j * n + i] = cq[i * k + j] } }
        let info = LAPACKE_dposv(
            LAPACK_ROW_MAJOR, Int8(UInt8(ascii: "L")), Int32(k), Int32(n), &m, Int32(k), &x, Int32(n))
        guard info == 0 else { return q }
        var r = [Float](repeating: 0, count: n * k)
        for i in 0..<n { for j in 0..<k { r[i * k + j] = Float(x[j * n + i] / f) } }
        return r
    }

    /// Every input tensor in input order, rotated and sliced, then the untied head if the input had
    /// none, then a per-block slice's shortcut matrices. `rotations`: one Qₖ for the whole stream, or
    /// Q_p of every place p (the embedding writes place 0, block i's o_proj 2i + 1 and down_proj
    /// 2i + 2); a reader of place p multiplies by `maps[p]` instead where given.
    static func writeWeights(
        to path: String, readers: [any TensorFile], weights: ModelWeights, config c: LlamaConfig,
        rotations: [[Float]], kept: Int, maps: [[Float]]?, threads: Int
    ) throws {
        let n = c.hidden
        let perBlock = rotations.count > 1
        func q(_ place: Int) -> [Float] { perBlock ? rotations[place] : rotations[0] }
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
            /// W·diag(norm)·maps[place] (without a norm, the embedding: E·Q_place).
            case reads(norm: String?, place: Int)
            /// Q_placeᵀ·W.
            case writes(place: Int)
            /// √(hidden / kept) everywhere.
            case norm
            /// Q_placeᵀ·Q_(place+1).
            case shortcut(place: Int)
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
                op = .reads(norm: nil, place: 0)
            } else if t.name == LlamaNames.lmHead {
                op = .reads(norm: LlamaNames.finalNorm, place: 2 * c.layers)
            } else if t.name == LlamaNames.finalNorm {
                op = .norm
            } else if let part, let norm = reads[part], let i = LlamaNames.blockIndex(t.name, layers: c.layers) {
                op = .reads(norm: LlamaNames.block(i, norm), place: 2 * i + (norm == "input_layernorm.weight" ? 0 : 1))
            } else if let part, writes.contains(part), let i = LlamaNames.blockIndex(t.name, layers: c.layers) {
                op = .writes(place: 2 * i + (part.hasPrefix("self_attn") ? 1 : 2))
            } else if let part, norms.contains(part) {
                op = .norm
            } else {
                op = .copy
            }
            switch op {
            case .reads: shape[shape.count - 1] = kept
            case .writes, .norm: shape[0] = kept
            case .shortcut, .copy: break
            }
            plan.append((t.name, shape, op, t.name))
        }
        if c.tied {
            let head = Op.reads(norm: LlamaNames.finalNorm, place: 2 * c.layers)
            plan.append((LlamaNames.lmHead, [c.vocabSize, kept], head, LlamaNames.embedding))
        }
        if perBlock {
            for i in 0..<c.layers {
                for (k, part) in [LlamaNames.attentionShortcut, LlamaNames.mlpShortcut].enumerated() {
                    let name = LlamaNames.block(i, part)
                    plan.append((name, [kept, kept], .shortcut(place: 2 * i + k), name))
                }
            }
        }
        let out = try SafeTensorsWriter(path: path, tensors: plan.map { ($0.name, DType.F32, $0.shape) })
        let scale = Float((Double(n) / Double(kept)).squareRoot())
        for p in plan {
            let count = p.shape.reduce(1, *)
            var v: [Float]
            switch p.op {
            case .reads(let norm, let place):
                let rows = p.shape[0]
                var w = try weights.tensor(p.source, count: rows * n)
                if let norm {
                    let g = try weights.tensor(norm, count: n)
                    for r in 0..<rows { for j in 0..<n { w[r * n + j] *= g[j] } }
                }
                let map = norm == nil ? q(place) : maps?[place] ?? q(place)
                v = BLAS.gemmRows(m: rows, n: kept, k: n, a: w, b: map, bTransposed: false, threads: threads)
            case .writes(let place):
                let cols = p.shape.count == 2 ? p.shape[1] : 1
                let w = try weights.tensor(p.source, count: n * cols)
                v = [Float](repeating: 0, count: kept * cols)
                q(place).withUnsafeBufferPointer { qp in
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
            case .shortcut(let place):
                v = shortcut(q(place), q(place + 1), n: n, kept: kept)
            case .copy:
                v = try weights.tensor(p.source, count: count)
            }
            precondition(v.count == count)
            try v.withUnsafeBytes { try out.write(name: p.name, bytes: $0) }
        }
        try out.finish()
    }
}
