import Foundation

/// Llama-family decoders as a model family: calibration block by block through the compressed
/// model (the original one block ahead for `distill`), so only one block's weights are decoded at
/// a time; evaluation by perplexity, KL divergence and top-1 agreement on held-out windows.
public struct DecoderFamily: ModelFamily {
    public let files: DecoderModelFiles
    /// The submitted model's config when `files` describe its pruned or sliced copy (`evaluate`'s original).
    let originalConfig: LlamaConfig?

    public init(files: DecoderModelFiles, original: LlamaConfig? = nil) {
        self.files = files
        originalConfig = original
    }

    /// Calibration (streamed, see `DecoderCalibration`): the embedding while the windows are
    /// embedded, the block input (tokens × hidden) and the context or SwiGLU product kept between
    /// passes (tokens × intermediate at most), one chunk's temporaries, one block's weights and
    /// the Hessian of its widest input (F32 sums and the F64 factorization); with `distill` the
    /// original model's activations, chunk temporaries and block beside them. Evaluation: both
    /// models' LM heads, two windows of logits and the windows' activations.
    public func workingMemory(_ r: Recipe) -> Int64 {
        let c = files.config
        let hidden = Int64(c.hidden), inter = Int64(max(c.widestFFN, c.widestQ)),
            embed = Int64(c.vocabSize) * hidden * 4
        let teacher: Int64 = r.distills ? 2 : 1
        var bytes: Int64 = 0
        if let cal = r.calibration {
            let tokens = Int64(cal.samples * cal.seqLen)
            let chunk = min(tokens, Int64(DecoderCalibration.chunkWindows(seqLen: cal.seqLen) * cal.seqLen))
            let block = (hidden * (Int64(c.widestQ) * 2 + Int64(c.kvWidth) * 2) + 3 * hidden * Int64(c.widestFFN)) * 4
            let held = tokens * (hidden * teacher + inter) * 4
            bytes =
                embed + held + chunk * (hidden * 6 + inter * 3) * 4 * teacher + block * teacher + inter * inter
                * (4 * 3 + 8 * 3)
        }
        if let ev = r.evaluation {
            let tokens = Int64(ev.samples * ev.seqLen)
            bytes = max(
                bytes, embed * 2 + Int64(ev.seqLen) * Int64(c.vocabSize) * 4 * 2 + tokens * (hidden * 8 + inter * 3) * 4
            )
        }
        return bytes
    }

    public func forwardOrder() throws -> [String] {
        let rec = RecordingWeights()
        let dec = LlamaDecoder(config: files.config, samples: 1, seqLen: 2, threads: 1)
        _ = try dec.head(rec)
        let order = rec.names
        rec.names = []
        _ = try dec.hidden([[0, 0]], rec)
        var seen = Set<String>()
        return (rec.names + order).filter { seen.insert($0).inserted }
    }

    public func calibrate(
        _ stage: CalibrateStage, needs: CalibrationNeeds, teacher original: ModelWeights?, threads: Int,
        compute: (String, LinearCalibration?) throws -> [Float]
    ) throws {
        let ids = try stage.windows(files.tokenizer)
        try DecoderCalibration(config: files.config, seqLen: stage.seqLen, threads: threads, needs: needs)
            .run(ids, teacher: original, compute: compute)
    }

    public func evaluate(
        _ stage: EvaluateStage, dataset: String, original: ModelWeights, compressed: ModelWeights,
        threads: Int
    ) throws -> Evaluation {
        try evaluate(stage, dataset: dataset, original: original, compressed: compressed, threads: threads).evaluation
    }

    /// Where an evaluation's original logits come from (`read`) or also go (`write`), and the
    /// original model's checksum that a reference file must carry.
    struct ReferenceFiles {
        var read: String?
        var write: String?
        var modelSHA256: String
    }

