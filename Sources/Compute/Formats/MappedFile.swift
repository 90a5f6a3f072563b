import Foundation

/// A read-only memory map of a whole file, unmapped on deinit.
public final class MappedFile: @unchecked Sendable {
    public let path: String
    public let size: Int
    private let base: UnsafeMutableRawPointer?

    public init(path: String) throws {
        self.path = path
        let fd = open(path, O_RDONLY | O_CLOEXEC)
        guard fd >= 0 else { throw ComputeError(errno == ENOENT ? .notFound : .io, "cannot open: \(String(cString: strerror(errno)))", file: path) }
        defer { close(fd) }
        var st = stat()
        guard fstat(fd, &st) == 0 else { throw ComputeError(.io, "cannot stat: \(String(cString: strerror(errno)))", file: path) }
        guard (st.st_mode & S_IFMT) == S_IFREG else { throw ComputeError(.io, "not a regular file", file: path) }
        size = Int(st.st_size)
        if size == 0 {
            base = nil
            return
        }
        let p = mmap(nil, size, PROT_READ, MAP_PRIVATE, fd, 0)
        guard let p, p != MAP_FAILED else { throw ComputeError(.io, "cannot map: \(String(cString: strerror(errno)))", file: path) }
        madvise(p, size, MADV_SEQUENTIAL)
        base = p
    }

    deinit { if let b = base { munmap(b, size) } }

    /// The mapped bytes.
    public var bytes: UnsafeRawBufferPointer { UnsafeRawBufferPointer(start: base, count: size) }

    /// Tells the kernel a range is no longer needed (keeps resident memory bounded while streaming).
    public func release(offset: Int, count: Int) {
        guard let b = base, count > 0 else { return }
        let page = Int(sysconf(Int32(_SC_PAGESIZE)))
        let start = (offset / page) * page
        let end = min(size, offset + count)
        if end > start { madvise(b + start, end - start, MADV_DONTNEED) }
    }
}
