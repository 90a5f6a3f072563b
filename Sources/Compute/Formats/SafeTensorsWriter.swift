import Foundation

/// Writes a safetensors file in one pass: the header (from the planned tensors), then each
/// tensor's bytes in order as they are produced, then fsync. Memory use is one tensor at most.
public final class SafeTensorsWriter {
    public let path: String
    private let planned: [TensorInfo]
    private var next = 0
    private let out: OutputFile

    /// Plans `tensors` (name, dtype, shape, in output order) and writes the header.
    public init(path: String, tensors: [(name: String, dtype: DType, shape: [Int])], metadata: [String: String] = [:])
        throws
    {
        self.path = path
        var infos = [TensorInfo]()
        var off = 0
        for t in tensors {
            let n = t.shape.reduce(1, *) * t.dtype.size
            infos.append(TensorInfo(name: t.name, dtype: t.dtype, shape: t.shape, begin: off, end: off + n))
            off += n
        }
        planned = infos
        var hb = Array(try SafeTensorsHeaderJSON(tensors: infos, metadata: metadata).encoded())
        while hb.count % 8 != 0 { hb.append(0x20) }
        out = try OutputFile(path: path, writeBehind: true)
        var len = UInt64(hb.count).littleEndian
        try withUnsafeBytes(of: &len) { try out.write($0) }
        try hb.withUnsafeBytes { try out.write($0) }
    }

    /// Bytes of planned entries' data.
    static func byteCount(_ entries: [(name: String, dtype: DType, shape: [Int])]) -> Int {
        entries.reduce(0) { $0 + $1.shape.reduce(1, *) * $1.dtype.size }
    }

    /// Appends `bytes` as the planned entries they hold back to back.
    func write(entries: [(name: String, dtype: DType, shape: [Int])], bytes: UnsafeRawBufferPointer) throws {
        var off = 0
        for e in entries {
            let n = Self.byteCount([e])
            try write(name: e.name, bytes: UnsafeRawBufferPointer(rebasing: bytes[off..<(off + n)]))
            off += n
        }
    }

    /// Appends the next planned tensor's bytes; the name and size must match the plan.
    public func write(name: String, bytes: UnsafeRawBufferPointer) throws {
        guard next < planned.count else {
            throw ComputeError(.internalError, "more tensors written than planned", file: path, tensor: name)
        }
        let t = planned[next]
        guard t.name == name, t.byteCount == bytes.count else {
            throw ComputeError(
                .internalError, "expected \(t.name) (\(t.byteCount) bytes), got \(bytes.count) bytes", file: path,
                tensor: name)
        }
        try out.write(bytes)
        next += 1
    }

    /// Checks every tensor was written, fsyncs and closes; returns the file's size and SHA-256.
    @discardableResult
    public func finish() throws -> (bytes: Int64, sha256: String) {
        guard next == planned.count else {
            throw ComputeError(.internalError, "only \(next) of \(planned.count) tensors were written", file: path)
        }
        let sha = try out.finish()
        return (out.bytesWritten, sha)
    }
}

/// A safetensors header as JSONEncoder writes it (sorted keys): `__metadata__` when there is any,
/// and each tensor's dtype, shape and data offsets under its name.
struct SafeTensorsHeaderJSON: Encodable {
    struct Entry: Encodable {
        let dtype: String
        let shape: [Int]
        let data_offsets: [Int]
    }

    let tensors: [TensorInfo]
    let metadata: [String: String]

    func encode(to encoder: Encoder) throws {
        var c = encoder.container(keyedBy: JSONKey.self)
        if !metadata.isEmpty { try c.encode(metadata, forKey: JSONKey("__metadata__")) }
        for t in tensors {
            try c.encode(
                Entry(dtype: t.dtype.rawValue, shape: t.shape, data_offsets: [t.begin, t.end]), forKey: JSONKey(t.name))
        }
    }

    func encoded() throws -> Data { try JSONEncoder.canonical.encode(self) }
}

extension JSONEncoder {
    /// Sorted keys, slashes unescaped: the one JSON layout Squeeze writes.
    static var canonical: JSONEncoder {
        let e = JSONEncoder()
        e.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
        return e
    }
}
