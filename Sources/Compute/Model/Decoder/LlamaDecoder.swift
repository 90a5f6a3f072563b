import Foundation

/// The Llama-family decoder forward pass (RMSNorm, rotate-half RoPE, grouped-query causal
/// attention, SwiGLU, tied or separate LM head) over a batch of equal-length windows. Products
/// go through OpenBLAS per group of windows, groups in parallel: results do not depend on `threads`.
/// Checked against an independent numpy implementation in the tests.
public struct LlamaDecoder: Sendable {
    public let config: LlamaConfig
    public let samples: Int
    public let seqLen: Int
    public let threads: Int
    /// cos and sin of each position's angles, [seqLen × headDim/2].
    let cos: [Float], sin: [Float]

    /// `firstPosition`: the position of each window's first token (after a KV cache's tokens).
    public init(config: LlamaConfig, samples: Int, seqLen: Int, threads: Int, firstPosition: Int = 0) {
        self.config = config
        self.samples = samples
        self.seqLen = seqLen
        self.threads = max(1, threads)
        let half = config.headDim / 2
        var c = [Float](repeating: 0, count: seqLen * half), s = c
        for p in 0..<seqLen {
            for i in 0..<half {
                let angle =
                    Double(firstPosition + p) / Foundation.pow(config.ropeTheta, Double(2 * i) / Double(config.headDim))
                c[p * half + i] = Float(Foundation.cos(angle))
                s[p * half + i] = Float(Foundation.sin(angle))
            }
        }
        cos = c
        sin = s
    }

    /// Token embeddings of `ids` (samples × seqLen).
    public func embed(_ ids: [[Int32]], _ w: WeightSupplier) throws -> Activations {
        let h = config.hidden, vocab = config.vocabSize
        guard ids.count == samples, ids.allSatisfy({ $0.count == seqLen }) else {
            throw ComputeError(.shapeMismatch, "token batch is not \(samples) × \(seqLen) tokens")
        }
        // Only the rows of the ids used (a vocabulary's table is most of a small model's bytes).
        let table = try UsedRows(ids, of: LlamaNames.embedding, vocab: vocab, width: h, from: w)
        var x = Activations.unfilled(rows: samples * seqLen, width: h).data  // every row is copied below
        table.values.withUnsafeBufferPointer { tp in
            x.withUnsafeMutableBufferPointer { xp in
                Parallel.forEach(samples, threads: threads) { s in
                    for (t, id) in ids[s].enumerated() {
                        let from = tp.baseAddress! + table.offset(of: id)
                        (xp.baseAddress! + (s * seqLen + t) * h).update(from: from, count: h)
                    }
                }
            }
        }
        return Activations(data: x, rows: samples * seqLen, width: h)
    }

    /// Attention of Q, K and V (RoPE applied) into o_proj's input.
    typealias Attend = (_ q: Activations, _ k: Activations, _ v: Activations) -> Activations

    /// One decoder block: x + attention(norm(x)), then + SwiGLU(norm(·)); `attend` replaces the
    /// causal attention over these rows (a KV cache attends over earlier positions too).
    func block(_ i: Int, _ x: Activations, _ w: WeightSupplier, attend: Attend? = nil) throws -> Activations {
        let b = { (part: String) in LlamaNames.block(i, part) }
        let ctx = try attentionContext(i, try rmsNorm(x, b("input_layernorm.weight"), w), w, attend: attend)
        var h = try linear(b("self_attn.o_proj"), ctx, out: config.hidden, bias: config.outputBias, w)
        add(&h, try shortcut(b(LlamaNames.attentionShortcut), x, w))
        let act = try mlpProduct(i, try rmsNorm(h, b("post_attention_layernorm.weight"), w), w)
        var o = try linear(b("mlp.down_proj"), act, out: config.hidden, bias: config.outputBias, w)
        add(&o, try shortcut(b(LlamaNames.mlpShortcut), h, w))
        return o
    }

