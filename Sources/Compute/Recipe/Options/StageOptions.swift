import Foundation

/// The options of one recipe stage or stage method, declared once: the keys it takes, decoding
/// that refuses any other key (naming the ones it takes), canonical JSON encoding and validation.
public protocol StageOptions: Codable, Equatable, Sendable {
    /// Every recipe key this type reads and writes (docs/RECIPES.md documents exactly these).
    static var keys: [String] { get }
}

/// A method of a stage (`prune: {method: NAME, ...}`): its options plus what the runner asks of it.
public protocol StageMethod: StageOptions {
    /// The `method` value in recipes.
    static var name: String { get }
}

extension StageMethod {
    /// `self` equals `other` (same method, same options).
    func isEqual(_ other: any StageMethod) -> Bool { (other as? Self) == self }
}

/// Writes canonical JSON fields: every key a type writes goes through `put`.
struct OptionWriter {
    private var c: KeyedEncodingContainer<JSONKey>

    init(_ encoder: Encoder) { c = encoder.container(keyedBy: JSONKey.self) }

    mutating func put<T: Encodable>(_ key: String, _ value: T) throws { try c.encode(value, forKey: JSONKey(key)) }

    /// Writes `value` unless it is nil.
    mutating func put<T: Encodable>(_ key: String, ifPresent value: T?) throws {
        if let value { try put(key, value) }
    }
}
