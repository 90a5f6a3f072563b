import Foundation

/// The `compressed-tensors` export (docs/FORMATS.md): a Hugging Face directory, `compressed-tensors/`,
/// that transformers (with the compressed-tensors package) and vLLM load, in compressed-tensors'
/// `pack-quantized` format. Each quantized linear `M.weight` becomes `M.weight_packed` (I32, codes
/// offset by 2^(bits−1) to unsigned, packed least-significant first along the row, rows padded to
/// whole words), `M.weight_scale` (the input's float dtype, [rows, groups]), `M.weight_zero_point`
/// when asymmetric (I32, packed along the output dimension) and `M.weight_shape` (I64); other
/// tensors keep their dtype. config.json gains `quantization_config`.
public enum CompressedTensorsLayout {
    /// The export's directory inside the output directory.
    public static let directory = "compressed-tensors"
    /// Its weights file, relative to the output directory.
    public static let filePath = directory + "/model.safetensors"

    /// Codes per 32-bit word.
    static func perWord(_ bits: Int) -> Int { 32 / bits }

    /// Scale groups per row: one (channel) or a row's groups.
    static func groupsPerRow(_ t: TensorInfo, _ q: QuantizeStage) -> Int {
        if case .group(let g) = q.granularity { return (t.shape.last ?? 0) / g }
        return 1
    }

    /// The dtype scales are stored in: the tensor's own float dtype.
    static func scaleDType(_ t: TensorInfo) -> DType { t.dtype.isFloat16Or32 ? t.dtype : .F32 }

    /// The module a quantized weight belongs to (`M` of `M.weight`).
    static func module(_ t: TensorInfo) -> String { String(t.name.dropLast(".weight".count)) }

    /// The safetensors entries `t` becomes.
    static func plan(_ t: TensorInfo, stage: QuantizeStage?) -> [(name: String, dtype: DType, shape: [Int])] {
        guard let q = stage, t.shape.count == 2 else { return [(t.name, t.dtype, t.shape)] }
        let m = module(t)
        let per = perWord(q.bits)
        let (rows, cols) = (t.shape[0], t.shape[1])
        var out: [(name: String, dtype: DType, shape: [Int])] = [
            (m + ".weight_packed", .I32, [rows, (cols + per - 1) / per]),
            (m + ".weight_scale", scaleDType(t), [rows, groupsPerRow(t, q)])
        ]
        if !q.symmetric {
            out.append((m + ".weight_zero_point", .I32, [(rows + per - 1) / per, groupsPerRow(t, q)]))
        }
        out.append((m + ".weight_shape", .I64, [2]))
        return out
    }

    /// Packed codes, scales, zero points and shape of one quantized tensor, concatenated in plan order.
    static func encode(_ t: TensorInfo, stage q: QuantizeStage, result r: RTNQuantizer.Result) -> [UInt8] {
        let (rows, cols) = (t.shape[0], t.shape[1])
        let groups = groupsPerRow(t, q)
        var out = [UInt8]()
        out.reserveCapacity(SafeTensorsWriter.byteCount(plan(t, stage: q)))
        let packed = packRows(r.codes, rows: rows, cols: cols, bits: q.bits)
        for w in packed { withUnsafeBytes(of: w.littleEndian) { out += $0 } }
        // A group Squeeze dequantizes to zeros (scale 0, or not finite) gets scale 0: the same values.
        let scales = r.scales.map { $0.isFinite ? $0 : 0 }
        var encoded = [UInt8](repeating: 0, count: scales.count * scaleDType(t).size)
        scales.withUnsafeBufferPointer { src in
            encoded.withUnsafeMutableBytes { DTypeCodec.encode(src, dtype: scaleDType(t), into: $0, threads: 1) }
        }
        out += encoded
        if !q.symmetric {
            for w in packColumns(r.zeros, rows: rows, cols: groups, bits: q.bits) {
                withUnsafeBytes(of: w.littleEndian) { out += $0 }
            }
        }
        for d in [rows, cols] { withUnsafeBytes(of: Int64(d).littleEndian) { out += $0 } }
        return out
    }

    /// Codes of a rows × cols matrix packed along each row, least-significant first (pack_to_int32, dim 1).
    static func packRows(_ codes: [UInt8], rows: Int, cols: Int, bits: Int) -> [UInt32] {
        let per = perWord(bits)
        let words = (cols + per - 1) / per
        var out = [UInt32](repeating: 0, count: rows * words)
        for r in 0..<rows {
            for c in 0..<cols {
                out[r * words + c / per] |= UInt32(codes[r * cols + c]) << UInt32(bits * (c % per))
            }
        }
        return out
    }

