import Foundation

/// A safetensors file opened through mmap and fully validated (header rules and file length).
public final class SafeTensorsReader: @unchecked Sendable {
    public let path: String
    public let header: SafeTensorsHeader
    private let map: MappedFile

    public init(path: String) throws {
        self.path = path
        map = try MappedFile(path: path)
        header = try Self.parse(map.bytes, path: path)
    }

    /// Validates a whole safetensors file held in memory (used by `init` and the fuzz tests).
    public static func parse(_ b: UnsafeRawBufferPointer, path: String) throws -> SafeTensorsHeader {
        guard b.count >= 8 else { throw ComputeError(.corruptHeader, "file is shorter than the 8-byte header length", file: path) }
        let n = b.loadUnaligned(fromByteOffset: 0, as: UInt64.self).littleEndian
        guard n <= UInt64(SafeTensorsHeader.maxHeaderBytes) else {
            throw ComputeError(.corruptHeader, "header length \(n) exceeds the \(SafeTensorsHeader.maxHeaderBytes)-byte limit", file: path)
        }
        guard UInt64(b.count) - 8 >= n else { throw ComputeError(.corruptHeader, "header length \(n) is longer than the file", file: path) }
        let header = try SafeTensorsHeader.parse(json: UnsafeRawBufferPointer(rebasing: b[8..<(8 + Int(n))]), dataStart: 8 + Int(n), file: path)
        let actual = b.count - header.dataStart
        if actual < header.dataLength {
            throw ComputeError(.corruptData, "file is truncated: tensors need \(header.dataLength) data bytes, file has \(actual)", file: path)
        }
        if actual > header.dataLength {
            throw ComputeError(.corruptData, "\(actual - header.dataLength) trailing bytes after the last tensor", file: path)
        }
        return header
    }

    public var tensors: [TensorInfo] { header.tensors }

    /// The length prefix and JSON header bytes (the file's first `dataStart` bytes).
    public var headerBytes: UnsafeRawBufferPointer { UnsafeRawBufferPointer(rebasing: map.bytes[0..<header.dataStart]) }

    /// Size of the file in bytes.
    public var fileSize: Int { map.size }

    /// The raw bytes of one tensor (valid while the reader lives).
    public func data(_ t: TensorInfo) -> UnsafeRawBufferPointer {
        UnsafeRawBufferPointer(rebasing: map.bytes[(header.dataStart + t.begin)..<(header.dataStart + t.end)])
    }

    /// Drops a tensor's pages from memory once processed.
    public func release(_ t: TensorInfo) { map.release(offset: header.dataStart + t.begin, count: t.byteCount) }
}
