import Foundation

/// A compressed-tensors `pack-quantized` safetensors file (Squeeze's `compressed-tensors` export,
/// llm-compressor's output) presented as the dense model it stands for: each module's
/// `weight_packed`, `weight_scale`, `weight_zero_point` and `weight_shape` read as `M.weight`,
/// (q − zero point) × scale in F32, stored in the scale's dtype — what compressed-tensors'
/// decompressor hands transformers; every other tensor as stored.
public final class CompressedTensorsFile: TensorFile, @unchecked Sendable {
    /// One config group's weight scheme.
    struct Scheme: Equatable, Sendable {
        var bits: Int
        var symmetric: Bool
        /// nil: one scale per row (channel strategy).
        var groupSize: Int?
    }

    /// `quantization_config` of a compressed-tensors config.json.
    public struct Config: Sendable {
        var groups: [(targets: [String], scheme: Scheme)]

        /// The config of the config.json at `path`; nil when it is not a JSON object with a
        /// compressed-tensors `quantization_config`.
        public static func read(configFile path: String) throws -> Config? {
            let f = try InputFile(path: path, what: "config.json")
            guard f.size <= 16 << 20 else { return nil }
            let data = Data(try f.read(at: 0, count: f.size))
            guard let json = try? JSONSerialization.jsonObject(with: data) as? [String: Any] else { return nil }
            return try read(json, file: path)
        }

        /// The config in a parsed config.json.
        static func read(_ json: [String: Any], file: String) throws -> Config? {
            guard let q = json["quantization_config"] as? [String: Any],
                q["quant_method"] as? String == "compressed-tensors"
            else { return nil }
            guard q["format"] as? String == "pack-quantized" else {
                throw ComputeError(
                    .unsupportedModel,
                    "compressed-tensors format \(TextRules.display("\(q["format"] ?? "none")")) cannot be read "
                        + "(pack-quantized can)", file: file)
            }
            var groups = [(targets: [String], scheme: Scheme)]()
            for (name, g) in (q["config_groups"] as? [String: Any] ?? [:]).sorted(by: { $0.key < $1.key }) {
                guard let g = g as? [String: Any], let targets = g["targets"] as? [String],
                    let w = g["weights"] as? [String: Any], let bits = w["num_bits"] as? Int, (2...8).contains(bits),
                    w["type"] as? String ?? "int" == "int"
                else {
                    throw ComputeError(
                        .unsupportedModel,
                        "config group \(TextRules.display(name)): weights must be integers of 2 to 8 bits", file: file)
                }
                let strategy = w["strategy"] as? String ?? "tensor"
                let size = w["group_size"] as? Int
                guard strategy == "channel" || (strategy == "group" && (size ?? 0) > 0) else {
                    throw ComputeError(
                        .unsupportedModel,
                        "config group \(TextRules.display(name)): strategy \(TextRules.display(strategy)) cannot be "
                            + "read (channel or group can)", file: file)
                }
                let scheme = Scheme(
                    bits: bits, symmetric: w["symmetric"] as? Bool ?? true, groupSize: strategy == "group" ? size : nil)
                groups.append((targets, scheme))
            }
            guard !groups.isEmpty else {
                throw ComputeError(.unsupportedModel, "quantization_config has no config_groups", file: file)
            }
            return Config(groups: groups)
        }

        /// The scheme of module `m`: a group naming it, matching it by `re:` pattern, or targeting `Linear`.
        func scheme(for m: String) -> Scheme? {
            func hit(_ t: String) -> Bool {
                if t == m { return true }
                guard t.hasPrefix("re:"), let re = try? NSRegularExpression(pattern: String(t.dropFirst(3))) else {
                    return false
                }
                return re.firstMatch(in: m, range: NSRange(m.startIndex..., in: m))?.range.location == 0
            }
            return groups.first { $0.targets.contains(where: hit) }?.scheme
                ?? groups.first { $0.targets.contains("Linear") }?.scheme
        }
    }

