import Foundation

/// A recipe's structural stage (`prune: {method: flap}`), applied to the whole model before any
/// unit runs: FLAP scores every block's FFN channels on the calibration windows, the pruned
/// channels leave gate_proj and up_proj (rows) and down_proj (columns), and their mean contribution
/// becomes down_proj's bias. The smaller model is staged as a Hugging Face directory (F32
/// safetensors, config.json with the per-block widths, the input's tokenizer files), which the rest
/// of the recipe then reads as its input.
enum StructuredModelPass {
    /// The staged model and what the pass decided.
    struct Staged {
        let model: ModelSource
        let files: DecoderModelFiles
        /// FFN channels each block keeps.
        let widths: [Int]
        /// Fraction of the blocks' parameters removed (after rounding the widths).
        let removed: Double
        let seconds: Double
    }

    /// FFN channels to remove so that `ratio` of the blocks' parameters go (each channel is one row
    /// of gate and up and one column of down).
    static func channelsToRemove(ratio: Double, config c: LlamaConfig) -> Int {
        Int((ratio * Double(blockParameters(c)) / Double(3 * c.hidden)).rounded())
    }

    /// Parameters of every decoder block's linear layers.
    static func blockParameters(_ c: LlamaConfig) -> Int {
        (0..<c.layers).reduce(0) { sum, i in
            sum + c.hidden * (2 * c.qWidth(i) + 2 * c.kvWidth(i)) + 3 * c.hidden * c.intermediate(i)
        }
    }

    static func run(
        _ m: FlapPrune, model: ModelSource, readers: [any TensorFile], files: DecoderModelFiles,
        calibration cal: CalibrateStage, into dir: String, threads: Int, checkContinue: () throws -> Void = {}
    ) throws -> Staged {
        let t0 = DispatchTime.now()
        let c = files.config
        let ids = try cal.windows(files.tokenizer)
        let weights = ModelWeights(readers: readers)
        let remove = channelsToRemove(ratio: m.ratio, config: c)
        var stats = [FlapSelection.Channels]()
        var kept = [[Int]]()
        var refits = [Int: (weight: [Float], bias: [Float])]()
        func refit(_ i: Int, _ gram: [Float], _ tokens: Int, _ w: WeightSupplier) throws {
            let n = c.intermediate(i)
            let down = try w.tensor(LlamaNames.block(i, "mlp.down_proj.weight"), count: c.hidden * n)
            refits[i] = FlapRefit.refit(
                weight: down, rows: c.hidden, cols: n, gram: gram, tokens: tokens, mean: stats[i].mean,
                kept: kept[i], threads: threads)
        }
        if m.structure == .uniform {
            // Each block decides alone: one pass scores, cuts and refits it.
            let total = (0..<c.layers).reduce(0) { $0 + c.intermediate($1) }
            let fraction = Double(remove) / Double(max(1, total))
            try FFNChannelStatistics.scan(
                config: c, ids: ids, seqLen: cal.seqLen, weights: weights, threads: threads, gram: m.refit
            ) { i, s, gram, tokens, w in
                try checkContinue()
                stats.append(s)
                kept.append(FlapSelection.keepUniform(s, fraction: fraction, multiple: m.multiple, score: m.score))
                if let gram { try refit(i, gram, tokens, w) }
            }
        } else {
            // One threshold over every block: all are scored first, then a second pass refits.
            stats = try FFNChannelStatistics.collect(
                config: c, ids: ids, seqLen: cal.seqLen, weights: weights, threads: threads)
            kept = FlapSelection.keepAdaptive(stats, remove: remove, multiple: m.multiple, score: m.score)
            if m.refit {
                try FFNChannelStatistics.scan(
                    config: c, ids: ids, seqLen: cal.seqLen, weights: weights, threads: threads, gram: true
                ) { i, _, gram, tokens, w in
                    try checkContinue()
                    try refit(i, gram!, tokens, w)
                }
            }
        }
        var pruned = c
        pruned.layerShapes = (0..<c.layers).map {
            LlamaConfig.LayerShape(intermediate: kept[$0].count, heads: c.shape($0).heads, kvHeads: c.shape($0).kvHeads)
        }
        pruned.outputBias = c.outputBias || m.compensate
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        try writeWeights(
            to: dir + "/model.safetensors", readers: readers, weights: weights, config: c, pruned: pruned,
            kept: kept, stats: stats, compensate: m.compensate, refits: refits)
        let staged = files.with(config: pruned)
        try writeConfig(model: model, files: staged, to: dir)
        let source = try ModelSource(path: dir)
        let removed = 1 - Double(blockParameters(pruned)) / Double(blockParameters(c))
        return Staged(
            model: source, files: try DecoderModelFiles(model: source), widths: kept.map(\.count), removed: removed,
            seconds: ms(since: t0) / 1000)
    }

