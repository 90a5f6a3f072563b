import ArgumentParser
import Compute
import Foundation

/// Prints the per-step sparsities of a gradual (cubic) pruning schedule.
struct Schedule: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Print the cubic (Zhu & Gupta) sparsity of each step of a gradual pruning schedule.")

    @Option(name: .long, help: "Final sparsity, in [0, 1).")
    var sparsity: Double

    @Option(name: .long, help: "Number of steps (1-1000).")
    var steps: Int

    @Option(name: .long, help: "Sparsity before the first step.")
    var initial: Double = 0

    @Flag(name: .long, help: "Print JSON.")
    var json = false

    func run() throws {
        try oneLine {
            guard sparsity >= 0 && sparsity < 1 else { throw CLIError("--sparsity \(sparsity) is not in [0, 1)") }
            guard (1...1000).contains(steps) else { throw CLIError("--steps \(steps) is not in [1, 1000]") }
            guard initial >= 0 && initial <= sparsity else {
                throw CLIError("--initial \(initial) is not in [0, --sparsity]")
            }
            let s = CubicSchedule(initial: initial, final: sparsity, steps: steps)
            if json {
                printJSON(["initial": initial, "final": sparsity, "steps": s.targets])
            } else {
                for (i, v) in s.targets.enumerated() {
                    print("step \(i + 1)/\(steps)  sparsity \(String(format: "%.6f", v))")
                }
            }
        }
    }
}
