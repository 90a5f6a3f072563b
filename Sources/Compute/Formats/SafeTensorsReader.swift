import Foundation

/// A safetensors file, fully validated (header rules and file length), whose tensors are read
/// with `pread` into owned buffers: a file truncated or rewritten mid-run fails the read with
/// `inputChanged` instead of killing the process with SIGBUS, as a memory map would.
public final class SafeTensorsReader: @unchecked Sendable {
    public let path: String
    public let header: SafeTensorsHeader
    /// The length prefix and JSON header bytes (the file's first `dataStart` bytes).
    public let headerBytes: [UInt8]
    private let file: InputFile

    public init(path: String) throws {
        self.path = path
        file = try InputFile(path: path, what: "model file")
        (header, headerBytes) = try SafeTensorsHeader.read(file)
        try Self.checkLength(fileSize: file.size, header, path: path)
    }

    /// Validates a whole safetensors file held in memory (used by the fuzz tests).
    public static func parse(_ b: UnsafeRawBufferPointer, path: String) throws -> SafeTensorsHeader {
        let n = try SafeTensorsHeader.jsonLength(b, fileSize: b.count, file: path)
        let header = try SafeTensorsHeader.parse(
            json: UnsafeRawBufferPointer(rebasing: b[8..<(8 + n)]), dataStart: 8 + n, file: path)
        try checkLength(fileSize: b.count, header, path: path)
        return header
    }

    private static func checkLength(fileSize: Int, _ header: SafeTensorsHeader, path: String) throws {
        let actual = fileSize - header.dataStart
        if actual < header.dataLength {
            throw ComputeError(
                .corruptData, "file is truncated: tensors need \(header.dataLength) data bytes, file has \(actual)",
                file: path)
        }
        if actual > header.dataLength {
            throw ComputeError(
                .corruptData, "\(actual - header.dataLength) trailing bytes after the last tensor", file: path)
        }
    }

    public var tensors: [TensorInfo] { header.tensors }

    /// Size of the file in bytes (at open).
    public var fileSize: Int { file.size }

    /// Reads one tensor's raw bytes into a buffer owned for the duration of `body`.
    public func withData<R>(_ t: TensorInfo, _ body: (UnsafeRawBufferPointer) throws -> R) throws -> R {
        try file.withBytes(at: header.dataStart + t.begin, count: t.byteCount, body)
    }

    /// Reads the elements `elements` of one tensor into a buffer owned for the duration of `body`.
    public func withData<R>(_ t: TensorInfo, elements: Range<Int>, _ body: (UnsafeRawBufferPointer) throws -> R) throws
        -> R
    {
        let size = t.dtype.size
        return try file.withBytes(
            at: header.dataStart + t.begin + elements.lowerBound * size, count: elements.count * size, body)
    }

    /// Throws `inputChanged` if the file changed since it was opened.
    public func checkUnchanged() throws { try file.checkUnchanged() }
}
