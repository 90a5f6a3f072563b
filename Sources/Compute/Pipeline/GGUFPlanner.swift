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
            let cols = t.shape.last ?? 0
            if cols % wanted.block.count == 0 { return wanted }
            // A k-quant row that does not fill 256 values takes llama.cpp's legacy fallback
            // (Q4_K → Q5_0, Q5_K → Q5_1, Q6_K → Q8_0); Q2_K/Q3_K (IQ4_NL there) take `fallback`.
            let legacy = GGUFMix.fallback(wanted, cols: cols)
            return legacy != wanted && legacy != .f16 ? legacy : e.ggufFallback.ggml
        case .F64: return .f64
        case .I64, .U64: return .i64
        case .I32, .U32: return .i32
        case .I16, .U16: return .i16
        case .I8, .U8, .BOOL: return .i8
        }
    }

    /// Encodes F32 values as `type` (float and block types only).
    public static func encode(_ src: UnsafeBufferPointer<Float>, type: GGMLType, into dst: UnsafeMutableRawBufferPointer, threads: Int) {
        switch type {
        case .q8_0: GGMLQuantizer.quantizeQ8_0(src, into: dst, threads: threads)
        case .q4_0: GGMLQuantizer.quantizeQ4_0(src, into: dst, threads: threads)
        case .q4_1: GGMLQuantizer.quantizeQ4_1(src, into: dst, threads: threads)
        case .q5_0: GGMLQuantizer.quantizeQ5_0(src, into: dst, threads: threads)
        case .q5_1: GGMLQuantizer.quantizeQ5_1(src, into: dst, threads: threads)
        case .q2_K, .q3_K, .q4_K, .q5_K, .q6_K: GGMLQuantizer.quantizeK(type, src, into: dst, threads: threads)
        case .f16: DTypeCodec.encode(src, dtype: .F16, into: dst, threads: threads)
        case .bf16: DTypeCodec.encode(src, dtype: .BF16, into: dst, threads: threads)
        default: DTypeCodec.encode(src, dtype: .F32, into: dst, threads: threads)
        }
    }

    /// Decodes `type` back to F32 (for error metrics).
    public static func decode(_ src: UnsafeRawBufferPointer, type: GGMLType, into dst: UnsafeMutableBufferPointer<Float>) {
        switch type {
        case .q8_0: GGMLQuantizer.dequantizeQ8_0(src, count: dst.count, into: dst)
        case .q4_0: GGMLQuantizer.dequantizeQ4_0(src, count: dst.count, into: dst)
        case .q4_1: GGMLQuantizer.dequantizeQ4_1(src, count: dst.count, into: dst)
        case .q5_0: GGMLQuantizer.dequantizeQ5_0(src, count: dst.count, into: dst)
        case .q5_1: GGMLQuantizer.dequantizeQ5_1(src, count: dst.count, into: dst)
        case .q2_K, .q3_K, .q4_K, .q5_K, .q6_K: GGMLQuantizer.dequantizeK(type, src, count: dst.count, into: dst)
        case .f16: DTypeCodec.decode(src, dtype: .F16, into: dst, threads: 1)
        case .bf16: DTypeCodec.decode(src, dtype: .BF16, into: dst, threads: 1)
        default: DTypeCodec.decode(src, dtype: .F32, into: dst, threads: 1)
        }
    }
}
