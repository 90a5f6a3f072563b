import Foundation

extension ExportStage: StageOptions {
    /// Each format's keys besides `format`: safetensors converts dtypes, gguf picks types and
    /// quantization aids, compressed and compressed-tensors have none.
    static let formatKeys: [Format: [String]] = [
        .safetensors: ["dtype"],
        .gguf: [
            "type", "fallback", "tensor_types", "output_type", "embedding_type", "pure", "allow_fallback", "imatrix",
            "gptq", "budget", "bpw", "learned_rounding"
        ],
        .compressed: [],
        .compressedTensors: []
    ]
    public static let keys = ["format"] + Format.allCases.flatMap { formatKeys[$0] ?? [] }

    public init(from decoder: Decoder) throws {
        let head = try OptionReader(decoder, allowed: nil)
        let format = try head.choice("format", Format.self) ?? .safetensors
        let others = Format.allCases.filter { $0 != format }.map { ($0.rawValue, Self.formatKeys[$0] ?? []) }
        let elsewhere = OptionReader.owners(others, kind: "format")
        let r = try OptionReader(
            decoder, allowed: ["format"] + (Self.formatKeys[format] ?? []), elsewhere: elsewhere,
            owner: "format \(format.rawValue)")
        self.init(format: format)
        switch format {
        case .safetensors:
            if let ds = try r.string("dtype") {
                guard let d = DType(rawValue: ds.uppercased()), d.isFloat16Or32 else {
                    throw RecipeError(r.at("dtype"), "\(ds) is not one of F32, F16, BF16")
                }
                dtype = d
            }
        case .gguf: try readGGUF(r)
        case .compressed, .compressedTensors: break
        }
    }

    /// The gguf format's options.
    private mutating func readGGUF(_ r: OptionReader) throws {
        ggufType = try Self.ggufType(r, "type", mixes: true) ?? .q8_0
        ggufFallback = try Self.ggufType(r, "fallback", mixes: false) ?? .f32
        guard ggufFallback == .f32 || ggufFallback == .f16 else {
            throw RecipeError(r.at("fallback"), "\(ggufFallback.rawValue) is not one of f32, f16")
        }
        let overrides = try r.nested(
            "tensor_types", [String: String].self, "must be a mapping of glob patterns to types")
        for (pattern, name) in overrides ?? [:] {
            let at = "\(r.at("tensor_types")).\(TextRules.display(pattern))"
            guard !pattern.isEmpty else { throw RecipeError(at, "a pattern must not be empty") }
            tensorTypes[try OptionReader.noNUL(pattern, at: at)] = try Self.ggufType(name, at: at, mixes: false)
        }
        outputType = try Self.ggufType(r, "output_type", mixes: false)
        embeddingType = try Self.ggufType(r, "embedding_type", mixes: false)
        pure = try r.flag("pure") ?? false
        allowFallback = try r.flag("allow_fallback") ?? true
        errorFeedback = try r.flag("gptq") ?? false
        learnedRounding = try FlexRound.Options.read(r)
        switch try r.nested("imatrix", FlagOrText.self, "must be true, false, an imatrix file path or {job: KEY}") {
        case .flag(true)?: importance = .calibration
        case .text(let p)?:
            guard !p.isEmpty else { throw RecipeError(r.at("imatrix"), "must not be empty (true, or an imatrix file)") }
            importance = .file(try OptionReader.noNUL(p, at: r.at("imatrix")))
        case .job(let k)?:
            guard !k.isEmpty else { throw RecipeError(r.at("imatrix.job"), "must not be empty (a job's key)") }
            importance = .job(try OptionReader.noNUL(k, at: r.at("imatrix.job")))
        default: break
        }
        try readBudget(r)
        if pure && !ggufType.isMix {
            let mixes = GGUFType.allCases.filter(\.isMix).map(\.rawValue).joined(separator: ", ")
            throw RecipeError(
                r.at("pure"), "only applies to a mix (\(mixes)); \(ggufType.rawValue) is one type already")
        }
    }

