import Foundation

/// Calibration of a Llama-family decoder one block at a time, streaming the calibration windows
/// through each block in chunks (about 2,048 tokens): no layer's input is ever held for all
/// tokens. Each block runs in five passes over the chunks, each linear layer compressed as soon
/// as the statistics of its input are complete, so every later layer sees the outputs of the
/// compressed ones (true-sequential, as GPTQ and SparseGPT run):
///   1. input norm → statistics for Q, K, V; compress them
///   2. attention with the compressed Q, K, V (the context is kept) → statistics for O; compress it
///   3. residual h = x + O(ctx), kept in x's place; post-attention norm → gate, up; compress them
///   4. SwiGLU product with the compressed gate and up (kept) → statistics for down; compress it
///   5. the block's output h + down(product), in x's place.
/// Held at once: the block's input (tokens × hidden), the context (tokens × q width) or the SwiGLU
/// product (tokens × intermediate; one buffer for both, allocated once), the block's weights and
/// one input's statistics; with `distill`, the original model's activations (tokens × hidden) and
/// block beside them.
struct DecoderCalibration {
    let config: LlamaConfig
    let seqLen: Int
    let threads: Int
    let needs: CalibrationNeeds
    /// Windows per chunk.
    let chunkWindows: Int

    /// Tokens per chunk (whole windows; at least one window).
    static let chunkTokens = 2048

    /// Windows per chunk for windows of `seqLen` tokens: whole groups of the products' windows
    /// (`Activations.windowsPerProduct`) once a chunk holds one, so every product sees the rows the
    /// whole-batch forward pass gives it (OpenBLAS may round a row differently in a product of
    /// another row count, as its Haswell kernels do).
    static func chunkWindows(seqLen: Int, chunkTokens: Int = chunkTokens) -> Int {
        let windows = max(1, chunkTokens / seqLen), group = Activations.windowsPerProduct
        return windows < group ? windows : windows / group * group
    }

    init(
        config: LlamaConfig, seqLen: Int, threads: Int, needs: CalibrationNeeds,
        chunkTokens: Int = DecoderCalibration.chunkTokens
    ) {
        self.config = config
        self.seqLen = seqLen
        self.threads = threads
        self.needs = needs
        chunkWindows = Self.chunkWindows(seqLen: seqLen, chunkTokens: chunkTokens)
    }

    func run(_ ids: [[Int32]], teacher original: ModelWeights?, compute: (String, LinearCalibration?) throws -> [Float])
        throws
    {
        guard !config.shortcuts else {
            throw ComputeError(
                .unsupportedModel, "calibrated stages do not run on a per-block slice's shortcut matrices yet")
        }
        let whole = LlamaDecoder(config: config, samples: ids.count, seqLen: seqLen, threads: threads)
        let plan = ChunkPlan(
            config: config, samples: ids.count, seqLen: seqLen, chunkWindows: chunkWindows, threads: threads)
        var x = try withoutActuallyEscaping(compute) { try whole.embed(ids, StudentWeights(compute: $0)) }
        var xt = try original.map { try whole.embed(ids, $0) }
        let kept = KeptInput(rows: x.rows, maxWidth: max(config.widestQ, config.widestFFN))
        for i in 0..<config.layers {
            try block(i, plan, &x, &xt, kept, teacher: original.map(CachedWeights.init), compute: compute)
        }
    }

