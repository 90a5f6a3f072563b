/// One ggml type's facts, as ggml's type-traits table holds them (`ggml_get_type_traits`): block
/// shape, the quantizer and dequantizer Squeeze runs for it, its importance-weighted row quantizer,
/// where its fp16 scales sit and llama.cpp's type for rows that cannot fill its blocks. Every
/// caller reads this record instead of switching on the type; a new type adds a record.
public struct GGMLTypeTraits: Sendable {
    /// F32 values → the type's bytes, over `threads` (the same bytes for any thread count).
    public typealias Encode =
        @Sendable (UnsafeBufferPointer<Float>, UnsafeMutableRawBufferPointer, _ threads: Int) -> Void
    /// The type's bytes → F32 values (dst.count values).
    public typealias Decode = @Sendable (UnsafeRawBufferPointer, UnsafeMutableBufferPointer<Float>) -> Void
    /// One row of n values (a multiple of the block) with its columns' importance, into the row's
    /// bytes; the last pointer is 32 floats of scratch.
    typealias WeightedRow =
        @Sendable (
            UnsafePointer<Float>, _ n: Int, _ importance: UnsafePointer<Float>,
            UnsafeMutablePointer<Float>, UnsafeMutableRawPointer
        ) -> Void

    public let type: GGMLType
    /// Values per block (1 for plain types).
    public let blockCount: Int
    /// Bytes per block (the element size for plain types).
    public let blockBytes: Int
    /// nil: Squeeze writes no tensor of this type.
    public let encode: Encode?
    /// nil: Squeeze reads no tensor of this type.
    public let decode: Decode?
    /// The importance-weighted quantizer (llama-quantize `--imatrix`); nil: the type ignores importance.
    let weightedRow: WeightedRow?
    /// Offsets of the fp16 block scales and mins that llama.cpp checks for overflow (k-quants, IQ4; empty elsewhere).
    public let scaleOffsets: [Int]
    /// llama.cpp's type for a row that cannot fill this type's blocks (`llama_tensor_get_type`'s
    /// fallback for k-quants and IQ4_XS); nil: the export's `fallback` type.
    public let rowFallback: GGMLType?
    /// Whether blocks store a minimum beside the scale (values between min and max, not ±max).
    public var hasMin = false

    /// Whether an importance matrix steers this type's quantizer.
    public var usesImportance: Bool { weightedRow != nil }

    /// Bytes of one row of `n` values; nil when the row does not fill whole blocks.
    public func rowBytes(_ n: Int) -> Int? { n % blockCount == 0 ? n / blockCount * blockBytes : nil }

    /// The types Squeeze reads (GGUF inputs), by name, for messages.
    public static var readableNames: String {
        GGMLType.allCases.filter { $0.traits.decode != nil }.map(\.name).joined(separator: ", ")
    }
}

extension GGMLType {
    /// This type's record in the table.
    public var traits: GGMLTypeTraits { GGMLTypeTraits.table[Int(rawValue)]! }
}

extension GGMLTypeTraits {
    /// Records by on-disk id.
    static let table: [Int: GGMLTypeTraits] = Dictionary(
        uniqueKeysWithValues: records.map { (Int($0.type.rawValue), $0) })

    private static func plain(_ t: GGMLType, _ bytes: Int, _ dtype: DType?) -> GGMLTypeTraits {
        GGMLTypeTraits(
            type: t, blockCount: 1, blockBytes: bytes,
            encode: dtype.map { d in
                { src, dst, threads in DTypeCodec.encode(src, dtype: d, into: dst, threads: threads) }
            },
            decode: dtype.map { d in { src, dst in DTypeCodec.decode(src, dtype: d, into: dst, threads: 1) } },
            weightedRow: nil, scaleOffsets: [], rowFallback: nil)
    }

    private static func legacy(
        _ t: GGMLType, _ bytes: Int, _ encode: @escaping Encode, _ decode: @escaping Decode,
        weighted: Bool, min: Bool = false
    ) -> GGMLTypeTraits {
        var row: WeightedRow?
        if weighted {
            row = { x, n, qw, w, out in GGMLQuantizer.legacyRow(t, x, n, qw, w, out) }
        }
        return GGMLTypeTraits(
            type: t, blockCount: 32, blockBytes: bytes, encode: encode, decode: decode, weightedRow: row,
            scaleOffsets: [], rowFallback: nil, hasMin: min)
    }

