import Foundation
import Testing
@testable import Compute

/// Decoder calibration streams the windows through each block in chunks and keeps statistics, not
/// activations: the statistics must be the bytes the whole-batch forward pass computes from all of
/// a layer's inputs at once, and every layer must see the outputs of the layers compressed before it.
@Suite struct StreamedCalibrationTests {
    static func random(_ n: Int, seed: inout UInt64, scale: Float = 1) -> [Float] {
        (0..<n).map { _ in
            seed = seed &* 6364136223846793005 &+ 1442695040888963407
            return (Float(seed >> 40) / Float(1 << 24) - 0.5) * scale
        }
    }

    @Test func statisticsInChunksEqualAllRowsAtOnce() throws {
        var seed: UInt64 = 7
        let rows = 1280, n = 40, out = 24
        let x = Self.random(rows * n, seed: &seed), y = Self.random(rows * out, seed: &seed)
        let s = InputStatistics(width: n, needs: CalibrationNeeds(gram: true, norms: true, distill: true), teacher: false, threads: 2)
        let t = TargetStatistics(out: out, width: n, threads: 3)
        for start in stride(from: 0, to: rows, by: 512) {
            let r = min(512, rows - start)
            let xc = Activations(data: Array(x[(start * n)..<((start + r) * n)]), rows: r, width: n)
            s.add(xc, teacher: nil)
            t.add(teacherOutput: Activations(data: Array(y[(start * out)..<((start + r) * out)]), rows: r, width: out), student: xc)
        }
        let all = Activations(data: x, rows: rows, width: n)
        #expect(try s.gram() == BLAS.gram(x, rows: rows, n: n, threads: 1))
        #expect(try s.columnNorms() == Wanda.inputNorms(all, threads: 1))
        #expect(s.head == Array(x[0..<(512 * n)]) && s.rows == rows)
        #expect(t.cross.result() == BLAS.crossProduct(y, x, rows: rows, p: out, q: n, threads: 1))
        #expect(t.norm2 == y.reduce(0.0) { $0 + Double($1) * Double($1) })
        // And against a plain double-precision sum, so the shared code is not its own reference.
        let g = try s.gram()
        for (i, j) in [(0, 0), (3, 17), (39, 2)] {
            let ref = (0..<rows).reduce(0.0) { $0 + Double(x[$1 * n + i]) * Double(x[$1 * n + j]) }
            #expect(abs(Double(g[i * n + j]) - ref) <= 1e-4 * max(1, abs(ref)))
        }
    }

    /// Tiles are sized from the dimension alone (as few equal sides of at most 768 as fit, rounded up
    /// to a multiple of 32), so a wide Gram matrix has tiles of several sizes and two partial sums,
    /// and its bytes still do not depend on the thread count or on how the rows arrive; the sum of an
    /// input is computed once and redone after more rows.
    @Test func wideGramTilesGiveTheSameBytesForAnyThreadCount() throws {
        #expect([40, 576, 1536, 1600, 4096].map(RowBlockSum.tile) == [64, 576, 768, 544, 704])
        var seed: UInt64 = 11
        let rows = 768, n = 1600
        let x = Self.random(rows * n, seed: &seed)
        let one = BLAS.gram(x, rows: rows, n: n, threads: 1)
        #expect(BLAS.gram(x, rows: rows, n: n, threads: 2) == one && BLAS.gram(x, rows: rows, n: n, threads: 3) == one)
        let s = InputStatistics(width: n, needs: CalibrationNeeds(gram: true), teacher: false, threads: 2)
        s.add(Activations(data: Array(x[0..<(512 * n)]), rows: 512, width: n), teacher: nil)
        let first = try s.gram()
        #expect(first == BLAS.gram(Array(x[0..<(512 * n)]), rows: 512, n: n, threads: 1))
        s.add(Activations(data: Array(x[(512 * n)...]), rows: rows - 512, width: n), teacher: nil)
        #expect(try s.gram() == one && first != one)
        for (i, j) in [(0, 1599), (767, 768), (1535, 1536), (1599, 1599), (100, 900)] {
            let ref = (0..<rows).reduce(0.0) { $0 + Double(x[$1 * n + i]) * Double(x[$1 * n + j]) }
            #expect(abs(Double(one[i * n + j]) - ref) <= 1e-4 * max(1, abs(ref)) && one[i * n + j] == one[j * n + i])
        }
    }

    /// Chunks hold whole product groups once they hold one, so no product gets a row count the
    /// whole-batch forward pass would not give it.
    @Test func chunksAreWholeProductGroups() {
        #expect(Activations.windowsPerProduct == 4)
        #expect(DecoderCalibration.chunkWindows(seqLen: 256) == 8)
        #expect(DecoderCalibration.chunkWindows(seqLen: 300) == 4)    // 6 windows would split a group
        #expect(DecoderCalibration.chunkWindows(seqLen: 128) == 16)
        #expect(DecoderCalibration.chunkWindows(seqLen: 1024) == 2)   // under one group: as many as fit
        #expect(DecoderCalibration.chunkWindows(seqLen: 4096) == 1)
    }

