@testable import Compute
import Foundation
import Testing

/// Seeded mutation fuzzing of the file parsers: a fixed count of mutated inputs each (about 4 s),
/// no time limit that a loaded machine could turn into a failure.
/// Every input must be either rejected with a ComputeError or accepted with all invariants
/// holding (tensor ranges inside the file, sizes consistent); a crash fails the whole run.
@Suite struct FuzzTests {
    static let iterations = 100_000

    /// Byte-level mutations: flips, interesting values, integer overwrites, truncation, insertion, splices.
    static func mutate(_ seed: [UInt8], _ rng: inout SplitMix) -> [UInt8] {
        var b = seed
        let rounds = 1 + Int(rng.next() % 4)
        for _ in 0..<rounds {
            let pos = b.isEmpty ? 0 : Int(rng.next() % UInt64(b.count))
            switch rng.next() % 9 {
            case 0: if !b.isEmpty { b[pos] ^= UInt8(1 << (rng.next() % 8)) }
            case 1: if !b.isEmpty { b[pos] = [0, 0xFF, 0x7F, 0x80, 0x22, 0x5C, 0x7B, 0x5D, 0x30][Int(rng.next() % 9)] }
            case 2:
                let v: UInt64 = [0, 1, 0xFFFF_FFFF, 1 << 63, UInt64.max, 1 << 32, 100_000_001, UInt64(b.count)][Int(rng.next() % 8)]
                for k in 0..<8 where pos + k < b.count { b[pos + k] = UInt8(truncatingIfNeeded: v >> (8 * UInt64(k))) }
            case 3: b = Array(b.prefix(pos))
            case 4: b.insert(contentsOf: [UInt8](repeating: UInt8(truncatingIfNeeded: rng.next()), count: 1 + Int(rng.next() % 16)), at: pos)
            case 5: if pos < b.count { b.removeSubrange(pos..<min(b.count, pos + 1 + Int(rng.next() % 16))) }
            case 6:
                let src = Int(rng.next() % UInt64(max(b.count, 1)))
                let chunk = Array(b[src..<min(b.count, src + 1 + Int(rng.next() % 32))])
                b.insert(contentsOf: chunk, at: pos)
            case 7: if b.count > 8 { for k in 8..<min(b.count, 8 + Int(rng.next() % 64)) { b[k] = UInt8(ascii: ["[", "{", "\"", ":", ","][Int(rng.next() % 5)]) } }
            default: if !b.isEmpty { b[pos] = UInt8(truncatingIfNeeded: rng.next()) }
            }
        }
        return b
    }

    static func safetensorsSeed() -> [UInt8] {
        let header = #"{"__metadata__":{"format":"pt"},"a.weight":{"dtype":"F32","shape":[2,3],"data_offsets":[0,24]},"b":{"dtype":"BF16","shape":[4],"data_offsets":[24,32]},"c":{"dtype":"I64","shape":[1],"data_offsets":[32,40]}}"#
        var h = Array(header.utf8)
        while h.count % 8 != 0 { h.append(0x20) }
        var out = [UInt8]()
        withUnsafeBytes(of: UInt64(h.count).littleEndian) { out += $0 }
        return out + h + (0..<40).map { UInt8($0) }
    }

    static func ggufSeed() throws -> [UInt8] {
        let path = NSTemporaryDirectory() + "fuzz-seed-\(getpid()).gguf"
        let q = [UInt8](repeating: 7, count: 2 * 34)
        let w = try GGUFWriter(path: path, metadata: [("general.name", .string("seed")), ("a", .array(.uint32([1, 2]))),
                                                      ("general.alignment", .uint32(32)), ("f", .float32(1.5)), ("b", .bool(true))],
                               tensors: [.init(name: "w", shape: [1, 64], type: .q8_0, byteCount: q.count),
                                         .init(name: "v", shape: [2], type: .f32, byteCount: 8)])
        try q.withUnsafeBytes { try w.write(name: "w", bytes: $0) }
        try [Float(1), 2].withUnsafeBytes { try w.write(name: "v", bytes: $0) }
        _ = try w.finish()
        defer { try? FileManager.default.removeItem(atPath: path) }
        return [UInt8](FileManager.default.contents(atPath: path)!)
    }

