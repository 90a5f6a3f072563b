import Foundation

/// Hashes the input shards (SHA-256, for the manifest) on a thread of its own while the units run:
/// a GGUF's units are decoded, and a calibrated run's come in forward order, so their bytes cannot
/// be hashed as they stream past. Reads go through `pread`, independent of the units' reads.
final class InputHasher: @unchecked Sendable {
    private let done = NSCondition()
    private var digests: Result<[String], Error>?
    private var stopped = false

    init(readers: [any TensorFile]) {
        let thread = Thread { [self] in
            let r = Result { () throws -> [String] in
                try readers.map { reader in
                    var h = SHA256()
                    try reader.hash(into: &h) { if self.isStopped { throw CancellationError() } }
                    return h.finalizeHex()
                }
            }
            done.lock()
            digests = r
            done.broadcast()
            done.unlock()
        }
        thread.name = "squeeze-input-hash"
        thread.start()
    }

    private var isStopped: Bool {
        done.lock()
        defer { done.unlock() }
        return stopped
    }

    /// Asks the thread to give up (the run failed or was cancelled); it stops at its next chunk.
    func stop() {
        done.lock()
        stopped = true
        done.unlock()
    }

    /// Each shard's digest, once the thread has read them all (rethrows its read error).
    func wait() throws -> [String] {
        done.lock()
        while digests == nil { done.wait() }
        defer { done.unlock() }
        return try digests!.get()
    }
}
