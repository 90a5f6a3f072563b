import Foundation
import Testing
@testable import Compute

/// Values too large for a k-quant's fp16 super-block scales would be written as infinite scales;
/// llama.cpp refuses such rows, and so does Squeeze: the run fails naming the tensor and the block,
/// and the same tensor given f32 by `tensor_types` goes through. Legacy types write what ggml's C
/// writes (GGUFReferenceTests pins that against gguf-py), so Q8_0 of the same values succeeds.
@Suite struct GGUFScaleOverflowTests {
    /// A model with one 2×256 matrix whose second super-block holds ±2e9.
    static func model() throws -> String {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("squeeze-overflow-\(getpid())-\(UInt32.random(in: 0...UInt32.max))").path
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        let v = (0..<512).map { i -> Float in i < 256 ? Float(i % 7) * 0.1 : (i % 2 == 0 ? 2e9 : -2e9) }
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

    func run(_ recipe: String, model: String) throws {
        let out = model + "/out-\(UInt32.random(in: 0...UInt32.max))"
        try FileManager.default.createDirectory(atPath: out, withIntermediateDirectories: true)
        _ = try RecipeRunner(model: try ModelSource(path: model), recipe: try RecipeParser.parse(recipe), threads: 2).run(outputDir: out)
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
        try run("stages: [{export: {format: gguf, type: q8_0}}]", model: model)
    }
}