    private func block(
        _ i: Int, _ plan: ChunkPlan, _ x: inout Activations, _ xt: inout Activations?, _ kept: KeptInput,
        teacher: CachedWeights?, compute: (String, LinearCalibration?) throws -> [Float]
    ) throws {
        let c = config
        let name = { (part: String) in LlamaNames.block(i, part) }
        let ln1 = name("input_layernorm.weight"), ln2 = name("post_attention_layernorm.weight")
        let w = FixedWeights()
        func run(
            _ layers: [(String, Int)], _ width: Int, _ stats: (InputStatistics, [TargetStatistics?]), bias: Bool = false
        ) throws {
            for (k, (part, out)) in layers.enumerated() {
                try w.set(
                    name(part + ".weight"),
                    compute(name(part + ".weight"), LinearCalibration(statistics: stats.0, target: stats.1[k])),
                    count: out * width)
                if bias {
                    try w.set(name(part + ".bias"), compute(name(part + ".bias"), nil), count: out)
                }
            }
        }
        try w.set(ln1, compute(ln1, nil), count: c.hidden)
        // 1. Q, K, V on the normed input.
        let qkv = [
            ("self_attn.q_proj", c.qWidth(i)), ("self_attn.k_proj", c.kvWidth(i)), ("self_attn.v_proj", c.kvWidth(i))
        ]
        try run(
            qkv, c.hidden,
            try sharedInputPass(
                plan, qkv.map { (name($0.0), $0.1) }, width: c.hidden, teacher: teacher,
                student: { d, r in try x.normedWindows(r, seqLen, d, ln1, w) },
                original: { d, r, t in try xt!.normedWindows(r, seqLen, d, ln1, t) }), bias: c.qkvBias)
        // 2. O on the attention context of the compressed Q, K, V (kept); the teacher's residual moves on.
        kept.hold(width: c.qWidth(i))
        try run(
            [("self_attn.o_proj", c.hidden)], c.qWidth(i),
            try keptPass(
                plan, layer: name("self_attn.o_proj"), out: c.hidden, from: x, norm: ln1, kept: kept, xt: &xt,
                teacher: teacher, w: w
            ) {
                try $0.attentionContext(i, $1, $2)
            }, bias: c.outputBias)
        // 3. The residual h replaces x; gate and up on its norm.
        try w.set(ln2, compute(ln2, nil), count: c.hidden)
        let gu = [("mlp.gate_proj", c.intermediate(i)), ("mlp.up_proj", c.intermediate(i))]
        let guStats = try sharedInputPass(
            plan, gu.map { (name($0.0), $0.1) }, width: c.hidden, teacher: teacher,
            student: { d, r in
                var h = try kept.linear(
                    r, seqLen, w.tensor(name("self_attn.o_proj.weight"), count: c.hidden * c.qWidth(i)),
                    bias: c.outputBias ? w.tensor(name("self_attn.o_proj.bias"), count: c.hidden) : nil, out: c.hidden,
                    threads: threads)
                x.addWindows(r, seqLen, into: &h, threads: threads)
                x.setWindows(r, seqLen, h, threads: threads)
                return try d.rmsNorm(h, ln2, w)
            }, original: { d, r, t in try xt!.normedWindows(r, seqLen, d, ln2, t) })
        try run(gu, c.hidden, guStats)
        // 4. Down on the SwiGLU product of the compressed gate and up (kept); the teacher's block ends.
        kept.hold(width: c.intermediate(i))
        try run(
            [("mlp.down_proj", c.hidden)], c.intermediate(i),
            try keptPass(
                plan, layer: name("mlp.down_proj"), out: c.hidden, from: x, norm: ln2, kept: kept, xt: &xt,
                teacher: teacher, w: w
            ) {
                try $0.mlpProduct(i, $1, $2)
            }, bias: c.outputBias)
        // 5. The block's output replaces h (no block reads the last one's).
        guard i + 1 < c.layers else { return }
        try plan.forEachChunk { d, r in
            var o = try kept.linear(
                r, seqLen, w.tensor(name("mlp.down_proj.weight"), count: c.hidden * c.intermediate(i)),
                bias: c.outputBias ? w.tensor(name("mlp.down_proj.bias"), count: c.hidden) : nil, out: c.hidden,
                threads: threads)
            x.addWindows(r, seqLen, into: &o, threads: threads)
            x.setWindows(r, seqLen, o, threads: threads)
        }
    }

    /// A pass for layers that read one input (`student` computes it per chunk of windows): its
    /// statistics, and with a teacher the original layers' outputs on the original input.
    private func sharedInputPass(
        _ plan: ChunkPlan, _ layers: [(String, Int)], width: Int, teacher: CachedWeights?,
        student: (LlamaDecoder, Range<Int>) throws -> Activations,
        original: (LlamaDecoder, Range<Int>, CachedWeights) throws -> Activations
    ) throws
        -> (InputStatistics, [TargetStatistics?])
    {
        let stats = statistics(width: width, teacher: teacher != nil),
            targets = self.targets(layers, width: width, teacher: teacher)
        try plan.forEachChunk { d, r in
            let x = try student(d, r)
            let t = try teacher.map { try original(d, r, $0) }
            if let t, let teacher {
                for (k, (base, out)) in layers.enumerated() {
                    targets[k]!.add(teacherOutput: try d.linear(base, t, out: out, bias: false, teacher), student: x)
                }
            }
            stats.add(x, teacher: t)
        }
        return (stats, targets)
    }

