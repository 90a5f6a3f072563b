import Foundation

/// Runs a sink (hash and write) on a thread of its own, so the next tensor is computed while the
/// last one is written: writes are copied into 4 MiB chunks and queued, at most `limit` (32 MiB)
/// waiting: 36 MiB of memory per file at most. The sink's first error is kept, later chunks
/// dropped, and thrown by the next `submit` or by `drain`.
final class WriteBehind: @unchecked Sendable {
    private let cond = NSCondition()
    private var queue = [UnsafeMutableRawBufferPointer]()
    private var queued = 0
    private var stopping = false, finished = false
    private var failure: Error?
    private var staging: UnsafeMutableRawBufferPointer?
    private var staged = 0
    static let chunk = 4 << 20, limit = 32 << 20

    init(name: String, sink: @escaping (UnsafeRawBufferPointer) throws -> Void) {
        let thread = Thread { [self] in run(sink) }
        thread.name = name
        thread.start()
    }

    private func run(_ sink: (UnsafeRawBufferPointer) throws -> Void) {
        while true {
            cond.lock()
            while queue.isEmpty && !stopping { cond.wait() }
            if queue.isEmpty {
                finished = true
                cond.broadcast()
                cond.unlock()
                return
            }
            let buf = queue.removeFirst()
            let failed = failure != nil
            cond.unlock()
            var err: Error?
            if !failed { do { try sink(UnsafeRawBufferPointer(buf)) } catch { err = error } }
            buf.deallocate()
            cond.lock()
            queued -= buf.count
            if let err, failure == nil { failure = err }
            cond.broadcast()
            cond.unlock()
        }
    }

    /// Copies `bytes` into the queue (waits while `limit` bytes are queued); throws the sink's error, if any.
    func submit(_ bytes: UnsafeRawBufferPointer) throws {
        var off = 0
        while off < bytes.count {
            if staging == nil {
                staging = .allocate(byteCount: Self.chunk, alignment: 64)
                staged = 0
            }
            let n = min(staging!.count - staged, bytes.count - off)
            UnsafeMutableRawBufferPointer(rebasing: staging![staged..<(staged + n)]).copyMemory(
                from: UnsafeRawBufferPointer(rebasing: bytes[off..<(off + n)]))
            staged += n
            off += n
            if staged == staging!.count { enqueue() }
        }
        cond.lock()
        defer { cond.unlock() }
        if let failure { throw failure }
    }

    private func enqueue() {
        guard let s = staging, staged > 0 else { return }
        staging = nil
        let buf = UnsafeMutableRawBufferPointer(rebasing: s[0..<staged])
        cond.lock()
        defer { cond.unlock() }
        while queued + buf.count > Self.limit && failure == nil { cond.wait() }
        queue.append(buf)
        queued += buf.count
        cond.broadcast()
    }

    /// Writes what is staged, waits for the thread to finish; throws the sink's error, if any.
    func drain() throws {
        enqueue()
        cond.lock()
        defer { cond.unlock() }
        stopping = true
        cond.broadcast()
        while !finished { cond.wait() }
        if let failure { throw failure }
    }

    /// Stops without writing what is still staged (the file is being abandoned).
    func abandon() {
        staging?.deallocate()
        staging = nil
        cond.lock()
        if failure == nil { failure = CancellationError() }
        stopping = true
        cond.broadcast()
        cond.unlock()
    }
}
