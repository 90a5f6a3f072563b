import Foundation

/// BERT encoders as a model family: forward order found by a dry run, calibration through the
/// compressed model layer by layer (the original one layer ahead for `distill`), and evaluation by
/// the cosine of sentence embeddings.
public struct BertFamily: ModelFamily {
    public let files: BertModelFiles

    public init(files: BertModelFiles) { self.files = files }

    public func ggufLayout() throws -> GGUFExportLayout? { files.ggufLayout() }

    public func linearWeights() -> Set<String> {
        Set((0..<files.config.layers).flatMap { files.config.linears($0).map { $0.name + ".weight" } })
    }

    /// About a dozen activation matrices of tokens × the widest row (student, teacher, a layer's
    /// intermediate values) and, with `distill`, a few in × in products.
    public func workingMemory(_ r: Recipe) -> Int64 {
        guard let cal = r.calibration else { return 0 }
        let width = Int64(max(files.config.hidden, files.config.intermediate))
        var bytes = Int64(cal.samples * cal.seqLen) * width * 4 * 12
        if r.distills { bytes += width * width * 4 * 4 }
        return bytes
    }

    /// Tensor names in the order the forward pass asks for them (found by a dry run on two tokens).
    public func forwardOrder() throws -> [String] {
        let rec = RecordingWeights()
        _ = try BertEncoder(config: files.config, samples: 1, seqLen: 2, threads: 1).forward([[0, 0]], rec)
        var seen = Set<String>()
        return rec.names.filter { seen.insert($0).inserted }
    }

    public func calibrate(
        _ stage: CalibrateStage, needs: CalibrationNeeds, teacher original: ModelWeights?, threads: Int,
        compute: (String, LinearCalibration?) throws -> [Float]
    ) throws {
        let ids = try stage.windows(files.tokenizer)
        let enc = BertEncoder(config: files.config, samples: stage.samples, seqLen: stage.seqLen, threads: threads)
        try CalibratedForward.run(
            layers: files.config.layers, teacher: original, gramPrecision: needs.gramPrecision, compute: compute,
            embed: { try enc.embed(ids, $0) },
            layer: { try enc.layer($0, $1, $2) })
    }

    public func evaluate(
        _ stage: EvaluateStage, dataset: String, original: ModelWeights, compressed: ModelWeights,
        threads: Int
    ) throws -> Evaluation {
        let t0 = DispatchTime.now()
        let ids = try CalibrationText.batches(
            file: dataset, tokenizer: files.tokenizer, samples: stage.samples, seqLen: stage.seqLen,
            part: .evaluation)
        let enc = BertEncoder(config: files.config, samples: stage.samples, seqLen: stage.seqLen, threads: threads)
        let a = enc.sentenceEmbeddings(try enc.forward(ids, original))
        let b = enc.sentenceEmbeddings(try enc.forward(ids, compressed))
        let cos = zip(a, b).map { x, y in zip(x, y).reduce(0.0) { $0 + Double($1.0) * Double($1.1) } }
        return Evaluation(
            dataset: dataset, samples: stage.samples, seqLen: stage.seqLen,
            meanCosine: cos.reduce(0, +) / Double(cos.count),
            minCosine: cos.min() ?? 0,
            seconds: Double(DispatchTime.now().uptimeNanoseconds - t0.uptimeNanoseconds) / 1e9)
    }
}
