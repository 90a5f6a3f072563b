import Foundation

/// A GGUF v2/v3 file read through mmap with every count, length and offset bounds-checked
/// against the file before use: hostile files give a `ComputeError`, never a crash.
public final class GGUFReader: @unchecked Sendable {
    public struct Tensor: Sendable {
        public let name: String
        /// Dimensions as stored (ne0 innermost first).
        public let dims: [Int]
        public let type: GGMLType
        /// Absolute offset of the data in the file.
        public let offset: Int
        public let byteCount: Int
        public var numel: Int { dims.reduce(1, *) }
    }

    public let path: String
    public let version: UInt32
    public let metadata: [(String, GGUFValue)]
    public let tensors: [Tensor]
    public let alignment: Int
    private let map: MappedFile

    static let maxCount: UInt64 = 1 << 24
    static let maxString: UInt64 = 1 << 26

    public init(path: String) throws {
        self.path = path
        map = try MappedFile(path: path)
        (version, metadata, alignment, tensors) = try Self.parse(map.bytes, path: path)
    }

    /// Parses and validates a whole GGUF file held in memory (used by `init` and the fuzz tests).
    public static func parse(_ bytes: UnsafeRawBufferPointer, path: String) throws
        -> (version: UInt32, metadata: [(String, GGUFValue)], alignment: Int, tensors: [Tensor]) {
        var r = ByteReader(bytes: bytes, path: path)
        guard try r.take(4) == Array("GGUF".utf8) else { throw ComputeError(.corruptHeader, "not a GGUF file (bad magic)", file: path) }
        let version = try r.u32()
        guard version == 2 || version == 3 else { throw ComputeError(.corruptHeader, "unsupported GGUF version \(version)", file: path) }
        let nt = try r.u64(), nkv = try r.u64()
        guard nt <= Self.maxCount else { throw ComputeError(.corruptHeader, "tensor count \(nt) is absurd", file: path) }
        guard nkv <= Self.maxCount else { throw ComputeError(.corruptHeader, "metadata count \(nkv) is absurd", file: path) }
        var kv = [(String, GGUFValue)]()
        for _ in 0..<nkv {
            let k = try r.string()
            let t = try r.u32()
            kv.append((k, try r.value(type: t, depth: 0)))
        }
        var align = 32
        if let a = kv.first(where: { $0.0 == "general.alignment" })?.1 {
            guard case .uint32(let v) = a, v > 0, v <= 1 << 16, v & (v - 1) == 0 else {
                throw ComputeError(.corruptHeader, "general.alignment must be a power of two u32", file: path)
            }
            align = Int(v)
        }
        var infos = [(String, [Int], GGMLType, UInt64)]()
        var names = Set<String>()
        for _ in 0..<nt {
            let name = try r.string()
            guard names.insert(name).inserted else { throw ComputeError(.corruptHeader, "duplicate tensor", file: path, tensor: name) }
            let nd = try r.u32()
            guard nd >= 1 && nd <= 4 else { throw ComputeError(.corruptHeader, "n_dims \(nd) not in 1...4", file: path, tensor: name) }
            var dims = [Int]()
            var numel: UInt64 = 1
            for _ in 0..<nd {
                let d = try r.u64()
                guard d < 1 << 48 else { throw ComputeError(.corruptHeader, "dimension \(d) is absurd", file: path, tensor: name) }
                let (m, o) = numel.multipliedReportingOverflow(by: d)
                guard !o, m < 1 << 48 else { throw ComputeError(.corruptHeader, "dimensions overflow", file: path, tensor: name) }
                numel = m
                dims.append(Int(d))
            }
            let tid = try r.u32()
            guard let type = GGMLType(rawValue: tid) else { throw ComputeError(.unsupportedDType, "unknown ggml type \(tid)", file: path, tensor: name) }
            infos.append((name, dims, type, try r.u64()))
        }
        let dataStart = (r.offset + align - 1) / align * align
        var ts = [Tensor]()
        for (name, dims, type, off) in infos {
            guard let size = type.byteCount(numel: dims.reduce(1, *), rowLength: dims[0]) else {
                throw ComputeError(.corruptHeader, "row of \(dims[0]) values does not fill \(type.name) blocks", file: path, tensor: name)
            }
            guard off % UInt64(align) == 0 else { throw ComputeError(.corruptHeader, "offset \(off) is not aligned to \(align)", file: path, tensor: name) }
            guard off <= UInt64(bytes.count), UInt64(dataStart) + off + UInt64(size) <= UInt64(bytes.count) else {
                throw ComputeError(.corruptData, "data [\(off), +\(size)) lies outside the file", file: path, tensor: name)
            }
            ts.append(Tensor(name: name, dims: dims, type: type, offset: dataStart + Int(off), byteCount: size))
        }
        return (version, kv, align, ts)
    }