    /// Where one quantized module's parts are and what they decode to.
    struct Packed {
        var packed: TensorInfo
        var scale: TensorInfo
        var zero: TensorInfo?
        var rows: Int
        var cols: Int
        var scheme: Scheme
    }

    let reader: SafeTensorsReader
    /// The file's own tensors by name.
    private let stored: [String: TensorInfo]
    public let tensors: [TensorInfo]
    private let packedByWeight: [String: Packed]
    public let quantizedTensors: [String]

    public var path: String { reader.path }
    public var metadata: [String: String] { reader.metadata }
    public var fileSize: Int { reader.fileSize }
    public var hashPrefix: [UInt8]? { nil }

    public init(path: String, config: Config) throws {
        reader = try SafeTensorsReader(path: path)
        stored = Dictionary(reader.tensors.map { ($0.name, $0) }, uniquingKeysWith: { a, _ in a })
        var byWeight = [String: Packed]()
        var parts = Set<String>()
        for t in reader.tensors where t.name.hasSuffix(".weight_packed") {
            let m = String(t.name.dropLast(".weight_packed".count))
            guard let scheme = config.scheme(for: m) else {
                throw ComputeError(.corruptHeader, "no config group targets module \(m)", file: path, tensor: t.name)
            }
            let p = try Self.packed(m, t, scheme: scheme, stored: stored, reader: reader, file: path)
            byWeight[m + ".weight"] = p
            parts.formUnion([".weight_packed", ".weight_scale", ".weight_zero_point", ".weight_shape"].map { m + $0 })
        }
        var infos = [TensorInfo]()
        var quantized = [String]()
        var offset = 0
        for t in reader.tensors where !parts.contains(t.name) || t.name.hasSuffix(".weight_packed") {
            var info = t
            if let p = byWeight[String(t.name.dropLast("_packed".count))], t.name.hasSuffix(".weight_packed") {
                let name = String(t.name.dropLast("_packed".count))
                guard stored[name] == nil else {
                    throw ComputeError(.corruptHeader, "holds both \(name) and its packed form", file: path)
                }
                info = TensorInfo(name: name, dtype: p.scale.dtype, shape: [p.rows, p.cols], begin: 0, end: 0)
                let g = p.scheme.groupSize.map { "group \($0)" } ?? "channel"
                quantized.append("\(name): int\(p.scheme.bits) \(p.scheme.symmetric ? "symmetric" : "asymmetric") \(g)")
            }
            let bytes = info.numel * info.dtype.size
            infos.append(
                TensorInfo(name: info.name, dtype: info.dtype, shape: info.shape, begin: offset, end: offset + bytes))
            offset += bytes
        }
        tensors = infos
        packedByWeight = byWeight
        quantizedTensors = quantized
    }

    /// Checks one module's parts against its scheme and its `weight_shape`.
    private static func packed(
        _ m: String, _ t: TensorInfo, scheme s: Scheme, stored: [String: TensorInfo], reader: SafeTensorsReader,
        file: String
    ) throws -> Packed {
        func bad(_ why: String) -> ComputeError { ComputeError(.corruptHeader, why, file: file, tensor: m) }
        guard let shapeT = stored[m + ".weight_shape"], shapeT.dtype == .I64 || shapeT.dtype == .I32,
            shapeT.numel == 2, let scale = stored[m + ".weight_scale"], scale.dtype.isFloat16Or32
        else { throw bad("needs weight_scale (float) and weight_shape (2 integers) beside weight_packed") }
        let dims: [Int] = try reader.withData(shapeT) { raw in
            shapeT.dtype == .I64
                ? (0..<2).map { Int(Int64(littleEndian: raw.loadUnaligned(fromByteOffset: 8 * $0, as: Int64.self))) }
                : (0..<2).map { Int(Int32(littleEndian: raw.loadUnaligned(fromByteOffset: 4 * $0, as: Int32.self))) }
        }
        let (rows, cols) = (dims[0], dims[1])
        let per = 32 / s.bits
        let groups = s.groupSize.map { cols / $0 } ?? 1
        guard rows > 0, cols > 0, rows <= 1 << 24, cols <= 1 << 24, s.groupSize.map({ cols % $0 == 0 }) ?? true,
            t.dtype == .I32, t.shape == [rows, (cols + per - 1) / per], scale.shape == [rows, groups]
        else {
            throw bad(
                "weight_packed \(t.shape) / weight_scale \(scale.shape) do not fit weight_shape [\(rows), \(cols)] "
                    + "at \(s.bits) bits\(s.groupSize.map { ", groups of \($0)" } ?? "")")
        }
        let zero = stored[m + ".weight_zero_point"]
        if s.symmetric != (zero == nil) {
            throw bad(s.symmetric ? "symmetric but has weight_zero_point" : "asymmetric but has no weight_zero_point")
        }
        if let z = zero, z.dtype != .I32 || z.shape != [(rows + per - 1) / per, groups] {
            throw bad("weight_zero_point \(z.shape) does not fit [\((rows + per - 1) / per), \(groups)]")
        }
        return Packed(packed: t, scale: scale, zero: zero, rows: rows, cols: cols, scheme: s)
    }

