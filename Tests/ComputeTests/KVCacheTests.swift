import Foundation
import Testing
@testable import Compute

/// Generation with a KV cache gives what recomputing the whole sequence gives: the same hidden
/// states (within float rounding) and the same greedy tokens, on every tiny test model.
@Suite struct KVCacheTests {
    static let llama = ProcessInfo.processInfo.environment["SQUEEZE_LLAMA_DIR"]

    @Test(.enabled(if: llama != nil, "needs SQUEEZE_LLAMA_DIR (set by ops/test)"),
          arguments: ["tiny/hf", "tiny-untied/model.gguf", "tiny-qwen2/hf"])
    func cachedStepsMatchTheFullForward(_ model: String) throws {
        let source = try ModelSource(path: Self.llama! + "/" + model)
        let files = try DecoderModelFiles(model: source)
        let w = CachedWeights(try ModelWeights(model: source))
        let c = files.config
        let ids = Array(files.tokenizer.encode(String(repeating: "The quick brown fox jumps over the lazy dog. ", count: 4))
            .prefix(40))
        let full = try LlamaDecoder(config: c, samples: 1, seqLen: ids.count, threads: 2).hidden([ids], w)
        let cache = KVCache(config: c)
        var rows = try cache.append(Array(ids.prefix(17)), w, threads: 2).data
        for id in ids.dropFirst(17) { rows += try cache.append([id], w, threads: 1).data }
        #expect(cache.count == ids.count)
        let worst = zip(rows, full.data).map { abs($0 - $1) }.max() ?? .infinity
        #expect(worst < 1e-4, "\(model): hidden states differ by \(worst)")

        // Greedy tokens: the cached generation against recomputing every prefix.
        let prompt = Array(ids.prefix(12))
        let cached = try GreedyDecoding.generate(prompt: prompt, count: 10, config: c, weights: w, threads: 2)
        var seq = prompt
        var recomputed = [Int32]()
        let head = try LlamaDecoder(config: c, samples: 1, seqLen: 1, threads: 2).head(w)
        for _ in 0..<cached.count {
            let dec = LlamaDecoder(config: c, samples: 1, seqLen: seq.count, threads: 2)
            let x = try dec.hidden([seq], w)
            let last = Activations(data: Array(x.data[((seq.count - 1) * c.hidden)...]), rows: 1, width: c.hidden)
            let logits = LlamaDecoder(config: c, samples: 1, seqLen: 1, threads: 2).logits(last, sample: 0, head: head)
            let best = Int32(logits.indices.max { logits[$0] < logits[$1] }!)
            recomputed.append(best)
            seq.append(best)
        }
        #expect(cached == recomputed, "\(model)")
    }
}