    /// A pass for one layer whose input `input` computes from the block's stream (`from`) normed
    /// by `norm`, and is kept for the next pass; with a teacher, the original layer's output joins
    /// the teacher's residual stream `xt` in place.
    private func keptPass(
        _ plan: ChunkPlan, layer: String, out: Int, from x: Activations, norm: String, kept: KeptInput,
        xt: inout Activations?,
        teacher: CachedWeights?, w: WeightSupplier,
        input: (LlamaDecoder, Activations, WeightSupplier) throws -> Activations
    ) throws -> (InputStatistics, [TargetStatistics?]) {
        let stats = statistics(width: kept.width, teacher: teacher != nil),
            targets = self.targets([(layer, out)], width: kept.width, teacher: teacher)
        try plan.forEachChunk { d, r in
            let a = try input(d, try x.normedWindows(r, seqLen, d, norm, w), w)
            kept.setWindows(r, seqLen, a, threads: threads)
            var t: Activations?
            if let teacher {
                var tx = xt!.windows(r, seqLen, threads: threads)
                let ta = try input(d, try d.rmsNorm(tx, norm, teacher), teacher)
                var y = try d.linear(layer, ta, out: out, bias: false, teacher)
                targets[0]!.add(teacherOutput: y, student: a)
                if config.outputBias { y.addRowVector(try teacher.tensor(layer + ".bias", count: out)) }
                d.add(&tx, y)
                xt!.setWindows(r, seqLen, tx, threads: threads)
                t = ta
            }
            stats.add(a, teacher: t)
        }
        return (stats, targets)
    }

    private func statistics(width: Int, teacher: Bool) -> InputStatistics {
        InputStatistics(width: width, needs: needs, teacher: teacher, threads: threads)
    }

    /// The teacher-side statistics of each layer (nil without a teacher).
    private func targets(_ layers: [(String, Int)], width: Int, teacher: CachedWeights?) -> [TargetStatistics?] {
        layers.map { teacher == nil ? nil : TargetStatistics(out: $0.1, width: width, threads: threads) }
    }
}

/// The input of the layer a kept pass compresses (o_proj's attention context, then down_proj's
/// SwiGLU product), held for every calibration token until the next pass reads it back: one
/// allocation for the widest of them, reused by every block, so no block pays for fresh pages.
private final class KeptInput {
    private var storage: [Float]
    let rows: Int
    private(set) var width = 0

    init(rows: Int, maxWidth: Int) {
        self.rows = rows
        storage = Activations.unfilled(rows: rows, width: maxWidth).data
    }

    /// Starts holding an input of `width` columns (every window is written before it is read).
    func hold(width: Int) {
        precondition(rows * width <= storage.count)
        self.width = width
    }

    /// Overwrites the rows of windows `r` (windows of `seqLen` rows) with `x`.
    func setWindows(_ r: Range<Int>, _ seqLen: Int, _ x: Activations, threads: Int) {
        precondition(x.width == width && x.rows == r.count * seqLen)
        let at = r.lowerBound * seqLen * width
        storage.withUnsafeMutableBufferPointer { s in
            x.data.withUnsafeBufferPointer {
                ParallelRows.copy($0.baseAddress!, to: s.baseAddress! + at, count: $0.count, threads: threads)
            }
        }
    }

    /// y = x Wᵀ for the rows of windows `r`, read in place.
    func linear(_ r: Range<Int>, _ seqLen: Int, _ weight: [Float], bias: [Float]?, out: Int, threads: Int)
        -> Activations
    {
        storage.withUnsafeBufferPointer {
            Activations.linear(
                $0.baseAddress! + r.lowerBound * seqLen * width, rows: r.count * seqLen, width: width, weight,
                bias: bias, out: out,
                seqLen: seqLen, threads: threads)
        }
    }
}

