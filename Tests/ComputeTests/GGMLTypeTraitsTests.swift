import Foundation
import Testing
@testable import Compute

/// The ggml type table is what every GGUF reader, writer and planner reads: each type has one
/// record, its sizes are ggml's, and every type Squeeze writes reads back what it wrote.
@Suite struct GGMLTypeTraitsTests {
    /// ggml's block sizes and bytes (`ggml.c` type_traits), independent of the table.
    static let ggml: [GGMLType: (Int, Int)] = [
        .f32: (1, 4), .f16: (1, 2), .bf16: (1, 2), .q4_0: (32, 18), .q4_1: (32, 20), .q5_0: (32, 22), .q5_1: (32, 24),
        .q8_0: (32, 34), .q8_1: (32, 36), .q2_K: (256, 84), .q3_K: (256, 110), .q4_K: (256, 144), .q5_K: (256, 176),
        .q6_K: (256, 210), .iq4_nl: (32, 18), .iq4_xs: (256, 136), .i8: (1, 1), .i16: (1, 2), .i32: (1, 4), .i64: (1, 8), .f64: (1, 8),
    ]

    @Test func everyTypeHasItsGGMLSizes() {
        for t in GGMLType.allCases {
            let want = Self.ggml[t]
            #expect(want != nil, "\(t.name) is missing from the test's list")
            #expect(t.traits.type == t)
            #expect(t.traits.blockCount == want?.0 && t.traits.blockBytes == want?.1, "\(t.name)")
            #expect(t.traits.rowBytes(512) == 512 / t.traits.blockCount * t.traits.blockBytes)
            #expect(t.traits.blockCount == 1 || t.traits.rowBytes(t.traits.blockCount + 1) == nil)
        }
    }

    @Test func everyWrittenTypeReadsBackWithinItsStep() {
        let values: [Float] = (0..<1024).map { (i: Int) -> Float in
            let wave: Double = sin(Double(i) * 0.37)
            return Float(wave) * Float(1 + i % 5)
        }
        for t in GGMLType.allCases where t.traits.encode != nil {
            #expect(t.traits.decode != nil, "\(t.name) is written but cannot be read")
            var bytes = [UInt8](repeating: 0, count: t.traits.rowBytes(values.count)!)
            var back = [Float](repeating: .nan, count: values.count)
            values.withUnsafeBufferPointer { src in
                bytes.withUnsafeMutableBytes { GGUFPlanner.encode(src, type: t, into: $0, threads: 2) }
            }
            bytes.withUnsafeBytes { raw in back.withUnsafeMutableBufferPointer { GGUFPlanner.decode(raw, type: t, into: $0) } }
            let worst = zip(values, back).map { abs($0 - $1) }.max() ?? .infinity
            // One step of the type's grid over blocks whose values span [-5, 5] (sub-scales are approximate).
            let bits: Double = (["F32": 24, "F16": 11, "BF16": 8, "Q8_0": 8, "Q6_K": 6, "Q5_0": 5, "Q5_1": 5, "Q5_K": 5,
                                 "Q4_0": 4, "Q4_1": 4, "Q4_K": 4, "IQ4_NL": 4, "IQ4_XS": 4, "Q3_K": 3, "Q2_K": 2] as [String: Double])[t.name] ?? 1
            let step = 10 / (pow(2, bits) - 1)
            #expect(Double(worst) <= step, "\(t.name): largest error \(worst)")
        }
    }

    @Test func importanceAndFallbacksAreLlamaCpps() {
        let weighted = GGMLType.allCases.filter(\.traits.usesImportance).map(\.name)
        #expect(weighted == ["Q4_0", "Q4_1", "Q5_0", "Q5_1", "Q2_K", "Q3_K", "Q4_K", "Q5_K", "Q6_K", "IQ4_NL", "IQ4_XS"])
        #expect(GGUFMix.fallback(.q2_K, cols: 576) == .iq4_nl)
        #expect(GGUFMix.fallback(.q3_K, cols: 576) == .iq4_nl)
        #expect(GGUFMix.fallback(.iq4_xs, cols: 576) == .iq4_nl)
        #expect(GGUFMix.fallback(.q4_K, cols: 576) == .q5_0)
        #expect(GGUFMix.fallback(.q5_K, cols: 576) == .q5_1)
        #expect(GGUFMix.fallback(.q6_K, cols: 576) == .q8_0)
        #expect(GGUFMix.fallback(.q6_K, cols: 48) == .f16)
        #expect(GGMLTypeTraits.readableNames == "F32, F16, Q4_0, Q4_1, Q5_0, Q5_1, Q8_0, Q2_K, Q3_K, Q4_K, Q5_K, Q6_K, IQ4_NL, IQ4_XS, BF16")
    }
}