    /// Every input tensor (decoded to F32) in input order, gate/up rows and down columns narrowed to
    /// the kept channels; after each block's down_proj, its bias (and o_proj's, zero unless the input had one).
    private static func writeWeights(
        to path: String, readers: [any TensorFile], weights: ModelWeights, config c: LlamaConfig,
        pruned p: LlamaConfig, kept: [[Int]], stats: [FlapSelection.Channels], compensate: Bool,
        refits: [Int: (weight: [Float], bias: [Float])]
    ) throws {
        let names = readers.flatMap { $0.tensors.map(\.name) }
        let shapes = Dictionary(
            readers.flatMap { $0.tensors.map { ($0.name, $0.shape) } }, uniquingKeysWith: { a, _ in a })
        var plan = [(name: String, dtype: DType, shape: [Int])]()
        func block(_ name: String) -> (Int, String)? {
            let parts = name.split(separator: ".", maxSplits: 3)
            guard parts.count == 4, parts[0] == "model", parts[1] == "layers", let i = Int(parts[2]), i < c.layers
            else { return nil }
            return (i, String(parts[3]))
        }
        let added = p.outputBias && !c.outputBias
        for n in names {
            var shape = shapes[n]!
            if let (i, part) = block(n) {
                if part == "mlp.gate_proj.weight" || part == "mlp.up_proj.weight" { shape = [kept[i].count, c.hidden] }
                if part == "mlp.down_proj.weight" { shape = [c.hidden, kept[i].count] }
            }
            plan.append((n, DType.F32, shape))
            if added, let (i, part) = block(n), part == "mlp.down_proj.weight" {
                plan.append((LlamaNames.block(i, "self_attn.o_proj.bias"), DType.F32, [c.hidden]))
                plan.append((LlamaNames.block(i, "mlp.down_proj.bias"), DType.F32, [c.hidden]))
            }
        }
        let out = try SafeTensorsWriter(path: path, tensors: plan)
        // A block's down_proj bias, computed with its weight (which comes first in the file).
        var biases = [Int: [Float]]()
        for (name, _, shape) in plan {
            let count = shape.reduce(1, *)
            var v: [Float]
            switch block(name) {
            case let (i, part)? where added && (part == "self_attn.o_proj.bias" || part == "mlp.down_proj.bias"):
                v = part == "mlp.down_proj.bias" ? biases[i] ?? [] : []
                if v.isEmpty { v = [Float](repeating: 0, count: c.hidden) }
            case let (i, part)? where part == "mlp.down_proj.weight":
                if let refit = refits[i] {
                    v = refit.weight
                    biases[i] = refit.bias
                } else {
                    let cols = c.intermediate(i)
                    let w = try weights.tensor(name, count: c.hidden * cols)
                    v = (0..<c.hidden).flatMap { r in kept[i].map { w[r * cols + $0] } }
                    if compensate {
                        biases[i] = FlapSelection.compensation(
                            weight: w, rows: c.hidden, cols: cols, mean: stats[i].mean, kept: kept[i])
                    }
                }
            case let (i, part)? where part == "mlp.gate_proj.weight" || part == "mlp.up_proj.weight":
                let w = try weights.tensor(name, count: c.intermediate(i) * c.hidden)
                v = kept[i].flatMap { j in w[(j * c.hidden)..<((j + 1) * c.hidden)] }
            default:
                v = try weights.tensor(name, count: count)
            }
            precondition(v.count == count)
            try v.withUnsafeBytes { try out.write(name: name, bytes: $0) }
        }
        try out.finish()
    }

    /// config.json with the per-block widths: the input's own (every other key kept) for a Hugging
    /// Face input, one made from the GGUF's keys otherwise; the input's tokenizer files beside it.
    static func writeConfig(model: ModelSource, files: DecoderModelFiles, to dir: String) throws {
        let generated = try files.huggingFaceFiles()
        let c = files.config
        var config = generated.first { $0.name == "config.json" }!.data
        if let original = model.extraFiles.first(where: { $0.hasSuffix("/config.json") }),
            let data = FileManager.default.contents(atPath: original),
            var o = try JSONSerialization.jsonObject(with: data) as? [String: Any]
        {
            o[LlamaConfig.layerKeys.intermediate] = c.layerShapes?.map(\.intermediate)
            o[LlamaConfig.layerKeys.heads] = c.layerShapes?.map(\.heads)
            o[LlamaConfig.layerKeys.kvHeads] = c.layerShapes?.map(\.kvHeads)
            o[LlamaConfig.layerKeys.outputBias] = c.outputBias
            o["head_dim"] = c.headDim
            o["torch_dtype"] = "float32"
            config = try JSONSerialization.data(withJSONObject: o, options: [.sortedKeys, .prettyPrinted])
        }
        try config.write(to: URL(fileURLWithPath: dir + "/config.json"))
        let copied = model.extraFiles.filter { !$0.hasSuffix("/config.json") }
        for f in copied {
            let name = (f as NSString).lastPathComponent
            try? FileManager.default.removeItem(atPath: dir + "/" + name)
            try FileManager.default.copyItem(atPath: f, toPath: dir + "/" + name)
        }
        if !copied.contains(where: { $0.hasSuffix("/tokenizer.json") }) {
            try generated.first { $0.name == "tokenizer.json" }!.data.write(
                to: URL(fileURLWithPath: dir + "/tokenizer.json"))
        }
    }
}
