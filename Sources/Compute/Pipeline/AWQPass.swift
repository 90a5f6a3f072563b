import Foundation

/// A recipe's `awq` stage, applied to the whole model before any unit runs: the dense model's
/// forward over the calibration windows gives each block's linear inputs (their Gram and mean
/// |x|); AWQSearch picks the scales of q/k/v, o (where heads have their own v), gate/up and down on
/// the grid the recipe quantizes each linear to; they are folded into the norms and v's and up's
/// rows, and with `clip` every linear but q and k is clipped. The scaled model (the same function
/// up to rounding) is staged as a Hugging Face directory of F32 safetensors that the rest of the
/// recipe reads as its input.
enum AWQPass {
    /// The staged model and what the searches found.
    struct Staged {
        let model: ModelSource
        let files: DecoderModelFiles
        let summary: RecipeRunner.AWQSummary
    }

    /// The statistics of one linear input over every calibration token: XᵀX in the calibrate stage's
    /// precision (the sum GPTQ uses: upper-triangle tiles, mirrored) and Σ|x| per column.
    private struct InputStats {
        let gram: GramAccumulator
        var absSum: [Double]
        var tokens = 0

        init(width: Int, precision: GramPrecision, threads: Int) {
            gram = precision.accumulator(n: width, threads: threads)
            absSum = [Double](repeating: 0, count: width)
        }

        mutating func add(_ a: Activations, threads: Int) {
            a.data.withUnsafeBufferPointer { gram.add($0.baseAddress!, rows: a.rows) }
            let width = a.width
            let ranges = Parallel.chunks(width, chunk: 64)
            a.data.withUnsafeBufferPointer { p in
                absSum.withUnsafeMutableBufferPointer { s in
                    Parallel.forEach(ranges.count, threads: threads) { k in
                        for r in 0..<a.rows {
                            for j in ranges[k] { s[j] += Double(Swift.abs(p[r * width + j])) }
                        }
                    }
                }
            }
            tokens += a.rows
        }

        var inputs: AWQSearch.Inputs {
            AWQSearch.Inputs(gram: gram.result(), meanAbs: absSum.map { $0 / Double(max(1, tokens)) }, tokens: tokens)
        }
    }

    static func run(
        _ stage: AWQStage, model: ModelSource, readers: [any TensorFile], files: DecoderModelFiles,
        calibration cal: CalibrateStage, targets: AWQTargets, into dir: String, threads: Int,
        checkContinue: () throws -> Void = {}
    ) throws -> Staged {
        let t0 = DispatchTime.now()
        let c = files.config
        let ids = try cal.windows(files.tokenizer)
        let weights = ModelWeights(readers: readers)
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        let all = readers.flatMap(\.tensors)
        let blockOf = { (name: String) in LlamaNames.blockIndex(name, layers: c.layers) }
        // Outside the blocks first (in input order), then each block's tensors as its search ends.
        let outside = all.filter { blockOf($0.name) == nil }
        let byBlock = Dictionary(grouping: all.filter { blockOf($0.name) != nil }) { blockOf($0.name)! }
        let order = outside + (0..<c.layers).flatMap { byBlock[$0] ?? [] }
        let out = try SafeTensorsWriter(
            path: dir + "/model.safetensors", tensors: order.map { ($0.name, DType.F32, $0.shape) })
        for t in outside { try write(try weights.tensor(t.name, count: t.numel), t.name, out) }
        var stats = [InputStats]()
        var groups = [RecipeRunner.AWQSummary.Group]()
        try DenseBlockPass.run(config: c, ids: ids, seqLen: cal.seqLen, weights: weights, threads: threads) {
            _, x, _ in
            if stats.isEmpty {
                stats = [x.attention, x.context, x.mlp, x.product].map {
                    InputStats(width: $0.width, precision: cal.hessian, threads: threads)
                }
            }
            for (k, a) in [x.attention, x.context, x.mlp, x.product].enumerated() { stats[k].add(a, threads: threads) }
        } blockDone: { i, w in
            try checkContinue()
            var block = BlockWeights(i, config: c, weights: w)
            groups += try search(
                stage, block: &block, inputs: stats.map(\.inputs), targets: targets, threads: threads)
            for t in byBlock[i] ?? [] { try write(try block.values(t), t.name, out) }
            stats = []
        }
        try out.finish()
        try StructuredModelPass.writeConfig(model: model, files: files, to: dir)
        let source = try ModelSource(path: dir)
        return Staged(
            model: source, files: try DecoderModelFiles(model: source),
            summary: RecipeRunner.AWQSummary(groups: groups, seconds: ms(since: t0) / 1000))
    }

