import Foundation

/// Token batches cut from a plain-text dataset: the whole file is tokenized once, calibration
/// windows come from the first 80% of its tokens and evaluation windows from the last 20%
/// (so evaluation is held out), evenly spaced, each `[CLS] … [SEP]` of exactly `seqLen` tokens.
public enum CalibrationText {
    public enum Part: String, Sendable { case calibration, evaluation }

    /// `samples` sequences of `seqLen` token ids from `file`.
    public static func batches(file: String, tokenizer: BertTokenizer, samples: Int, seqLen: Int, part: Part) throws -> [[Int32]] {
        guard let data = FileManager.default.contents(atPath: file) else { throw ComputeError(.notFound, "cannot read the dataset", file: file) }
        guard let text = String(data: data, encoding: .utf8) else { throw ComputeError(.corruptData, "dataset is not UTF-8 text", file: file) }
        let ids = tokenizer.encode(text)
        let cut = ids.count * 4 / 5
        let range = part == .calibration ? 0..<cut : cut..<ids.count
        let window = seqLen - 2
        guard samples >= 1, window >= 1 else { throw ComputeError(.invalidRecipe, "need at least one sample of at least 3 tokens") }
        guard range.count >= window else {
            throw ComputeError(.corruptData, "the \(part.rawValue) part holds \(range.count) tokens, fewer than one sequence of \(seqLen)", file: file)
        }
        let spare = range.count - window
        return (0..<samples).map { i in
            let start = range.lowerBound + (samples == 1 ? 0 : i * spare / (samples - 1))
            return [tokenizer.cls] + Array(ids[start..<(start + window)]) + [tokenizer.sep]
        }
    }
}
