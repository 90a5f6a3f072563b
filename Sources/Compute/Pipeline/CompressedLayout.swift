import Foundation

/// The `compressed` safetensors export (documented in docs/FORMATS.md): every quantized tensor
/// `T` becomes `T.qweight` (U8, codes packed along the last dimension, lowest bits first, rows
/// padded to whole bytes), `T.scales` (F32, one per group) and, when asymmetric, `T.zeros` (U8);
/// other tensors are stored as they leave the recipe. `__metadata__["squeeze.quantization"]`
/// describes each quantized tensor as JSON.
public enum CompressedLayout {
    public static let fileName = "model.compressed.safetensors"
    /// A BitStack export's file: the whole stack once, loaded at any size (`--size`).
    public static let stackFileName = "stack.safetensors"
    /// The size table written beside a stack (StackSizeTable).
    public static let sizeTableName = "stack-sizes.json"
    /// The names a compressed export may have.
    public static let fileNames = [fileName, stackFileName]

    /// The compressed export's name: a stack's when any tensor is decomposed by BitStack.
    static func exportName(_ tensors: [TensorInfo], stage: (TensorInfo) -> QuantizeStage?) -> String {
        let stacked = tensors.contains { t in
            guard case .bitstack? = stage(t)?.method else { return false }
            return true
        }
        return stacked ? stackFileName : fileName
    }

    static func groupShape(_ t: TensorInfo, _ q: QuantizeStage) -> [Int] {
        switch q.granularity {
        case .tensor: return [1]
        case .channel: return Array(t.shape.dropLast())
        case .group(let g): return Array(t.shape.dropLast()) + [(t.shape.last ?? 0) / g]
        }
    }

    /// The safetensors entries `t` becomes.
    public static func plan(_ t: TensorInfo, stage: QuantizeStage?) -> [(name: String, dtype: DType, shape: [Int])] {
        guard let q = stage else { return [(t.name, t.dtype, t.shape)] }
        if case .vptq(let o) = q.method { return vectorPlan(t, o) }
        if case .bitstack(let blocks, let rank) = q.method { return stackPlan(t, blocks: blocks, rank: rank) }
        let rowLength = max(t.shape.last ?? 1, 1)
        let perByte = 8 / RTNQuantizer.packedBits(q.bits)
        var out: [(name: String, dtype: DType, shape: [Int])] = [
            (t.name + ".qweight", .U8, Array(t.shape.dropLast()) + [(rowLength + perByte - 1) / perByte]),
            (t.name + ".scales", .F32, groupShape(t, q))
        ]
        if !q.symmetric { out.append((t.name + ".zeros", .U8, groupShape(t, q))) }
        return out
    }

    /// A VPTQ tensor's entries: per codebook the packed indices of the groups that are not outliers
    /// ([rows, bytes per row]) and the entries (F16 [entries, vector]), first codebook first, then the row
    /// scales (F16 [rows]); with outliers, their columns (I32 [outliers], ascending) and values at unit RMS
    /// (F16 [rows, outliers]).
    static func vectorPlan(_ t: TensorInfo, _ o: VPTQ.Options) -> [(name: String, dtype: DType, shape: [Int])] {
        let (rows, cols) = RunPlan.matrixShape(t)
        var out = [(name: String, dtype: DType, shape: [Int])]()
        for (b, entries) in o.books.enumerated() {
            let prefix = t.name + (b == 0 ? ".vq_" : ".vq_residual_")
            let rowBytes = (o.codedGroups(cols: cols) * VPTQ.indexBits(entries) + 7) / 8
            out.append((prefix + "indices", .U8, [rows, rowBytes]))
            out.append((prefix + "codebook", .F16, [entries, o.vector]))
        }
        out.append((t.name + ".vq_scales", .F16, [rows]))
        if o.outliers > 0 {
            out.append((t.name + ".vq_outlier_columns", .I32, [o.outliers]))
            out.append((t.name + ".vq_outliers", .F16, [rows, o.outliers]))
        }
        return out
    }

    /// A VPTQ tensor's entries' bytes, in plan order.
    static func encode(_ t: TensorInfo, options o: VPTQ.Options, result r: VPTQ.Result) -> [UInt8] {
        let (rows, cols) = RunPlan.matrixShape(t)
        var out = [UInt8]()
        for (b, entries) in o.books.enumerated() {
            out += VPTQ.pack(r.indices[b], rows: rows, groups: o.codedGroups(cols: cols), bits: VPTQ.indexBits(entries))
            appendHalf(r.codebooks[b], to: &out)
        }
        appendHalf(r.scales, to: &out)
        if o.outliers > 0 {
            for c in r.outlierColumns { withUnsafeBytes(of: c.littleEndian) { out += $0 } }
            appendHalf(r.outliers, to: &out)
        }
        return out
    }