    /// `evaluate`, reading the original's logits from a reference file instead of running it, or
    /// writing them to one (whose output record is returned).
    func evaluate(
        _ stage: EvaluateStage, dataset: String, original: ModelWeights, compressed: ModelWeights, threads: Int,
        reference: ReferenceFiles? = nil
    ) throws -> (evaluation: Evaluation, written: OutputRecord?) {
        let t0 = DispatchTime.now()
        let ids = try CalibrationText.batches(
            file: dataset, tokenizer: files.tokenizer, samples: stage.samples, seqLen: stage.seqLen,
            part: .evaluation)
        let dec = LlamaDecoder(config: files.config, samples: stage.samples, seqLen: stage.seqLen, threads: threads)
        let vocab = files.config.vocabSize
        let header = reference.map {
            EvaluationReference.Header(
                samples: stage.samples, seqLen: stage.seqLen, vocab: vocab,
                tokensSHA256: EvaluationReference.tokensSHA256(ids), modelSHA256: $0.modelSHA256)
        }
        var stats = NextTokenStats()
        var written: OutputRecord?
        // Only the scored positions' logits are computed (the LM head is a fifth of the forward pass).
        let scored = NextTokenStats.scored(stage.seqLen)
        if let path = reference?.read, let header {
            let reader = try EvaluationReference.Reader(path: path, expected: header)
            let xc = try dec.hidden(ids, compressed), hc = try dec.head(compressed)
            for s in 0..<stage.samples {
                stats.add(
                    original: try reader.rows(sample: s),
                    compressed: dec.logits(xc, sample: s, head: hc, positions: scored), targets: ids[s], vocab: vocab)
            }
            try reader.checkUnchanged()
        } else {
            let decO =
                originalConfig.map {
                    LlamaDecoder(config: $0, samples: stage.samples, seqLen: stage.seqLen, threads: threads)
                } ?? dec
            let writer = try reference?.write.flatMap { p in
                try header.map { try EvaluationReference.Writer(path: p, header: $0) }
            }
            let xo = try decO.hidden(ids, original), xc = try dec.hidden(ids, compressed)
            let ho = try decO.head(original), hc = try dec.head(compressed)
            for s in 0..<stage.samples {
                let lo = decO.logits(xo, sample: s, head: ho, positions: scored)
                try writer?.append(lo)
                stats.add(
                    original: lo, compressed: dec.logits(xc, sample: s, head: hc, positions: scored), targets: ids[s],
                    vocab: vocab)
            }
            written = try writer?.finish(name: EvaluationReference.fileName)
        }
        let seconds = ms(since: t0) / 1000
        let e = Evaluation(
            dataset: dataset, samples: stage.samples, seqLen: stage.seqLen, decoder: stats, seconds: seconds)
        let measured = [
            ("the compressed model's perplexity", e.perplexity), ("the original's perplexity", e.originalPerplexity),
            ("the mean KL", e.meanKL)
        ]
        for (what, v) in measured where !(v ?? 0).isFinite {
            throw ComputeError(
                .numerical,
                "evaluate: \(what) is not finite (\(v ?? .nan)): a weight too large for its type (an fp16 scale "
                    + "overflow) or a non-finite weight; give such tensors f32 or f16 (tensor_types)")
        }
        return (e, written)
    }
}

/// Next-token statistics of a compressed model against its original over scored positions:
/// as llama.cpp's perplexity tool, each window's second half is scored (its first half is context).
struct NextTokenStats {
    var tokens = 0
    var nllOriginal = 0.0, nllCompressed = 0.0, kl = 0.0
    var agree = 0

    /// The positions scored in a window of `l` tokens (those with a next token in its second half).
    static func scored(_ l: Int) -> Range<Int> { (l / 2)..<(l - 1) }

    /// One window: `lo` and `lc` hold the original's and the compressed model's logits of its
    /// scored positions only.
    mutating func add(original lo: [Float], compressed lc: [Float], targets: [Int32], vocab: Int) {
        let scored = Self.scored(targets.count)
        for p in scored {
            let row = p - scored.lowerBound
            let a = Self.logSoftmax(lo, row: row, vocab: vocab), b = Self.logSoftmax(lc, row: row, vocab: vocab)
            let t = Int(targets[p + 1])
            nllOriginal -= a.values[t]
            nllCompressed -= b.values[t]
            var k = 0.0
            for j in 0..<vocab where a.values[j] > -80 {
                k += Foundation.exp(a.values[j]) * (a.values[j] - b.values[j])
            }
            kl += k
            if a.argmax == b.argmax { agree += 1 }
            tokens += 1
        }
    }

    static func logSoftmax(_ logits: [Float], row: Int, vocab: Int) -> (values: [Double], argmax: Int) {
        let base = row * vocab
        var mx = -Double.infinity, arg = 0
        for j in 0..<vocab where Double(logits[base + j]) > mx { (mx, arg) = (Double(logits[base + j]), j) }
        var sum = 0.0
        for j in 0..<vocab { sum += Foundation.exp(Double(logits[base + j]) - mx) }
        let lse = mx + Foundation.log(sum)
        return ((0..<vocab).map { Double(logits[base + $0]) - lse }, arg)
    }
}
