import Foundation

/// A validated safetensors header: tensors in data order, metadata, and where the data starts.
public struct SafeTensorsHeader: Sendable {
    /// The reference implementation's bound on header size.
    public static let maxHeaderBytes = 100_000_000

    public let tensors: [TensorInfo]
    public let metadata: [String: String]
    /// Byte offset of the data buffer in the file (8 + header length).
    public let dataStart: Int
    /// Length of the data buffer implied by the offsets.
    public let dataLength: Int

    /// Most dimensions a tensor may have (safetensors sets none; real models use at most 5).
    public static let maxDims = 8

    /// Reads and validates only the header of `path` (does not check the file's length against the data).
    public static func read(path: String) throws -> SafeTensorsHeader {
        try read(InputFile(path: path, what: "model file")).header
    }

    /// The header's JSON length from the file's first bytes (`start`: at least those 8, when the
    /// file has them), checked against the reference implementation's limit and the file's size.
    static func jsonLength(_ start: UnsafeRawBufferPointer, fileSize: Int, file: String) throws -> Int {
        guard start.count >= 8 else {
            throw ComputeError(.corruptHeader, "file is shorter than the 8-byte header length", file: file)
        }
        let n = start.loadUnaligned(fromByteOffset: 0, as: UInt64.self).littleEndian
        guard n <= UInt64(maxHeaderBytes) else {
            throw ComputeError(
                .corruptHeader, "header length \(n) exceeds the \(maxHeaderBytes)-byte limit", file: file)
        }
        guard UInt64(fileSize) - 8 >= n else {
            throw ComputeError(.corruptHeader, "header length \(n) is longer than the file", file: file)
        }
        return Int(n)
    }

    /// Reads and validates the header of an open file; returns it with its raw bytes (length prefix included).
    static func read(_ f: InputFile) throws -> (header: SafeTensorsHeader, bytes: [UInt8]) {
        let n = try f.read(at: 0, count: min(8, f.size)).withUnsafeBytes {
            try jsonLength($0, fileSize: f.size, file: f.path)
        }
        let bytes = try f.read(at: 0, count: 8 + n)
        let h = try bytes.withUnsafeBytes {
            try parse(json: UnsafeRawBufferPointer(rebasing: $0[8...]), dataStart: 8 + n, file: f.path)
        }
        return (h, bytes)
    }

    /// Parses and validates header JSON bytes in one pass, building only the tensor entries and
    /// metadata strings (hostile headers are refused at the first wrong token, in bounded memory).
    public static func parse(json: UnsafeRawBufferPointer, dataStart: Int, file: String) throws -> SafeTensorsHeader {
        var p = JSONParser(b: json, maxDepth: 8)
        var tensors = [TensorInfo]()
        var metadata = [String: String]()
        var seen = Set<String>()
        do {
            guard p.peek() != nil else { throw p.fail("unexpected end (empty header)") }
            guard p.consume(UInt8(ascii: "{")) else {
                throw ComputeError(.corruptHeader, "header is not a JSON object", file: file)
            }
            if !p.consume(UInt8(ascii: "}")) {
                repeat {
                    let name = try p.expectString("a string key")
                    try p.expect(UInt8(ascii: ":"), "':'")
                    guard seen.insert(name).inserted else {
                        throw ComputeError(.corruptHeader, "duplicate entry", file: file, tensor: name)
                    }
                    if name == "__metadata__" {
                        metadata = try parseMetadata(&p, file: file)
                    } else {
                        try TextRules.check(name, field: "tensor name", file: file)
                        tensors.append(try tensorInfo(name: name, &p, file: file))
                    }
                } while try p.another(UInt8(ascii: "}"))
            }
            try p.expectEnd()
        } catch let e as JSONParser.Failure {
            throw ComputeError(.corruptHeader, "header: \(e)", file: file)
        }
        // Offsets must tile the buffer exactly: sorted by begin, contiguous from 0, no overlap.
        tensors.sort { ($0.begin, $0.end) < ($1.begin, $1.end) }
        var cursor = 0
        for t in tensors {
            if t.begin != cursor {
                throw ComputeError(
                    .corruptHeader,
                    t.begin < cursor
                        ? "data_offsets overlap the previous tensor"
                        : "gap before data_offsets [\(t.begin), \(t.end)] (expected begin \(cursor))", file: file,
                    tensor: t.name)
            }
            cursor = t.end
        }
        return SafeTensorsHeader(tensors: tensors, metadata: metadata, dataStart: dataStart, dataLength: cursor)
    }

