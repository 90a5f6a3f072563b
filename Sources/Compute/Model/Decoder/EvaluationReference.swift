import Foundation

/// The original model's logits on an evaluation's scored positions, written by one run's
/// `evaluate` (`save_reference: true`) and read by others (`reference:`) instead of running the
/// original model again, as llama.cpp's `--kl-divergence-base` file: a sweep evaluates the
/// original once. The numbers are the F32 logits themselves, so a reading run measures exactly
/// what it would have measured by running the original.
///
/// Layout: the 8 bytes `SQZEVREF`, a little-endian u64 header length, the JSON header, then for
/// each window its scored rows × vocabulary F32 logits, little-endian.
enum EvaluationReference {
    static let fileName = "eval-reference.bin"
    static let magic = Array("SQZEVREF".utf8)

    /// What the logits were computed from; a reader's own must be equal.
    struct Header: Codable, Equatable {
        var version = 1
        var samples: Int
        var seqLen: Int
        var vocab: Int
        /// SHA-256 of the evaluation windows' token ids (Int32, little-endian, window after window).
        var tokensSHA256: String
        /// The original model's checksum (the job's input checksum).
        var modelSHA256: String

        enum CodingKeys: String, CodingKey {
            case version, samples, seqLen = "seq_len", vocab, tokensSHA256 = "tokens_sha256"
            case modelSHA256 = "model_sha256"
        }

        /// Positions scored per window (as NextTokenStats scores them).
        var rows: Int { NextTokenStats.scored(seqLen).count }
    }

    /// SHA-256 of the windows' token ids.
    static func tokensSHA256(_ ids: [[Int32]]) -> String {
        var h = SHA256()
        for w in ids {
            let le = w.map(\.littleEndian)
            le.withUnsafeBytes { h.update($0) }
        }
        return h.finalizeHex()
    }

    /// Writes the header, then each window's scored rows in order.
    final class Writer {
        private let file: OutputFile
        private let header: Header

        init(path: String, header: Header) throws {
            self.header = header
            file = try OutputFile(path: path, writeBehind: true)
            let json = try JSONEncoder().encode(header)
            try file.write(Data(magic))
            try withUnsafeBytes(of: UInt64(json.count).littleEndian) { try file.write($0) }
            try file.write(json)
        }

        /// One window's scored rows' logits ([rows × vocab]).
        func append(_ logits: [Float]) throws {
            precondition(logits.count == header.rows * header.vocab)
            try logits.withUnsafeBytes { try file.write($0) }
        }

        /// fsyncs; the output record of the file.
        func finish(name: String) throws -> OutputRecord {
            let sha = try file.finish()
            return OutputRecord(path: name, bytes: file.bytesWritten, sha256: sha, format: "eval-reference")
        }
    }

    /// The header of the reference file at `path` (what a submit checks against the recipe).
    static func header(path: String) throws -> Header {
        try readHeader(try InputFile(path: path, what: "evaluation reference")).header
    }

    private static func readHeader(_ file: InputFile) throws -> (header: Header, length: Int) {
        let head = try file.read(at: 0, count: min(file.size, 16))
        guard head.count == 16, Array(head[0..<8]) == magic else {
            throw ComputeError(.corruptHeader, "not an eval-reference.bin file (no SQZEVREF magic)", file: file.path)
        }
        var length: UInt64 = 0
        for (i, b) in head[8..<16].enumerated() { length |= UInt64(b) << (8 * UInt64(i)) }
        guard length <= 1 << 16, 16 + Int(length) <= file.size else {
            throw ComputeError(.corruptHeader, "header length \(length) does not fit the file", file: file.path)
        }
        do {
            let h = try JSONDecoder().decode(Header.self, from: Data(try file.read(at: 16, count: Int(length))))
            guard h.version == 1, h.samples > 0, h.seqLen >= 2, h.vocab > 0 else {
                throw ComputeError(.corruptHeader, "header describes no evaluation", file: file.path)
            }
            return (h, Int(length))
        } catch let e as ComputeError { throw e } catch {
            throw ComputeError(.corruptHeader, "unreadable header: \(error)", file: file.path)
        }
    }

    /// Reads the scored rows of each window, after checking the file describes the same evaluation.
    final class Reader {
        private let file: InputFile
        private let header: Header
        private let dataStart: Int

        init(path: String, expected: Header) throws {
            file = try InputFile(path: path, what: "evaluation reference")
            let (found, length) = try readHeader(file)
            for (what, a, b) in [
                ("model", found.modelSHA256, expected.modelSHA256),
                ("evaluation windows (dataset, tokenizer, samples, seq_len)", found.tokensSHA256, expected.tokensSHA256)
            ] where a != b {
                throw ComputeError(
                    .invalidRecipe, "was written for another \(what) than this evaluation's", file: path)
            }
            guard found == expected else {
                throw ComputeError(
                    .invalidRecipe,
                    "describes \(found.samples) × \(found.seqLen) windows over \(found.vocab) tokens, this evaluation "
                        + "\(expected.samples) × \(expected.seqLen) over \(expected.vocab)",
                    file: path)
            }
            dataStart = 16 + length
            let want = dataStart + expected.samples * expected.rows * expected.vocab * 4
            guard file.size == want else {
                throw ComputeError(.corruptHeader, "holds \(file.size) bytes, its header says \(want)", file: path)
            }
            header = expected
        }

        /// Window `s`'s scored rows ([rows × vocab]).
        func rows(sample s: Int) throws -> [Float] {
            let n = header.rows * header.vocab
            var out = [Float](repeating: 0, count: n)
            try out.withUnsafeMutableBytes { try file.read(at: dataStart + s * n * 4, into: $0) }
            return out
        }

        func checkUnchanged() throws { try file.checkUnchanged() }
    }
}
