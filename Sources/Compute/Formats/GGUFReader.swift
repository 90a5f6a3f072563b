import Foundation

/// A GGUF v2/v3 file whose header is parsed with every count, length and offset bounds-checked
/// against the file before use (hostile files give a `ComputeError`, never a crash), and whose
/// tensors are read with `pread` into owned buffers (a file truncated meanwhile is an error, not SIGBUS).
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

    /// What `parse` finds in a header.
    public struct Header: Sendable {
        public let version: UInt32
        public let metadata: [(String, GGUFValue)]
        public let alignment: Int
        public let tensors: [Tensor]
    }

    public let path: String
    public let header: Header
    public var version: UInt32 { header.version }
    public var metadata: [(String, GGUFValue)] { header.metadata }
    public var tensors: [Tensor] { header.tensors }
    public var alignment: Int { header.alignment }
    private let file: InputFile

    static let maxCount: UInt64 = 1 << 24
    static let maxString: UInt64 = 1 << 26

    public init(path: String) throws {
        self.path = path
        file = try InputFile(path: path, what: "GGUF file")
        let f = file
        var r = ByteReader(size: f.size, path: path) { off, buf in try f.read(at: off, into: buf) }
        header = try Self.parse(&r)
    }

    /// Parses and validates a whole GGUF file held in memory (used by the fuzz tests).
    public static func parse(_ bytes: UnsafeRawBufferPointer, path: String) throws -> Header {
        var r = ByteReader(size: bytes.count, path: path) { off, buf in
            buf.copyMemory(from: UnsafeRawBufferPointer(rebasing: bytes[off..<(off + buf.count)]))
        }
        return try parse(&r)
    }

    static func parse(_ r: inout ByteReader) throws -> Header {
        let path = r.path
        guard try r.take(4) == Array("GGUF".utf8) else {
            throw ComputeError(.corruptHeader, "not a GGUF file (bad magic)", file: path)
        }
        let version = try r.u32()
        guard version == 2 || version == 3 else {
            throw ComputeError(.corruptHeader, "unsupported GGUF version \(version)", file: path)
        }
        let nt = try r.u64(), nkv = try r.u64()
        guard nt <= Self.maxCount else {
            throw ComputeError(.corruptHeader, "tensor count \(nt) is absurd", file: path)
        }
        guard nkv <= Self.maxCount else {
            throw ComputeError(.corruptHeader, "metadata count \(nkv) is absurd", file: path)
        }
        // Each kv takes at least 12 bytes and each tensor info at least 24: counts beyond the file are lies.
        guard nkv * 12 + nt * 24 <= UInt64(r.size) else {
            throw ComputeError(
                .corruptHeader, "\(nkv) metadata entries and \(nt) tensors cannot fit in \(r.size) bytes", file: path)
        }
        var kv = [(String, GGUFValue)]()
        var keys = Set<String>()
        for _ in 0..<nkv {
            let k = try r.string()
            guard keys.insert(k).inserted else {
                throw ComputeError(.corruptHeader, "duplicate metadata key \(TextRules.printable(k))", file: path)
            }
            let t = try r.u32()
            kv.append((k, try r.value(type: t, key: k)))
        }
        var align = 32
        if let a = kv.first(where: { $0.0 == "general.alignment" })?.1 {
            guard case .uint32(let v) = a, v > 0, v <= 1 << 16, v & (v - 1) == 0 else {
                throw ComputeError(.corruptHeader, "general.alignment must be a power of two u32", file: path)
            }
            align = Int(v)
        }
        let infos = try tensorInfos(&r, count: nt)
        let dataStart = (r.offset + align - 1) / align * align
        var ts = [Tensor]()
        for (name, dims, type, off) in infos {
            guard let size = type.byteCount(numel: dims.reduce(1, *), rowLength: dims[0]) else {
                throw ComputeError(
                    .corruptHeader, "row of \(dims[0]) values does not fill \(type.name) blocks", file: path,
                    tensor: name)
            }
            guard off % UInt64(align) == 0 else {
                throw ComputeError(.corruptHeader, "offset \(off) is not aligned to \(align)", file: path, tensor: name)
            }
            guard off <= UInt64(r.size), UInt64(dataStart) + off + UInt64(size) <= UInt64(r.size) else {
                throw ComputeError(
                    .corruptData, "data [\(off), +\(size)) lies outside the file", file: path, tensor: name)
            }
            ts.append(Tensor(name: name, dims: dims, type: type, offset: dataStart + Int(off), byteCount: size))
        }
        return Header(version: version, metadata: kv, alignment: align, tensors: ts)
    }

    /// The tensor infos: unique NUL-free names, 1 to 4 dimensions whose product fits, known types.
    private static func tensorInfos(_ r: inout ByteReader, count nt: UInt64) throws -> [(
        String, [Int], GGMLType, UInt64
    )] {
        let path = r.path
        var infos = [(String, [Int], GGMLType, UInt64)]()
        var names = Set<String>()
        for _ in 0..<nt {
            let name = try r.string()
            try TextRules.check(name, field: "tensor name", file: path)
            guard names.insert(name).inserted else {
                throw ComputeError(.corruptHeader, "duplicate tensor", file: path, tensor: name)
            }
            let nd = try r.u32()
            guard nd >= 1 && nd <= 4 else {
                throw ComputeError(.corruptHeader, "n_dims \(nd) not in 1...4", file: path, tensor: name)
            }
            var dims = [Int]()
            var numel: UInt64 = 1
            for _ in 0..<nd {
                let d = try r.u64()
                guard d < 1 << 48 else {
                    throw ComputeError(.corruptHeader, "dimension \(d) is absurd", file: path, tensor: name)
                }
                let (m, o) = numel.multipliedReportingOverflow(by: d)
                guard !o, m < 1 << 48 else {
                    throw ComputeError(.corruptHeader, "dimensions overflow", file: path, tensor: name)
                }
                numel = m
                dims.append(Int(d))
            }
            let tid = try r.u32()
            guard let type = GGMLType(rawValue: tid) else {
                throw ComputeError(.unsupportedDType, "unknown ggml type \(tid)", file: path, tensor: name)
            }
            infos.append((name, dims, type, try r.u64()))
        }
        return infos
    }

    /// Reads a tensor's raw bytes into a buffer owned for the duration of `body`.
    public func withData<R>(_ t: Tensor, _ body: (UnsafeRawBufferPointer) throws -> R) throws -> R {
        try file.withBytes(at: t.offset, count: t.byteCount, body)
    }

    /// Reads the bytes `bytes` (within the tensor's) of a tensor.
    public func withData<R>(_ t: Tensor, bytes: Range<Int>, _ body: (UnsafeRawBufferPointer) throws -> R) throws -> R {
        precondition(bytes.lowerBound >= 0 && bytes.upperBound <= t.byteCount)
        return try file.withBytes(at: t.offset + bytes.lowerBound, count: bytes.count, body)
    }

    /// Reads the whole file in order, a chunk at a time (for its checksum).
    public func forEachChunk(_ body: (UnsafeRawBufferPointer) throws -> Void) throws {
        try file.forEachChunk(1 << 22, body)
    }

    /// Size of the file in bytes (at open).
    public var fileSize: Int { file.size }

    /// Throws `inputChanged` if the file changed since it was opened.
    public func checkUnchanged() throws { try file.checkUnchanged() }
}