    /// `budget: 90MB` (a size as `--max-memory` reads it, or bytes) or `bpw: 4.25`, instead of `type`.
    private mutating func readBudget(_ r: OptionReader) throws {
        var bytes: Int64?
        switch try r.nested("budget", SizeText.self, "must be a size: bytes, or a number with K, M, G (90MB)") {
        case .bytes(let b)?:
            guard b > 0 else { throw RecipeError(r.at("budget"), "\(b) is not a positive size") }
            bytes = b
        case .text(let t)?:
            guard let b = ByteSizeText.bytes(t) else {
                throw RecipeError(r.at("budget"), "\(TextRules.display(t)) is not a size (90MB, 1.5G, or bytes)")
            }
            bytes = b
        case nil: break
        }
        let bpw = try r.number("bpw")
        guard bytes != nil || bpw != nil else { return }
        let key = bytes != nil ? "budget" : "bpw"
        if bytes != nil && bpw != nil { throw RecipeError(r.at("bpw"), "give budget or bpw, not both") }
        for other in ["type", "pure"] where r.has(other) {
            throw RecipeError(r.at(other), "\(key) chooses each matrix's type; do not give \(other) with it")
        }
        if importance == .calibration {
            throw RecipeError(
                r.at("imatrix"),
                "\(key) weighs each type's error before the run, and imatrix: true is collected during it: give an "
                    + "imatrix file or {job: KEY} (a calibrate job's imatrix.gguf)")
        }
        if let bpw {
            guard bpw.isFinite, bpw >= 1, bpw <= 32 else { throw RecipeError(r.at("bpw"), "\(bpw) is not in [1, 32]") }
            budget = .bitsPerWeight(bpw)
        } else if let bytes {
            budget = .bytes(bytes)
        }
    }

    /// A GGUF type name at `key` (`mixes`: a llama-quantize mix is allowed too).
    private static func ggufType(_ r: OptionReader, _ key: String, mixes: Bool) throws -> GGUFType? {
        try r.string(key).map { try ggufType($0, at: r.at(key), mixes: mixes) }
    }

    private static func ggufType(_ s: String, at path: String, mixes: Bool) throws -> GGUFType {
        let allowed = GGUFType.allCases.filter { mixes || $0.isTensorType }
        guard let t = GGUFType(rawValue: s.lowercased()), allowed.contains(t) else {
            throw RecipeError(path, "\(s) is not one of \(allowed.map(\.rawValue).joined(separator: ", "))")
        }
        return t
    }

    public func encode(to encoder: Encoder) throws {
        var w = OptionWriter(encoder)
        try w.put("format", format.rawValue)
        try w.put("dtype", ifPresent: dtype?.rawValue)
        guard format == .gguf else { return }
        switch budget {
        case .bytes(let b)?: try w.put("budget", b)
        case .bitsPerWeight(let bpw)?: try w.put("bpw", bpw)
        case nil: try w.put("type", ggufType.rawValue)
        }
        try w.put("fallback", ggufFallback.rawValue)
        try w.put("tensor_types", tensorTypes.mapValues(\.rawValue))
        // Absent: the mix's own rule for the output and the embedding (no override).
        try w.put("output_type", ifPresent: outputType?.rawValue)
        try w.put("embedding_type", ifPresent: embeddingType?.rawValue)
        if budget == nil { try w.put("pure", pure) }
        try w.put("allow_fallback", allowFallback)
        try w.put("gptq", errorFeedback)
        try w.put("learned_rounding", ifPresent: learnedRounding)
        switch importance {
        case .calibration?: try w.put("imatrix", true)
        case .file(let f)?: try w.put("imatrix", f)
        case .job(let k)?: try w.put("imatrix", ["job": k])
        case nil: try w.put("imatrix", false)
        }
    }
}

/// A size field: a byte count, or text such as `90MB` (`budget`).
enum SizeText: Decodable, Equatable {
    case bytes(Int64), text(String)

    init(from decoder: Decoder) throws {
        let c = try decoder.singleValueContainer()
        if let b = try? c.decode(Int64.self) {
            self = .bytes(b)
            return
        }
        self = .text(try c.decode(String.self))
    }
}

/// A field that is true/false, a string, or `{job: KEY}` (`imatrix`).
enum FlagOrText: Decodable, Equatable {
    case flag(Bool), text(String), job(String)

    init(from decoder: Decoder) throws {
        let c = try decoder.singleValueContainer()
        if let b = try? c.decode(Bool.self) {
            self = .flag(b)
            return
        }
        if let m = try? c.decode([String: String].self) {
            guard m.count == 1, let k = m["job"] else {
                throw DecodingError.dataCorruptedError(in: c, debugDescription: "a mapping must be {job: KEY}")
            }
            self = .job(k)
            return
        }
        self = .text(try c.decode(String.self))
    }
}
