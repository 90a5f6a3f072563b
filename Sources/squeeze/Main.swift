import Foundation

/// Entry point: checks the CPU can run this build, then hands over to the command parser.
@main
enum Main {
    static func main() {
        CPUCheck.requireBuildFeatures()
        Squeeze.main()
    }
}

/// Refuses to start on a CPU that lacks the instruction set the kernels were compiled for.
enum CPUCheck {
    static let required = ["avx2", "fma", "f16c", "bmi2"]

    static func requireBuildFeatures() {
        #if SQUEEZE_X86_64_V3 && arch(x86_64)
            guard let info = try? String(contentsOfFile: "/proc/cpuinfo", encoding: .utf8),
                let line = info.split(separator: "\n").first(where: { $0.hasPrefix("flags") })
            else { return }
            let flags = Set(line.split(separator: " ").map(String.init))
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
}
