import Foundation

/// A file written sequentially with its SHA-256 computed on the way; `finish()` fsyncs it. With
/// `writeBehind` the hashing and writing run on a thread of their own (WriteBehind) while the
/// caller computes the next bytes; errors surface at the next write or at `finish()`.
public final class OutputFile {
    public let path: String
    private let sink: Sink
    private var behind: WriteBehind?
    public private(set) var bytesWritten: Int64 = 0
    public private(set) var sha256Hex: String?

    /// The descriptor and the running hash; what the write-behind thread touches.
    private final class Sink: @unchecked Sendable {
        let path: String
        var fd: Int32
        var hasher = SHA256()

        init(path: String) throws {
            self.path = path
            fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0o644)
            guard fd >= 0 else {
                throw ComputeError(.io, "cannot create: \(String(cString: strerror(errno)))", file: path)
            }
        }

        deinit { if fd >= 0 { close(fd) } }

        func put(_ bytes: UnsafeRawBufferPointer) throws {
            hasher.update(bytes)
            var off = 0
            while off < bytes.count {
                let n = Foundation.write(fd, bytes.baseAddress! + off, min(bytes.count - off, 1 << 26))
                if n < 0 {
                    if errno == EINTR { continue }
                    throw ComputeError(.io, "write failed: \(String(cString: strerror(errno)))", file: path)
                }
                off += n
            }
        }
    }

    public init(path: String, writeBehind: Bool = false) throws {
        self.path = path
        let sink = try Sink(path: path)
        self.sink = sink
        if writeBehind { behind = WriteBehind(name: "squeeze-write") { try sink.put($0) } }
    }

    deinit { behind?.abandon() }

    public func write(_ bytes: UnsafeRawBufferPointer) throws {
        guard sink.fd >= 0 else { throw ComputeError(.internalError, "write after finish", file: path) }
        bytesWritten += Int64(bytes.count)
        if let b = behind { try b.submit(bytes) } else { try sink.put(bytes) }
    }

    public func write(_ data: Data) throws { try data.withUnsafeBytes { try write($0) } }

    /// fsyncs and closes; returns the file's SHA-256 (hex).
    @discardableResult
    public func finish() throws -> String {
        if let s = sha256Hex { return s }
        if let b = behind {
            behind = nil
            try b.drain()
        }
        guard fsync(sink.fd) == 0 else {
            throw ComputeError(.io, "fsync failed: \(String(cString: strerror(errno)))", file: path)
        }
        let fd = sink.fd
        sink.fd = -1
        guard close(fd) == 0 else {
            throw ComputeError(.io, "close failed: \(String(cString: strerror(errno)))", file: path)
        }
        let s = sink.hasher.finalizeHex()
        sha256Hex = s
        return s
    }
}

/// Filesystem helpers for atomic publication.
public enum FileOps {
    /// fsyncs a directory so renames and new entries in it are durable.
    public static func fsyncDirectory(_ path: String) throws {
        let fd = open(path, O_RDONLY | O_DIRECTORY | O_CLOEXEC)
        guard fd >= 0 else {
            throw ComputeError(.io, "cannot open directory: \(String(cString: strerror(errno)))", file: path)
        }
        defer { close(fd) }
        guard fsync(fd) == 0 else {
            throw ComputeError(.io, "fsync of directory failed: \(String(cString: strerror(errno)))", file: path)
        }
    }

    /// Creates a directory and its parents.
    public static func makeDirectory(_ path: String) throws {
        do { try FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true) } catch {
            throw ComputeError(.io, "cannot create directory: \((error as NSError).localizedDescription)", file: path)
        }
    }

    /// Writes a small file completely and fsyncs it; returns its SHA-256.
    @discardableResult
    public static func writeFile(_ path: String, _ data: Data) throws -> String {
        let f = try OutputFile(path: path)
        try f.write(data)
        return try f.finish()
    }

    /// SHA-256 of a file, read with pread in 4 MiB chunks (a file changed meanwhile is an error).
    public static func sha256(ofFile path: String) throws -> String {
        var h = SHA256()
        try InputFile(path: path).forEachChunk { h.update($0) }
        return h.finalizeHex()
    }
}
