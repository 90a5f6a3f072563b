import Foundation

/// Token batches cut from a plain-text dataset: the whole file is tokenized once, calibration
/// windows come from the first 80% of its tokens and evaluation windows from the last 20%
/// (so evaluation is held out), evenly spaced, each of exactly `seqLen` tokens with the
/// tokenizer's framing (BERT: `[CLS] … [SEP]`; decoders: BOS when the model adds one).
public enum CalibrationText {
    public enum Part: String, Sendable { case calibration, evaluation }

    /// `samples` sequences of `seqLen` token ids from `file`.
    public static func batches(file: String, tokenizer: some TextTokenizer, samples: Int, seqLen: Int, part: Part)
        throws -> [[Int32]]
    {
        let ids = try tokens(file: file, tokenizer: tokenizer)
        let cut = ids.count * 4 / 5
        let range = part == .calibration ? 0..<cut : cut..<ids.count
        let (prefix, suffix) = tokenizer.framing
        let window = seqLen - prefix.count - suffix.count
        guard samples >= 1, window >= 1 else {
            throw ComputeError(
                .invalidRecipe, "need at least one sample of at least \(prefix.count + suffix.count + 1) tokens")
        }
        guard range.count >= window else {
            throw ComputeError(
                .corruptData,
                "the \(part.rawValue) part holds \(range.count) tokens, fewer than one sequence of \(seqLen)",
                file: file)
        }
        let spare = range.count - window
        return (0..<samples).map { i in
            let start = range.lowerBound + (samples == 1 ? 0 : i * spare / (samples - 1))
            return prefix + Array(ids[start..<(start + window)]) + suffix
        }
    }

    /// The whole file's token ids. The last file tokenized is kept (keyed by path, size,
    /// modification time and vocabulary), so the submit-time check, the calibration and the
    /// evaluation of one job — and every job of a manifest — tokenize a dataset once.
    static func tokens(file: String, tokenizer: some TextTokenizer) throws -> [Int32] {
        let attrs = try? FileManager.default.attributesOfItem(atPath: file)
        let key =
            "\(file)|\((attrs?[.size] as? NSNumber)?.intValue ?? -1)|"
            + "\((attrs?[.modificationDate] as? Date)?.timeIntervalSince1970 ?? 0)|\(tokenizer.identity)"
        if let hit = lastTokens.withLock({ $0?.key == key ? $0?.ids : nil }) { return hit }
        let text = try InputFile.text(of: file, what: "dataset", limit: InputFile.datasetLimit)
        let ids = tokenizer.encode(text)
        lastTokens.withLock { $0 = (key, ids) }
        return ids
    }

    /// Peak memory of tokenizing a dataset of `fileBytes` and keeping its ids: the text, the ids
    /// (up to one per byte) and one chunk's pre-tokens (50 MB of prose measured 5.3 bytes per byte).
    public static func tokenizingMemory(fileBytes: Int64) -> Int64 { fileBytes * 6 }

    /// The size of a dataset file (0 when it cannot be read; validation names that problem).
    static func fileBytes(_ path: String) -> Int64 {
        var st = stat()
        return stat(path, &st) == 0 ? Int64(st.st_size) : 0
    }

    private static let lastTokens = LockedValue<(key: String, ids: [Int32])?>(nil)
}

/// A value behind a lock.
final class LockedValue<T>: @unchecked Sendable {
    private let lock = NSLock()
    private var value: T

    init(_ value: T) { self.value = value }

    func withLock<R>(_ body: (inout T) throws -> R) rethrows -> R {
        lock.lock()
        defer { lock.unlock() }
        return try body(&value)
    }
}
