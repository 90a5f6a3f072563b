import Foundation
import Testing
@testable import Compute

/// llama.cpp's imatrix files (GGUF-based and legacy .dat) round-trip through Squeeze's reader and
/// writers; hostile files fail with an error, never a crash; the recipe key `imatrix` parses and
/// is refused where it cannot work. (Bytes against llama.cpp: SqueezeCLITests/ImportanceMatrixReferenceTests.)
@Suite struct ImportanceMatrixTests {
    static func scratch() throws -> String {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("squeeze-imatrix-\(getpid())-\(UInt32.random(in: 0...UInt32.max))").path
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        return dir
    }

    static let sample = ImportanceMatrix(
        entries: ["blk.0.attn_q.weight": .init(sums: [1, 2.5, 1e-3, 7e4], count: 512), "blk.0.ffn_down.weight": .init(sums: [0, 3, 9, 1, 2, 5, 8, 13], count: 512)],
        datasets: ["/data/pydoc.txt"], chunkCount: 8, chunkSize: 64)

    @Test func ggufFileRoundTrips() throws {
        let path = try Self.scratch() + "/m.gguf"
        _ = try Self.sample.writeGGUF(to: path)
        let back = try ImportanceMatrix.read(path: path)
        #expect(back == Self.sample)
        let want: [Float] = [1, 2.5, 1e-3, 7e4].map { $0 / 512 }
        #expect(back.entries["blk.0.attn_q.weight"]!.importance == want)
        let h = try GGUFReader(path: path)
        #expect(h.metadata.contains { $0.0 == "general.type" && $0.1 == .string("imatrix") })
        #expect(h.tensors.map(\.name) == ["blk.0.attn_q.weight.in_sum2", "blk.0.attn_q.weight.counts", "blk.0.ffn_down.weight.in_sum2", "blk.0.ffn_down.weight.counts"])
    }

