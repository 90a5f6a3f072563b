import Foundation

/// A GGUF export's per-matrix types under a file-size budget (`budget:` or `bpw:`): among the types
/// each matrix's rows can hold, the assignment with the least predicted loss whose whole file fits.
/// The predicted loss is the sum over matrices of their importance-weighted squared error
/// Σ_c m_c Σ_r (w − q(w))², m_c the importance matrix's mean square of input column c (the matrix's
/// output error per token under a diagonal Hessian; m = 1 without an importance matrix), measured
/// by each type's own quantizer on up to `sampleRows` rows spread over the matrix. A type that cannot hold
/// the matrix's extreme rows finitely is no option for it (F32 is, when no type can).
enum GGUFBudget {
    /// The types a budget chooses among (those whose blocks the rows fill).
    static let types: [GGMLType] = [
        .q2_K, .q3_K, .iq4_xs, .q4_0, .iq4_nl, .q4_1, .q4_K, .q5_0, .q5_1, .q5_K, .q6_K, .q8_0, .f16
    ]
    static let sampleRows = 64
    static let alignment = 32

    /// A type one matrix may take: its bytes (padded to the alignment) and predicted error.
    struct Option: Equatable {
        let type: GGMLType
        let bytes: Int
        let error: Double
    }

    /// One matrix and its options.
    struct Item {
        let name: String
        let options: [Option]
    }

    /// `general.file_type` of a budgeted file: llama.cpp's file type of the type that holds the most values.
    static func fileType(_ slot: ExportSlot, pieces: [TensorInfo]) -> UInt32 {
        var values = [GGMLType: Int]()
        for p in pieces where p.shape.count >= 2 { values[slot.ggufType(p), default: 0] += p.numel }
        let most = values.max { $0.value != $1.value ? $0.value < $1.value : $0.key.rawValue > $1.key.rawValue }?.key
        let named = ExportStage.GGUFType.allCases.first { $0.isTensorType && $0.ggml == most }
        return (named ?? .q8_0).fileType
    }

    /// The types rows of `cols` values can take.
    static func types(cols: Int) -> [GGMLType] { types.filter { cols % $0.block.count == 0 } }

    /// The rows holding a matrix's largest and its smallest value: the blocks whose range a type fails first.
    static func extremeRows(_ w: UnsafeBufferPointer<Float>, cols: Int) -> [Int] {
        var high = 0
        var low = 0
        for i in w.indices {
            if w[i] > w[high] { high = i }
            if w[i] < w[low] { low = i }
        }
        return high / cols == low / cols ? [high / cols] : [high / cols, low / cols]
    }

    /// Whether `type` encodes these rows of the matrix to finite values only: a value past F16's range, or a
    /// block whose fp16 scale or minimum overflows, decodes to infinity (`extremeRows` are the ones to give).
    static func represents(
        _ w: UnsafeBufferPointer<Float>, rows: [Int], cols: Int, type: GGMLType, importance: [Float]?
    ) -> Bool {
        let sample = rows.flatMap { r in Array(w[(r * cols)..<((r + 1) * cols)]) }
        return roundTrip(sample, cols: cols, type: type, importance: importance, threads: 1).allSatisfy(\.isFinite)
    }

    /// Rows of `cols` values encoded by `type`'s own quantizer and decoded back.
    static func roundTrip(_ sample: [Float], cols: Int, type: GGMLType, importance: [Float]?, threads: Int) -> [Float] {
        var encoded = [UInt8](repeating: 0, count: type.byteCount(numel: sample.count, rowLength: cols)!)
        var decoded = [Float](repeating: 0, count: sample.count)
        sample.withUnsafeBufferPointer { src in
            encoded.withUnsafeMutableBytes { dst in
                GGUFPlanner.encode(src, type: type, into: dst, importance: importance, threads: threads)
            }
        }
        encoded.withUnsafeBytes { src in
            decoded.withUnsafeMutableBufferPointer { GGUFPlanner.decode(src, type: type, into: $0) }
        }
        return decoded
    }