/// Bounds-checked little-endian reading through a 1 MiB window over a file or buffer: memory
/// follows what is kept, never the lengths a header claims.
struct ByteReader {
    let size: Int
    let path: String
    private let fetch: (Int, UnsafeMutableRawBufferPointer) throws -> Void
    private var window = [UInt8]()
    private var windowStart = 0
    private(set) var offset = 0
    static let windowSize = 1 << 20

    init(size: Int, path: String, fetch: @escaping (Int, UnsafeMutableRawBufferPointer) throws -> Void) {
        self.size = size
        self.path = path
        self.fetch = fetch
    }

    private func end(_ need: String = "") -> ComputeError {
        ComputeError(.corruptHeader, "unexpected end of file at byte \(offset)\(need)", file: path)
    }

    /// Calls `body` with the next `n` bytes (valid during the call) and advances past them.
    mutating func withNext<R>(_ n: Int, _ body: (UnsafeRawBufferPointer) throws -> R) throws -> R {
        guard n >= 0, n <= size - offset else { throw end(" (needed \(n) more)") }
        if n > Self.windowSize {
            let big = UnsafeMutableRawBufferPointer.allocate(byteCount: n, alignment: 16)
            defer { big.deallocate() }
            try fetch(offset, big)
            offset += n
            return try body(UnsafeRawBufferPointer(big))
        }
        if offset < windowStart || offset + n > windowStart + window.count {
            let count = min(Self.windowSize, size - offset)
            if window.count != count { window = [UInt8](repeating: 0, count: count) }
            let start = offset
            try window.withUnsafeMutableBytes { try fetch(start, $0) }
            windowStart = offset
        }
        let lo = offset - windowStart
        offset += n
        return try window.withUnsafeBytes { try body(UnsafeRawBufferPointer(rebasing: $0[lo..<(lo + n)])) }
    }

