import Foundation

/// `distill`: layer-wise reconstruction. Each selected linear weight, with its zeros kept, is
/// fitted so that the student's layer output on its own inputs matches the teacher's output on
/// the teacher's inputs: min ‖X_s Ŵᵀ − X_t Wᵀ‖², by `iterations` steps of accelerated projected gradient.
public struct DistillStage: Equatable, Sendable {
    public var iterations: Int
    public var selector: TensorSelector

    public init(iterations: Int = 10, selector: TensorSelector) {
        self.iterations = iterations
        self.selector = selector
    }
}

extension DistillStage: StageOptions {
    public static let keys = ["iterations", "targets", "ignore"]

    public init(from decoder: Decoder) throws {
        let r = try OptionReader(decoder, allowed: Self.keys)
        // 40 steps measured better than 10 on SmolLM2 (SparseGPT 50% + distill: 1.284× against 1.438× dense).
        let fallback = RecipeVersion.of(decoder) >= 2 ? 40 : 10
        iterations = try OptionCheck.integer(
            try r.integer("iterations") ?? fallback, at: r.at("iterations"), in: 1...1000)
        selector = try TensorSelector(r)
    }

    public func encode(to encoder: Encoder) throws {
        var w = OptionWriter(encoder)
        try w.put("iterations", iterations)
        try selector.write(&w)
    }
}
