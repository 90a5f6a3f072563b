import Foundation

/// A recipe as written, read by Yams' `YAMLDecoder`: each stage's fields with their YAML types,
/// before `RecipeParser` checks what they mean. Type errors already name the key's path.
struct RecipeDocument: Decodable {
    let stages: [StageDocument]?

    init(from decoder: Decoder) throws {
        let c = try RecipeDocument.mapping(decoder, "a recipe must be a mapping with a `stages` list")
        let key = JSONKey("stages")
        guard c.contains(key), !(try c.decodeNil(forKey: key)) else { stages = nil; return }
        do { stages = try c.decode([StageDocument].self, forKey: key) } catch DecodingError.typeMismatch(_, let ctx) where ctx.codingPath.count == 1 {
            throw RecipeError("stages", "must be a list")
        }
    }

    /// A keyed container, or `message` at the decoder's path when the node is not a mapping.
    static func mapping(_ decoder: Decoder, _ message: String) throws -> KeyedDecodingContainer<JSONKey> {
        do { return try decoder.container(keyedBy: JSONKey.self) } catch DecodingError.typeMismatch {
            throw RecipeError(path(decoder.codingPath), message)
        }
    }

    /// `stages[1].prune.sparsity` for a coding path.
    static func path(_ keys: [CodingKey]) -> String {
        keys.reduce(into: "") { out, k in
            if let i = k.intValue { out += "[\(i)]" } else { out += out.isEmpty ? k.stringValue : ".\(k.stringValue)" }
        }
    }
}

/// One list entry of `stages`: a mapping with exactly one key, the stage name.
struct StageDocument: Decodable {
    let name: String
    let fields: StageFields

    init(from decoder: Decoder) throws {
        let at = RecipeDocument.path(decoder.codingPath)
        let only = "each stage is a mapping with exactly one key, the stage name (one of \(RecipeParser.knownStages.joined(separator: ", ")))"
        let c = try RecipeDocument.mapping(decoder, only)
        guard c.allKeys.count == 1, let key = c.allKeys.first else { throw RecipeError(at, only) }
        name = key.stringValue
        guard RecipeParser.knownStages.contains(name) else {
            throw RecipeError("\(at).\(name)", "unknown stage (expected one of \(RecipeParser.knownStages.joined(separator: ", ")))")
        }
        fields = try c.decodeNil(forKey: key) ? StageFields() : c.decode(StageFields.self, forKey: key)
    }
}

/// Every key any stage accepts, typed; `keys` lists those present so each stage can refuse the rest.
struct StageFields: Decodable {
    var keys: [String] = []
    var method, scope, dim, norm, dataset, output, format, type, fallback, dtype, scheme, granularity, observer, hessian: String?
    var sparsity, minKeep, damp, energy: Double?
    var n, m, samples, seqLen, iterations, rank, bits, groupSize: Int?
    var actOrder, pure, allowFallback, gptq: Bool?
    var outputType, embeddingType: String?
    var tensorTypes: [String: String]?
    var targets, ignore: [String]?
    var schedule: ScheduleFields?
    var imatrix: FlagOrText?

    init() {}

    init(from decoder: Decoder) throws {
        let c = try RecipeDocument.mapping(decoder, "must be a mapping")
        let f = FieldReader(c)
        keys = f.keys
        method = try f.string("method"); scope = try f.string("scope"); dim = try f.string("dim"); norm = try f.string("norm")
        dataset = try f.string("dataset"); output = try f.string("output"); format = try f.string("format")
        type = try f.string("type"); fallback = try f.string("fallback"); dtype = try f.string("dtype")
        scheme = try f.string("scheme"); granularity = try f.string("granularity"); observer = try f.string("observer")
        hessian = try f.string("hessian")
        sparsity = try f.number("sparsity"); minKeep = try f.number("min_keep"); damp = try f.number("damp"); energy = try f.number("energy")
        n = try f.integer("n"); m = try f.integer("m"); samples = try f.integer("samples"); seqLen = try f.integer("seq_len")
        iterations = try f.integer("iterations"); rank = try f.integer("rank"); bits = try f.integer("bits")
        groupSize = try f.integer("group_size")
        actOrder = try f.flag("act_order"); pure = try f.flag("pure"); allowFallback = try f.flag("allow_fallback"); gptq = try f.flag("gptq")
        outputType = try f.string("output_type"); embeddingType = try f.string("embedding_type")
        tensorTypes = try f.nested("tensor_types", [String: String].self, "must be a mapping of glob patterns to types")
        targets = try f.patterns("targets"); ignore = try f.patterns("ignore")
        schedule = try f.nested("schedule", ScheduleFields.self, "must be a mapping with steps and initial_sparsity")
        imatrix = try f.nested("imatrix", FlagOrText.self, "must be true, false or an imatrix file path")
    }

    func has(_ key: String) -> Bool { keys.contains(key) }
}

/// `prune.schedule`'s fields.
struct ScheduleFields: Decodable {
    let keys: [String]
    let type: String?
    let steps: Int?
    let initialSparsity: Double?

    init(from decoder: Decoder) throws {
        let f = FieldReader(try RecipeDocument.mapping(decoder, "must be a mapping with steps and initial_sparsity"))
        keys = f.keys
        type = try f.string("type"); steps = try f.integer("steps"); initialSparsity = try f.number("initial_sparsity")
    }
}

/// Reads optional typed fields from a mapping; a value of the wrong kind throws a `RecipeError` that
/// names the key's path and shows the value.
struct FieldReader {
    let c: KeyedDecodingContainer<JSONKey>

    init(_ c: KeyedDecodingContainer<JSONKey>) { self.c = c }

    var keys: [String] { c.allKeys.map(\.stringValue).sorted() }

    private func read<T: Decodable>(_ key: String, _ t: T.Type, _ what: String) throws -> T? {
        let k = JSONKey(key)
        guard c.contains(k), !(try c.decodeNil(forKey: k)) else { return nil }
        do { return try c.decode(t, forKey: k) } catch let e as RecipeError { throw e } catch {
            let shown = (try? c.decode(String.self, forKey: k)).map(TextRules.display)
            throw RecipeError(RecipeDocument.path(c.codingPath + [k]), shown.map { "\($0) \(what)" } ?? what)
        }
    }

    func string(_ key: String) throws -> String? { try read(key, String.self, "is not a string") }
    func number(_ key: String) throws -> Double? { try read(key, Double.self, "is not a number") }
    func integer(_ key: String) throws -> Int? { try read(key, Int.self, "is not an integer") }
    func flag(_ key: String) throws -> Bool? { try read(key, Bool.self, "must be true or false") }

    /// A list of glob patterns, or one pattern as a string.
    func patterns(_ key: String) throws -> [String]? {
        if let one = try? read(key, String.self, "") { return [one] }
        return try read(key, [String].self, "must be a list of glob patterns")
    }

    func nested<T: Decodable>(_ key: String, _ t: T.Type, _ what: String) throws -> T? { try read(key, t, what) }
}

/// A field that is either true/false or a string (`imatrix`).
enum FlagOrText: Decodable, Equatable {
    case flag(Bool), text(String)

    init(from decoder: Decoder) throws {
        let c = try decoder.singleValueContainer()
        if let b = try? c.decode(Bool.self) { self = .flag(b); return }
        self = .text(try c.decode(String.self))
    }
}
