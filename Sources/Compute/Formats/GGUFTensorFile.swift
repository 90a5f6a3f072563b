import Foundation

/// A Llama GGUF presented to the pipeline as a Hugging Face model: tensors under HF names and
/// shapes, F32/F16/BF16 data as stored, Q8_0/Q4_0/Q4_1/Q5_0 decoded to F32, and Q/K rows
/// un-permuted from llama.cpp's interleaved order back to rotate-half.
public final class GGUFTensorFile: TensorFile, @unchecked Sendable {
    public let reader: GGUFReader
    public let config: LlamaConfig
    public let tensors: [TensorInfo]
    /// The GGUF tensor behind each HF tensor name.
    private let source: [String: GGUFReader.Tensor]
    /// Metadata by key.
    public let meta: [String: GGUFValue]
    /// Tensors stored in a quantized type, decoded to F32 on reading ("blk.0.attn_q.weight: Q4_1").
    public let quantizedTensors: [String]

    public var path: String { reader.path }
    public var metadata: [String: String] { [:] }
    public var fileSize: Int { reader.fileSize }
    public var hashPrefix: [UInt8]? { nil }

    public init(path: String) throws {
        reader = try GGUFReader(path: path)
        meta = Dictionary(reader.metadata, uniquingKeysWith: { a, _ in a })
        let names = Set(reader.tensors.map(\.name))
        config = try LlamaConfig(gguf: meta, tensorNames: names, file: path)
        var infos = [TensorInfo](), src = [String: GGUFReader.Tensor](), quantized = [String]()
        var offset = 0
        for t in reader.tensors {
            guard let hf = LlamaNames.hf(t.name) else {
                throw ComputeError(
                    .corruptHeader, "\(TextRules.printable(t.name)) is not a tensor of a Llama model", file: path)
            }
            guard t.type.traits.decode != nil else {
                throw ComputeError(
                    .unsupportedDType, "type \(t.type.name) cannot be read (\(GGMLTypeTraits.readableNames) can)",
                    file: path, tensor: t.name)
            }
            let dtype: DType = t.type == .f16 ? .F16 : t.type == .bf16 ? .BF16 : .F32
            if t.type != .f32 && t.type != .f16 && t.type != .bf16 { quantized.append("\(t.name): \(t.type.name)") }
            let bytes = t.numel * dtype.size
            infos.append(
                TensorInfo(name: hf, dtype: dtype, shape: t.dims.reversed(), begin: offset, end: offset + bytes))
            offset += bytes
            src[hf] = t
        }
        tensors = infos
        source = src
        quantizedTensors = quantized
    }

    /// Plain (F32/F16/BF16) tensors in GGUF row order are handed over as read; others are decoded
    /// to F32 and Q/K rows permuted back to the Hugging Face order first.
    public func withData<R>(_ t: TensorInfo, _ body: (UnsafeRawBufferPointer) throws -> R) throws -> R {
        guard let g = source[t.name] else { throw ComputeError(.notFound, "no tensor \(t.name)", file: path) }
        let heads = LlamaNames.permutedHeads(t.name, config).flatMap { t.shape[0] % (2 * $0) == 0 ? $0 : nil }
        return try reader.withData(g) { raw in
            if g.type.block.count == 1 && heads == nil {
                return try body(UnsafeRawBufferPointer(rebasing: raw[0..<t.byteCount]))
            }
            let out = UnsafeMutableRawBufferPointer.allocate(byteCount: max(t.byteCount, 1), alignment: 64)
            defer { out.deallocate() }
            let dst = UnsafeMutableRawBufferPointer(rebasing: out[0..<t.byteCount])
            guard let heads else {
                Self.decode(raw, type: g.type, count: t.numel, into: dst)
                return try body(UnsafeRawBufferPointer(dst))
            }
            var rows = UnsafeRawBufferPointer(rebasing: raw[0..<min(raw.count, t.byteCount)])
            var tmp: UnsafeMutableRawBufferPointer?
            defer { tmp?.deallocate() }
            if g.type.block.count > 1 {
                tmp = UnsafeMutableRawBufferPointer.allocate(byteCount: max(t.byteCount, 1), alignment: 64)
                Self.decode(
                    raw, type: g.type, count: t.numel,
                    into: UnsafeMutableRawBufferPointer(rebasing: tmp![0..<t.byteCount]))
                rows = UnsafeRawBufferPointer(rebasing: tmp![0..<t.byteCount])
            }
            LlamaNames.permuteRows(rows, into: dst, rows: t.shape[0], heads: heads, toGGUF: false)
            return try body(UnsafeRawBufferPointer(dst))
        }
    }

    /// Whether `withData(_:elements:)` reads rows of `width` elements of `t` alone (whole blocks
    /// in GGUF order), not from the whole tensor.
    public func readsRowsAlone(_ t: TensorInfo, width: Int) -> Bool {
        guard let g = unpermuted(t), width > 0 else { return false }
        return width % g.type.block.count == 0
    }

    /// The stored tensor of `t` when its rows are in the same order in the file as in `t`.
    private func unpermuted(_ t: TensorInfo) -> GGUFReader.Tensor? {
        LlamaNames.permutedHeads(t.name, config) == nil ? source[t.name] : nil
    }

    /// Whole blocks of a tensor stored in GGUF order are read (and decoded) alone; other ranges
    /// come from the whole tensor.
    public func withData<R>(_ t: TensorInfo, elements: Range<Int>, _ body: (UnsafeRawBufferPointer) throws -> R) throws
        -> R
    {
        let size = t.dtype.size
        if let g = unpermuted(t), elements.upperBound <= t.numel, elements.lowerBound % g.type.block.count == 0,
            elements.upperBound % g.type.block.count == 0
        {
            let (count, bytes) = g.type.block
            let range = (elements.lowerBound / count * bytes)..<(elements.upperBound / count * bytes)
            return try reader.withData(g, bytes: range) { raw in
                if count == 1 { return try body(raw) }
                let out = UnsafeMutableRawBufferPointer.allocate(
                    byteCount: max(elements.count * size, 1), alignment: 64)
                defer { out.deallocate() }
                let dst = UnsafeMutableRawBufferPointer(rebasing: out[0..<(elements.count * size)])
                Self.decode(raw, type: g.type, count: elements.count, into: dst)
                return try body(UnsafeRawBufferPointer(dst))
            }
        }
        return try withData(t) {
            try body(UnsafeRawBufferPointer(rebasing: $0[(elements.lowerBound * size)..<(elements.upperBound * size)]))
        }
    }

    public func hash(into h: inout SHA256, checkContinue: () throws -> Void) throws {
        try reader.forEachChunk { chunk in
            try checkContinue()
            h.update(chunk)
        }
    }

    public func checkUnchanged() throws { try reader.checkUnchanged() }

    /// Plain types are copied; block types are decoded to F32.
    static func decode(
        _ raw: UnsafeRawBufferPointer, type: GGMLType, count: Int, into dst: UnsafeMutableRawBufferPointer
    ) {
        if type.block.count == 1 {
            dst.copyMemory(from: UnsafeRawBufferPointer(rebasing: raw[0..<dst.count]))
        } else {
            let f = dst.bindMemory(to: Float.self)
            GGUFPlanner.decode(raw, type: type, into: UnsafeMutableBufferPointer(rebasing: f[0..<count]))
        }
    }
}
