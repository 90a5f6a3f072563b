import Foundation

/// `prune`: one pruning method (its options in its own type) over the tensors `targets` selects.
public struct PruneStage: Sendable {
    public var method: any PruneMethod
    public var selector: TensorSelector

    public init(method: any PruneMethod, selector: TensorSelector) {
        self.method = method
        self.selector = selector
    }

    /// The keys every prune method shares.
    static let sharedKeys = ["method", "targets", "ignore"]
}

/// A pruning method's options and what it asks of calibration.
public protocol PruneMethod: StageMethod {
    /// Why the method needs an earlier calibrate stage (nil: it reads weights only).
    static var calibrationReason: String? { get }
    /// Adds the calibration statistics the method reads.
    func addNeeds(to needs: inout CalibrationNeeds)
    /// Whether the method reshapes the whole model before any unit runs (no targets; see `StructuredModelPass`).
    static var isStructural: Bool { get }
}

extension PruneMethod {
    public static var calibrationReason: String? { nil }
    public func addNeeds(to needs: inout CalibrationNeeds) {}
    public static var isStructural: Bool { false }
    /// Whether the method reshapes the whole model before any unit runs.
    public var isStructural: Bool { Self.isStructural }
    /// Whether the method needs the layer's calibration inputs.
    public var isCalibrated: Bool { Self.calibrationReason != nil }

    /// The method's options read from `decoder` (as an existential: the stage holds any method).
    static func decoded(from decoder: Decoder) throws -> any PruneMethod { try Self(from: decoder) }

    /// The method's `sparsity`, required and in [0, 1).
    static func sparsity(_ r: OptionReader) throws -> Double {
        guard let s = try r.number("sparsity") else {
            throw RecipeError(r.at("sparsity"), "is required for method \(name)")
        }
        return try OptionCheck.fraction(s, at: r.at("sparsity"))
    }

    /// The reader of this method's options: its keys and the prune stage's shared ones.
    static func reader(_ decoder: Decoder) throws -> OptionReader {
        try OptionReader(
            decoder, allowed: keys + PruneStage.sharedKeys, elsewhere: PruneStage.owners(besides: name),
            owner: "method \(name)")
    }
}

extension PruneStage: Equatable {
    public static func == (a: PruneStage, b: PruneStage) -> Bool {
        a.method.isEqual(b.method) && a.selector == b.selector
    }
}

extension PruneStage: Codable {
    /// Every prune method, by its recipe name: the dispatch table of decoding.
    static let methods: [any PruneMethod.Type] = [
        MagnitudePrune.self, NMPrune.self, StructuredPrune.self, WandaPrune.self, SparseGPTPrune.self, FlapPrune.self
    ]

    /// For each key some other method declares, which methods do (`methods nm, sparsegpt`).
    static func owners(besides name: String) -> [String: String] {
        OptionReader.owners(methods.filter { $0.name != name }.map { ($0.name, $0.keys) }, kind: "method")
    }

    public init(from decoder: Decoder) throws {
        let head = try OptionReader(decoder, allowed: nil)
        let name = try head.string("method") ?? MagnitudePrune.name
        guard let type = Self.methods.first(where: { $0.name == name }) else {
            let names = Self.methods.map { $0.name }.joined(separator: ", ")
            throw RecipeError(head.at("method"), "\(name) is not one of \(names)")
        }
        let selector = try TensorSelector(head)
        let method: any PruneMethod = try type.decoded(from: decoder)
        self.init(method: method, selector: selector)
    }

    public func encode(to encoder: Encoder) throws {
        var w = OptionWriter(encoder)
        try w.put("method", type(of: method).name)
        try method.encode(to: encoder)
        if !method.isStructural { try selector.write(&w) }
    }
}
