import Foundation

/// `prune: {method: nm}`: keep the `n` largest |w| of every `m` consecutive weights along the last dimension.
public struct NMPrune: PruneMethod {
    public static let name = "nm"
    public static let keys = ["n", "m"]

    public var n: Int
    public var m: Int

    public init(n: Int, m: Int) {
        self.n = n
        self.m = m
    }

    public init(from decoder: Decoder) throws {
        (n, m) = try Self.pattern(try Self.reader(decoder))
    }

    /// `n` and `m` of an N:M pattern, both required (also read by SparseGPT's N:M form).
    static func pattern(_ r: OptionReader) throws -> (n: Int, m: Int) {
        guard let n = try r.integer("n") else { throw RecipeError(r.at("n"), "is required with m") }
        guard let m = try r.integer("m") else { throw RecipeError(r.at("m"), "is required with n") }
        guard m >= 2 && m <= 64 else { throw RecipeError(r.at("m"), "\(m) is not in [2, 64]") }
        guard n >= 1 && n < m else { throw RecipeError(r.at("n"), "\(n) must be at least 1 and less than m (\(m))") }
        return (n, m)
    }

    public func encode(to encoder: Encoder) throws {
        var w = OptionWriter(encoder)
        try w.put("n", n)
        try w.put("m", m)
    }
}