    public func withData<R>(_ t: TensorInfo, _ body: (UnsafeRawBufferPointer) throws -> R) throws -> R {
        guard let p = packedByWeight[t.name] else {
            guard let s = stored[t.name] else {
                throw ComputeError(.notFound, "no tensor \(t.name)", file: path)
            }
            return try reader.withData(s, body)
        }
        var values = [Float](repeating: 0, count: p.rows * p.cols)
        try dequantize(p, into: &values)
        return try DTypeCodec.withEncoded(values, as: p.scale.dtype, body)
    }

    public func withData<R>(_ t: TensorInfo, elements: Range<Int>, _ body: (UnsafeRawBufferPointer) throws -> R) throws
        -> R
    {
        try withData(t) { try body(DTypeCodec.slice($0, elements: elements, size: t.dtype.size)) }
    }

    /// (q − zero point) × scale in F32 for every value of one module.
    private func dequantize(_ p: Packed, into out: inout [Float]) throws {
        let bits = p.scheme.bits, per = 32 / bits, mask = UInt32((1 << bits) - 1), offset = 1 << (bits - 1)
        let words = (p.cols + per - 1) / per
        let groups = p.scheme.groupSize.map { p.cols / $0 } ?? 1
        let size = p.cols / groups
        var scales = [Float](repeating: 0, count: p.rows * groups)
        try reader.withData(p.scale) { raw in
            scales.withUnsafeMutableBufferPointer { DTypeCodec.decode(raw, dtype: p.scale.dtype, into: $0, threads: 1) }
        }
        var zeros = [Float](repeating: 0, count: p.rows * groups)
        if let z = p.zero {
            try reader.withData(z) { raw in
                for r in 0..<p.rows {
                    for g in 0..<groups {
                        let w = UInt32(
                            littleEndian: raw.loadUnaligned(
                                fromByteOffset: 4 * ((r / per) * groups + g), as: UInt32.self))
                        zeros[r * groups + g] = Float(Int((w >> UInt32(bits * (r % per))) & mask) - offset)
                    }
                }
            }
        }
        try reader.withData(p.packed) { raw in
            for r in 0..<p.rows {
                for c in 0..<p.cols {
                    let w = UInt32(
                        littleEndian: raw.loadUnaligned(fromByteOffset: 4 * (r * words + c / per), as: UInt32.self))
                    let q = Float(Int((w >> UInt32(bits * (c % per))) & mask) - offset)
                    let g = r * groups + c / size
                    out[r * p.cols + c] = (q - zeros[g]) * scales[g]
                }
            }
        }
    }

    /// The safetensors file's bytes, as stored.
    public func hash(into h: inout SHA256, checkContinue: () throws -> Void) throws {
        try reader.hash(into: &h, checkContinue: checkContinue)
    }

    public func checkUnchanged() throws { try reader.checkUnchanged() }
}
