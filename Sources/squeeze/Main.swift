import Compute
import Foundation

/// Entry point: checks the CPU can run this build, then hands over to the command parser.
@main
enum Main {
    static func main() {
        CPUCheck.requireBuildFeatures()
        BLASCoreCheck.runWithNativeKernels()
        Squeeze.main()
    }
}

/// OpenBLAS 0.3.21 (Debian 12) does not know CPUs newer than itself (Intel family 6 model 207 among
/// them) and falls back to its Prescott (SSE3) kernels, about 4× slower than the AVX-512 ones. Where
/// the machine has not chosen a core (OPENBLAS_CORETYPE unset) and OpenBLAS picked such a generic
/// one, the process runs itself again with the best core the CPU's flags support.
enum BLASCoreCheck {
    static let generic: Set<String> = [
        "Unknown", "Katmai", "Coppermine", "Northwood", "Prescott", "Banias", "Atom", "Core2", "Penryn", "Dunnington",
        "Nehalem"
    ]

    /// The OpenBLAS core for a CPU with these /proc/cpuinfo flags (nil: none better than generic).
    static func core(for flags: Set<String>) -> String? {
        let skylakeX = ["avx512f", "avx512bw", "avx512vl", "avx512dq", "avx512cd"]
        if skylakeX.allSatisfy(flags.contains) { return flags.contains("avx512_bf16") ? "Cooperlake" : "SkylakeX" }
        if ["avx2", "fma"].allSatisfy(flags.contains) { return "Haswell" }
        return nil
    }

    static func runWithNativeKernels() {
        guard ProcessInfo.processInfo.environment["OPENBLAS_CORETYPE"] == nil,
            generic.contains(Manifest.blasCore),
            let core = core(for: CPUCheck.flags())
        else { return }
        setenv("OPENBLAS_CORETYPE", core, 1)
        execv("/proc/self/exe", CommandLine.unsafeArgv)
        // execv returned: it failed, so this process goes on with the generic kernels.
        unsetenv("OPENBLAS_CORETYPE")
    }
}

/// Refuses to start on a CPU that lacks the instruction set the kernels were compiled for.
enum CPUCheck {
    static let required = ["avx2", "fma", "f16c", "bmi2"]

    static func requireBuildFeatures() {
        #if SQUEEZE_X86_64_V3 && arch(x86_64)
            let flags = Self.flags()
            guard !flags.isEmpty else { return }
            let missing = required.filter { !flags.contains($0) }
            if !missing.isEmpty {
                let message =
                    "Error: this squeeze build needs a CPU with \(missing.joined(separator: ", ")) (x86-64 Haswell "
                    + "or later); rebuild with SQUEEZE_PORTABLE=1 swift build -c release\n"
                FileHandle.standardError.write(Data(message.utf8))
                exit(1)
            }
        #endif
    }

    /// The CPU's feature flags from /proc/cpuinfo (empty where it cannot be read).
    static func flags() -> Set<String> {
        guard let info = try? String(contentsOfFile: "/proc/cpuinfo", encoding: .utf8),
            let line = info.split(separator: "\n").first(where: { $0.hasPrefix("flags") })
        else { return [] }
        return Set(line.split(separator: " ").map(String.init))
    }
}
