import Foundation
import Testing

@testable import Compute

/// The size-budget allocator (`GGUFBudget`): its choice against exhaustive search, its refusal of
/// what cannot fit, and the measured errors it chooses from.
@Suite struct GGUFBudgetTests {
    /// The least summed error within `limit` over every combination (nil when none fits).
    static func exhaustive(_ items: [GGUFBudget.Item], limit: Int) -> Double? {
        var best: Double?
        func walk(_ i: Int, _ bytes: Int, _ error: Double) {
            guard bytes <= limit else { return }
            guard i < items.count else {
                if best == nil || error < best! { best = error }
                return
            }
            for o in items[i].options { walk(i + 1, bytes + o.bytes, error + o.error) }
        }
        walk(0, 0, 0)
        return best
    }

    static func randomItems(_ rng: inout SplitMix, count: Int) -> [GGUFBudget.Item] {
        (0..<count).map { i in
            let n = 1 + Int(rng.next() % 4)
            var bytes = 32 * (1 + Int(rng.next() % 8))
            var error = 1 + Double(rng.next() % 1000) / 10
            let options = (0..<n).map { _ -> GGUFBudget.Option in
                defer {
                    bytes += 32 * (1 + Int(rng.next() % 8))
                    error *= Double(rng.next() % 90 + 5) / 100
                }
                return GGUFBudget.Option(type: .q4_0, bytes: bytes, error: error)
            }
            return GGUFBudget.Item(name: "t\(i)", options: options.shuffled(using: &rng))
        }
    }

    @Test func choiceMatchesExhaustiveSearchWithinTheLimit() throws {
        var rng = SplitMix(seed: 0xB0D6E7)
        for round in 0..<300 {
            let items = Self.randomItems(&rng, count: 1 + round % 6)
            let most = items.reduce(0) { $0 + $1.options.map(\.bytes).max()! }
            let limit = Int(rng.next() % UInt64(most + 64))
            let pick = GGUFBudget.choose(items, limit: limit)
            let best = Self.exhaustive(items, limit: limit)
            #expect((pick == nil) == (best == nil), "round \(round): feasibility")
            guard let pick, let best else { continue }
            let bytes = zip(items, pick).reduce(0) { $0 + $1.0.options[$1.1].bytes }
            let error = zip(items, pick).reduce(0.0) { $0 + $1.0.options[$1.1].error }
            #expect(bytes <= limit, "round \(round): \(bytes) bytes over \(limit)")
            #expect(abs(error - best) <= 1e-9 * best, "round \(round): error \(error), best \(best)")
        }
    }

    @Test func largeBudgetsStayWithinTheLimitAndLeaveNoAffordableUpgrade() throws {
        // Sizes of megabytes: bytes are counted in units of limit/65,536, then topped up exactly.
        var rng = SplitMix(seed: 42)
        let items = (0..<200).map { i in
            GGUFBudget.Item(
                name: "t\(i)",
                options: GGUFBudget.types.map { ty in
                    let bytes = ty.byteCount(numel: 576 * 1536, rowLength: 1536)!
                    let noise = Double(rng.next() % 100) / 100
                    return GGUFBudget.Option(type: ty, bytes: bytes, error: (1 + noise) / Double(bytes * bytes))
                })
        }
        let lowest = items.reduce(0) { $0 + $1.options.map(\.bytes).min()! }
        let highest = items.reduce(0) { $0 + $1.options.map(\.bytes).max()! }
        for limit in [lowest, (lowest + highest) / 3, highest - 1, highest] {
            let pick = try #require(GGUFBudget.choose(items, limit: limit))
            let bytes = zip(items, pick).reduce(0) { $0 + $1.0.options[$1.1].bytes }
            #expect(bytes <= limit, "\(bytes) bytes for a limit of \(limit)")
            // Nothing left over could buy any matrix a better type.
            for (item, k) in zip(items, pick) {
                let now = item.options[k]
                let affordable = item.options.filter { $0.error < now.error && $0.bytes - now.bytes <= limit - bytes }
                #expect(
                    affordable.isEmpty, "\(item.name) could take \(affordable.map(\.type)) in \(limit - bytes) bytes")
            }
        }
        #expect(GGUFBudget.choose(items, limit: lowest - 1) == nil)
    }

    @Test func measuredErrorsFallAsTypesGainBits() throws {
        var rng = SplitMix(seed: 7)
        let rows = 600
        let cols = 512
        let w: [Float] = (0..<rows * cols).map { _ -> Float in Float(Double(rng.next() % 20001) / 10000 - 1) }
        let types: [GGMLType] = [.q2_K, .q3_K, .q4_0, .q5_0, .q6_K, .q8_0, .f16]
        let errors = w.withUnsafeBufferPointer {
            GGUFBudget.errors($0, rows: rows, cols: cols, importance: nil, types: types, threads: 2)
        }
        #expect(zip(errors, errors.dropFirst()).allSatisfy { $0 > $1 }, "\(errors)")
        // Columns weighted ten times cost ten times as much (Q8_0 rounds the same whatever the weights).
        let weighted = w.withUnsafeBufferPointer {
            GGUFBudget.errors(
                $0, rows: rows, cols: cols, importance: [Float](repeating: 10, count: cols), types: [.q8_0],
                threads: 1)
        }
        #expect(abs(weighted[0] / errors[5] - 10) < 1e-3, "\(weighted[0]) against \(errors[5])")
    }

    /// A weight past F16's range (SmolLM2-like fixtures plant such outliers) rules F16 out for its matrix,
    /// found in whichever row it sits; the block types, whose scales stay small, still hold it.
    @Test func aTypeThatCannotHoldTheExtremeRowsIsNoOption() {
        let rows = 8
        let cols = 256
        var w = (0..<(rows * cols)).map { Float(($0 * 37) % 19) / 19 - 0.5 }
        w[5 * cols + 17] = 70_000
        w[2 * cols + 3] = -3
        w.withUnsafeBufferPointer { b in
            let extremes = GGUFBudget.extremeRows(b, cols: cols)
            #expect(extremes == [5, 2])
            #expect(!GGUFBudget.represents(b, rows: extremes, cols: cols, type: .f16, importance: nil))
            for type in [GGMLType.q8_0, .q4_0, .q4_K, .q6_K] {
                #expect(GGUFBudget.represents(b, rows: extremes, cols: cols, type: type, importance: nil), "\(type)")
            }
            #expect(GGUFBudget.represents(b, rows: [0, 1], cols: cols, type: .f16, importance: nil))
        }
    }
}
