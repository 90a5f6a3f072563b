import Foundation

/// `prune: {method: magnitude}`: the smallest |w| of each tensor (`scope: layer`, optionally in
/// cubic steps), or of all selected tensors at once with a minimum density each (`scope: global`).
public struct MagnitudePrune: PruneMethod {
    public enum Scope: Equatable, Sendable {
        case layer
        case global(minKeep: Double)
    }

    public static let name = "magnitude"
    public static let keys = ["sparsity", "scope", "min_keep", "schedule"]

    public var sparsity: Double
    public var scope: Scope
    /// Gradual steps up to `sparsity` (scope layer); nil: one step.
    public var schedule: CubicSchedule?

    public init(sparsity: Double, scope: Scope = .layer, schedule: CubicSchedule? = nil) {
        self.sparsity = sparsity
        self.scope = scope
        self.schedule = schedule
    }

    public init(from decoder: Decoder) throws {
        let r = try Self.reader(decoder)
        let s = try Self.sparsity(r)
        sparsity = s
        let scopeName = try r.string("scope") ?? "layer"
        switch scopeName {
        case "layer":
            if r.has("min_keep") { throw RecipeError(r.at("min_keep"), "only applies to scope global") }
            scope = .layer
            let fields = try r.nested(
                "schedule", ScheduleOptions.self, "must be a mapping with steps and initial_sparsity")
            schedule = try fields.map { try $0.schedule(final: s, at: r.at("schedule")) }
        case "global":
            if r.has("schedule") { throw RecipeError(r.at("schedule"), "only applies to scope layer") }
            let minKeep = try OptionCheck.fraction(try r.number("min_keep") ?? 0, at: r.at("min_keep"), closed: true)
            scope = .global(minKeep: minKeep)
            schedule = nil
        default:
            throw RecipeError(r.at("scope"), "\(scopeName) is not one of layer, global")
        }
    }

    public func encode(to encoder: Encoder) throws {
        var w = OptionWriter(encoder)
        try w.put("sparsity", sparsity)
        switch scope {
        case .layer: try w.put("scope", "layer")
        case .global(let minKeep):
            try w.put("scope", "global")
            try w.put("min_keep", minKeep)
        }
        try w.put("schedule", ifPresent: schedule.map(ScheduleOptions.init))
    }
}

/// `prune.schedule`: the cubic gradual-pruning schedule's fields.
struct ScheduleOptions: StageOptions {
    static let keys = ["type", "steps", "initial_sparsity"]
    var steps: Int
    var initialSparsity: Double

    init(_ s: CubicSchedule) {
        steps = s.steps
        initialSparsity = s.initial
    }

    init(from decoder: Decoder) throws {
        let r = try OptionReader(decoder, allowed: Self.keys)
        let type = try r.string("type") ?? "cubic"
        guard type == "cubic" else { throw RecipeError(r.at("type"), "\(type) is not one of cubic") }
        guard let n = try r.integer("steps") else { throw RecipeError(r.at("steps"), "is required") }
        steps = try OptionCheck.integer(n, at: r.at("steps"), in: 1...1000)
        initialSparsity = try r.number("initial_sparsity") ?? 0
    }

    /// The schedule up to `final`, checked (`path` names the schedule in errors).
    func schedule(final: Double, at path: String) throws -> CubicSchedule {
        guard initialSparsity >= 0 && initialSparsity <= final else {
            let shown = "[0, sparsity \(RecipeParser.fmt(final))]"
            throw RecipeError("\(path).initial_sparsity", "\(RecipeParser.fmt(initialSparsity)) is not in \(shown)")
        }
        return CubicSchedule(initial: initialSparsity, final: final, steps: steps)
    }

    func encode(to encoder: Encoder) throws {
        var w = OptionWriter(encoder)
        try w.put("type", "cubic")
        try w.put("steps", steps)
        try w.put("initial_sparsity", initialSparsity)
    }
}
