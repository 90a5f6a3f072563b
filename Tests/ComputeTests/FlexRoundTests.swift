import Foundation
import Testing
@testable import Compute

/// Learned rounding (FlexRound) keeps each type's blocks and scales, lowers the layer's output
/// error on the calibration inputs below its starting solution's, and gives the same codes for
/// any thread count.
@Suite struct FlexRoundTests {
    static let gridTypes: [GGMLType] = [.q4_0, .q4_1, .q5_0, .q5_1, .q8_0, .iq4_nl, .iq4_xs]

    static func decoded(_ bytes: [UInt8], _ type: GGMLType, count: Int) -> [Float] {
        var out = [Float](repeating: 0, count: count)
        bytes.withUnsafeBytes { b in out.withUnsafeMutableBufferPointer { GGUFPlanner.decode(b, type: type, into: $0) } }
        return out
    }

    static func encoded(_ w: [Float], _ type: GGMLType) -> [UInt8] {
        var out = [UInt8](repeating: 0, count: type.byteCount(numel: w.count, rowLength: 256)!)
        w.withUnsafeBufferPointer { wp in out.withUnsafeMutableBytes { GGUFPlanner.encode(wp, type: type, into: $0, threads: 1) } }
        return out
    }

    @Test(arguments: gridTypes)
    func aBlockGridReadsTheTypesValuesAndWritesItsBytesBack(type: GGMLType) throws {
        let w = (0..<1024).map { Float(sin(Double($0) * 0.37) * (1 + Double($0 % 13))) }
        let bytes = Self.encoded(w, type)
        let layout = try #require(GGMLBlockGrid.of(type))
        let (grid, codes) = bytes.withUnsafeBytes { layout.read($0, count: w.count) }
        let values = Self.decoded(bytes, type, count: w.count)
        for i in w.indices {
            let g = i / grid.groupLength
            let v = grid.a[g] * grid.levels[Int(codes[i])] + grid.b[g]
            #expect(v == values[i], "\(type.name) value \(i): grid \(v), decoder \(values[i])")
        }
        var copy = [UInt8](repeating: 0xA5, count: bytes.count)
        copy.withUnsafeMutableBytes { dst in bytes.withUnsafeBytes { dst.copyMemory(from: $0) } }
        var flipped = codes
        for i in stride(from: 0, to: flipped.count, by: 5) { flipped[i] = UInt8(grid.levels.count - 1) - flipped[i] }
        copy.withUnsafeMutableBytes { layout.write(flipped, into: $0) }
        let (_, back) = copy.withUnsafeBytes { layout.read($0, count: w.count) }
        #expect(back == flipped, "\(type.name): codes written are the codes read")
        copy.withUnsafeMutableBytes { layout.write(codes, into: $0) }
        #expect(copy == bytes, "\(type.name): writing the codes read gives the bytes back")
    }

    @Test func theProjectionFindsTheNearestLevel() {
        let iq4 = (0..<16).map { GGMLQuantizer.iq4Grid[$0] }
        let sets: [[Float]] = [iq4, (-8...7).map(Float.init), [-3, -1, 0.5, 4]]
        for levels in sets {
            let p = FlexRound.Projection(levels)
            let span: Float = levels[levels.count - 1] - levels[0] + 4
            for k in 0..<20_000 {
                let t: Float = Float(k - 10_000) * 0.0001 * span
                let brute: Int = levels.indices.min { abs(levels[$0] - t) < abs(levels[$1] - t) }!
                let got = Int(p.nearest(t))
                #expect(abs(levels[got] - t) == abs(levels[brute] - t), "t \(t): level \(levels[got]), nearest \(levels[brute])")
            }
        }
    }

