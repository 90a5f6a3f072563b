import Foundation

/// A recipe's structural stage (`prune: {method: flap}`), applied to the whole model before any
/// unit runs: FLAP scores every block's FFN channels (and with `heads` its attention heads) on the
/// calibration windows, the pruned channels leave gate_proj and up_proj (rows) and down_proj
/// (columns), pruned heads leave q/k/v (rows) and o_proj (columns), and a least-squares refit or
/// the removed inputs' mean contribution becomes down_proj's (o_proj's) bias. The smaller model is
/// staged as a Hugging Face directory (F32 safetensors, config.json with the per-block widths, the
/// input's tokenizer files), which the rest of the recipe then reads as its input.
enum StructuredModelPass {
    /// The staged model and what the pass decided.
    struct Staged {
        let model: ModelSource
        let files: DecoderModelFiles
        /// FFN channels each block keeps.
        let widths: [Int]
        /// Query heads and KV heads each block keeps.
        let heads: [Int]
        let kvHeads: [Int]
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

    /// What the pass removes from one block and the tensors it refits.
    struct BlockCut {
        /// FFN channels kept, ascending.
        var channels: [Int]
        /// Query heads and KV heads kept, ascending.
        var query: [Int]
        var kv: [Int]
        /// down_proj's input statistics, and o_proj's when heads were pruned.
        var ffn: FlapSelection.Channels
        var context: FlapSelection.Channels?
        /// Least-squares refits (kept columns, bias) of down_proj and o_proj.
        var down: (weight: [Float], bias: [Float])?
        var out: (weight: [Float], bias: [Float])?
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
        var cuts = [BlockCut]()
        func cut(_ i: Int, _ ffn: FlapSelection.Channels, _ channels: [Int]) -> BlockCut {
            BlockCut(
                channels: channels, query: Array(0..<c.shape(i).heads), kv: Array(0..<c.shape(i).kvHeads), ffn: ffn)
        }
        func refit(
            _ i: Int, _ part: String, _ gram: [Float], _ tokens: Int, _ w: WeightSupplier,
            _ s: FlapSelection.Channels, _ kept: [Int]
        ) throws -> (weight: [Float], bias: [Float])? {
            let n = s.mean.count
            let weight = try w.tensor(LlamaNames.block(i, part), count: c.hidden * n)
            return FlapRefit.refit(
                weight: weight, rows: c.hidden, cols: n, gram: gram, tokens: tokens, mean: s.mean, kept: kept,
                threads: threads)
        }
        if m.structure == .uniform {
            // Each block decides alone: one pass scores, cuts and refits it.
            let total = (0..<c.layers).reduce(0) { $0 + c.intermediate($1) }
            let fraction = Double(remove) / Double(max(1, total))
            try FlapStatistics.scan(
                config: c, ids: ids, seqLen: cal.seqLen, weights: weights, threads: threads, gram: m.refit,
                precision: cal.hessian, heads: m.heads != .none
            ) { i, s, w in
                try checkContinue()
                var b: BlockCut
                if m.heads == .none {
                    b = cut(
                        i, s.ffn,
                        FlapSelection.keepUniform(s.ffn, fraction: fraction, multiple: m.multiple, score: m.score))
                } else {
                    let share = FlapSelection.uniformShare(ratio: m.ratio, config: c, layer: i, heads: m.heads)
                    let shape = c.shape(i)
                    b = cut(
                        i, s.ffn,
                        FlapSelection.keepBest(
                            s.ffn, count: shape.intermediate - share.channels, multiple: m.multiple, score: m.score))
                    (b.query, b.kv) = FlapSelection.keepHeads(
                        s.context!, units: min(share.units, share.maxUnits), heads: shape.heads,
                        kvHeads: shape.kvHeads, headDim: c.headDim, mode: m.heads, score: m.score)
                    b.context = s.context
                    if let gram = s.contextGram, b.query.count < shape.heads {
                        let kept = FlapSelection.channels(ofHeads: b.query, headDim: c.headDim)
                        b.out = try refit(i, "self_attn.o_proj.weight", gram, s.tokens, w, s.context!, kept)
                    }
                }
                if let gram = s.ffnGram {
                    b.down = try refit(i, "mlp.down_proj.weight", gram, s.tokens, w, s.ffn, b.channels)
                }
                cuts.append(b)
            }
        } else {
            // One threshold over every block: all are scored first, then a second pass refits.
            let stats = try FlapStatistics.collect(
                config: c, ids: ids, seqLen: cal.seqLen, weights: weights, threads: threads)
            let kept = FlapSelection.keepAdaptive(stats, remove: remove, multiple: m.multiple, score: m.score)
            cuts = stats.indices.map { cut($0, stats[$0], kept[$0]) }
            if m.refit {
                try FlapStatistics.scan(
                    config: c, ids: ids, seqLen: cal.seqLen, weights: weights, threads: threads, gram: true,
                    precision: cal.hessian
                ) { i, s, w in
                    try checkContinue()
                    cuts[i].down = try refit(i, "mlp.down_proj.weight", s.ffnGram!, s.tokens, w, s.ffn, kept[i])
                }
            }
        }
        var pruned = c
        pruned.layerShapes = cuts.map {
            LlamaConfig.LayerShape(intermediate: $0.channels.count, heads: $0.query.count, kvHeads: $0.kv.count)
        }
        pruned.outputBias = c.outputBias || m.compensate
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        try writeWeights(
            to: dir + "/model.safetensors", readers: readers, weights: weights, config: c, pruned: pruned, cuts: cuts,
            compensate: m.compensate)
        let staged = files.with(config: pruned)
        try writeConfig(model: model, files: staged, to: dir)
        let source = try ModelSource(path: dir)
        let removed = 1 - Double(blockParameters(pruned)) / Double(blockParameters(c))
        return Staged(
            model: source, files: try DecoderModelFiles(model: source), widths: cuts.map(\.channels.count),
            heads: cuts.map(\.query.count), kvHeads: cuts.map(\.kv.count), removed: removed,
            seconds: ms(since: t0) / 1000)
    }

