import Compute
import Testing

@Suite struct PruningTests {
    func random(_ n: Int, seed: UInt64) -> [Float] {
        var r = SplitMix(seed: seed)
        return (0..<n).map { _ in r.gaussian() }
    }

    func pruned(_ x: [Float], k: Int, threads: Int) -> [Float] {
        var y = x
        y.withUnsafeMutableBufferPointer { MagnitudePruning.prune($0, k: k, threads: threads) }
        return y
    }

    @Test(arguments: [1, 7, 1000, 65_536, 200_003])
    func exactCountAndSmallestMagnitudes(n: Int) {
        let x = random(n, seed: UInt64(n))
        for s in [0.0, 0.25, 0.5, 0.9] {
            let k = MagnitudePruning.pruneCount(sparsity: s, numel: n)
            let y = pruned(x, k: k, threads: 2)
            #expect(y.filter { $0 == 0 }.count == k)
            let keptMin: Float = zip(x, y).filter { (_, b) in b != 0 }.map { (a, _) in abs(a) }.min() ?? .infinity
            let prunedMax: Float = zip(x, y).filter { (_, b) in b == 0 }.map { (a, _) in abs(a) }.max() ?? 0
            #expect(prunedMax <= keptMin)
            #expect(zip(x, y).allSatisfy { $0.1 == 0 || $0.0 == $0.1 })
        }
    }

    @Test func identicalForAnyThreadCount() {
        let x = random(300_000, seed: 3).map { ($0 * 8).rounded() / 8 }  // many ties
        let k = 150_000
        let y1 = pruned(x, k: k, threads: 1)
        for t in [2, 3, 8] { #expect(pruned(x, k: k, threads: t).map(\.bitPattern) == y1.map(\.bitPattern)) }
    }

    @Test func tiesBrokenByPosition() {
        let x: [Float] = [1, -1, 1, 2, 1, -1]
        #expect(pruned(x, k: 2, threads: 1) == [0, 0, 1, 2, 1, -1])
        #expect(pruned(x, k: 5, threads: 2) == [0, 0, 0, 2, 0, 0])
    }

    @Test func nanIsNeverPrunedAndZerosCount() {
        let x: [Float] = [.nan, 0, -0.0, 3, -.infinity, 1e-40, 2]
        let y = pruned(x, k: 4, threads: 1)
        #expect(y[0].isNaN)
        #expect(y[4] == -.infinity)
        #expect(y.filter { $0 == 0 }.count == 4)
        #expect(y[6] == 0)  // 2 < 3 < inf < NaN
        #expect(pruned([0, 0, 0], k: 3, threads: 1) == [0, 0, 0])
    }

    @Test func pruneCountRoundsHalfAway() {
        #expect(MagnitudePruning.pruneCount(sparsity: 0.5, numel: 5) == 3)
        #expect(MagnitudePruning.pruneCount(sparsity: 0.5, numel: 4) == 2)
        #expect(MagnitudePruning.pruneCount(sparsity: 0, numel: 4) == 0)
    }

    @Test func nmKeepsLargestNOfEveryM() {
        let x: [Float] = [1, -4, 3, 2, 5, 5, 5, 5, 0.5, -0.25, 0, 9]
        var y = x
        y.withUnsafeMutableBufferPointer { MagnitudePruning.pruneNM($0, n: 2, m: 4, threads: 2) }
        #expect(y == [0, -4, 3, 0, 0, 0, 5, 5, 0.5, 0, 0, 9])
        let big = random(4096 * 4, seed: 11)
        var a = big, b = big
        a.withUnsafeMutableBufferPointer { MagnitudePruning.pruneNM($0, n: 2, m: 4, threads: 1) }
        b.withUnsafeMutableBufferPointer { MagnitudePruning.pruneNM($0, n: 2, m: 4, threads: 2) }
        #expect(a == b)
        for g in stride(from: 0, to: a.count, by: 4) { #expect(a[g..<(g + 4)].filter { $0 == 0 }.count == 2) }
    }
}