    @Test func safetensorsParserSurvivesMutations() throws {
        let seed = Self.safetensorsSeed()
        #expect((try? seed.withUnsafeBytes { try SafeTensorsReader.parse($0, path: "seed") }) != nil)
        var rng = SplitMix(seed: 0x5AFE)
        var accepted = 0, rejected = 0
        for _ in 0..<Self.iterations {
            let input = Self.mutate(seed, &rng)
            do {
                let h = try input.withUnsafeBytes { try SafeTensorsReader.parse($0, path: "fuzz") }
                accepted += 1
                #expect(h.dataStart + h.dataLength == input.count)
                for t in h.tensors { #expect(t.begin >= 0 && t.end <= h.dataLength && t.end - t.begin == t.numel * t.dtype.size) }
            } catch is ComputeError {
                rejected += 1
            }
        }
        print("fuzz: safetensors \(accepted + rejected) inputs, \(accepted) accepted, \(rejected) rejected")
        #expect(accepted + rejected == Self.iterations)
        #expect(rejected > Self.iterations / 2)
    }

    @Test func ggufParserSurvivesMutations() throws {
        let seed = try Self.ggufSeed()
        #expect((try? seed.withUnsafeBytes { try GGUFReader.parse($0, path: "seed") }) != nil)
        var rng = SplitMix(seed: 0x6606)
        var accepted = 0, rejected = 0
        for _ in 0..<Self.iterations {
            let input = Self.mutate(seed, &rng)
            do {
                let r = try input.withUnsafeBytes { try GGUFReader.parse($0, path: "fuzz") }
                accepted += 1
                for t in r.tensors { #expect(t.offset >= 0 && t.offset + t.byteCount <= input.count) }
            } catch is ComputeError {
                rejected += 1
            }
        }
        print("fuzz: gguf \(accepted + rejected) inputs, \(accepted) accepted, \(rejected) rejected")
        #expect(accepted + rejected == Self.iterations)
    }

    /// A llama GGUF header with a byte-level vocabulary: every byte character, one merge.
    static func llamaSeed() throws -> [UInt8] {
        let path = NSTemporaryDirectory() + "fuzz-llama-\(getpid()).gguf"
        var tokens = ByteLevelBPE.byteChars.map { String($0) }
        tokens.append("Ġt")
        let meta: [(String, GGUFValue)] = [
            ("general.architecture", .string("llama")), ("llama.embedding_length", .uint32(64)), ("llama.feed_forward_length", .uint32(128)),
            ("llama.block_count", .uint32(1)), ("llama.attention.head_count", .uint32(4)), ("llama.attention.head_count_kv", .uint32(2)),
            ("llama.rope.dimension_count", .uint32(16)), ("llama.attention.layer_norm_rms_epsilon", .float32(1e-5)),
            ("llama.context_length", .uint32(128)), ("tokenizer.ggml.model", .string("gpt2")), ("tokenizer.ggml.pre", .string("smollm")),
            ("tokenizer.ggml.tokens", .array(.string(tokens))), ("tokenizer.ggml.token_type", .array(.int32([Int32](repeating: 1, count: tokens.count)))),
            ("tokenizer.ggml.merges", .array(.string(["Ġ t"]))), ("tokenizer.ggml.bos_token_id", .uint32(0)),
        ]
        let w = try GGUFWriter(path: path, metadata: meta, tensors: [.init(name: "output_norm.weight", shape: [64], type: .f32, byteCount: 256)])
        try [Float](repeating: 1, count: 64).withUnsafeBytes { try w.write(name: "output_norm.weight", bytes: $0) }
        _ = try w.finish()
        defer { try? FileManager.default.removeItem(atPath: path) }
        return [UInt8](FileManager.default.contents(atPath: path)!)
    }

    /// Mutated llama headers through the decoder's readers: hyper-parameters and the tokenizer are
    /// refused with a ComputeError or accepted, never a crash or a trap.
    @Test func llamaMetadataSurvivesMutations() throws {
        let seed = try Self.llamaSeed()
        let header = try seed.withUnsafeBytes { try GGUFReader.parse($0, path: "seed") }
        let meta = Dictionary(header.metadata, uniquingKeysWith: { a, _ in a })
        #expect((try? LlamaConfig(gguf: meta, tensorNames: [], file: "seed")) != nil)
        #expect((try? ByteLevelBPE(gguf: meta, file: "seed"))?.encode("the 12 t") != nil)
        var rng = SplitMix(seed: 0x11A)
        var parsed = 0, configs = 0, tokenizers = 0
        for _ in 0..<(Self.iterations / 20) {
            let input = Self.mutate(seed, &rng)
            guard let h = try? input.withUnsafeBytes({ try GGUFReader.parse($0, path: "fuzz") }) else { continue }
            parsed += 1
            let m = Dictionary(h.metadata, uniquingKeysWith: { a, _ in a })
            if (try? LlamaConfig(gguf: m, tensorNames: Set(h.tensors.map(\.name)), file: "fuzz")) != nil { configs += 1 }
            if let t = try? ByteLevelBPE(gguf: m, file: "fuzz") {
                tokenizers += 1
                _ = t.encode("the 12 tests\n<|x|> ünï 🙂")
            }
        }
        // Typed mutations: any key set to an extreme value of any type (what a lying writer could store).
        let extremes: [GGUFValue] = [.uint32(0), .uint32(.max), .int32(-1), .int64(.min), .uint64(.max), .uint64(1 << 40), .float32(.nan),
                                     .float32(-1), .float64(.infinity), .string(""), .string("llama"), .bool(true),
                                     .array(.string([])), .array(.int32([3])), .array(.string(["Ġ", "Ġ Ġ"]))]
        let keys = meta.keys.sorted()
        for _ in 0..<3000 {
            var m = meta
            for _ in 0..<(1 + Int(rng.next() % 3)) { m[keys[Int(rng.next() % UInt64(keys.count))]] = extremes[Int(rng.next() % UInt64(extremes.count))] }
            if (try? LlamaConfig(gguf: m, tensorNames: [], file: "fuzz")) != nil { configs += 1 }
            if let t = try? ByteLevelBPE(gguf: m, file: "fuzz") {
                tokenizers += 1
                _ = t.encode("the 12 tests")
            }
        }
        print("fuzz: llama gguf \(parsed) parsed, \(configs) configs, \(tokenizers) tokenizers accepted")
        #expect(parsed > 0)
    }

    @Test func jsonParserSurvivesMutations() {
        let seed = Array(#"{"a":[1,-2.5e3,true,null,"x\u00e9\n\ud83d\ude00"],"b":{"c":{}}}"#.utf8)
        var rng = SplitMix(seed: 0x150)
        var n = 0
        for _ in 0..<Self.iterations {
            let input = Self.mutate(seed, &rng)
            _ = try? JSONParser.parse(input)
            n += 1
        }
        #expect(n == Self.iterations)
    }
}