    private static func write(_ v: [Float], _ name: String, _ out: SafeTensorsWriter) throws {
        try v.withUnsafeBytes { try out.write(name: name, bytes: $0) }
    }

    /// Scales q/k/v, gate/up and down of one block, then clips v, o, gate, up and down; returns
    /// what each search found.
    private static func search(
        _ stage: AWQStage, block b: inout BlockWeights, inputs: [AWQSearch.Inputs], targets: AWQTargets,
        threads: Int
    ) throws -> [RecipeRunner.AWQSummary.Group] {
        let (attention, context, mlp, product) = (inputs[0], inputs[1], inputs[2], inputs[3])
        var found = [RecipeRunner.AWQSummary.Group]()
        // Each group: its linears, the norm (or linear rows) the inverse scale folds into, its inputs.
        var plan: [(name: String, linears: [String], fold: BlockWeights.Fold, inputs: AWQSearch.Inputs)] = [
            (
                "attention", ["self_attn.q_proj", "self_attn.k_proj", "self_attn.v_proj"], .norm("input_layernorm"),
                attention
            ),
            ("mlp", ["mlp.gate_proj", "mlp.up_proj"], .norm("post_attention_layernorm"), mlp),
            ("down", ["mlp.down_proj"], .rows("mlp.up_proj"), product)
        ]
        // v → o where each head has its own v (no grouped-query sharing): o's input channels are v's rows.
        if b.hasOwnValues { plan.insert(("output", ["self_attn.o_proj"], .rows("self_attn.v_proj"), context), at: 1) }
        var scaled = ["self_attn.o_proj": context]
        for g in plan {
            let linears = try g.linears.compactMap { try b.linear($0, targets: targets) }
            guard !linears.isEmpty else {
                for n in g.linears { scaled[n] = g.inputs }
                continue
            }
            let choice = AWQSearch.scales(
                linears, inputs: g.inputs, grid: stage.grid, duo: stage.duoScaling, threads: threads)
            try finite(choice.baseline, block: b.index, what: g.name)
            try b.apply(choice.scales, to: g.linears, fold: g.fold)
            let s = choice.scales
            for n in g.linears { scaled[n] = scaledInputs(g.inputs, s) }
            found.append(
                .init(
                    block: b.index, group: g.name, alpha: choice.alpha, error: choice.error, baseline: choice.baseline))
        }
        guard stage.clip else { return found }
        for name in ["self_attn.v_proj", "self_attn.o_proj", "mlp.gate_proj", "mlp.up_proj", "mlp.down_proj"] {
            guard var l = try b.linear(name, targets: targets), let x = scaled[name] else { continue }
            let r = AWQSearch.clip(&l, inputs: x, threads: threads)
            try finite(r.baseline, block: b.index, what: name)
            b.set(name + ".weight", l.weight)
            found.append(.init(block: b.index, group: "clip " + name, alpha: nil, error: r.error, baseline: r.baseline))
        }
        return found
    }

    /// Refuses an output error that is not finite (a weight beyond its type's range, or a NaN).
    private static func finite(_ e: Double, block: Int, what: String) throws {
        guard !e.isFinite else { return }
        throw ComputeError(
            .numerical,
            "awq: block \(block)'s \(what) output error is not finite: a weight too large for its type's fp16 scale "
                + "or a non-finite weight or input; give such tensors f32 or f16 (tensor_types)")
    }