    /// A random 2-block Llama with Qwen2-style biases, calibrated by the streamed passes (two chunks
    /// of one product group each: a product of another row count may round differently) and by the
    /// whole-batch forward pass; each linear layer is "compressed" by zeroing
    /// every third weight, so a pass that used an uncompressed weight would see other inputs.
    @Test(arguments: [(false, GramPrecision.f32), (true, .f32), (false, .bf16), (true, .bf16)])
    func streamedCalibrationMatchesTheWholeBatchForward(distill: Bool, precision: GramPrecision) throws {
        var config = LlamaConfig(hidden: 32, intermediate: 48, layers: 2, heads: 4, kvHeads: 2, vocabSize: 50, tied: true)
        config.qkvBias = true
        var seed: UInt64 = 11
        var weights = [String: [Float]]()
        weights[LlamaNames.embedding] = Self.random(50 * 32, seed: &seed, scale: 2)
        for i in 0..<2 {
            let b = { LlamaNames.block(i, $0) }
            for (name, count) in [("input_layernorm.weight", 32), ("post_attention_layernorm.weight", 32), ("self_attn.q_proj.weight", 32 * 32),
                                  ("self_attn.k_proj.weight", 16 * 32), ("self_attn.v_proj.weight", 16 * 32), ("self_attn.o_proj.weight", 32 * 32),
                                  ("self_attn.q_proj.bias", 32), ("self_attn.k_proj.bias", 16), ("self_attn.v_proj.bias", 16),
                                  ("mlp.gate_proj.weight", 48 * 32), ("mlp.up_proj.weight", 48 * 32), ("mlp.down_proj.weight", 32 * 48)] {
                weights[b(name)] = Self.random(count, seed: &seed, scale: name.contains("norm") ? 1 : 0.6).map { name.contains("norm") ? 1 + $0 : $0 }
            }
        }
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("streamed-\(UUID().uuidString)").path
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let file = try Self.writeSafeTensors(weights, to: dir + "/model.safetensors")
        let teacher = { distill ? ModelWeights(readers: [try SafeTensorsReader(path: file)]) : nil }
        var seedIDs: UInt64 = 5
        let windows = 2 * Activations.windowsPerProduct
        let ids = (0..<windows).map { _ in Self.random(256, seed: &seedIDs).map { Int32(($0 + 0.5) * 49.99) } }
        let needs = CalibrationNeeds(gram: true, norms: true, distill: distill, gramPrecision: precision)

        let streamed = Recorder(weights, distill: distill)
        try DecoderCalibration(config: config, seqLen: 256, threads: 2, needs: needs, chunkTokens: 256 * Activations.windowsPerProduct)
            .run(ids, teacher: try teacher(), compute: streamed.compute)
        let whole = Recorder(weights, distill: distill)
        let dec = LlamaDecoder(config: config, samples: windows, seqLen: 256, threads: 2)
        try CalibratedForward.run(layers: 2, teacher: try teacher(), gramPrecision: precision, compute: whole.compute, embed: { try dec.embed(ids, $0) },
                                  layer: { try dec.block($0, $1, $2) })
        #expect(streamed.order == whole.order && streamed.order.count == 1 + 2 * 12)
        #expect(streamed.records.count == 14)
        for (name, r) in whole.records {
            #expect(streamed.records[name] == r, "\(name)")
        }
    }

    /// Records what each calibrated layer was given and hands back its weight with every third value zeroed.
    final class Recorder {
        struct Record: Equatable { var gram: [Float], norms: [Double], tokens: Int, cross: [Float]?, norm2: Double?, error: Double }
        let weights: [String: [Float]]
        let distill: Bool
        var order = [String]()
        var records = [String: Record]()

        init(_ weights: [String: [Float]], distill: Bool) { (self.weights, self.distill) = (weights, distill) }

        func compute(_ name: String, _ c: LinearCalibration?) throws -> [Float] {
            order.append(name)
            let w = weights[name]!
            guard let c else { return w }
            let compressed = w.enumerated().map { $0.offset % 3 == 0 ? 0 : $0.element }
            let out = w.count / (try c.inputGram(threads: 2).count).squareRootInt
            let p = distill ? try c.distillProblem(weight: w, out: out, threads: 2) : nil
            let err = w.withUnsafeBufferPointer { o in compressed.withUnsafeBufferPointer { c.outputError(original: o, compressed: $0, out: out, threads: 2) } }
            records[name] = Record(gram: try c.inputGram(threads: 2), norms: try c.inputNorms(threads: 2), tokens: c.tokens, cross: p?.c,
                                   norm2: p?.targetNorm2, error: err)
            return compressed
        }
    }

    static func writeSafeTensors(_ tensors: [String: [Float]], to path: String) throws -> String {
        var header = [String]()
        var data = Data()
        for name in tensors.keys.sorted() {
            let v = tensors[name]!
            header.append("\"\(name)\":{\"dtype\":\"F32\",\"shape\":[\(v.count)],\"data_offsets\":[\(data.count),\(data.count + v.count * 4)]}")
            v.withUnsafeBytes { data.append(contentsOf: $0) }
        }
        var json = Array(("{" + header.joined(separator: ",") + "}").utf8)
        while json.count % 8 != 0 { json.append(0x20) }
        var out = Data()
        withUnsafeBytes(of: UInt64(json.count).littleEndian) { out.append(contentsOf: $0) }
        out.append(contentsOf: json)
        out.append(data)
        try out.write(to: URL(fileURLWithPath: path))
        return path
    }
}

private extension Int {
    var squareRootInt: Int { Int(Double(self).squareRoot().rounded()) }
}