    /// The legacy file stores mean · calls; read back, the importance is those values / calls, as
    /// llama-quantize computes it.
    @Test func legacyFileRoundTrips() throws {
        let path = try Self.scratch() + "/m.dat"
        try Self.sample.legacyData().write(to: URL(fileURLWithPath: path))
        let back = try ImportanceMatrix.read(path: path)
        #expect(Set(back.entries.keys) == Set(Self.sample.entries.keys))
        #expect(back.datasets == ["/data/pydoc.txt"] && back.chunkCount == 8)
        for (name, e) in Self.sample.entries {
            let b = back.entries[name]!
            #expect(b.count == 8)  // ⌈512 tokens / 64⌉ calls
            for (x, y) in zip(e.importance, b.importance) { #expect(abs(x - y) <= 1e-6 * max(x, 1e-30)) }
        }
    }

    /// Truncations, lying counts and garbage fail with one error each.
    @Test func hostileFilesAreRefused() throws {
        let dir = try Self.scratch()
        let good = Array(Self.sample.legacyData())
        var cases: [(String, [UInt8])] = [("empty", []), ("garbage", Array("hello, not an imatrix at all".utf8)),
                                          ("huge count", [0xFF, 0xFF, 0xFF, 0x7F] + good.dropFirst(4)),
                                          ("negative count", [0xFF, 0xFF, 0xFF, 0xFF] + good.dropFirst(4))]
        for cut in [5, 12, 30, 40] { cases.append(("cut at \(cut)", Array(good.prefix(cut)))) }
        var lying = good
        let valueCount = 4 + 4 + "blk.0.attn_q.weight".utf8.count + 4  // the first entry's value count
        lying.replaceSubrange(valueCount..<(valueCount + 4), with: [0xFF, 0xFF, 0xFF, 0x0F])
        cases.append(("lying value count", lying))
        _ = try Self.sample.writeGGUF(to: dir + "/ok.gguf")
        let gguf = try [UInt8](Data(contentsOf: URL(fileURLWithPath: dir + "/ok.gguf")))
        cases.append(("gguf cut", Array(gguf.prefix(gguf.count - 10))))
        for (what, bytes) in cases {
            let p = dir + "/bad.dat"
            try Data(bytes).write(to: URL(fileURLWithPath: p))
            #expect(throws: ComputeError.self, "\(what)") { try ImportanceMatrix.read(path: p) }
        }
    }

    @Test func recipeKey() throws {
        let r = try RecipeParser.parse("stages: [{calibrate: {dataset: d.txt}}, {export: {format: safetensors}}, {export: {format: gguf, type: q4_k_m, imatrix: true}}]")
        #expect(r.exportStages.last?.importance == .calibration)
        #expect(r.calibrationNeeds.norms)
        #expect(try RecipeParser.parse(r.canonicalJSON) == r)
        let f = try RecipeParser.parse("stages: [{export: {format: gguf, type: q6_k, imatrix: m.dat}}]")
        #expect(f.exportStages[0].importance == .file("m.dat"))
        #expect(f.resolvingDatasets(against: "/base").exportStages[0].importance == .file("/base/m.dat"))
        #expect(f.datasets == ["m.dat"])
        let g = try RecipeParser.parse("stages: [{calibrate: {dataset: d.txt}}, {export: {format: safetensors}}, {export: {format: gguf, type: q4_k_m, imatrix: true, gptq: true}}]")
        #expect(g.exportStages.last?.errorFeedback == true && g.calibrationNeeds.gram)
        #expect(try RecipeParser.parse(g.canonicalJSON) == g)
        for (text, message) in [("stages: [{export: {format: gguf, type: q6_k, imatrix: true}}]", "needs an earlier calibrate stage"),
                                ("stages: [{export: {format: gguf, type: q6_k, imatrix: ''}}]", "must not be empty"),
                                ("stages: [{export: {format: gguf, type: q6_k, imatrix: {a: 1}}}]", "must be true, false, an imatrix file path or {job: KEY}"),
                                ("stages: [{export: {format: safetensors, imatrix: true}}]", "belongs to format gguf, not format safetensors"),
                                ("stages: [{export: {format: gguf, type: q4_k_m, gptq: true, imatrix: m.dat}}]", "export.gptq: needs an earlier calibrate stage")] {
            do { _ = try RecipeParser.parse(text); Issue.record("accepted \(text)") } catch let e as RecipeError {
                #expect(("\(e)".contains("imatrix") || "\(e)".contains("gptq")) && "\(e)".contains(message), "\(e)")
            }
        }
    }

    /// Importance-weighted quantization writes the same bytes for any thread count, and leaves
    /// Q8_0 as without importance (ggml ignores it there).
    @Test func importanceQuantizationIsDeterministic() throws {
        var rng = SystemRandomNumberGenerator()
        let cols = 512, rows = 40
        let x = (0..<(rows * cols)).map { _ in Float.random(in: -1...1, using: &rng) * (Bool.random(using: &rng) ? 1 : 0.05) }
        let imp = (0..<cols).map { _ in Float.random(in: 0.01...100, using: &rng) }
        for type in [GGMLType.q2_K, .q3_K, .q4_K, .q5_K, .q6_K, .q4_0, .q4_1, .q5_0, .q5_1] {
            let n = type.byteCount(numel: x.count, rowLength: cols)!
            var outs = [[UInt8]]()
            for threads in [1, 2] {
                var out = [UInt8](repeating: 0, count: n)
                x.withUnsafeBufferPointer { xp in imp.withUnsafeBufferPointer { ip in out.withUnsafeMutableBytes {
                    GGUFPlanner.encode(xp, type: type, into: $0, importance: ip, threads: threads)
                } } }
                outs.append(out)
            }
            #expect(outs[0] == outs[1], "\(type.name)")
            var plain = [UInt8](repeating: 0, count: n)
            x.withUnsafeBufferPointer { xp in plain.withUnsafeMutableBytes { GGUFPlanner.encode(xp, type: type, into: $0, threads: 1) } }
            #expect(plain != outs[0], "\(type.name): the importance changed nothing")
        }
    }
}