    /// Every input tensor (decoded to F32) in input order: q/k/v rows and o_proj columns narrowed to
    /// the kept heads, gate/up rows and down columns to the kept channels (refit columns where a
    /// refit ran); o_proj's and down_proj's biases (added after each block's down_proj when the
    /// input had none) the input's plus the refit's or the removed inputs' mean contribution.
    private static func writeWeights(
        to path: String, readers: [any TensorFile], weights: ModelWeights, config c: LlamaConfig,
        pruned p: LlamaConfig, cuts: [BlockCut], compensate: Bool
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
        let d = c.headDim
        /// Rows kept (of a [rows × hidden] weight or a bias) and columns kept of each narrowed tensor.
        func kept(_ i: Int, _ part: String) -> (rows: [Int]?, cols: [Int]?) {
            let b = cuts[i]
            switch part {
            case "mlp.gate_proj.weight", "mlp.up_proj.weight": return (b.channels, nil)
            case "mlp.down_proj.weight": return (nil, b.channels)
            case "self_attn.q_proj.weight", "self_attn.q_proj.bias":
                return (FlapSelection.channels(ofHeads: b.query, headDim: d), nil)
            case "self_attn.k_proj.weight", "self_attn.k_proj.bias", "self_attn.v_proj.weight", "self_attn.v_proj.bias":
                return (FlapSelection.channels(ofHeads: b.kv, headDim: d), nil)
            case "self_attn.o_proj.weight": return (nil, FlapSelection.channels(ofHeads: b.query, headDim: d))
            default: return (nil, nil)
            }
        }
        let added = p.outputBias && !c.outputBias
        for n in names {
            var shape = shapes[n]!
            if let (i, part) = block(n) {
                let (rows, cols) = kept(i, part)
                if let rows { shape[0] = rows.count }
                if let cols, shape.count == 2 { shape[1] = cols.count }
            }
            plan.append((n, DType.F32, shape))
            if added, let (i, part) = block(n), part == "mlp.down_proj.weight" {
                plan.append((LlamaNames.block(i, "self_attn.o_proj.bias"), DType.F32, [c.hidden]))
                plan.append((LlamaNames.block(i, "mlp.down_proj.bias"), DType.F32, [c.hidden]))
            }
        }
        /// The bias the cut adds to o_proj or down_proj of block i: the refit's, or with `compensate`
        /// Σ over removed inputs j of W[:, j] · mean[j] (zero for an o_proj whose heads all stay).
        func addedBias(_ i: Int, attention: Bool) throws -> [Float] {
            let b = cuts[i]
            if let r = attention ? b.out : b.down { return r.bias }
            let stats = attention ? b.context : b.ffn
            let keptCols = attention ? FlapSelection.channels(ofHeads: b.query, headDim: d) : b.channels
            guard compensate, let stats, keptCols.count < stats.mean.count else {
                return [Float](repeating: 0, count: c.hidden)
            }
            let part = attention ? "self_attn.o_proj.weight" : "mlp.down_proj.weight"
            let w = try weights.tensor(LlamaNames.block(i, part), count: c.hidden * stats.mean.count)
            return FlapSelection.compensation(
                weight: w, rows: c.hidden, cols: stats.mean.count, mean: stats.mean, kept: keptCols)
        }
        let out = try SafeTensorsWriter(path: path, tensors: plan)
        for (name, _, shape) in plan {
            let count = shape.reduce(1, *)
            var v: [Float]
            if let (i, part) = block(name) {
                switch part {
                case "self_attn.o_proj.bias", "mlp.down_proj.bias":
                    let attention = part == "self_attn.o_proj.bias"
                    v = try addedBias(i, attention: attention)
                    if !added {
                        let input = try weights.tensor(name, count: c.hidden)
                        for r in 0..<c.hidden { v[r] += input[r] }
                    }
                case "mlp.down_proj.weight" where cuts[i].down != nil: v = cuts[i].down!.weight
                case "self_attn.o_proj.weight" where cuts[i].out != nil: v = cuts[i].out!.weight
                default:
                    let full = shapes[name] ?? shape
                    let w = try weights.tensor(name, count: full.reduce(1, *))
                    let (rows, cols) = kept(i, part)
                    let width = full.count == 2 ? full[1] : 1
                    if let cols {
                        v = (0..<full[0]).flatMap { r in cols.map { w[r * width + $0] } }
                    } else if let rows {
                        v = rows.flatMap { j in w[(j * width)..<((j + 1) * width)] }
                    } else {
                        v = w
                    }
                }
            } else {
                v = try weights.tensor(name, count: count)
            }
            precondition(v.count == count)
            try v.withUnsafeBytes { try out.write(name: name, bytes: $0) }
        }
        try out.finish()
    }

