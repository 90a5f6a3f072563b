@testable import Compute
import Testing

/// The single-histogram fast path must choose exactly what the per-tensor path chooses whenever
/// no cap binds, and step aside (nil) when one does.
@Suite struct GlobalMagnitudeTests {
    func sources(_ tensors: [[Float]]) -> [GlobalMagnitude.Source] {
        tensors.map { t in
            GlobalMagnitude.Source(numel: t.count) { range, dst in
                t.withUnsafeBufferPointer { s in dst.baseAddress!.update(from: s.baseAddress! + range.lowerBound, count: range.count) }
            }
        }
    }

    func model(seed: UInt64, quantum: Float) -> [[Float]] {
        var r = SplitMix(seed: seed)
        return [70_000, 3, 131_072, 1, 65_537, 9_000].enumerated().map { i, n in
            (0..<n).map { _ in (r.gaussian() * Float(i + 1) / quantum).rounded() * quantum }
        }
    }

    @Test(arguments: [Float(1.0 / 64), 0.25, 4])
    func fastPathEqualsExactPathWithoutBindingCaps(quantum: Float) {
        let tensors = model(seed: 21, quantum: quantum)
        let src = sources(tensors)
        let total = tensors.reduce(0) { $0 + $1.count }
        for s in [0.01, 0.3, 0.5, 0.77, 0.999] {
            let k = MagnitudePruning.pruneCount(sparsity: s, numel: total)
            let caps = tensors.map(\.count)
            let exact = GlobalMagnitude.exactPlans(src, k: k, caps: caps, threads: 2)
            for t in [1, 2, 5] {
                let fast = GlobalMagnitude.uncappedPlans(src, k: k, caps: caps, threads: t)
                #expect(fast == exact, "sparsity \(s) threads \(t)")
            }
            #expect(exact.reduce(0) { $0 + $1.count } == k)
        }
    }

    @Test func bindingCapFallsBackToExactPath() {
        // Tensor 0 is tiny-valued: without its cap the global threshold would prune all of it.
        var r = SplitMix(seed: 5)
        let tensors: [[Float]] = [(0..<10_000).map { _ in r.gaussian() * 1e-3 }, (0..<10_000).map { _ in r.gaussian() }]
        let src = sources(tensors)
        let caps = [5_000, 10_000]
        #expect(GlobalMagnitude.uncappedPlans(src, k: 10_000, caps: caps, threads: 2) == nil)
        let plans = GlobalMagnitude.plans(src, k: 10_000, caps: caps, threads: 2)
        #expect(plans.map(\.count) == [5_000, 5_000])
        // A cap that is met exactly but not exceeded still lets the fast path answer.
        let met = GlobalMagnitude.uncappedPlans(src, k: 10_000, caps: [10_000, 10_000], threads: 2)
        #expect(met == GlobalMagnitude.exactPlans(src, k: 10_000, caps: [10_000, 10_000], threads: 2))
    }
}
