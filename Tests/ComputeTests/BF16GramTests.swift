import CKernels
import Foundation
import Testing
@testable import Compute

/// The `hessian: bf16` Gram product: inputs rounded to BF16 to nearest even, each entry one F32
/// sum over the rows in order with the odd row's product of a pair first (VDPBF16PS's order),
/// the same bytes on the native and the emulated path, for any thread count and chunking.
@Suite struct BF16GramTests {
    /// Rows with a wide exponent range: ordinary values, tiny ones whose products underflow, zeros;
    /// column 7 is all tiny, so its diagonal entry is a sum of subnormals (flushed to zero).
    static func rows(_ rows: Int, _ n: Int, seed: UInt64) -> [Float] {
        var s = seed
        return (0..<(rows * n)).map { k in
            s = s &* 6364136223846793005 &+ 1442695040888963407
            let v = Float(Int64(bitPattern: s) >> 40) / Float(1 << 23)
            if k % n == 7 { return v * 1e-21 }
            switch (s >> 20) % 16 {
            case 0: return v * 1e-21
            case 1: return 0
            case 2: return v * 3e4
            default: return v
            }
        }
    }

    static func bf16(_ f: Float) -> Float {
        var packed: UInt32 = 0
        [f].withUnsafeBufferPointer { squeeze_bf16_pack_pairs($0.baseAddress!, 1, 1, 1, &packed, 1) }
        return Float(bitPattern: packed << 16)
    }

    @Test func packingRoundsToNearestEvenAndFlushesSubnormals() {
        #expect(Self.bf16(1).bitPattern >> 16 == 0x3F80)
        #expect(Self.bf16(Float(bitPattern: 0x3F80_8000)).bitPattern >> 16 == 0x3F80)  // tie → even
        #expect(Self.bf16(Float(bitPattern: 0x3F81_8000)).bitPattern >> 16 == 0x3F82)  // tie → even (up)
        #expect(Self.bf16(Float(bitPattern: 0x3F80_8001)).bitPattern >> 16 == 0x3F81)
        #expect(Self.bf16(-2.5) == -2.5)
        #expect(Self.bf16(.greatestFiniteMagnitude) == .infinity && Self.bf16(-.infinity) == -.infinity)
        #expect(Self.bf16(.leastNormalMagnitude) == .leastNormalMagnitude)
        #expect(Self.bf16(.leastNonzeroMagnitude).bitPattern == 0 && Self.bf16(-1e-40).bitPattern == 0x8000_0000)
        let nan = Self.bf16(Float(bitPattern: 0x7F80_0001))
        #expect(nan.isNaN && (nan.bitPattern >> 16) & 0x40 != 0)
    }

    /// A plain Swift sum in the instruction's order over the BF16-rounded rows.
    static func reference(_ x: [Float], rows: Int, n: Int, i: Int, j: Int) -> Float {
        func ftz(_ v: Float) -> Float { abs(v) < .leastNormalMagnitude ? (v.sign == .minus ? -0.0 : 0) : v }
        var acc: Float = 0
        for p in stride(from: 0, to: rows, by: 2) {
            let (e, o) = (p * n, p + 1 < rows ? (p + 1) * n : nil)
            if let o { acc = ftz(bf16(x[o + i]) * bf16(x[o + j]) + acc) }  // exact product, one rounding
            acc = ftz(bf16(x[e + i]) * bf16(x[e + j]) + acc)
        }
        return acc
    }

    @Test func nativeAndEmulatedPathsGiveTheReferenceBytes() {
        let (rows, n) = (1101, 100)  // three panels, the last with an odd row
        let x = Self.rows(rows, n, seed: 3)
        func gram(path: Int32) -> [Float] {
            let s = BF16GramSum(n: n, threads: 2, path: path)
            x.withUnsafeBufferPointer { s.add($0.baseAddress!, rows: rows) }
            return s.result()
        }
        let portable = gram(path: SQUEEZE_BF16_PORTABLE)
        #expect(squeeze_bf16_path_runs(SQUEEZE_BF16_PORTABLE) == 1)
        for path in [SQUEEZE_BF16_NATIVE, SQUEEZE_BF16_AVX2] where squeeze_bf16_path_runs(path) == 1 {
            #expect(Self.differing(gram(path: path), portable) == 0, "path \(path)")
        }
        #expect(portable[7 * n + 7] == 0 && portable[7 * n + 8] != 0)
        for (i, j) in [(0, 0), (5, 77), (99, 3), (42, 42), (98, 99), (7, 7), (7, 8)] {
            #expect(portable[i * n + j].bitPattern == Self.reference(x, rows: rows, n: n, i: i, j: j).bitPattern, "\(i), \(j)")
            #expect(portable[i * n + j] == portable[j * n + i])
        }
        let ran = ["AVX512-BF16", "AVX2 emulation", "portable"][Int(squeeze_bf16_fastest_path())]
        Swift.print("BF16GramTests: the fastest path here is \(ran); the slower ones were compared with it")
    }

    /// How many entries differ in their bits.
    static func differing(_ a: [Float], _ b: [Float]) -> Int { zip(a, b).filter { $0.bitPattern != $1.bitPattern }.count + abs(a.count - b.count) }

    @Test func bytesDoNotDependOnThreadsOrChunks() {
        let (rows, n) = (2000, 200)
        let x = Self.rows(rows, n, seed: 11)
        func gram(threads: Int, chunks: [Int]) -> [Float] {
            let s = BF16GramSum(n: n, threads: threads)
            var start = 0
            x.withUnsafeBufferPointer { xp in
                for c in chunks {
                    s.add(xp.baseAddress! + start * n, rows: c)
                    start += c
                }
            }
            #expect(start == rows)
            return s.result()
        }
        let one = gram(threads: 1, chunks: [rows])
        #expect(Self.differing(gram(threads: 2, chunks: [rows]), one) == 0)
        #expect(Self.differing(gram(threads: 3, chunks: [512, 512, 976]), one) == 0)
        #expect(Self.differing(gram(threads: 2, chunks: [2, 1000, 998]), one) == 0)
    }

    /// Against XᵀX in double precision of the unrounded inputs: within BF16's rounding of both
    /// factors (2⁻⁸ relative each) plus F32 summation, relative to Σ|x_i x_j|.
    @Test func closeToTheExactGram() {
        let (rows, n) = (1024, 64)
        var seed: UInt64 = 5
        let x = StreamedCalibrationTests.random(rows * n, seed: &seed)
        let g = GramPrecision.bf16.gram(Activations(data: x, rows: rows, width: n), threads: 2)
        var worst = 0.0
        for i in 0..<n {
            for j in 0..<n {
                var exact = 0.0, scale = 0.0
                for r in 0..<rows {
                    exact += Double(x[r * n + i]) * Double(x[r * n + j])
                    scale += abs(Double(x[r * n + i]) * Double(x[r * n + j]))
                }
                worst = max(worst, abs(Double(g[i * n + j]) - exact) / scale)
            }
        }
        #expect(worst < 1.0 / 128)
        #expect(worst > 0)  // it is not the F32 product
    }
}
