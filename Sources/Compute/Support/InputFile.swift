import Foundation

/// A regular file opened for reading with `pread` into memory the caller owns — never mapped, so
/// a file truncated or rewritten while it is read gives an `inputChanged` error, not SIGBUS.
///
/// Opening never blocks: the file is opened with `O_NONBLOCK` and refused unless `fstat` says it
/// is a regular file (a FIFO, socket, device or directory is named as such).
public final class InputFile: @unchecked Sendable {
    public let path: String
    /// Size and modification time at open; each read checks the file still matches (the inode
    /// cannot change under an open descriptor).
    public let size: Int
    private let fd: Int32
    private let mtime: timespec

    /// Opens `path`; `what` names the file's role in errors ("model", "recipe", "dataset"...).
    public init(path: String, what: String = "file") throws {
        self.path = path
        let fd = open(path, O_RDONLY | O_CLOEXEC | O_NONBLOCK | O_NOCTTY)
        guard fd >= 0 else {
            let e = errno
            throw ComputeError(
                e == ENOENT || e == ENOTDIR ? .notFound : .io, "cannot open \(what): \(String(cString: strerror(e)))",
                file: path)
        }
        var st = stat()
        guard fstat(fd, &st) == 0 else {
            let e = errno
            close(fd)
            throw ComputeError(.io, "cannot stat \(what): \(String(cString: strerror(e)))", file: path)
        }
        guard (st.st_mode & S_IFMT) == S_IFREG else {
            close(fd)
            throw ComputeError(.notRegularFile, "\(what) is \(Self.kind(st.st_mode)), not a regular file", file: path)
        }
        // Regular files never block on read; clear O_NONBLOCK anyway so reads behave plainly.
        _ = fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) & ~O_NONBLOCK)
        self.fd = fd
        size = Int(st.st_size)
        mtime = st.st_mtim
    }

    deinit { close(fd) }

    static func kind(_ mode: mode_t) -> String {
        switch mode & S_IFMT {
        case S_IFDIR: return "a directory"
        case S_IFIFO: return "a FIFO (named pipe)"
        case S_IFSOCK: return "a socket"
        case S_IFCHR: return "a character device"
        case S_IFBLK: return "a block device"
        case S_IFLNK: return "a symbolic link"
        default: return "not a regular file"
        }
    }

    /// Throws `inputChanged` if the file's size or modification time differ from those at open.
    public func checkUnchanged() throws {
        var st = stat()
        guard fstat(fd, &st) == 0 else {
            throw ComputeError(.io, "cannot stat: \(String(cString: strerror(errno)))", file: path)
        }
        if Int(st.st_size) != size || st.st_mtim.tv_sec != mtime.tv_sec || st.st_mtim.tv_nsec != mtime.tv_nsec {
            throw ComputeError(
                .inputChanged, "file changed while being read (size \(size) -> \(st.st_size) bytes, or modified)",
                file: path)
        }
    }

    /// Reads exactly `into.count` bytes at `offset`; a short read means the file shrank.
    public func read(at offset: Int, into buffer: UnsafeMutableRawBufferPointer) throws {
        var done = 0
        while done < buffer.count {
            let n = pread(fd, buffer.baseAddress! + done, buffer.count - done, off_t(offset + done))
            if n < 0 {
                if errno == EINTR { continue }
                throw ComputeError(
                    .io, "read failed at byte \(offset + done): \(String(cString: strerror(errno)))", file: path)
            }
            if n == 0 {
                throw ComputeError(
                    .inputChanged,
                    "file ended at byte \(offset + done) while reading \(buffer.count) bytes at \(offset): it was "
                        + "truncated or replaced while being read",
                    file: path)
            }
            done += n
        }
        try checkUnchanged()
    }

    /// Reads `count` bytes at `offset` into a new array.
    public func read(at offset: Int, count: Int) throws -> [UInt8] {
        guard count > 0 else { return [] }
        var out = [UInt8](repeating: 0, count: count)
        try out.withUnsafeMutableBytes { try read(at: offset, into: $0) }
        return out
    }

    /// Reads the whole file in order, `chunk` bytes at a time, handing each chunk to `body`
    /// (valid during the call only).
    public func forEachChunk(_ chunk: Int = 1 << 22, _ body: (UnsafeRawBufferPointer) throws -> Void) throws {
        let buf = UnsafeMutableRawBufferPointer.allocate(byteCount: chunk, alignment: 64)
        defer { buf.deallocate() }
        var off = 0
        while off < size {
            let part = UnsafeMutableRawBufferPointer(rebasing: buf[0..<min(chunk, size - off)])
            try read(at: off, into: part)
            try body(UnsafeRawBufferPointer(part))
            off += part.count
        }
    }

    /// Reads a tensor-sized range into a 64-byte-aligned buffer and passes it to `body`.
    public func withBytes<R>(at offset: Int, count: Int, _ body: (UnsafeRawBufferPointer) throws -> R) throws -> R {
        let p = UnsafeMutableRawPointer.allocate(byteCount: max(count, 1), alignment: 64)
        defer { p.deallocate() }
        let buf = UnsafeMutableRawBufferPointer(start: p, count: count)
        if count > 0 { try read(at: offset, into: buf) }
        return try body(UnsafeRawBufferPointer(buf))
    }

    /// Size limits for whole-file reads, by role.
    public static let recipeLimit = 1 << 20
    public static let manifestLimit = 64 << 20
    public static let configLimit = 64 << 20
    public static let datasetLimit = 1 << 30
    public static let modelFileLimit = 256 << 20

    /// Reads a whole small file (recipe, manifest, config, dataset), refusing one over `limit` bytes.
    public static func contents(of path: String, what: String, limit: Int) throws -> [UInt8] {
        let f = try InputFile(path: path, what: what)
        guard f.size <= limit else {
            throw ComputeError(.inputTooLarge, "\(what) is \(f.size) bytes, over the \(limit)-byte limit", file: path)
        }
        return try f.read(at: 0, count: f.size)
    }

    /// `contents(of:)` decoded as UTF-8.
    public static func text(of path: String, what: String, limit: Int) throws -> String {
        let bytes = try contents(of: path, what: what, limit: limit)
        guard let s = String(validating: bytes, as: UTF8.self) else {
            throw ComputeError(.corruptData, "\(what) is not UTF-8 text", file: path)
        }
        return s
    }
}

/// The first error raised on any of several threads, kept to be thrown on the calling thread.
final class FirstError: @unchecked Sendable {
    private let lock = NSLock()
    private var error: Error?

    func keep(_ e: Error) { lock.withLock { if error == nil { error = e } } }

    func rethrow() throws { if let e = lock.withLock({ error }) { throw e } }
}
