import Foundation

/// Set once by SIGTERM/SIGINT (or a test); read by every loop.
public final class StopFlag: @unchecked Sendable {
    private let lock = NSLock()
    private var stopped = false
    private var sources = [DispatchSourceSignal]()

    public init() {}

    public var isSet: Bool { lock.withLock { stopped } }
    public func set() { lock.withLock { stopped = true } }

    /// Turns SIGTERM and SIGINT into `set()`; a second SIGINT exits at once.
    public func installSignalHandlers(log: Log) {
        for sig in [SIGTERM, SIGINT] {
            signal(sig, SIG_IGN)
            let src = DispatchSource.makeSignalSource(signal: sig, queue: .global())
            src.setEventHandler { [weak self] in
                guard let self else { return }
                if self.isSet && sig == SIGINT {
                    log.warning("second interrupt: exiting now")
                    exit(130)
                }
                log.info("signal received: draining", ("signal", sig == SIGTERM ? "TERM" : "INT"))
                self.set()
            }
            src.resume()
            sources.append(src)
        }
    }
}
