import Foundation
import Testing
@testable import Compute

/// An embedding lookup reads only the rows it needs (from safetensors, and from GGUF files whose
/// rows are whole blocks), and gets exactly the values the whole table holds at those rows.
@Suite struct EmbeddingRowsTests {
    static let llama = ProcessInfo.processInfo.environment["SQUEEZE_LLAMA_DIR"]

    @Test(.enabled(if: llama != nil, "needs SQUEEZE_LLAMA_DIR (set by ops/test)"),
          arguments: ["tiny/hf", "tiny/model.gguf", "tiny-256/model.gguf", "smollm2/smollm2-q4_1.gguf"])
    func rowsEqualTheWholeTablesRows(_ model: String) throws {
        let source = try ModelSource(path: Self.llama! + "/" + model)
        let c = try DecoderModelFiles(model: source).config
        let w = try ModelWeights(model: source)
        let count = c.vocabSize * c.hidden
        // First and last rows, a run of consecutive ids (one read) and scattered ones.
        let ids = [0, 1, 2, 3, 7, 11, c.vocabSize / 2, c.vocabSize - 1].filter { $0 < c.vocabSize }
        let whole = try w.tensor(LlamaNames.embedding, count: count)
        let rows = try w.rows(LlamaNames.embedding, width: c.hidden, count: count, ids: ids)
        #expect(rows == gatherRows(whole, width: c.hidden, ids: ids), "\(model)")
    }

    /// The embedding of a batch is the same whichever way its rows are read.
    @Test(.enabled(if: llama != nil, "needs SQUEEZE_LLAMA_DIR (set by ops/test)"))
    func embedReadsTheRowsOfTheBatch() throws {
        let source = try ModelSource(path: Self.llama! + "/smollm2/smollm2-q4_1.gguf")
        let c = try DecoderModelFiles(model: source).config
        let ids: [[Int32]] = [[5, 6, 7, 100, 5], [49_151, 0, 1, 2, 3]]
        let dec = LlamaDecoder(config: c, samples: 2, seqLen: 5, threads: 2)
        let partial = try dec.embed(ids, try ModelWeights(model: source))
        let cached = try dec.embed(ids, CachedWeights(try ModelWeights(model: source)))
        #expect(partial.data == cached.data)
    }
}