    /// `values` as little-endian F16, appended to `out`.
    private static func appendHalf(_ values: [Float], to out: inout [UInt8]) {
        for v in values { withUnsafeBytes(of: Float16(v).bitPattern.littleEndian) { out += $0 } }
    }

    /// A BitStack tensor's entries: the column scales (F16 [cols]), each block's output error (F32 [blocks]),
    /// then per block k its packed signs (U8 [rows, ceil(cols / 8)]), U (F16 [rows, rank]) and V (F16 [rank, cols]).
    static func stackPlan(_ t: TensorInfo, blocks: Int, rank: Int) -> [(name: String, dtype: DType, shape: [Int])] {
        let (rows, cols) = RunPlan.matrixShape(t)
        var out: [(name: String, dtype: DType, shape: [Int])] = [
            (t.name + ".bs_scales", .F16, [cols]), (t.name + ".bs_errors", .F32, [blocks])
        ]
        for k in 0..<blocks {
            out.append((t.name + ".bs_signs.\(k)", .U8, [rows, (cols + 7) / 8]))
            out.append((t.name + ".bs_u.\(k)", .F16, [rows, rank]))
            out.append((t.name + ".bs_v.\(k)", .F16, [rank, cols]))
        }
        return out
    }

    /// A BitStack tensor's entries' bytes, in plan order.
    static func encode(stack r: BitStack.Result) -> [UInt8] {
        var out = [UInt8]()
        appendHalf(r.scales, to: &out)
        for e in r.errors { withUnsafeBytes(of: e.bitPattern.littleEndian) { out += $0 } }
        for k in r.signs.indices {
            out += r.signs[k]
            appendHalf(r.u[k], to: &out)
            appendHalf(r.v[k], to: &out)
        }
        return out
    }

    /// Packed codes, scales and zeros of one quantized tensor, concatenated in plan order.
    static func encode(_ t: TensorInfo, stage q: QuantizeStage, result r: RTNQuantizer.Result) -> [UInt8] {
        var out = RTNQuantizer.pack(r.codes, rowLength: max(t.shape.last ?? 1, 1), bits: q.bits)
        for s in r.scales { withUnsafeBytes(of: s.bitPattern.littleEndian) { out += $0 } }
        if !q.symmetric { out += r.zeros }
        return out
    }

    /// File metadata: the input's, plus the quantization of every quantized tensor.
    static func metadata(_ tensors: [TensorInfo], recipe: Recipe, base: [String: String]) -> [String: String] {
        var q = [String: Any]()
        for t in tensors {
            guard let st = recipe.compression(for: t.name) else { continue }
            if case .bitstack(let blocks, let rank) = st.method {
                q[t.name] =
                    [
                        "method": "bitstack", "blocks": blocks, "rank": rank, "shape": t.shape,
                        "dtype": t.dtype.rawValue
                    ] as [String: Any]
                continue
            }
            if case .vptq(let o) = st.method {
                var e: [String: Any] = [
                    "method": "vptq", "vector": o.vector, "centroids": o.centroids, "residual": o.residual,
                    "shape": t.shape, "dtype": t.dtype.rawValue, "act_order": o.actOrder
                ]
                if o.outliers > 0 { e["outliers"] = o.outliers }
                q[t.name] = e
                continue
            }
            var e: [String: Any] = [
                "bits": st.bits, "scheme": st.symmetric ? "symmetric" : "asymmetric", "shape": t.shape,
                "dtype": t.dtype.rawValue, "packed_bits": RTNQuantizer.packedBits(st.bits),
                "method": st.method == .rtn ? "rtn" : "gptq"
            ]
            switch st.granularity {
            case .tensor: e["granularity"] = "tensor"
            case .channel: e["granularity"] = "channel"
            case .group(let g):
                e["granularity"] = "group"
                e["group_size"] = g
            }
            q[t.name] = e
        }
        var m = base
        let data = (try? JSONSerialization.data(withJSONObject: q, options: [.sortedKeys])) ?? Data("{}".utf8)
        m["squeeze.quantization"] = String(decoding: data, as: UTF8.self)
        m["squeeze.format"] = "compressed-v1"
        return m
    }
}