    static func padded(_ n: Int) -> Int { (n + alignment - 1) / alignment * alignment }

    /// The option index per item that minimises the summed error with summed bytes ≤ `limit`; nil
    /// when even each item's smallest option does not fit. Exact over bytes counted in units of
    /// ⌈limit / 65,536⌉ (a dynamic program over items), then topped up, by error saved per byte, with
    /// the bytes the rounding left.
    static func choose(_ items: [Item], limit: Int) -> [Int]? {
        let smallest = items.map { item in item.options.indices.min { item.options[$0].bytes < item.options[$1].bytes }!
        }
        var used = zip(items, smallest).reduce(0) { $0 + $1.0.options[$1.1].bytes }
        guard used <= limit else { return nil }
        var pick = program(items, limit: limit) ?? smallest
        used = zip(items, pick).reduce(0) { $0 + $1.0.options[$1.1].bytes }
        while true {
            var best: (item: Int, option: Int, gain: Double)?
            for (i, item) in items.enumerated() {
                let now = item.options[pick[i]]
                for (k, o) in item.options.enumerated() where o.error < now.error && o.bytes - now.bytes <= limit - used
                {
                    let gain = (now.error - o.error) / Double(max(o.bytes - now.bytes, 1))
                    if best == nil || gain > best!.gain { best = (i, k, gain) }
                }
            }
            guard let b = best else { return pick }
            used += items[b.item].options[b.option].bytes - items[b.item].options[pick[b.item]].bytes
            pick[b.item] = b.option
        }
    }

    /// The dynamic program: least summed error per used capacity, item by item, then the choices back.
    private static func program(_ items: [Item], limit: Int) -> [Int]? {
        let unit = max(1, (limit + 65_535) / 65_536)
        let capacity = limit / unit
        var best = [Double](repeating: .infinity, count: capacity + 1)
        best[0] = 0
        var choice = [[UInt8]]()
        choice.reserveCapacity(items.count)
        for item in items {
            var next = [Double](repeating: .infinity, count: capacity + 1)
            var took = [UInt8](repeating: .max, count: capacity + 1)
            for (k, o) in item.options.enumerated() {
                let w = (o.bytes + unit - 1) / unit
                guard w <= capacity else { continue }
                for c in w...capacity where best[c - w] + o.error < next[c] {
                    next[c] = best[c - w] + o.error
                    took[c] = UInt8(k)
                }
            }
            best = next
            choice.append(took)
        }
        guard let end = best.indices.min(by: { best[$0] < best[$1] }), best[end].isFinite else { return nil }
        var c = end
        var out = [Int](repeating: 0, count: items.count)
        for i in items.indices.reversed() {
            let k = Int(choice[i][c])
            out[i] = k
            c -= (items[i].options[k].bytes + unit - 1) / unit
        }
        return out
    }

    /// Each type's predicted error for a matrix of `rows` × `cols` values (`importance`: one mean
    /// square per column, or nil for unit weights), from up to `sampleRows` evenly spread rows.
    static func errors(
        _ w: UnsafeBufferPointer<Float>, rows: Int, cols: Int, importance: [Float]?, types: [GGMLType], threads: Int
    ) -> [Double] {
        let n = min(rows, sampleRows)
        var sample = [Float](repeating: 0, count: n * cols)
        for i in 0..<n {
            let r = i * rows / n
            for c in 0..<cols { sample[i * cols + c] = w[r * cols + c] }
        }
        let weight = importance ?? [Float](repeating: 1, count: cols)
        return types.map { type in
            let decoded = roundTrip(sample, cols: cols, type: type, importance: importance, threads: threads)
            var sum = 0.0
            for i in 0..<n {
                for c in 0..<cols {
                    let d = Double(sample[i * cols + c] - decoded[i * cols + c])
                    sum += Double(weight[c]) * d * d
                }
            }
            return sum * Double(rows) / Double(n)
        }
    }
}
