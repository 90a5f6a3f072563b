import Foundation

/// Writes a safetensors file in one pass: the header (from the planned tensors), then each
/// tensor's bytes in order as they are produced, then fsync. Memory use is one tensor at most.
public final class SafeTensorsWriter {
    public let path: String
    private let planned: [TensorInfo]
    private var next = 0
    private let out: OutputFile

    /// Plans `tensors` (name, dtype, shape, in output order) and writes the header.
    public init(path: String, tensors: [(name: String, dtype: DType, shape: [Int])], metadata: [String: String] = [:]) throws {
        self.path = path
        var infos = [TensorInfo]()
        var off = 0
        for t in tensors {
            let n = t.shape.reduce(1, *) * t.dtype.size
            infos.append(TensorInfo(name: t.name, dtype: t.dtype, shape: t.shape, begin: off, end: off + n))
            off += n
        }
        planned = infos
        var json = "{"
        var first = true
        if !metadata.isEmpty {
            json += "\"__metadata__\":{" + metadata.sorted { $0.key < $1.key }.map { "\(jsonString($0.key)):\(jsonString($0.value))" }
                .joined(separator: ",") + "}"
            first = false
        }
        for t in infos {
            if !first { json += "," }
            first = false
            json += "\(jsonString(t.name)):{\"dtype\":\"\(t.dtype.rawValue)\",\"shape\":[\(t.shape.map(String.init).joined(separator: ","))],\"data_offsets\":[\(t.begin),\(t.end)]}"
        }
        json += "}"
        var hb = Array(json.utf8)
        while hb.count % 8 != 0 { hb.append(0x20) }
        out = try OutputFile(path: path)
        var len = UInt64(hb.count).littleEndian
        try withUnsafeBytes(of: &len) { try out.write($0) }
        try hb.withUnsafeBytes { try out.write($0) }
    }

    /// Appends the next planned tensor's bytes; the name and size must match the plan.
    public func write(name: String, bytes: UnsafeRawBufferPointer) throws {
        guard next < planned.count else { throw ComputeError(.internalError, "more tensors written than planned", file: path, tensor: name) }
        let t = planned[next]
        guard t.name == name, t.byteCount == bytes.count else {
            throw ComputeError(.internalError, "expected \(t.name) (\(t.byteCount) bytes), got \(bytes.count) bytes", file: path, tensor: name)
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

/// A JSON string literal, as safetensors headers hold names.
func jsonString(_ s: String) -> String { TextRules.json(s) }
