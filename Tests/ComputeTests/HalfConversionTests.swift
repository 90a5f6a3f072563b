import Compute
import Testing

@Suite struct HalfConversionTests {
    @Test func f16RoundTripsEveryBitPattern() {
        for h in 0...UInt16.max {
            let f = HalfConversion.f16ToF32(h)
            let back = HalfConversion.f32ToF16(f)
            if f.isNaN { #expect(HalfConversion.f16ToF32(back).isNaN) } else { #expect(back == h, "f16 \(h)") }
        }
    }

    @Test func f16DecodeMatchesSwiftFloat16() {
        for h in 0...UInt16.max {
            let ref = Float(Float16(bitPattern: h))
            let got = HalfConversion.f16ToF32(h)
            #expect(ref.isNaN ? got.isNaN : ref.bitPattern == got.bitPattern)
        }
    }

    @Test func f32ToF16RoundsToNearestEvenLikeSwift() {
        var rng = SplitMix(seed: 7)
        var specials: [Float] = [0, -0, 1, -1, 65504, 65520, 65519.99, -65520, .infinity, -.infinity, 5.96e-8, 2.98e-8, 2.99e-8,
                                 1.0e-10, 6.1e-5, Float(bitPattern: 0x3380_0000), Float(bitPattern: 0x3300_0000), Float(bitPattern: 0x3300_0001)]
        for _ in 0..<200_000 { specials.append(Float(bitPattern: UInt32(truncatingIfNeeded: rng.next()))) }
        for f in specials where !f.isNaN {
            #expect(HalfConversion.f32ToF16(f) == Float16(f).bitPattern, "\(f) bits \(f.bitPattern)")
        }
        #expect(HalfConversion.f16ToF32(HalfConversion.f32ToF16(.nan)).isNaN)
    }

    @Test func bf16RoundsToNearestEven() {
        // 1 + 2^-8 is exactly halfway between two bf16 values: ties go to even (1.0).
        #expect(HalfConversion.f32ToBF16(Float(bitPattern: 0x3F80_8000)) == 0x3F80)
        #expect(HalfConversion.f32ToBF16(Float(bitPattern: 0x3F81_8000)) == 0x3F82)
        #expect(HalfConversion.f32ToBF16(Float(bitPattern: 0x3F80_8001)) == 0x3F81)
        #expect(HalfConversion.f32ToBF16(.infinity) == 0x7F80)
        #expect(HalfConversion.bf16ToF32(HalfConversion.f32ToBF16(.nan)).isNaN)
        for b in 0...UInt16.max {
            let f = HalfConversion.bf16ToF32(b)
            if !f.isNaN { #expect(HalfConversion.f32ToBF16(f) == b) }
        }
    }
}

/// Deterministic test RNG: the kernels' own seeded generator, with Gaussian draws.
typealias SplitMix = SeededGenerator

extension SeededGenerator {
    mutating func gaussian() -> Float {
        let u1 = max(Double(next() >> 11) / Double(1 << 53), 1e-300), u2 = Double(next() >> 11) / Double(1 << 53)
        return Float((-2 * log(u1)).squareRoot() * cos(2 * .pi * u2))
    }
}

import Foundation