    mutating func take(_ n: Int) throws -> [UInt8] { try withNext(n) { Array($0) } }

    mutating func load<T: FixedWidthInteger>(_: T.Type) throws -> T {
        try withNext(MemoryLayout<T>.size) { T(littleEndian: $0.loadUnaligned(as: T.self)) }
    }

    mutating func u32() throws -> UInt32 { try load(UInt32.self) }
    mutating func u64() throws -> UInt64 { try load(UInt64.self) }

    mutating func string() throws -> String {
        let n = try u64()
        guard n <= GGUFReader.maxString else {
            throw ComputeError(.corruptHeader, "string length \(n) is absurd", file: path)
        }
        guard let s = try withNext(Int(n), { String(validating: $0, as: UTF8.self) }) else {
            throw ComputeError(.corruptHeader, "string is not UTF-8", file: path)
        }
        return s
    }

    /// `n` fixed-width values read in one copy.
    private mutating func numbers<T: FixedWidthInteger>(_ n: Int, _: T.Type) throws -> [T] {
        try withNext(n * MemoryLayout<T>.size) { raw in
            (0..<n).map { T(littleEndian: raw.loadUnaligned(fromByteOffset: $0 * MemoryLayout<T>.size, as: T.self)) }
        }
    }

    mutating func value(type: UInt32, key: String) throws -> GGUFValue {
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
            guard b <= 1 else { throw ComputeError(.corruptHeader, "\(key): bool value \(b)", file: path) }
            return .bool(b == 1)
        case 8: return .string(try string())
        case 9: return .array(try array(key: key))
        case 10: return .uint64(try load(UInt64.self))
        case 11: return .int64(try load(Int64.self))
        case 12: return .float64(Double(bitPattern: try load(UInt64.self)))
        default: throw ComputeError(.corruptHeader, "\(key): unknown metadata value type \(type)", file: path)
        }
    }

    /// A typed array; arrays of arrays are refused, as ggml does.
    private mutating func array(key: String) throws -> GGUFArray {
        let et = try u32()
        let n64 = try u64()
        let width: [UInt32: Int] = [0: 1, 1: 1, 2: 2, 3: 2, 4: 4, 5: 4, 6: 4, 7: 1, 8: 8, 10: 8, 11: 8, 12: 8]
        guard let w = width[et] else {
            throw ComputeError(
                .corruptHeader,
                et == 9 ? "\(key): arrays of arrays are not supported" : "\(key): unknown array element type \(et)",
                file: path)
        }
        guard n64 <= GGUFReader.maxCount, n64 * UInt64(w) <= UInt64(size - offset) else {
            throw ComputeError(
                .corruptHeader, "\(key): array length \(n64) is absurd or longer than the file", file: path)
        }
        let n = Int(n64)
        switch et {
        case 0: return .uint8(try numbers(n, UInt8.self))
        case 1: return .int8(try numbers(n, Int8.self))
        case 2: return .uint16(try numbers(n, UInt16.self))
        case 3: return .int16(try numbers(n, Int16.self))
        case 4: return .uint32(try numbers(n, UInt32.self))
        case 5: return .int32(try numbers(n, Int32.self))
        case 6: return .float32(try numbers(n, UInt32.self).map { Float(bitPattern: $0) })
        case 7:
            let raw = try numbers(n, UInt8.self)
            guard raw.allSatisfy({ $0 <= 1 }) else {
                throw ComputeError(.corruptHeader, "\(key): bool array holds a value other than 0 or 1", file: path)
            }
            return .bool(raw.map { $0 == 1 })
        case 8:
            var out = [String]()
            out.reserveCapacity(min(n, 1 << 16))
            for _ in 0..<n { out.append(try string()) }
            return .string(out)
        case 10: return .uint64(try numbers(n, UInt64.self))
        case 11: return .int64(try numbers(n, Int64.self))
        default: return .float64(try numbers(n, UInt64.self).map { Double(bitPattern: $0) })
        }
    }
}
