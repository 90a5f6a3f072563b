import Foundation

/// The chunks of windows a streamed pass over the calibration windows visits (calibration, FLAP's
/// statistics), each with a decoder sized for it.
struct ChunkPlan {
    let chunks: [Range<Int>]
    let decoders: [Int: LlamaDecoder]

    /// `samples` windows of `seqLen` tokens in chunks of `chunkWindows` (the last may be shorter).
    init(config: LlamaConfig, samples: Int, seqLen: Int, chunkWindows: Int, threads: Int) {
        chunks = stride(from: 0, to: samples, by: chunkWindows).map { $0..<min($0 + chunkWindows, samples) }
        var decoders = [Int: LlamaDecoder]()
        for c in chunks where decoders[c.count] == nil {
            decoders[c.count] = LlamaDecoder(config: config, samples: c.count, seqLen: seqLen, threads: threads)
        }
        self.decoders = decoders
    }

    /// Runs `body` on each chunk of windows in order, with a decoder sized for the chunk.
    func forEachChunk(_ body: (LlamaDecoder, Range<Int>) throws -> Void) throws {
        for r in chunks { try body(decoders[r.count]!, r) }
    }
}
