import Foundation

/// The size table a BitStack export writes beside its stack (`stack-sizes.json`): what `--size`
/// loads from the smallest model to the whole stack, every quarter bit per weight between.
public enum StackSizeTable {
    /// One loadable size: the `--size` value that loads it, its bytes and bits per weight, the blocks
    /// loaded and the output error they leave (the sum of each matrix's recorded error).
    struct Row: Equatable {
        var size: String
        var bytes: Int
        var bitsPerWeight: Double
        var blocks: Int
        var error: Double
    }

    /// The rows of `order`: its smallest model, the longest prefix within each quarter bit per weight
    /// above it (once per distinct prefix), and the whole stack.
    static func rows(_ order: StackOrder, step: Double = 0.25) -> [Row] {
        var next = order.matrices.map { _ in 1 }
        var stack = order.matrices.reduce(0) { $0 + $1.fixedBytes + $1.blockBytes }
        var error = order.matrices.reduce(0.0) { $0 + Double($1.errors[0]) }
        var blocks = order.matrices.count
        func bpw(_ stackBytes: Int) -> Double { order.measure(stackBytes: stackBytes).bpw }
        func row(_ size: String) -> Row {
            let (bytes, bpw) = order.measure(stackBytes: stack)
            return Row(size: size, bytes: bytes, bitsPerWeight: bpw, blocks: blocks, error: error)
        }
        var rows = [row(String(order.measure(stackBytes: stack).bytes))]
        var limit = ((bpw(stack) / step).rounded(.down) + 1) * step
        for b in order.steps {
            let m = order.matrices[b]
            let grown = stack + m.blockBytes
            while bpw(grown) > limit {
                if rows.last?.blocks != blocks { rows.append(row(String(format: "%gbpw", limit))) }
                limit += step
            }
            stack = grown
            error += Double(m.errors[next[b]]) - Double(m.errors[next[b] - 1])
            next[b] += 1
            blocks += 1
        }
        if rows.last?.blocks != blocks { rows.append(row(String(order.measure(stackBytes: stack).bytes))) }
        return rows
    }

    /// Writes the table of the stack at `stack` into `dir` and returns its record.
    static func write(stack: String, in dir: String) throws -> OutputRecord {
        let file = try CompressedFile(reader: SafeTensorsReader(path: stack))
        guard let order = file.stackOrder else {
            throw ComputeError(.corruptHeader, "the stack holds no BitStack tensor", file: stack)
        }
        let rows = rows(order).map { r -> [String: Any] in
            [
                "size": r.size, "bytes": r.bytes, "bits_per_weight": r.bitsPerWeight, "blocks": r.blocks,
                "error": r.error
            ]
        }
        let table: [String: Any] = [
            "file": (stack as NSString).lastPathComponent,
            "blocks": order.matrices.reduce(0) { $0 + $1.errors.count }, "sizes": rows
        ]
        let data = try JSONSerialization.data(withJSONObject: table, options: [.sortedKeys, .prettyPrinted])
        let name = CompressedLayout.sizeTableName
        let sha = try FileOps.writeFile(dir + "/" + name, data)
        return OutputRecord(path: name, bytes: Int64(data.count), sha256: sha, format: "stack-sizes")
    }
}
