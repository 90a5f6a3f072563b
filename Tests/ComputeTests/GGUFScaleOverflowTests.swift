import Foundation
import Testing
@testable import Compute

/// Values too large for a k-quant's fp16 super-block scales would be written as infinite scales;
/// llama.cpp refuses such rows, and so does Squeeze: the run fails naming the tensor and the block,
/// and the same tensor given f32 by `tensor_types` goes through. Legacy types write what ggml's C
/// writes (GGUFReferenceTests pins that against gguf-py), so Q8_0 of the same values succeeds.
@Suite struct GGUFScaleOverflowTests {
    /// 512 values: small ones, then ±2e9 (the second super-block).
    static func values() -> [Float] {
        (0..<512).map { (i: Int) -> Float in
            let big: Float = i % 2 == 0 ? 2e9 : -2e9
            let small: Float = Float(i % 7) * 0.1
            return i < 256 ? small : big
        }
    }

    /// A model with one 2×256 matrix whose second super-block holds ±2e9.
    static func model() throws -> String {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("squeeze-overflow-\(getpid())-\(UInt32.random(in: 0...UInt32.max))").path
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        let v = Self.values()
        let json = "{\"big.weight\":{\"dtype\":\"F32\",\"shape\":[2,256],\"data_offsets\":[0,\(v.count * 4)]}}"
        var head = Array(json.utf8)
        while head.count % 8 != 0 { head.append(0x20) }
        var out = Data()
        withUnsafeBytes(of: UInt64(head.count).littleEndian) { out.append(contentsOf: $0) }
        out.append(contentsOf: head)
        v.withUnsafeBytes { out.append(contentsOf: $0) }
        try out.write(to: URL(fileURLWithPath: dir + "/model.safetensors"))
        return dir
    }

    /// Runs `recipe` on `model`; returns the output directory.
    @discardableResult
    func run(_ recipe: String, model: String) throws -> String {
        let out = model + "/out-\(UInt32.random(in: 0...UInt32.max))"
        try FileManager.default.createDirectory(atPath: out, withIntermediateDirectories: true)
        _ = try RecipeRunner(model: try ModelSource(path: model), recipe: try RecipeParser.parse(recipe), threads: 2).run(outputDir: out)
        return out
    }

    /// ggml's `quantize_row_q8_0_ref`, scalar, as REFERENCES.md states it: d = amax/127 (stored as
    /// half, ±inf when it overflows), id = 1/d, q = roundf(x·id) with halves away from zero.
    static func q8_0Reference(_ x: [Float]) -> [UInt8] {
        var out = [UInt8]()
        for b in stride(from: 0, to: x.count, by: 32) {
            let block = x[b..<(b + 32)]
            let amax = block.map { abs($0) }.max() ?? 0
            let d = amax / 127
            let id: Float = d != 0 ? 1 / d : 0
            withUnsafeBytes(of: Float16(d).bitPattern.littleEndian) { out += $0 }
            out += block.map { UInt8(bitPattern: Int8(($0 * id).rounded(.toNearestOrAwayFromZero))) }
        }
        return out
    }

    @Test(arguments: ["q2_k", "q3_k", "q4_k", "q5_k", "q6_k"]) func infiniteScalesAreRefused(type: String) throws {
        let model = try Self.model()
        defer { try? FileManager.default.removeItem(atPath: model) }
        do {
            try run("stages: [{export: {format: gguf, type: \(type)}}]", model: model)
            Issue.record("\(type): expected an error")
        } catch let e as ComputeError {
            #expect(e.code == .numerical && e.tensor == "big.weight" && e.message.contains("too large for \(type.uppercased())"), "\(e)")
        }
        try run("stages: [{export: {format: gguf, type: \(type), tensor_types: {'big.weight': f32}}}]", model: model)
    }

    @Test func legacyTypesWriteWhatGGMLWrites() throws {
        let model = try Self.model()
        defer { try? FileManager.default.removeItem(atPath: model) }
        let out = try run("stages: [{export: {format: gguf, type: q8_0}}]", model: model)
        let reader = try GGUFReader(path: out + "/model-q8_0.gguf")
        let t = try #require(reader.tensors.first { $0.name == "big.weight" })
        let bytes = try reader.withData(t) { Array($0) }
        let values = Self.values()
        #expect(bytes == Self.q8_0Reference(values))
        #expect(bytes[34 * 8 ..< 34 * 8 + 2] == [0x00, 0x7C], "the overflowing block's scale is +inf, as ggml writes it")
    }
}