    @Test func theKQuantsHaveNoFixedGrid() {
        for t in [GGMLType.q2_K, .q3_K, .q4_K, .q5_K, .q6_K, .f16] { #expect(GGMLBlockGrid.of(t) == nil) }
    }

    @Test(arguments: [GGMLType.q4_0, .iq4_nl, .q4_1])
    func learnedRoundingLowersTheOutputErrorOfTheTypesOwnBlocks(type: GGMLType) throws {
        let rows = 64, cols = 256, tokens = 512
        let (w, x) = GGUFErrorFeedbackTests.problem(rows: rows, cols: cols, tokens: tokens)
        let gram = BLAS.gram(x, rows: tokens, n: cols, threads: 2)
        let plain = Self.encoded(w, type)
        var outs = [[UInt8]]()
        let options = FlexRound.Options()
        for threads in [1, 2] {
            var bytes = plain
            let outcome = try #require(
                bytes.withUnsafeMutableBytes { b in
                    w.withUnsafeBufferPointer { wp in
                        FlexRound.refine(
                            b, type: type, weight: wp, start: wp, rows: rows, cols: cols, gram: gram, tokens: tokens,
                            options: options, threads: threads)
                    }
                })
            #expect(outcome.error < outcome.startError)
            #expect(outcome.changed > 0)
            outs.append(bytes)
        }
        #expect(outs[0] == outs[1], "the same bytes for 1 and 2 threads")
        let e0 = GGUFErrorFeedbackTests.outputError(w, Self.decoded(plain, type, count: w.count), x: x, rows: rows, cols: cols, tokens: tokens)
        let e1 = GGUFErrorFeedbackTests.outputError(w, Self.decoded(outs[0], type, count: w.count), x: x, rows: rows, cols: cols, tokens: tokens)
        #expect(e1 < 0.95 * e0, "\(type.name): output error \(e1) after learned rounding, \(e0) before")
        // Scales stay: only the codes moved.
        let layout = try #require(GGMLBlockGrid.of(type))
        let before = plain.withUnsafeBytes { layout.read($0, count: w.count).0 }
        let after = outs[0].withUnsafeBytes { layout.read($0, count: w.count).0 }
        #expect(before.a == after.a && before.b == after.b)
    }

    @Test func learnedRoundingImprovesGPTQOnTheIntegerGrid() throws {
        let rows = 64, cols = 256, tokens = 512
        let (w, x) = GGUFErrorFeedbackTests.problem(rows: rows, cols: cols, tokens: tokens)
        let gram = BLAS.gram(x, rows: tokens, n: cols, threads: 2)
        var q = w
        var start = w
        var res = try q.withUnsafeMutableBufferPointer { qp in
            try start.withUnsafeMutableBufferPointer { sp in
                try GPTQ.quantize(
                    qp, rows: rows, cols: cols, gram: gram, tokens: tokens, bits: 3, symmetric: false,
                    granularity: .group(64), damp: 0.01, actOrder: true, observer: .mse, factors: nil,
                    start: sp.baseAddress, threads: 2, tensor: "t")
            }
        }
        let e0 = GGUFErrorFeedbackTests.outputError(w, q, x: x, rows: rows, cols: cols, tokens: tokens)
        var refined = q
        let options = FlexRound.Options()
        let outcome = refined.withUnsafeMutableBufferPointer { rp in
            FlexRound.refine(
                &res, weight: w, start: start, work: rp, rows: rows, cols: cols, bits: 3, granularity: .group(64),
                gram: gram, tokens: tokens, options: options, threads: 2)
        }
        let e1 = GGUFErrorFeedbackTests.outputError(w, refined, x: x, rows: rows, cols: cols, tokens: tokens)
        // The start's codes reproduce GPTQ's values exactly, so its error is GPTQ's.
        #expect(abs(outcome.startError * Double(tokens) - e0) <= 1e-3 * e0)
        #expect(e1 < e0, "output error \(e1) after learned rounding, \(e0) from GPTQ")
        #expect(abs(outcome.error * Double(tokens) - e1) <= 1e-3 * e1)
    }
}