    /// The raw bytes of a tensor.
    public func data(_ t: Tensor) -> UnsafeRawBufferPointer {
        UnsafeRawBufferPointer(rebasing: map.bytes[t.offset..<(t.offset + t.byteCount)])
    }
}

/// Bounds-checked little-endian reading.
struct ByteReader {
    let bytes: UnsafeRawBufferPointer
    let path: String
    var offset = 0

    init(bytes: UnsafeRawBufferPointer, path: String) {
        self.bytes = bytes
        self.path = path
    }

    mutating func take(_ n: Int) throws -> [UInt8] {
        guard n >= 0, n <= bytes.count - offset else {
            throw ComputeError(.corruptHeader, "unexpected end of file at byte \(offset) (needed \(n) more)", file: path)
        }
        defer { offset += n }
        return Array(bytes[offset..<(offset + n)])
    }

    mutating func load<T: FixedWidthInteger>(_: T.Type) throws -> T {
        let n = MemoryLayout<T>.size
        guard n <= bytes.count - offset else { throw ComputeError(.corruptHeader, "unexpected end of file at byte \(offset)", file: path) }
        defer { offset += n }
        return T(littleEndian: bytes.loadUnaligned(fromByteOffset: offset, as: T.self))
    }

    mutating func u32() throws -> UInt32 { try load(UInt32.self) }
    mutating func u64() throws -> UInt64 { try load(UInt64.self) }

    mutating func string() throws -> String {
        let n = try u64()
        guard n <= GGUFReader.maxString else { throw ComputeError(.corruptHeader, "string length \(n) is absurd", file: path) }
        let b = try take(Int(n))
        guard let s = String(validating: b, as: UTF8.self) else { throw ComputeError(.corruptHeader, "string is not UTF-8", file: path) }
        return s
    }

    mutating func value(type: UInt32, depth: Int) throws -> GGUFValue {
        switch type {
        case 0: return .uint8(try load(UInt8.self))
        case 1: return .int8(try load(Int8.self))
        case 2: return .uint16(try load(UInt16.self))
        case 3: return .int16(try load(Int16.self))
        case 4: return .uint32(try load(UInt32.self))
        case 5: return .int32(try load(Int32.self))
        case 6: return .float32(Float(bitPattern: try load(UInt32.self)))
        case 7:
            let b = try load(UInt8.self)
            guard b <= 1 else { throw ComputeError(.corruptHeader, "bool value \(b)", file: path) }
            return .bool(b == 1)
        case 8: return .string(try string())
        case 9:
            guard depth < 4 else { throw ComputeError(.corruptHeader, "arrays nested too deeply", file: path) }
            let et = try u32()
            let n = try u64()
            guard n <= GGUFReader.maxCount, n <= UInt64(bytes.count - offset) else {
                throw ComputeError(.corruptHeader, "array length \(n) is absurd", file: path)
            }
            var items = [GGUFValue]()
            items.reserveCapacity(Int(n))
            for _ in 0..<n { items.append(try value(type: et, depth: depth + 1)) }
            return .array(items)
        case 10: return .uint64(try load(UInt64.self))
        case 11: return .int64(try load(Int64.self))
        case 12: return .float64(Double(bitPattern: try load(UInt64.self)))
        default: throw ComputeError(.corruptHeader, "unknown metadata value type \(type)", file: path)
        }
    }
}
