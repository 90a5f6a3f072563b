/// The gradual pruning schedule of Zhu & Gupta ("To prune, or not to prune"):
/// s_t = s_f + (s_i − s_f)(1 − t/n)³ for steps t = 0…n. Sparsity rises fast at first and levels
/// off, so later steps (with recovery between them) remove little.
public struct CubicSchedule: Equatable, Sendable {
    public let initial: Double
    public let final: Double
    public let steps: Int

    public init(initial: Double, final: Double, steps: Int) {
        self.initial = initial
        self.final = final
        self.steps = max(1, steps)
    }

    /// Sparsity after step `t` (0 gives `initial`, `steps` and beyond give `final`).
    public func sparsity(at t: Int) -> Double {
        let u = 1 - Double(min(max(t, 0), steps)) / Double(steps)
        return final + (initial - final) * u * u * u
    }

    /// The sparsity of each step 1…steps; the last is exactly `final`.
    public var targets: [Double] { (1...steps).map { sparsity(at: $0) } }
}
