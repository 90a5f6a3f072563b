/// Which ggml type each tensor takes in a GGUF export, and the conversions to and from it.
public enum GGUFPlanner {
    /// Float matrices (2-D or more) with rows a multiple of the type's block take the export's type; other float
    /// tensors take the fallback (f32/f16); integer tensors keep their width (unsigned stored as
    /// the signed type of the same width, bit for bit; BOOL and U8 as I8).
    public static func type(for t: TensorInfo, export e: ExportStage) -> GGMLType {
        switch t.dtype {
        case .F32, .F16, .BF16:
            let wanted = e.ggufType.ggml
            if wanted.block.count == 1 { return wanted }
            guard t.shape.count >= 2 else { return e.ggufFallback.ggml }
            // A row that does not fill 256 values takes llama.cpp's fallback (Q2_K, Q3_K, IQ4_XS →
            // IQ4_NL, Q4_K → Q5_0, Q5_K → Q5_1, Q6_K → Q8_0), else the export's `fallback`.
            let fitting = GGUFMix.rowType(wanted, cols: t.shape.last ?? 0, export: e)
            return fitting == .f16 ? e.ggufFallback.ggml : fitting
        case .F64: return .f64
        case .I64, .U64: return .i64
        case .I32, .U32: return .i32
        case .I16, .U16: return .i16
        case .I8, .U8, .BOOL: return .i8
        }
    }

    /// Encodes F32 values as `type` (float and block types only; other types as F32); with
    /// `importance` (one value per column) the block types that use one minimise the
    /// importance-weighted error, as llama-quantize does with `--imatrix`.
    public static func encode(
        _ src: UnsafeBufferPointer<Float>, type: GGMLType, into dst: UnsafeMutableRawBufferPointer,
        importance: UnsafeBufferPointer<Float>? = nil, threads: Int
    ) {
        if let importance, type.traits.usesImportance {
            GGMLQuantizer.quantize(type, src, importance: importance, into: dst, threads: threads)
            return
        }
        (type.traits.encode ?? GGMLType.f32.traits.encode!)(src, dst, threads)
    }

    /// `encode` with the importance, when there is one, as an array.
    static func encode(
        _ src: UnsafeBufferPointer<Float>, type: GGMLType, into dst: UnsafeMutableRawBufferPointer,
        importance: [Float]?, threads: Int
    ) {
        guard let importance else { return encode(src, type: type, into: dst, threads: threads) }
        importance.withUnsafeBufferPointer { encode(src, type: type, into: dst, importance: $0, threads: threads) }
    }

    /// The first k-quant block of `bytes` (encoded as `type`) whose fp16 scale or min is infinite or
    /// NaN — values too large for the type's range; llama.cpp refuses to write such a row. nil: none.
    static func firstOverflowingBlock(_ bytes: UnsafeRawBufferPointer, type: GGMLType) -> Int? {
        let offsets = type.traits.scaleOffsets, size = type.block.bytes
        guard !offsets.isEmpty else { return nil }
        for b in 0..<(bytes.count / size) {
            for o in offsets
            where UInt16(littleEndian: bytes.loadUnaligned(fromByteOffset: b * size + o, as: UInt16.self)) & 0x7C00
                == 0x7C00
            {
                return b
            }
        }
        return nil
    }

    /// Decodes `type` back to F32 (for error metrics; types Squeeze does not read as F32).
    public static func decode(
        _ src: UnsafeRawBufferPointer, type: GGMLType, into dst: UnsafeMutableBufferPointer<Float>
    ) {
        (type.traits.decode ?? GGMLType.f32.traits.decode!)(src, dst)
    }
}
