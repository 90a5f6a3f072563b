import Foundation

/// Writes a GGUF v3 file in one pass: header, metadata, every tensor info (all planned up
/// front), alignment padding, then each tensor's data in order as it is produced, then fsync.
public final class GGUFWriter {
    public struct TensorPlan: Sendable {
        public let name: String
        /// Shape in row-major order as in safetensors (outermost first); written reversed (ne0 innermost).
        public let shape: [Int]
        public let type: GGMLType
        public let byteCount: Int

        public init(name: String, shape: [Int], type: GGMLType, byteCount: Int) {
            self.name = name
            self.shape = shape
            self.type = type
            self.byteCount = byteCount
        }
    }

    public let path: String
    public let alignment: Int
    private let plan: [TensorPlan]
    private var next = 0
    private let out: OutputFile
    private var written: Int64 = 0

    public init(path: String, metadata: [(String, GGUFValue)], tensors: [TensorPlan], alignment: Int = 32) throws {
        self.path = path
        self.alignment = alignment
        plan = tensors
        out = try OutputFile(path: path, writeBehind: true)
        let h = Self.header(metadata: metadata, tensors: tensors, alignment: alignment)
        try h.withUnsafeBytes { try out.write($0) }
        written = Int64(h.count)
    }

    /// The header bytes (magic, counts, metadata, tensor infos, padding to the alignment); their
    /// length depends on the names, shapes and metadata, not on the tensors' types.
    static func header(metadata: [(String, GGUFValue)], tensors: [TensorPlan], alignment: Int) -> [UInt8] {
        var h = ByteWriter()
        h.bytes(Array("GGUF".utf8))
        h.u32(3)
        h.u64(UInt64(tensors.count))
        h.u64(UInt64(metadata.count))
        for (k, v) in metadata {
            h.string(k)
            h.u32(v.typeID)
            h.value(v)
        }
        var offset = 0
        for t in tensors {
            h.string(t.name)
            h.u32(UInt32(t.shape.count))
            for d in t.shape.reversed() { h.u64(UInt64(d)) }
            h.u32(t.type.rawValue)
            h.u64(UInt64(offset))
            offset += t.byteCount
            offset = (offset + alignment - 1) / alignment * alignment
        }
        while h.data.count % alignment != 0 { h.data.append(0) }
        return h.data
    }

    /// Appends the next planned tensor's bytes (then padding to the alignment).
    public func write(name: String, bytes: UnsafeRawBufferPointer) throws {
        guard next < plan.count else {
            throw ComputeError(.internalError, "more tensors than planned", file: path, tensor: name)
        }
        let t = plan[next]
        guard t.name == name, t.byteCount == bytes.count else {
            throw ComputeError(
                .internalError, "expected \(t.name) of \(t.byteCount) bytes, got \(bytes.count)", file: path,
                tensor: name)
        }
        try out.write(bytes)
        written += Int64(bytes.count)
        let pad = Int((Int64(alignment) - written % Int64(alignment)) % Int64(alignment))
        if pad > 0 && next < plan.count - 1 {
            let zeros = [UInt8](repeating: 0, count: pad)
            try zeros.withUnsafeBytes { try out.write($0) }
            written += Int64(pad)
        }
        next += 1
    }

    /// Checks every tensor was written, fsyncs; returns size and SHA-256.
    public func finish() throws -> (bytes: Int64, sha256: String) {
        guard next == plan.count else {
            throw ComputeError(.internalError, "only \(next) of \(plan.count) tensors written", file: path)
        }
        let sha = try out.finish()
        return (out.bytesWritten, sha)
    }
}

/// Little-endian byte building for GGUF headers.
struct ByteWriter {
    var data = [UInt8]()
    mutating func bytes(_ b: [UInt8]) { data += b }
    mutating func u32(_ v: UInt32) { withUnsafeBytes(of: v.littleEndian) { data += $0 } }
    mutating func u64(_ v: UInt64) { withUnsafeBytes(of: v.littleEndian) { data += $0 } }
    mutating func string(_ s: String) {
        let u = Array(s.utf8)
        u64(UInt64(u.count))
        data += u
    }

    mutating func value(_ v: GGUFValue) {
        switch v {
        case .uint8(let x): data.append(x)
        case .int8(let x): data.append(UInt8(bitPattern: x))
        case .uint16(let x): withUnsafeBytes(of: x.littleEndian) { data += $0 }
        case .int16(let x): withUnsafeBytes(of: x.littleEndian) { data += $0 }
        case .uint32(let x): u32(x)
        case .int32(let x): withUnsafeBytes(of: x.littleEndian) { data += $0 }
        case .float32(let x): u32(x.bitPattern)
        case .bool(let x): data.append(x ? 1 : 0)
        case .string(let s): string(s)
        case .array(let a):
            let (type, count) = a.typeAndCount
            u32(type)
            u64(UInt64(count))
            switch a {
            case .uint8(let xs): xs.forEach { value(.uint8($0)) }
            case .int8(let xs): xs.forEach { value(.int8($0)) }
            case .uint16(let xs): xs.forEach { value(.uint16($0)) }
            case .int16(let xs): xs.forEach { value(.int16($0)) }
            case .uint32(let xs): xs.forEach { value(.uint32($0)) }
            case .int32(let xs): xs.forEach { value(.int32($0)) }
            case .float32(let xs): xs.forEach { value(.float32($0)) }
            case .bool(let xs): xs.forEach { value(.bool($0)) }
            case .string(let xs): xs.forEach { string($0) }
            case .uint64(let xs): xs.forEach { value(.uint64($0)) }
            case .int64(let xs): xs.forEach { value(.int64($0)) }
            case .float64(let xs): xs.forEach { value(.float64($0)) }
            }
        case .uint64(let x): u64(x)
        case .int64(let x): withUnsafeBytes(of: x.littleEndian) { data += $0 }
        case .float64(let x): u64(x.bitPattern)
        }
    }
}
