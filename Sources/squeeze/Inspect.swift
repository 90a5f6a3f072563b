import ArgumentParser
import Compute
import Foundation
import Queue

struct Inspect: ParsableCommand {
    static let configuration = CommandConfiguration(abstract: "List a model's tensors: dtype, shape, sparsity, bytes.")

    @Argument(help: "A .safetensors file, sharded index, or model directory.")
    var path: String

    @Flag(name: .long, help: "Print JSON.")
    var json = false

    func run() throws {
        try oneLine {
            if path.hasSuffix(".gguf") { return try inspectGGUF() }
            let source = try ModelSource(path: path)
            var rows = [[String: Any]]()
            var count = 0
            for shard in source.shards {
                let r = try SafeTensorsReader(path: shard.path)
                for t in r.tensors {
                    let zeros = try r.withData(t) { DTypeCodec.zeroCount($0, dtype: t.dtype) } ?? 0
                    let sparsity = t.numel == 0 ? 0.0 : Double(zeros) / Double(t.numel)
                    count += 1
                    if json {
                        rows.append([
                            "shard": shard.name, "name": t.name, "dtype": t.dtype.rawValue, "shape": t.shape,
                            "bytes": t.byteCount,
                            "sparsity": sparsity
                        ])
                    } else {
                        print(
                            "\(TextRules.display(t.name))  \(t.dtype.rawValue)  "
                                + "\(t.shape.map(String.init).joined(separator: "x"))  \(t.byteCount) B  "
                                + "sparsity=\(String(format: "%.4f", sparsity))"
                        )
                    }
                }
            }
            if json {
                printJSON(["tensors": rows])
                return
            }
            print("\(count) tensors")
        }
    }

    private func inspectGGUF() throws {
        let r = try GGUFReader(path: path)
        if json {
            printJSON([
                "version": Int(r.version),
                "metadata": Dictionary(r.metadata.map { ($0.0, $0.1.summary) }, uniquingKeysWith: { a, _ in a }),
                "tensors": r.tensors.map {
                    ["name": $0.name, "type": $0.type.name, "dims": $0.dims, "bytes": $0.byteCount] as [String: Any]
                }
            ])
            return
        }
        print("GGUF v\(r.version), \(r.tensors.count) tensors, alignment \(r.alignment)")
        for (k, v) in r.metadata { print("  \(TextRules.display(k)) = \(v.summary)") }
        for t in r.tensors {
            print(
                "\(TextRules.display(t.name))  \(t.type.name)  \(t.dims.map(String.init).joined(separator: "x"))  "
                    + "\(t.byteCount) B"
            )
        }
    }
}
