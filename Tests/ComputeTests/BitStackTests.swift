@testable import Compute
import Foundation
import Testing

@Suite struct BitStackTests {
    static func problem(rows: Int = 48, cols: Int = 96, seed: UInt64 = 3) -> ([Float], [Float]) {
        var rng = SplitMix(seed: seed)
        let w = (0..<(rows * cols)).map { _ in rng.gaussian() }
        let ms = (0..<cols).map { j in Float(0.1 + Double(j % 7)) }
        return (w, ms)
    }

    static func run(_ w: [Float], _ ms: [Float], rows: Int, cols: Int, blocks: Int, rank: Int) throws -> ([Float], BitStack.Result) {
        var q = w
        let r = try q.withUnsafeMutableBufferPointer {
            try BitStack.decompose($0, rows: rows, cols: cols, meanSquares: ms, blocks: blocks, rank: rank, tensor: "w")
        }
        return (q, r)
    }

    /// Each block lowers the recorded output error, the recorded error is the decoded prefix's, and the
    /// work buffer holds the whole stack's decoded values.
    @Test func blocksLowerTheErrorTheyRecord() throws {
        let (w, ms) = Self.problem()
        let (q, r) = try Self.run(w, ms, rows: 48, cols: 96, blocks: 6, rank: 4)
        #expect(BitStack.decode(r, count: 6, rows: 48, cols: 96, rank: 4) == q)
        for k in 1..<6 { #expect(r.errors[k] < r.errors[k - 1], "block \(k): \(r.errors)") }
        for k in [1, 3, 6] {
            let d = BitStack.decode(r, count: k, rows: 48, cols: 96, rank: 4)
            var e = 0.0
            for i in 0..<48 { for j in 0..<96 { e += Double(ms[j]) * pow(Double(w[i * 96 + j] - d[i * 96 + j]), 2) } }
            #expect(abs(e - Double(r.errors[k - 1])) <= 1e-3 * e, "\(k) blocks: \(e) against \(r.errors[k - 1])")
        }
        for book in r.u + r.v + [r.scales] { #expect(book.allSatisfy { Float(Float16($0)) == $0 }) }
    }

    /// A full stack of 16 rank-8 blocks reconstructs the weights within 1% of their activation-weighted energy.
    @Test func aFullStackReconstructsTheWeights() throws {
        let (w, ms) = Self.problem()
        let (_, r) = try Self.run(w, ms, rows: 48, cols: 96, blocks: 16, rank: 8)
        var energy = 0.0
        for i in 0..<48 { for j in 0..<96 { energy += Double(ms[j]) * Double(w[i * 96 + j] * w[i * 96 + j]) } }
        #expect(Double(r.errors[15]) < 0.01 * energy, "\(r.errors[15]) of \(energy)")
    }

    /// The loading order: every matrix keeps its first block, blocks are taken by error removed per byte,
    /// a size takes the longest prefix within it, and a size below the smallest model is refused with the range.
    @Test func sizesTakeThePrefixThatFits() throws {
        let m = [
            StackOrder.Matrix(name: "b", numel: 800, fixedBytes: 10, blockBytes: 100, errors: [100, 10, 9, 8]),
            StackOrder.Matrix(name: "a", numel: 800, fixedBytes: 10, blockBytes: 100, errors: [50, 30, 5, 1]),
        ]
        let order = StackOrder(m, otherBytes: 1000)
        #expect(order.matrices.map(\.name) == ["a", "b"])
        // Error removed per byte of each matrix's next block: b 0.9; then a 0.2, 0.25, 0.04 before b's 0.01, 0.01.
        #expect(order.steps == [1, 0, 0, 0, 1, 1], "\(order.steps)")
        #expect(try order.counts(.bytes(1220), file: "f") == [1, 1])
        #expect(try order.counts(.bytes(1320), file: "f") == [1, 2])
        #expect(try order.counts(nil, file: "f") == [4, 4])
        #expect(throws: ComputeError.self) { try order.counts(.bytes(1000), file: "f") }
        let bpw = order.measure([2, 2]).bpw
        #expect(abs(bpw - Double((10 + 200) * 2 * 8) / 1600) < 1e-12)
    }

    @Test func sizeTextsParse() {
        #expect(StackSize("60MB") == .bytes(60 << 20))
        #expect(StackSize("3bpw") == .bitsPerWeight(3))
        #expect(StackSize("2.5BPW") == .bitsPerWeight(2.5))
        #expect(StackSize("-1bpw") == nil && StackSize("lots") == nil)
    }
}