    /// The residual as the next sum adds it: `x` itself, or x·S with a per-block slice's shortcut S
    /// ([hidden × hidden], stored as SliceGPT multiplies it).
    func shortcut(_ name: String, _ x: Activations, _ w: WeightSupplier) throws -> Activations {
        guard config.shortcuts else { return x }
        let n = config.hidden
        let s = try w.tensor(name, count: n * n)
        let y = BLAS.gemmRows(m: x.rows, n: n, k: n, a: x.data, b: s, bTransposed: false, threads: threads)
        return Activations(data: y, rows: x.rows, width: n)
    }

    /// Q, K and V of the normed input (RoPE applied), then causal attention: o_proj's input.
    func attentionContext(_ i: Int, _ n1: Activations, _ w: WeightSupplier, attend: Attend? = nil) throws
        -> Activations
    {
        let c = config
        let b = { (part: String) in LlamaNames.block(i, part) }
        var q = try linear(b("self_attn.q_proj"), n1, out: c.qWidth(i), bias: c.qkvBias, w)
        var k = try linear(b("self_attn.k_proj"), n1, out: c.kvWidth(i), bias: c.qkvBias, w)
        let v = try linear(b("self_attn.v_proj"), n1, out: c.kvWidth(i), bias: c.qkvBias, w)
        rope(&q)
        rope(&k)
        return attend?(q, k, v) ?? attention(q, k, v)
    }

    /// SwiGLU's silu(gate(n2)) · up(n2): down_proj's input.
    func mlpProduct(_ i: Int, _ n2: Activations, _ w: WeightSupplier) throws -> Activations {
        let b = { (part: String) in LlamaNames.block(i, part) }
        var gate = try linear(b("mlp.gate_proj"), n2, out: config.intermediate(i), bias: false, w)
        let up = try linear(b("mlp.up_proj"), n2, out: config.intermediate(i), bias: false, w)
        let width = config.intermediate(i), l = seqLen, windows = gate.rows / seqLen
        gate.data.withUnsafeMutableBufferPointer { g in
            up.data.withUnsafeBufferPointer { u in
                Parallel.forEach(windows, threads: threads) { s in
                    VectorExp.swiGLU(g.baseAddress! + s * l * width, u.baseAddress! + s * l * width, count: l * width)
                }
            }
        }
        return gate
    }

    /// Every block, then the final norm: the hidden states the LM head reads.
    public func hidden(_ ids: [[Int32]], _ w: WeightSupplier) throws -> Activations {
        var x = try embed(ids, w)
        for i in 0..<config.layers { x = try block(i, x, w) }
        return try rmsNorm(x, LlamaNames.finalNorm, w)
    }

    /// The LM head's matrix [vocab × hidden] (the embedding when tied).
    public func head(_ w: WeightSupplier) throws -> [Float] {
        try w.tensor(config.tied ? LlamaNames.embedding : LlamaNames.lmHead, count: config.vocabSize * config.hidden)
    }

    /// Logits [positions × vocab] of sample `s` from the final hidden states, for `positions`
    /// (default: the whole window).
    public func logits(_ x: Activations, sample s: Int, head: [Float], positions: Range<Int>? = nil) -> [Float] {
        let h = config.hidden, vocab = config.vocabSize
        let p = positions ?? 0..<seqLen
        let first = s * seqLen + p.lowerBound
        // Fixed 64-row chunks, so the bytes do not depend on the thread count; a window of one chunk
        // (a generated token) splits the vocabulary instead, so every core still works.
        let rows = Parallel.chunks(p.count, chunk: 64)
        if rows.count == 1 {
            return x.data.withUnsafeBufferPointer { xp in
                Activations.columnSplit(
                    xp.baseAddress! + first * h, rows: p.count, width: h, head, bias: nil, out: vocab,
                    threads: threads)
            }
        }
        var out = [Float](repeating: 0, count: p.count * vocab)
        x.data.withUnsafeBufferPointer { xp in
            head.withUnsafeBufferPointer { hp in
                out.withUnsafeMutableBufferPointer { op in
                    Parallel.forEach(rows.count, threads: threads) { r in
                        let rg = rows[r]
                        BLAS.gemm(
                            m: rg.count, n: vocab, k: h, a: xp.baseAddress! + (first + rg.lowerBound) * h, lda: h,
                            b: hp.baseAddress!, ldb: h, bTransposed: true, c: op.baseAddress! + rg.lowerBound * vocab,
                            ldc: vocab)
                    }
                }
            }
        }
        return out
    }

