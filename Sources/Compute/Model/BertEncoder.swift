import Foundation

/// The BERT encoder forward pass (post-LayerNorm, GELU, absolute positions, token type 0) over a
/// batch of equal-length sequences, without padding. Products go through OpenBLAS per group of
/// samples, groups in parallel: results do not depend on `threads`. Checked against a numpy implementation.
public struct BertEncoder: Sendable {
    public let config: BertConfig
    public let samples: Int
    public let seqLen: Int
    public let threads: Int

    public init(config: BertConfig, samples: Int, seqLen: Int, threads: Int) {
        self.config = config
        self.samples = samples
        self.seqLen = seqLen
        self.threads = max(1, threads)
    }

    /// Word + position + token-type embeddings, then LayerNorm.
    public func embed(_ ids: [[Int32]], _ w: WeightSupplier) throws -> Activations {
        let vocabSize = config.vocabSize
        let h = config.hidden
        guard ids.count == samples, ids.allSatisfy({ $0.count == seqLen }), seqLen <= config.maxPositions else {
            throw ComputeError(
                .shapeMismatch,
                "calibration batch is not \(samples) × \(seqLen) tokens (at most \(config.maxPositions))")
        }
        // Only the rows of the ids used.
        let words = try UsedRows(
            ids, of: config.embedding("word_embeddings.weight"), vocab: vocabSize, width: h, from: w)
        let pos = try w.tensor(config.embedding("position_embeddings.weight"), count: config.maxPositions * h)
        let typ = try w.tensor(config.embedding("token_type_embeddings.weight"), count: config.typeVocabSize * h)
        var x = [Float](repeating: 0, count: samples * seqLen * h)
        for s in 0..<samples {
            for t in 0..<seqLen {
                let word = words.offset(of: ids[s][t])
                let row = (s * seqLen + t) * h
                for j in 0..<h { x[row + j] = words.values[word + j] + pos[t * h + j] + typ[j] }
            }
        }
        var a = Activations(data: x, rows: samples * seqLen, width: h)
        try layerNorm(&a, config.embedding("LayerNorm"), w)
        return a
    }

    /// One encoder layer: self-attention, residual + LayerNorm, GELU feed-forward, residual + LayerNorm.
    public func layer(_ i: Int, _ x: Activations, _ w: WeightSupplier) throws -> Activations {
        let c = config
        let q = try linear(c.layer(i, "attention.self.query"), x, out: c.hidden, w)
        let k = try linear(c.layer(i, "attention.self.key"), x, out: c.hidden, w)
        let v = try linear(c.layer(i, "attention.self.value"), x, out: c.hidden, w)
        let ctx = attention(q, k, v)
        var a = try linear(c.layer(i, "attention.output.dense"), ctx, out: c.hidden, w)
        for j in a.data.indices { a.data[j] += x.data[j] }
        try layerNorm(&a, c.layer(i, "attention.output.LayerNorm"), w)
        var inter = try linear(c.layer(i, "intermediate.dense"), a, out: c.intermediate, w)
        gelu(&inter)
        var o = try linear(c.layer(i, "output.dense"), inter, out: c.hidden, w)
        for j in o.data.indices { o.data[j] += a.data[j] }
        try layerNorm(&o, c.layer(i, "output.LayerNorm"), w)
        return o
    }

    /// Embeddings and every layer.
    public func forward(_ ids: [[Int32]], _ w: WeightSupplier) throws -> Activations {
        var x = try embed(ids, w)
        for i in 0..<config.layers { x = try layer(i, x, w) }
        return x
    }

    /// Sentence embeddings as sentence-transformers makes them: mean over tokens, L2-normalized.
    public func sentenceEmbeddings(_ x: Activations) -> [[Float]] {
        (0..<samples).map { s in
            var m = [Double](repeating: 0, count: x.width)
            for t in 0..<seqLen { for j in 0..<x.width { m[j] += Double(x.data[(s * seqLen + t) * x.width + j]) } }
            let norm = max(m.reduce(0) { $0 + $1 * $1 }.squareRoot(), 1e-12)
            return m.map { Float($0 / norm) }
        }
    }