    /// The inputs of a linear whose columns were multiplied by s: x / s.
    private static func scaledInputs(_ x: AWQSearch.Inputs, _ s: [Float]) -> AWQSearch.Inputs {
        let n = x.cols
        var g = x.gram
        for i in 0..<n {
            for j in 0..<n { g[i * n + j] /= s[i] * s[j] }
        }
        return AWQSearch.Inputs(gram: g, meanAbs: (0..<n).map { x.meanAbs[$0] / Double(s[$0]) }, tokens: x.tokens)
    }
}

/// One block's tensors as AWQ changes them: read once from the block's weights, then scaled and clipped.
struct BlockWeights {
    enum Fold {
        /// Divide the RMSNorm weight `name` by the scales.
        case norm(String)
        /// Divide the rows (and bias) of linear `name` by the scales.
        case rows(String)
    }

    let index: Int
    private let config: LlamaConfig
    private let weights: WeightSupplier
    private var changed = [String: [Float]]()

    init(_ index: Int, config: LlamaConfig, weights: WeightSupplier) {
        self.index = index
        self.config = config
        self.weights = weights
    }

    private func full(_ part: String) -> String { LlamaNames.block(index, part) }

    /// Whether every attention head has its own value rows (heads == kv heads), so v's rows can take o's scales.
    var hasOwnValues: Bool { config.shape(index).heads == config.shape(index).kvHeads }

    /// A tensor's current values.
    func values(_ t: TensorInfo) throws -> [Float] { try changed[t.name] ?? weights.tensor(t.name, count: t.numel) }

    /// Tensor `part` (e.g. `mlp.up_proj.weight`) of the block, as changed so far.
    private func current(_ part: String) throws -> [Float] {
        let name = full(part)
        if let v = changed[name] { return v }
        return try weights.tensor(name, count: try shape(part).reduce(1, *))
    }

    private func shape(_ part: String) throws -> [Int] {
        let c = config
        switch part.hasSuffix(".weight") ? String(part.dropLast(7)) : part {
        case "self_attn.q_proj": return [c.qWidth(index), c.hidden]
        case "self_attn.k_proj", "self_attn.v_proj": return [c.kvWidth(index), c.hidden]
        case "self_attn.o_proj": return [c.hidden, c.qWidth(index)]
        case "mlp.gate_proj", "mlp.up_proj": return [c.intermediate(index), c.hidden]
        case "mlp.down_proj": return [c.hidden, c.intermediate(index)]
        case "input_layernorm", "post_attention_layernorm": return [c.hidden]
        case "self_attn.v_proj.bias": return [c.kvWidth(index)]
        default: throw ComputeError(.internalError, "awq has no shape for \(part)")
        }
    }

    mutating func set(_ part: String, _ v: [Float]) { changed[full(part)] = v }

    /// Linear `part` with its target grid, or nil when the recipe leaves it unquantized.
    func linear(_ part: String, targets: AWQTargets) throws -> AWQSearch.Linear? {
        let s = try shape(part + ".weight")
        return targets.linear(full(part + ".weight"), weight: try current(part + ".weight"), rows: s[0], cols: s[1])
    }

    /// W[:, j] *= s[j] for each linear, and the fold divided by s.
    mutating func apply(_ s: [Float], to linears: [String], fold: Fold) throws {
        for part in linears {
            var w = try current(part + ".weight")
            let n = s.count
            for r in 0..<(w.count / n) {
                for j in 0..<n { w[r * n + j] *= s[j] }
            }
            set(part + ".weight", w)
        }
        switch fold {
        case .norm(let norm):
            var v = try current(norm + ".weight")
            for j in v.indices { v[j] /= s[j] }
            set(norm + ".weight", v)
        case .rows(let part):
            var w = try current(part + ".weight")
            let cols = w.count / s.count
            for r in 0..<s.count {
                for j in 0..<cols { w[r * cols + j] /= s[r] }
            }
            set(part + ".weight", w)
            // Qwen2's v_proj has a bias: its rows' outputs carry it, so it takes the scales too.
            if part == "self_attn.v_proj", config.qkvBias {
                var bias = try current(part + ".bias")
                for r in bias.indices { bias[r] /= s[r] }
                set(part + ".bias", bias)
            }
        }
    }
}
