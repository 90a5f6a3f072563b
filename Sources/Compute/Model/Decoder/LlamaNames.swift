/// Tensor names of Llama-family models: Hugging Face names (what Squeeze uses inside) and the
/// GGUF names llama.cpp uses, with the mapping both ways.
public enum LlamaNames {
    public static let embedding = "model.embed_tokens.weight"
    public static let finalNorm = "model.norm.weight"
    public static let lmHead = "lm_head.weight"

    /// SliceGPT's per-block shortcut matrices [hidden × hidden] (block parts): the residual entering
    /// the attention (the FFN) times this is the residual added to its output, in the next basis.
    public static let attentionShortcut = "attn_shortcut_Q"
    public static let mlpShortcut = "mlp_shortcut_Q"

    /// `model.layers.N.` + part.
    public static func block(_ i: Int, _ part: String) -> String { "model.layers.\(i).\(part)" }

    /// The block `name` belongs to (`model.layers.N.…` with N < layers), or nil.
    static func blockIndex(_ name: String, layers: Int) -> Int? {
        let parts = name.split(separator: ".", maxSplits: 3)
        guard parts.count == 4, parts[0] == "model", parts[1] == "layers", let i = Int(parts[2]), i < layers else {
            return nil
        }
        return i
    }

    /// HF part → GGUF part within a block.
    static let blockParts: [(hf: String, gguf: String)] = [
        ("input_layernorm", "attn_norm"), ("self_attn.q_proj", "attn_q"), ("self_attn.k_proj", "attn_k"),
        ("self_attn.v_proj", "attn_v"),
        ("self_attn.o_proj", "attn_output"), ("post_attention_layernorm", "ffn_norm"), ("mlp.gate_proj", "ffn_gate"),
        ("mlp.up_proj", "ffn_up"), ("mlp.down_proj", "ffn_down")
    ]
    static let topLevel: [(hf: String, gguf: String)] = [
        (embedding, "token_embd.weight"), (finalNorm, "output_norm.weight"), (lmHead, "output.weight")
    ]

    /// The GGUF name of a Hugging Face Llama tensor name (nil when it is not one).
    public static func gguf(_ hf: String) -> String? {
        if let t = topLevel.first(where: { $0.hf == hf }) { return t.gguf }
        let parts = hf.split(separator: ".", maxSplits: 3)
        guard parts.count == 4, parts[0] == "model", parts[1] == "layers", let n = Int(parts[2]), n >= 0 else {
            return nil
        }
        let rest = String(parts[3])
        for (h, g) in blockParts {
            for kind in ["weight", "bias"] where rest == h + "." + kind { return "blk.\(n).\(g).\(kind)" }
        }
        return nil
    }

    /// The Hugging Face name of a GGUF Llama tensor name (nil when it is not one).
    public static func hf(_ gguf: String) -> String? {
        if let t = topLevel.first(where: { $0.gguf == gguf }) { return t.hf }
        let parts = gguf.split(separator: ".")
        guard parts.count == 4, parts[0] == "blk", let n = Int(parts[1]), n >= 0,
            parts[3] == "weight" || parts[3] == "bias",
            let p = blockParts.first(where: { $0.gguf == parts[2] })
        else { return nil }
        return block(n, p.hf + "." + parts[3])
    }

    /// The head count whose rows llama.cpp's converter permutes for this HF tensor (Q: query heads,
    /// K: KV heads, of its own block), or nil when the tensor is not permuted.
    static func permutedHeads(_ hf: String, _ c: LlamaConfig) -> Int? {
        let parts = hf.split(separator: ".", maxSplits: 3)
        let shape = parts.count == 4 ? Int(parts[2]).flatMap { $0 < c.layers ? c.shape($0) : nil } : nil
        if hf.hasSuffix(".self_attn.q_proj.weight") || hf.hasSuffix(".self_attn.q_proj.bias") {
            return shape?.heads ?? c.heads
        }
        if hf.hasSuffix(".self_attn.k_proj.weight") || hf.hasSuffix(".self_attn.k_proj.bias") {
            return shape?.kvHeads ?? c.kvHeads
        }
        return nil
    }

    /// Reorders rows between the HF rotate-half order and llama.cpp's interleaved pairs:
    /// GGUF row h·D + 2j + i holds HF row h·D + i·D/2 + j. `toGGUF` permutes, else un-permutes.
    static func permuteRows(
        _ src: UnsafeRawBufferPointer, into dst: UnsafeMutableRawBufferPointer, rows: Int, heads: Int, toGGUF: Bool
    ) {
        let rowBytes = src.count / rows
        let d = rows / heads, half = d / 2
        for h in 0..<heads {
            for i in 0..<2 {
                for j in 0..<half {
                    let hfRow = h * d + i * half + j, ggRow = h * d + 2 * j + i
                    let (from, to) = toGGUF ? (hfRow, ggRow) : (ggRow, hfRow)
                    dst.baseAddress!.advanced(by: to * rowBytes).copyMemory(
                        from: src.baseAddress!.advanced(by: from * rowBytes), byteCount: rowBytes)
                }
            }
        }
    }
}
