import Foundation

/// A recipe as written, read by Yams' `YAMLDecoder`: the `stages` list, each stage decoded by its
/// own options type (`Stage.decoders`). Errors name the key's path.
struct RecipeDocument: Decodable {
    let stages: [Stage]?

    init(from decoder: Decoder) throws {
        let c = try RecipeDocument.mapping(decoder, "a recipe must be a mapping with a `stages` list")
        let key = JSONKey("stages")
        guard c.contains(key), !(try c.decodeNil(forKey: key)) else {
            stages = nil
            return
        }
        do { stages = try c.decode([Stage].self, forKey: key) } catch DecodingError.typeMismatch(_, let ctx)
            where ctx.codingPath.count == 1
        {
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