    /// Codes of a rows × cols matrix packed along each column (pack_to_int32, dim 0).
    static func packColumns(_ codes: [UInt8], rows: Int, cols: Int, bits: Int) -> [UInt32] {
        let per = perWord(bits)
        var out = [UInt32](repeating: 0, count: (rows + per - 1) / per * cols)
        for r in 0..<rows {
            for c in 0..<cols {
                out[r / per * cols + c] |= UInt32(codes[r * cols + c]) << UInt32(bits * (r % per))
            }
        }
        return out
    }

    /// The weights of linear layers: every 2-D `.weight` but embeddings (in a decoder, exactly its
    /// block linears and LM head; in BERT, its encoder linears and pooler).
    static func linearWeights(_ tensors: [TensorInfo]) -> Set<String> {
        let linear = tensors.filter {
            $0.shape.count == 2 && $0.name.hasSuffix(".weight") && !$0.name.lowercased().contains("embed")
        }
        return Set(linear.map(\.name))
    }

    /// compressed-tensors' `quantization_config`: one config group per distinct weight scheme,
    /// targeting its modules by name; `ignore` lists every other linear and the LM head.
    static func quantizationConfig(
        _ tensors: [TensorInfo], linears: Set<String>, stage: (TensorInfo) -> QuantizeStage?
    ) -> [String: Any] {
        var groups = [String: (weights: [String: Any], targets: [String])]()
        var ignore = Set<String>()
        for t in tensors where linears.contains(t.name) {
            guard let q = stage(t) else {
                ignore.insert(module(t))
                continue
            }
            let w = weights(q)
            let json = (try? JSONSerialization.data(withJSONObject: w, options: .sortedKeys)) ?? Data()
            let key = String(decoding: json, as: UTF8.self)
            groups[key, default: (w, [])].targets.append(module(t))
        }
        if !tensors.contains(where: { $0.name == LlamaNames.lmHead && stage($0) != nil }) { ignore.insert("lm_head") }
        var configGroups = [String: Any]()
        for (i, key) in groups.keys.sorted().enumerated() {
            let g = groups[key]!
            configGroups["group_\(i)"] = [
                "targets": g.targets.sorted(), "weights": g.weights, "input_activations": NSNull(),
                "output_activations": NSNull(), "format": "pack-quantized"
            ]
        }
        return [
            "quant_method": "compressed-tensors", "format": "pack-quantized", "quantization_status": "compressed",
            "config_groups": configGroups, "ignore": ignore.sorted(), "kv_cache_scheme": NSNull(),
            "global_compression_ratio": NSNull(), "sparsity_config": [String: Any](),
            "transform_config": [String: Any]()
        ]
    }

    /// A quantize stage as compressed-tensors' QuantizationArgs.
    static func weights(_ q: QuantizeStage) -> [String: Any] {
        var w: [String: Any] = [
            "num_bits": q.bits, "type": "int", "symmetric": q.symmetric, "dynamic": false,
            "observer": q.observer == .mse ? "mse" : "minmax", "observer_kwargs": [String: Any](),
            "block_structure": NSNull(), "group_size": NSNull(),
            // Act order keeps groups in stored column order (no g_idx): compressed-tensors' "weight" ordering.
            "actorder": q.actOrder ? "weight" : NSNull(), "scale_dtype": NSNull(),
            "zp_dtype": q.symmetric ? NSNull() : "torch.int8"
        ]
        switch q.granularity {
        case .group(let g):
            w["strategy"] = "group"
            w["group_size"] = g
        case .channel: w["strategy"] = "channel"
        case .tensor: w["strategy"] = "tensor"
        }
        return w
    }

    /// The input's config.json with `quantization_config` added (sorted keys, two-space indent).
    static func config(from original: Data, quantization: [String: Any], file: String) throws -> Data {
        guard var obj = (try? JSONSerialization.jsonObject(with: original)) as? [String: Any] else {
            throw ComputeError(.corruptData, "config.json is not a JSON object", file: file)
        }
        obj["quantization_config"] = quantization
        let data = try JSONSerialization.data(withJSONObject: obj, options: [.sortedKeys, .prettyPrinted])
        return data + Data("\n".utf8)
    }
}
