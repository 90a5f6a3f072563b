import Foundation

/// The CPU time of every process a test starts, appended to `SQUEEZE_TEST_CPU_LOG` when that is set
/// (ops/test sums it per suite and prints the costliest). Swift Testing runs tests concurrently, so
/// their wall times say little; the CPU their processes use is what a suite costs.
enum CPUTimeLog {
    /// Who started a process: the running test's id ("Module.Suite/test()") and the program.
    struct Label: Sendable {
        let test: String
        let executable: String
    }

    private static let lock = NSLock()

    /// Appends one tab-separated line: test, CPU seconds (user + system), wall seconds, program.
    static func record(_ label: Label, usage: rusage, wall: Double) {
        record(label, cpu: seconds(usage.ru_utime) + seconds(usage.ru_stime), wall: wall)
    }

    /// Appends one line for a process whose CPU seconds (user + system) are known.
    static func record(_ label: Label, cpu: Double, wall: Double) {
        guard let path = ProcessInfo.processInfo.environment["SQUEEZE_TEST_CPU_LOG"] else { return }
        let program = (label.executable as NSString).lastPathComponent
        let line = "\(label.test)\t\(String(format: "%.2f", cpu))\t\(String(format: "%.2f", wall))\t\(program)\n"
        // Appending mode: the two CLI test processes write to the same file, a line at a time.
        lock.withLock {
            guard let file = fopen(path, "a") else { return }
            fputs(line, file)
            fclose(file)
        }
    }

    private static func seconds(_ t: timeval) -> Double { Double(t.tv_sec) + Double(t.tv_usec) / 1e6 }
}