    /// y = x Wᵀ + b, per sample.
    func linear(_ base: String, _ x: Activations, out: Int, _ w: WeightSupplier) throws -> Activations {
        let weight = try w.linear(base, out: out, in: x.width, input: x)
        let bias = try w.tensor(base + ".bias", count: out)
        guard weight.count == out * x.width else {
            throw ComputeError(
                .shapeMismatch, "weight holds \(weight.count) values, not \(out) × \(x.width)",
                tensor: base + ".weight"
            )
        }
        return x.linear(weight, bias: bias, out: out, seqLen: seqLen, threads: threads)
    }

    /// Multi-head scaled dot-product attention over each sample's own tokens.
    func attention(_ q: Activations, _ k: Activations, _ v: Activations) -> Activations {
        let h = config.hidden, heads = config.heads, d = h / heads, l = seqLen
        let scale = 1 / Float(d).squareRoot()
        var ctx = [Float](repeating: 0, count: q.rows * h)
        q.data.withUnsafeBufferPointer { qp in
            k.data.withUnsafeBufferPointer { kp in
                v.data.withUnsafeBufferPointer { vp in
                    ctx.withUnsafeMutableBufferPointer { cp in
                        Parallel.forEach(samples, threads: threads) { s in
                            var scores = [Float](repeating: 0, count: l * l)
                            scores.withUnsafeMutableBufferPointer { sp in
                                for hd in 0..<heads {
                                    let off = s * l * h + hd * d
                                    BLAS.gemm(
                                        m: l, n: l, k: d, a: qp.baseAddress! + off, lda: h, b: kp.baseAddress! + off,
                                        ldb: h,
                                        bTransposed: true, c: sp.baseAddress!, ldc: l, alpha: scale)
                                    for r in 0..<l {
                                        let row = sp.baseAddress! + r * l
                                        var mx = -Float.infinity
                                        for j in 0..<l { mx = max(mx, row[j]) }
                                        var sum: Float = 0
                                        for j in 0..<l {
                                            row[j] = Foundation.exp(row[j] - mx)
                                            sum += row[j]
                                        }
                                        let inv = 1 / sum
                                        for j in 0..<l { row[j] *= inv }
                                    }
                                    BLAS.gemm(
                                        m: l, n: d, k: l, a: sp.baseAddress!, lda: l, b: vp.baseAddress! + off, ldb: h,
                                        bTransposed: false, c: cp.baseAddress! + off, ldc: h)
                                }
                            }
                        }
                    }
                }
            }
        }
        return Activations(data: ctx, rows: q.rows, width: h)
    }

    func layerNorm(_ x: inout Activations, _ base: String, _ w: WeightSupplier) throws {
        let g = try w.tensor(base + ".weight", count: x.width), b = try w.tensor(base + ".bias", count: x.width)
        let n = x.width, eps = Double(config.eps)
        x.data.withUnsafeMutableBufferPointer { p in
            Parallel.forEach(x.rows, threads: threads) { r in
                let row = p.baseAddress! + r * n
                var mean = 0.0
                for j in 0..<n { mean += Double(row[j]) }
                mean /= Double(n)
                var v = 0.0
                for j in 0..<n {
                    let d = Double(row[j]) - mean
                    v += d * d
                }
                let inv = 1 / (v / Double(n) + eps).squareRoot()
                for j in 0..<n { row[j] = Float((Double(row[j]) - mean) * inv) * g[j] + b[j] }
            }
        }
    }

    /// Exact GELU: x/2 · (1 + erf(x/√2)).
    func gelu(_ x: inout Activations) {
        x.data.withUnsafeMutableBufferPointer { p in
            let ranges = Parallel.chunks(p.count, chunk: 1 << 14)
            Parallel.forEach(ranges.count, threads: threads) { r in
                for i in ranges[r] { p[i] = 0.5 * p[i] * (1 + Foundation.erf(p[i] * 0.70710678118654752)) }
            }
        }
    }
}
