import Compute
import Testing

/// Structured pruning, the cubic schedule and truncated-SVD factors on small matrices with known answers.
@Suite struct StructuredLowRankTests {
    @Test func cubicScheduleFollowsZhuGupta() {
        let s = CubicSchedule(initial: 0, final: 0.8, steps: 4)
        let want = [0.4625, 0.7, 0.7875, 0.8]
        for (got, w) in zip(s.targets, want) { #expect(abs(got - w) < 1e-12) }
        #expect(s.sparsity(at: 0) == 0)
        #expect(s.targets.last == 0.8)
        #expect(CubicSchedule(initial: 0.5, final: 0.5, steps: 3).targets == [0.5, 0.5, 0.5])
        #expect(zip(s.targets, s.targets.dropFirst()).allSatisfy { $0 <= $1 })
    }

    @Test func rowsAndColumnsByNormWithTiesByIndex() {
        // Rows: L2 norms 5, 1, 5, 0 (row 3 already zero); columns: L1 norms 4, 7, 6.
        let x: [Float] = [3, 4, 0,
                          0, 1, 0,
                          0, 0, -5,
                          0, 0, 0]
        var y = x
        let rows = y.withUnsafeMutableBufferPointer {
            StructuredPruning.prune($0, rows: 4, cols: 3, dim: .rows, norm: .l2, k: 3, threads: 2)
        }
        #expect(rows == [0, 1, 3])  // 0, 1, then the first of the tied 5s
        #expect(y == [0, 0, 0, 0, 0, 0, 0, 0, -5, 0, 0, 0])
        let n = x.withUnsafeBufferPointer { StructuredPruning.norms($0, rows: 4, cols: 3, dim: .columns, norm: .l1, threads: 1) }
        #expect(n == [3, 5, 5])
        var z = x
        let cols = z.withUnsafeMutableBufferPointer {
            StructuredPruning.prune($0, rows: 4, cols: 3, dim: .columns, norm: .l1, k: 2, threads: 2)
        }
        #expect(cols == [0, 1])
        #expect(z == [0, 0, 0, 0, 0, 0, 0, 0, -5, 0, 0, 0])
        #expect(StructuredPruning.select([.nan, 1, 2], k: 2) == [1, 2])
    }

    @Test func sameRowsForAnyThreadCount() {
        var r = SplitMix(seed: 9)
        let x = (0..<(300 * 70)).map { _ in (r.gaussian() * 4).rounded() / 4 }
        func run(_ t: Int, _ dim: StructuredPruning.Dimension) -> [Float] {
            var y = x
            y.withUnsafeMutableBufferPointer { _ = StructuredPruning.prune($0, rows: 300, cols: 70, dim: dim, norm: .l1, k: 100, threads: t) }
            return y
        }
        for dim in StructuredPruning.Dimension.allCases { #expect(run(1, dim) == run(3, dim)) }
    }

    @Test func lowRankRecoversAnExactRankTwoMatrix() throws {
        let m = 20, n = 12
        var r = SplitMix(seed: 4)
        let a = (0..<m).map { _ in r.gaussian() }, b = (0..<n).map { _ in r.gaussian() }
        let c = (0..<m).map { _ in r.gaussian() }, d = (0..<n).map { _ in r.gaussian() }
        let x = (0..<(m * n)).map { i in a[i / n] * b[i % n] + 0.5 * c[i / n] * d[i % n] }
        let f = try x.withUnsafeBufferPointer { try LowRank.factorize($0, rows: m, cols: n, rank: .energy(0.999_999), tensor: "t") }
        #expect(f.rank == 2)
        #expect(f.u.count == m * 2 && f.v.count == 2 * n)
        var y = [Float](repeating: 0, count: m * n)
        y.withUnsafeMutableBufferPointer { LowRank.multiply(f.u, f.v, rows: m, rank: 2, cols: n, into: $0) }
        let err = zip(x, y).map { Double($0 - $1) * Double($0 - $1) }.reduce(0, +).squareRoot()
        let norm = x.map { Double($0) * Double($0) }.reduce(0, +).squareRoot()
        #expect(err / norm < 1e-5)
        let s = try x.withUnsafeBufferPointer { try LowRank.singularValues($0, rows: m, cols: n, tensor: "t") }
        #expect(s.count == n && zip(s, s.dropFirst()).allSatisfy { $0 >= $1 })
        #expect(LowRank.rank(.fixed(100), singularValues: s, rows: m, cols: n) == n)
        #expect(LowRank.rank(.energy(1), singularValues: [2, 1, 0], rows: 3, cols: 3) == 2)
        #expect(LowRank.rank(.energy(0.5), singularValues: [0, 0], rows: 2, cols: 2) == 1)
        // ratio 0.2 of a 20 × 12 matrix: the largest r with r·32 ≤ 0.8·240, r = 6.
        #expect(LowRank.rank(.ratio(0.2), singularValues: s, rows: m, cols: n) == 6)
    }

    @Test func lowRankRefusesNonFiniteValues() {
        let x: [Float] = [1, .nan, 3, 4]
        #expect(throws: ComputeError.self) {
            try x.withUnsafeBufferPointer { try LowRank.factorize($0, rows: 2, cols: 2, rank: .fixed(1), tensor: "w") }
        }
    }

    @Test func recipeKeysParseAndRoundTrip() throws {
        let r = try RecipeParser.parse("""
            stages:
              - prune: {method: structured, sparsity: 0.25, dim: columns, norm: L1}
              - prune: {sparsity: 0.8, schedule: {steps: 4, initial_sparsity: 0.1}}
              - lowrank: {energy: 0.9, output: factors, targets: ["*.dense.weight"]}
              - export: {format: safetensors}
            """)
        #expect(r.pruneStages[0].method as? StructuredPrune == StructuredPrune(sparsity: 0.25, dim: .columns, norm: .l1))
        #expect((r.pruneStages[1].method as? MagnitudePrune)?.schedule == CubicSchedule(initial: 0.1, final: 0.8, steps: 4))
        #expect(r.lowRankStages[0] == LowRankStage(rank: .energy(0.9), output: .factors, selector: TensorSelector(targets: ["*.dense.weight"])))
        #expect(try RecipeParser.parse(r.canonicalJSON) == r)
    }

    @Test func validatorRefusesFactorsThatLaterStagesWouldTouch() throws {
        let tensors = [TensorInfo(name: "a.weight", dtype: .F32, shape: [8, 4], begin: 0, end: 128),
                       TensorInfo(name: "a.bias", dtype: .F32, shape: [8], begin: 128, end: 160)]
        for (text, want) in [
            ("stages: [{lowrank: {rank: 2, output: factors}}, {quantize: {bits: 8}}, {export: {}}]", "stages[1].quantize.targets: matches a.weight"),
            ("stages: [{lowrank: {rank: 2, output: factors}}, {prune: {sparsity: 0.5}}, {export: {}}]", "stages[1].targets: matches a.weight"),
            ("stages: [{lowrank: {rank: 2, targets: ['a.*']}}, {export: {}}]", "matches a.bias, which is 1-D"),
            ("stages: [{prune: {method: structured, sparsity: 0.5, targets: ['*.bias']}}, {export: {}}]", "a.bias, which is 1-D"),
        ] {
            let r = try RecipeParser.parse(text)
            #expect(throws: RecipeError.self) { try RecipeValidator.validate(r, tensors: tensors) }
            do { try RecipeValidator.validate(r, tensors: tensors) } catch { #expect("\(error)".contains(want), "\(error)") }
        }
        try RecipeValidator.validate(try RecipeParser.parse("stages: [{prune: {sparsity: 0.5}}, {lowrank: {rank: 2, output: factors}}, {export: {}}]"),
                                     tensors: tensors)
    }
}