    /// `__metadata__`: an object of string values, refused at the first value that is not a string.
    private static func parseMetadata(_ p: inout JSONParser, file: String) throws -> [String: String] {
        guard p.consume(UInt8(ascii: "{")) else {
            throw ComputeError(.corruptHeader, "__metadata__ is not an object", file: file)
        }
        var out = [String: String]()
        if p.consume(UInt8(ascii: "}")) { return out }
        repeat {
            let k = try p.expectString("a string key")
            try p.expect(UInt8(ascii: ":"), "':'")
            guard p.peek() == UInt8(ascii: "\"") else {
                throw ComputeError(.corruptHeader, "__metadata__.\(TextRules.display(k)) is not a string", file: file)
            }
            out[k] = try p.string()
        } while try p.another(UInt8(ascii: "}"))
        return out
    }

    /// A non-negative integer token (exact up to UInt64), or nil for anything else.
    private static func integer(_ p: inout JSONParser) throws -> UInt64? {
        guard let c = p.peek(), c == UInt8(ascii: "-") || (c >= 48 && c <= 57) else {
            try p.skipValue(depth: 1)
            return nil
        }
        return UInt64(try p.number())
    }

    private static func tensorInfo(name: String, _ p: inout JSONParser, file: String) throws -> TensorInfo {
        guard p.consume(UInt8(ascii: "{")) else {
            throw ComputeError(.corruptHeader, "entry is not an object", file: file, tensor: name)
        }
        var dtypeName: String?, shape: [Int]?, offsets: [UInt64]?
        var numel: UInt64 = 1
        if !p.consume(UInt8(ascii: "}")) {
            repeat {
                let key = try p.expectString("a string key")
                try p.expect(UInt8(ascii: ":"), "':'")
                switch key {
                case "dtype":
                    guard dtypeName == nil else {
                        throw ComputeError(.corruptHeader, "duplicate dtype", file: file, tensor: name)
                    }
                    guard p.peek() == UInt8(ascii: "\"") else {
                        throw ComputeError(.corruptHeader, "dtype must be a string", file: file, tensor: name)
                    }
                    dtypeName = try p.string()
                case "shape":
                    guard shape == nil else {
                        throw ComputeError(.corruptHeader, "duplicate shape", file: file, tensor: name)
                    }
                    guard p.consume(UInt8(ascii: "[")) else {
                        throw ComputeError(.corruptHeader, "shape must be a list of integers", file: file, tensor: name)
                    }
                    var dims = [Int]()
                    if !p.consume(UInt8(ascii: "]")) {
                        repeat {
                            guard dims.count < maxDims else {
                                throw ComputeError(
                                    .corruptHeader, "shape has more than \(maxDims) dimensions", file: file,
                                    tensor: name)
                            }
                            guard let u = try integer(&p), u < (1 << 48) else {
                                throw ComputeError(
                                    .corruptHeader, "shape has an invalid dimension", file: file, tensor: name)
                            }
                            let (m, o) = numel.multipliedReportingOverflow(by: u)
                            guard !o, m < (1 << 56) else {
                                throw ComputeError(.corruptHeader, "shape overflows", file: file, tensor: name)
                            }
                            numel = m
                            dims.append(Int(u))
                        } while try p.another(UInt8(ascii: "]"))
                    }
                    shape = dims
                case "data_offsets":
                    guard offsets == nil else {
                        throw ComputeError(.corruptHeader, "duplicate data_offsets", file: file, tensor: name)
                    }
                    let bad = ComputeError(
                        .corruptHeader, "data_offsets must be two non-decreasing integers", file: file, tensor: name)
                    guard p.consume(UInt8(ascii: "[")) else { throw bad }
                    var o = [UInt64]()
                    if !p.consume(UInt8(ascii: "]")) {
                        repeat {
                            guard o.count < 2, let v = try integer(&p) else { throw bad }
                            o.append(v)
                        } while try p.another(UInt8(ascii: "]"))
                    }
                    guard o.count == 2, o[0] <= o[1], o[1] < (1 << 62) else { throw bad }
                    offsets = o
                default:
                    try p.skipValue(depth: 2)
                }
            } while try p.another(UInt8(ascii: "}"))
        }
        guard let ds = dtypeName else { throw ComputeError(.corruptHeader, "missing dtype", file: file, tensor: name) }
        guard let dtype = DType(rawValue: ds) else {
            throw ComputeError(.unsupportedDType, "unknown dtype \(TextRules.display(ds))", file: file, tensor: name)
        }
        guard let shape else { throw ComputeError(.corruptHeader, "missing shape", file: file, tensor: name) }
        guard let offsets else {
            throw ComputeError(
                .corruptHeader, "data_offsets must be two non-decreasing integers", file: file, tensor: name)
        }
        let (b, e) = (offsets[0], offsets[1])
        let expected = numel * UInt64(dtype.size)
        guard e - b == expected else {
            throw ComputeError(
                .corruptHeader, "data_offsets span \(e - b) bytes but shape \(shape) of \(dtype) needs \(expected)",
                file: file, tensor: name)
        }
        return TensorInfo(name: name, dtype: dtype, shape: shape, begin: Int(b), end: Int(e))
    }
}