    /// y = x Wᵀ (+ b), per sample.
    func linear(_ base: String, _ x: Activations, out: Int, bias: Bool, _ w: WeightSupplier) throws -> Activations {
        let weight = try w.linear(base, out: out, in: x.width, input: x)
        guard weight.count == out * x.width else {
            throw ComputeError(
                .shapeMismatch, "weight holds \(weight.count) values, not \(out) × \(x.width)",
                tensor: base + ".weight"
            )
        }
        let b = bias ? try w.tensor(base + ".bias", count: out) : nil
        return x.linear(weight, bias: b, out: out, seqLen: seqLen, threads: threads)
    }

    /// x / √(mean(x²) + ε) · g, row by row.
    func rmsNorm(_ x: Activations, _ name: String, _ w: WeightSupplier) throws -> Activations {
        try x.data.withUnsafeBufferPointer { try rmsNorm($0.baseAddress!, rows: x.rows, width: x.width, name, w) }
    }

    /// `rmsNorm` of the `rows` × `width` values at `x` (rows of a larger buffer, read in place).
    func rmsNorm(_ x: UnsafePointer<Float>, rows: Int, width n: Int, _ name: String, _ w: WeightSupplier) throws
        -> Activations
    {
        let g = try w.tensor(name, count: n)
        var y = Activations.unfilled(rows: rows, width: n)
        let eps = Double(config.eps)
        y.data.withUnsafeMutableBufferPointer { p in
            g.withUnsafeBufferPointer { gp in
                Parallel.forEach(rows, threads: threads) { r in
                    let src = x + r * n, row = p.baseAddress! + r * n
                    let inv = Float(1 / (Self.sumOfSquares(src, n) / Double(n) + eps).squareRoot())
                    var j = 0
                    while j + 8 <= n {
                        let v = UnsafeRawPointer(src + j).loadUnaligned(as: SIMD8<Float>.self)
                        let w = UnsafeRawPointer(gp.baseAddress! + j).loadUnaligned(as: SIMD8<Float>.self)
                        UnsafeMutableRawPointer(row + j).storeBytes(of: v * inv * w, as: SIMD8<Float>.self)
                        j += 8
                    }
                    while j < n {
                        row[j] = src[j] * inv * gp[j]
                        j += 1
                    }
                }
            }
        }
        return y
    }

    /// Σ x² of n floats: squares summed in eight Float lanes per run of 64 values, each run's lanes
    /// added in Double (a fixed order, so the same bytes on every machine).
    static func sumOfSquares(_ x: UnsafePointer<Float>, _ n: Int) -> Double {
        var total = 0.0, j = 0
        while j < n {
            let end = min(j + 64, n)
            var lanes = SIMD8<Float>()
            while j + 8 <= end {
                let v = UnsafeRawPointer(x + j).loadUnaligned(as: SIMD8<Float>.self)
                lanes += v * v
                j += 8
            }
            for k in 0..<8 { total += Double(lanes[k]) }
            while j < end {
                total += Double(x[j]) * Double(x[j])
                j += 1
            }
        }
        return total
    }