    /// config.json with the per-block widths (and the residual width and tying a slice changes): the
    /// input's own (every other key kept) for a Hugging Face input, one made from the GGUF's keys
    /// otherwise; the input's tokenizer files beside it.
    static func writeConfig(model: ModelSource, files: DecoderModelFiles, to dir: String) throws {
        let c = files.config
        let config: Data
        if let original = model.extraFiles.first(where: { $0.hasSuffix("/config.json") }),
            let data = FileManager.default.contents(atPath: original),
            var o = try JSONSerialization.jsonObject(with: data) as? [String: Any]
        {
            o[LlamaConfig.layerKeys.intermediate] = c.layerShapes?.map(\.intermediate)
            o[LlamaConfig.layerKeys.heads] = c.layerShapes?.map(\.heads)
            o[LlamaConfig.layerKeys.kvHeads] = c.layerShapes?.map(\.kvHeads)
            o[LlamaConfig.layerKeys.outputBias] = c.outputBias
            o[LlamaConfig.layerKeys.shortcuts] = c.shortcuts ? true : nil
            o["head_dim"] = c.headDim
            o["hidden_size"] = c.hidden
            o["tie_word_embeddings"] = c.tied
            o["torch_dtype"] = "float32"
            config = try JSONSerialization.data(withJSONObject: o, options: [.sortedKeys, .prettyPrinted])
        } else {
            config = try files.huggingFaceConfig()
        }
        try config.write(to: URL(fileURLWithPath: dir + "/config.json"))
        let copied = model.extraFiles.filter { !$0.hasSuffix("/config.json") }
        for f in copied {
            let name = (f as NSString).lastPathComponent
            try? FileManager.default.removeItem(atPath: dir + "/" + name)
            try FileManager.default.copyItem(atPath: f, toPath: dir + "/" + name)
        }
        if !copied.contains(where: { $0.hasSuffix("/tokenizer.json") }) {
            try files.huggingFaceTokenizer().write(to: URL(fileURLWithPath: dir + "/tokenizer.json"))
        }
    }
}