extension Activations {
    /// Adds `v` (one value per column) to every row.
    mutating func addRowVector(_ v: [Float]) {
        precondition(v.count == width)
        let w = width
        data.withUnsafeMutableBufferPointer { p in
            for r in 0..<rows {
                for j in 0..<w { p[r * w + j] += v[j] }
            }
        }
    }

    /// A copy of the rows of windows `r` (windows of `seqLen` rows).
    func windows(_ r: Range<Int>, _ seqLen: Int, threads: Int) -> Activations {
        let at = r.lowerBound * seqLen * width, n = r.count * seqLen * width
        var out = Activations.unfilled(rows: r.count * seqLen, width: width)
        data.withUnsafeBufferPointer { s in
            out.data.withUnsafeMutableBufferPointer {
                ParallelRows.copy(s.baseAddress! + at, to: $0.baseAddress!, count: n, threads: threads)
            }
        }
        return out
    }

    /// The rows of windows `r` normed by `d.rmsNorm` with the weight `name` (read in place).
    func normedWindows(_ r: Range<Int>, _ seqLen: Int, _ d: LlamaDecoder, _ name: String, _ w: WeightSupplier) throws
        -> Activations
    {
        try data.withUnsafeBufferPointer {
            try d.rmsNorm(
                $0.baseAddress! + r.lowerBound * seqLen * width, rows: r.count * seqLen, width: width, name, w)
        }
    }

    /// Overwrites the rows of windows `r` with `x`.
    mutating func setWindows(_ r: Range<Int>, _ seqLen: Int, _ x: Activations, threads: Int) {
        precondition(x.width == width && x.rows == r.count * seqLen)
        let at = r.lowerBound * seqLen * width
        data.withUnsafeMutableBufferPointer { d in
            x.data.withUnsafeBufferPointer {
                ParallelRows.copy($0.baseAddress!, to: d.baseAddress! + at, count: $0.count, threads: threads)
            }
        }
    }

    /// y += the rows of windows `r` (read in place), in fixed chunks over `threads`.
    func addWindows(_ r: Range<Int>, _ seqLen: Int, into y: inout Activations, threads: Int) {
        precondition(y.width == width && y.rows == r.count * seqLen)
        let at = r.lowerBound * seqLen * width
        data.withUnsafeBufferPointer { s in
            y.data.withUnsafeMutableBufferPointer {
                ParallelRows.add(s.baseAddress! + at, into: $0.baseAddress!, count: $0.count, threads: threads)
            }
        }
    }
}

/// Copies and sums of activation rows in fixed chunks split over the threads (one core's memcpy
/// leaves the other idle).
enum ParallelRows {
    static let chunk = 1 << 16

    static func copy(_ src: UnsafePointer<Float>, to dst: UnsafeMutablePointer<Float>, count: Int, threads: Int) {
        let ranges = Parallel.chunks(count, chunk: chunk)
        Parallel.forEach(ranges.count, threads: threads) { c in
            (dst + ranges[c].lowerBound).update(from: src + ranges[c].lowerBound, count: ranges[c].count)
        }
    }

    /// dst += src, element by element.
    static func add(_ src: UnsafePointer<Float>, into dst: UnsafeMutablePointer<Float>, count: Int, threads: Int) {
        let ranges = Parallel.chunks(count, chunk: chunk)
        Parallel.forEach(ranges.count, threads: threads) { c in for j in ranges[c] { dst[j] += src[j] } }
    }
}

/// Weights set by name as the units compute them; what the forward pass asks for must have been set.
final class FixedWeights: WeightSupplier {
    private var values = [String: [Float]]()

    func set(_ name: String, _ v: [Float], count: Int) throws {
        guard v.count == count else {
            throw ComputeError(.shapeMismatch, "holds \(v.count) values, the config implies \(count)", tensor: name)
        }
        values[name] = v
    }

    func tensor(_ name: String, count: Int) throws -> [Float] {
        guard let v = values[name], v.count == count else {
            throw ComputeError(.internalError, "\(name) was asked for before its unit ran")
        }
        return v
    }

    func linear(_ base: String, out: Int, in: Int, input: Activations) throws -> [Float] {
        try tensor(base + ".weight", count: out * `in`)
    }
}
