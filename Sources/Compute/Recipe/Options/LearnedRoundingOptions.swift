import Foundation

/// `learned_rounding: {steps, learning_rate}` of a `quantize` stage or a GGUF export.
extension FlexRound.Options: StageOptions {
    public static let keys = ["steps", "learning_rate"]

    public init(from decoder: Decoder) throws {
        let r = try OptionReader(decoder, allowed: Self.keys)
        self.init()
        if let s = try r.integer("steps") { steps = try OptionCheck.integer(s, at: r.at("steps"), in: 0...10_000) }
        if let lr = try r.number("learning_rate") {
            guard lr > 0, lr <= 1 else {
                throw RecipeError(r.at("learning_rate"), "\(RecipeParser.fmt(lr)) is not in (0, 1]")
            }
            learningRate = lr
        }
    }

    public func encode(to encoder: Encoder) throws {
        var w = OptionWriter(encoder)
        try w.put("steps", steps)
        try w.put("learning_rate", learningRate)
    }

    /// The option at `key` of `r`, if given.
    static func read(_ r: OptionReader, _ key: String = "learned_rounding") throws -> FlexRound.Options? {
        try r.nested(key, FlexRound.Options.self, "must be a mapping: {steps: N, learning_rate: X}")
    }
}