    /// Rotate-half RoPE on every head of q or k (HF row order: the first half of a head pairs with the second).
    func rope(_ x: inout Activations) {
        let d = config.headDim, half = d / 2, heads = x.width / d, width = x.width
        let ranges = Parallel.chunks(x.rows, chunk: 64)
        x.data.withUnsafeMutableBufferPointer { p in
            Parallel.forEach(ranges.count, threads: threads) { k in
                for r in ranges[k] {
                    let pos = r % seqLen
                    for hd in 0..<heads {
                        let base = p.baseAddress! + r * width + hd * d
                        for i in 0..<half {
                            let c = cos[pos * half + i], s = sin[pos * half + i]
                            let a = base[i], b = base[i + half]
                            base[i] = a * c - b * s
                            base[i + half] = b * c + a * s
                        }
                    }
                }
            }
        }
    }

    /// Query rows per attention product.
    static let queryBlock = 64

    /// Grouped-query causal attention over each sample's own tokens (Mistral's sliding window when
    /// set). Queries go in fixed blocks of 64 rows, each against the keys up to its last row only:
    /// the products skip the masked upper triangle (5/8 of the full products for 256 tokens).
    func attention(_ q: Activations, _ k: Activations, _ v: Activations) -> Activations {
        // The block's own head counts, from its widths (a structurally pruned block has fewer).
        let c = config, d = c.headDim, l = seqLen, qw = q.width, kw = k.width, heads = qw / d, group = heads / (kw / d)
        let scale = 1 / Float(d).squareRoot()
        let window = max(1, c.slidingWindow ?? Int.max)  // a config reader refuses < 1; never read out of bounds
        let queryBlocks = Parallel.chunks(l, chunk: Self.queryBlock)
        var ctx = Activations.unfilled(rows: q.rows, width: qw).data  // each (window, head) product writes its block
        q.data.withUnsafeBufferPointer { qp in
            k.data.withUnsafeBufferPointer { kp in
                v.data.withUnsafeBufferPointer { vp in
                    ctx.withUnsafeMutableBufferPointer { cp in
                        Parallel.forEach(samples * heads, threads: threads) { job in
                            let s = job / heads, hd = job % heads, kvh = hd / group
                            // each product writes what is read
                            var scores = Activations.unfilled(rows: Self.queryBlock, width: l).data
                            scores.withUnsafeMutableBufferPointer { sp in
                                for rows in queryBlocks {
                                    let keys = rows.upperBound  // keys 0..<keys; row r reads lo...r
                                    BLAS.gemm(
                                        m: rows.count, n: keys, k: d,
                                        a: qp.baseAddress! + (s * l + rows.lowerBound) * qw + hd * d, lda: qw,
                                        b: kp.baseAddress! + s * l * kw + kvh * d, ldb: kw, bTransposed: true,
                                        c: sp.baseAddress!, ldc: keys,
                                        alpha: scale)
                                    for r in rows {
                                        let row = sp.baseAddress! + (r - rows.lowerBound) * keys
                                        let lo = window == Int.max ? 0 : max(0, r - window + 1)
                                        VectorExp.softmaxInPlace(row + lo, count: r - lo + 1)
                                        row.update(repeating: 0, count: lo)
                                        (row + r + 1).update(repeating: 0, count: keys - r - 1)
                                    }
                                    BLAS.gemm(
                                        m: rows.count, n: d, k: keys, a: sp.baseAddress!, lda: keys,
                                        b: vp.baseAddress! + s * l * kw + kvh * d,
                                        ldb: kw, bTransposed: false,
                                        c: cp.baseAddress! + (s * l + rows.lowerBound) * qw + hd * d, ldc: qw)
                                }
                            }
                        }
                    }
                }
            }
        }
        return Activations(data: ctx, rows: q.rows, width: qw)
    }

    /// a += b, in fixed 64 Ki-value ranges over the threads.
    func add(_ a: inout Activations, _ b: Activations) {
        precondition(a.data.count == b.data.count)
        a.data.withUnsafeMutableBufferPointer { ap in
            b.data.withUnsafeBufferPointer {
                ParallelRows.add($0.baseAddress!, into: ap.baseAddress!, count: ap.count, threads: threads)
            }
        }
    }
}
