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

    /// Reads and validates only the header of `path` (does not check the file's length against the data).
    public static func read(path: String) throws -> SafeTensorsHeader {
        guard let fh = FileHandle(forReadingAtPath: path) else {
            throw ComputeError(FileManager.default.fileExists(atPath: path) ? .io : .notFound,
                               FileManager.default.fileExists(atPath: path) ? "cannot open for reading" : "no such file", file: path)
        }
        defer { try? fh.close() }
        let lenBytes = try fh.read(upToCount: 8) ?? Data()
        guard lenBytes.count == 8 else { throw ComputeError(.corruptHeader, "file is shorter than the 8-byte header length", file: path) }
        let n = lenBytes.withUnsafeBytes { $0.loadUnaligned(as: UInt64.self).littleEndian }
        guard n <= UInt64(maxHeaderBytes) else {
            throw ComputeError(.corruptHeader, "header length \(n) exceeds the \(maxHeaderBytes)-byte limit", file: path)
        }
        let hdr = try fh.read(upToCount: Int(n)) ?? Data()
        guard hdr.count == Int(n) else {
            throw ComputeError(.corruptHeader, "header length \(n) is longer than the file", file: path)
        }
        return try hdr.withUnsafeBytes { try parse(json: $0, dataStart: 8 + Int(n), file: path) }
    }

    /// Parses and validates header JSON bytes.
    public static func parse(json: UnsafeRawBufferPointer, dataStart: Int, file: String) throws -> SafeTensorsHeader {
        let root: JSONValue
        do { root = try JSONParser.parse(json, maxDepth: 8) } catch let e as JSONParser.Failure {
            throw ComputeError(.corruptHeader, "header: \(e)", file: file)
        }
        guard case .object(let entries) = root else { throw ComputeError(.corruptHeader, "header is not a JSON object", file: file) }
        var tensors = [TensorInfo]()
        var metadata = [String: String]()
        var seen = Set<String>()
        for (name, v) in entries {
            guard seen.insert(name).inserted else { throw ComputeError(.corruptHeader, "duplicate entry", file: file, tensor: name) }
            if name == "__metadata__" {
                guard case .object(let kv) = v else { throw ComputeError(.corruptHeader, "__metadata__ is not an object", file: file) }
                for (k, mv) in kv {
                    guard let s = mv.stringValue else { throw ComputeError(.corruptHeader, "__metadata__.\(k) is not a string", file: file) }
                    metadata[k] = s
                }
                continue
            }
            tensors.append(try tensorInfo(name: name, v, file: file))
        }
        // Offsets must tile the buffer exactly: sorted by begin, contiguous from 0, no overlap.
        let sorted = tensors.sorted { ($0.begin, $0.end) < ($1.begin, $1.end) }
        var cursor = 0
        for t in sorted {
            if t.begin != cursor {
                throw ComputeError(.corruptHeader, t.begin < cursor ? "data_offsets overlap the previous tensor"
                                   : "gap before data_offsets [\(t.begin), \(t.end)] (expected begin \(cursor))", file: file, tensor: t.name)
            }
            cursor = t.end
        }
        return SafeTensorsHeader(tensors: sorted, metadata: metadata, dataStart: dataStart, dataLength: cursor)
    }

    private static func tensorInfo(name: String, _ v: JSONValue, file: String) throws -> TensorInfo {
        guard case .object = v else { throw ComputeError(.corruptHeader, "entry is not an object", file: file, tensor: name) }
        guard let ds = v["dtype"]?.stringValue else { throw ComputeError(.corruptHeader, "missing dtype", file: file, tensor: name) }
        guard let dtype = DType(rawValue: ds) else { throw ComputeError(.unsupportedDType, "unknown dtype \(ds)", file: file, tensor: name) }
        guard case .array(let dims)? = v["shape"] else { throw ComputeError(.corruptHeader, "missing shape", file: file, tensor: name) }
        var shape = [Int]()
        var numel: UInt64 = 1
        for d in dims {
            guard let u = d.uint64Value, u < (1 << 48) else { throw ComputeError(.corruptHeader, "shape has an invalid dimension", file: file, tensor: name) }
            let (m, o) = numel.multipliedReportingOverflow(by: u)
            guard !o, m < (1 << 56) else { throw ComputeError(.corruptHeader, "shape overflows", file: file, tensor: name) }
            numel = m
            shape.append(Int(u))
        }
        guard case .array(let offs)? = v["data_offsets"], offs.count == 2, let b = offs[0].uint64Value, let e = offs[1].uint64Value,
              b <= e, e < (1 << 62) else {
            throw ComputeError(.corruptHeader, "data_offsets must be two non-decreasing integers", file: file, tensor: name)
        }
        let expected = numel * UInt64(dtype.size)
        guard e - b == expected else {
            throw ComputeError(.corruptHeader, "data_offsets span \(e - b) bytes but shape \(shape) of \(dtype) needs \(expected)",
                               file: file, tensor: name)
        }
        return TensorInfo(name: name, dtype: dtype, shape: shape, begin: Int(b), end: Int(e))
    }
}
