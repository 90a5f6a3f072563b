/// Converts tensor bytes between their stored dtype and F32 working buffers.
/// Exact for F32/F16/BF16 → F32 → same dtype (bit-identical round trip, NaN payloads aside).
public enum DTypeCodec {
    /// Decodes `src` (stored as `dtype`) into `dst` (count = numel).
    public static func decode(
        _ src: UnsafeRawBufferPointer, dtype: DType, into dst: UnsafeMutableBufferPointer<Float>, threads: Int
    ) {
        let ranges = Parallel.chunks(dst.count, chunk: 1 << 18)
        Parallel.forEach(ranges.count, threads: threads) { r in
            switch dtype {
            case .F32:
                for i in ranges[r] {
                    dst[i] = Float(bitPattern: src.loadUnaligned(fromByteOffset: i * 4, as: UInt32.self).littleEndian)
                }
            case .F16:
                for i in ranges[r] {
                    dst[i] = HalfConversion.f16ToF32(
                        src.loadUnaligned(fromByteOffset: i * 2, as: UInt16.self).littleEndian)
                }
            case .BF16:
                for i in ranges[r] {
                    dst[i] = HalfConversion.bf16ToF32(
                        src.loadUnaligned(fromByteOffset: i * 2, as: UInt16.self).littleEndian)
                }
            default:
                preconditionFailure("decode called for \(dtype)")
            }
        }
    }

    /// Encodes F32 values as `dtype` into `dst` (count = numel × dtype.size).
    public static func encode(
        _ src: UnsafeBufferPointer<Float>, dtype: DType, into dst: UnsafeMutableRawBufferPointer, threads: Int
    ) {
        let ranges = Parallel.chunks(src.count, chunk: 1 << 18)
        Parallel.forEach(ranges.count, threads: threads) { r in
            switch dtype {
            case .F32:
                for i in ranges[r] {
                    dst.storeBytes(of: src[i].bitPattern.littleEndian, toByteOffset: i * 4, as: UInt32.self)
                }
            case .F16:
                for i in ranges[r] {
                    dst.storeBytes(
                        of: HalfConversion.f32ToF16(src[i]).littleEndian, toByteOffset: i * 2, as: UInt16.self)
                }
            case .BF16:
                for i in ranges[r] {
                    dst.storeBytes(
                        of: HalfConversion.f32ToBF16(src[i]).littleEndian, toByteOffset: i * 2, as: UInt16.self)
                }
            default:
                preconditionFailure("encode called for \(dtype)")
            }
        }
    }

    /// Exact zeros (±0) in F32/F16/BF16 bytes; nil for other dtypes.
    public static func zeroCount(_ src: UnsafeRawBufferPointer, dtype: DType) -> Int? {
        let n = src.count / dtype.size
        var z = 0
        switch dtype {
        case .F32:
            for i in 0..<n where src.loadUnaligned(fromByteOffset: i * 4, as: UInt32.self) & 0x7FFF_FFFF == 0 { z += 1 }
        case .F16, .BF16:
            for i in 0..<n where src.loadUnaligned(fromByteOffset: i * 2, as: UInt16.self) & 0x7FFF == 0 { z += 1 }
        default: return nil
        }
        return z
    }
}

extension DTypeCodec {
    /// `values` in `dtype` (F32 as they are), handed to `body`: a decoded tensor as its file presents it.
    static func withEncoded<R>(_ values: [Float], as dtype: DType, _ body: (UnsafeRawBufferPointer) throws -> R)
        rethrows -> R
    {
        guard dtype != .F32 else { return try values.withUnsafeBytes(body) }
        var out = [UInt8](repeating: 0, count: values.count * dtype.size)
        values.withUnsafeBufferPointer { src in
            out.withUnsafeMutableBytes { encode(src, dtype: dtype, into: $0, threads: 1) }
        }
        return try out.withUnsafeBytes(body)
    }

    /// The bytes of `elements` within a whole tensor's bytes `raw` of `size`-byte values.
    static func slice(_ raw: UnsafeRawBufferPointer, elements: Range<Int>, size: Int) -> UnsafeRawBufferPointer {
        UnsafeRawBufferPointer(rebasing: raw[(elements.lowerBound * size)..<(elements.upperBound * size)])
    }
}