    private static func kQuant(
        _ t: GGMLType, _ bytes: Int, scales: [Int], fallback: GGMLType?, min: Bool = false,
        _ block: @escaping @Sendable (UnsafePointer<Float>, UnsafePointer<Float>, UnsafeMutableRawPointer) -> Void
    )
        -> GGMLTypeTraits
    {
        GGMLTypeTraits(
            type: t, blockCount: 256, blockBytes: bytes,
            encode: { src, dst, threads in GGMLQuantizer.quantizeK(t, src, into: dst, threads: threads) },
            decode: { src, dst in GGMLQuantizer.dequantizeK(t, src, count: dst.count, into: dst) },
            weightedRow: { x, n, qw, _, out in
                for b in 0..<(n / 256) { block(x + b * 256, qw + b * 256, out + b * bytes) }
            },
            scaleOffsets: scales, rowFallback: fallback, hasMin: min)
    }

    /// IQ4_NL / IQ4_XS: the non-linear grid with one fp16 scale at the block's start.
    private static func iq4(_ t: GGMLType, _ count: Int, _ bytes: Int, fallback: GGMLType?) -> GGMLTypeTraits {
        GGMLTypeTraits(
            type: t, blockCount: count, blockBytes: bytes,
            encode: { src, dst, threads in GGMLQuantizer.quantizeIQ4(t, src, into: dst, threads: threads) },
            decode: { src, dst in GGMLQuantizer.dequantizeIQ4(src, size: count, count: dst.count, into: dst) },
            weightedRow: { x, n, qw, _, out in GGMLQuantizer.iq4Row(t, x, n, qw, out) },
            scaleOffsets: [0], rowFallback: fallback)
    }

    private static let records: [GGMLTypeTraits] = [
        plain(.f32, 4, .F32), plain(.f16, 2, .F16), plain(.bf16, 2, .BF16),
        plain(.f64, 8, nil), plain(.i8, 1, nil), plain(.i16, 2, nil), plain(.i32, 4, nil), plain(.i64, 8, nil),
        legacy(
            .q4_0, 18, { GGMLQuantizer.quantizeQ4_0($0, into: $1, threads: $2) },
            { GGMLQuantizer.dequantizeQ4_0($0, count: $1.count, into: $1) }, weighted: true),
        legacy(
            .q4_1, 20, { GGMLQuantizer.quantizeQ4_1($0, into: $1, threads: $2) },
            { GGMLQuantizer.dequantizeQ4_1($0, count: $1.count, into: $1) }, weighted: true, min: true),
        legacy(
            .q5_0, 22, { GGMLQuantizer.quantizeQ5_0($0, into: $1, threads: $2) },
            { GGMLQuantizer.dequantizeQ5_0($0, count: $1.count, into: $1) }, weighted: true),
        legacy(
            .q5_1, 24, { GGMLQuantizer.quantizeQ5_1($0, into: $1, threads: $2) },
            { GGMLQuantizer.dequantizeQ5_1($0, count: $1.count, into: $1) }, weighted: true, min: true),
        legacy(
            .q8_0, 34, { GGMLQuantizer.quantizeQ8_0($0, into: $1, threads: $2) },
            { GGMLQuantizer.dequantizeQ8_0($0, count: $1.count, into: $1) }, weighted: false),
        GGMLTypeTraits(
            type: .q8_1, blockCount: 32, blockBytes: 36, encode: nil, decode: nil, weightedRow: nil,
            scaleOffsets: [], rowFallback: nil),
        kQuant(.q2_K, 84, scales: [80, 82], fallback: .iq4_nl, min: true) { GGMLQuantizer.q2KImportance($0, $1, $2) },
        kQuant(.q3_K, 110, scales: [108], fallback: .iq4_nl) { GGMLQuantizer.q3KImportance($0, $1, $2) },
        kQuant(.q4_K, 144, scales: [0, 2], fallback: .q5_0, min: true) {
            GGMLQuantizer.q45KImportance($0, $1, $2, nmax: 15)
        },
        kQuant(.q5_K, 176, scales: [0, 2], fallback: .q5_1, min: true) {
            GGMLQuantizer.q45KImportance($0, $1, $2, nmax: 31)
        },
        kQuant(.q6_K, 210, scales: [208], fallback: .q8_0) { GGMLQuantizer.q6KImportance($0, $1, $2) },
        iq4(.iq4_nl, 32, 18, fallback: nil),
        iq4(.iq4_xs, 256, 136, fallback: .iq4_nl)
    ]
}
