import Foundation

/// `quantize`: integer quantization on the round-to-nearest grid — plain RTN, or GPTQ (error
/// feedback through the calibration Hessian; needs `calibrate`) — or VPTQ's vector codebooks (needs
/// `calibrate`). The tensor continues through the recipe as its dequantized values, and a
/// `compressed` export stores the packed codes and scales (or indices and codebooks).
public struct QuantizeStage: Equatable, Sendable {
    public enum Method: Equatable, Sendable {
        case rtn
        /// `damp`: fraction of the Hessian's mean diagonal added to its diagonal.
        case gptq(damp: Double)
        /// Vector codebooks with GPTQ-style error feedback (the integer grid's fields do not apply).
        case vptq(VPTQ.Options)
        /// A `decompose` stage's stack as the compressed export stores it (never parsed from `quantize`).
        case bitstack(blocks: Int, rank: Int)

        var name: String {
            switch self {
            case .rtn: return "rtn"
            case .gptq: return "gptq"
            case .vptq: return "vptq"
            case .bitstack: return "bitstack"
            }
        }
        /// Whether the method reads the calibration inputs' Hessian.
        var usesHessian: Bool { self != .rtn }
        /// Whether the method stores codes on the integer grid (bits, scheme, granularity).
        var hasGrid: Bool {
            switch self {
            case .rtn, .gptq: return true
            case .vptq, .bitstack: return false
            }
        }
    }
    public var bits: Int
    public var symmetric: Bool
    public var granularity: RTNQuantizer.Granularity
    public var method: Method
    public var selector: TensorSelector
    /// `gptq`: visit columns by decreasing Hessian diagonal, with group parameters fixed up front.
    public var actOrder = false
    /// How each group's scale and zero point are chosen (`observer: mse` searches shrunk ranges).
    public var observer = RTNQuantizer.Observer.minmax
    /// `rtn`, `gptq`: refine the codes by learned rounding on the same grid (needs `calibrate`).
    public var learnedRounding: FlexRound.Options?

    /// Whether the stage reads the calibration inputs' Hessian.
    var usesHessian: Bool { method.usesHessian || learnedRounding != nil }

    public init(
        bits: Int, symmetric: Bool, granularity: RTNQuantizer.Granularity, method: Method = .rtn,
        selector: TensorSelector
    ) {
        self.bits = bits
        self.symmetric = symmetric
        self.granularity = granularity
        self.method = method
        self.selector = selector
    }
}

extension QuantizeStage {
    /// A stage whose method stores no integer grid (VPTQ's codebooks, a BitStack): the grid fields are unused.
    init(withoutGrid method: Method, selector: TensorSelector) {
        self.init(bits: 0, symmetric: true, granularity: .channel, method: method, selector: selector)
    }
}

extension QuantizeStage: StageOptions {
    /// The keys of the integer grid, which every method reads.
    static let gridKeys = ["bits", "scheme", "granularity", "group_size", "observer"]
    /// Each method's own keys.
    static let methodKeys = [
        "rtn": gridKeys + ["learned_rounding"], "gptq": gridKeys + ["damp", "act_order", "learned_rounding"],
        "vptq": ["vector", "centroids", "residual", "iterations", "damp", "act_order", "outliers"]
    ]
    public static let keys =
        ["method"] + gridKeys + [
            "damp", "act_order", "learned_rounding", "vector", "centroids", "residual", "iterations", "outliers",
            "targets", "ignore"
        ]

    public init(from decoder: Decoder) throws {
        let head = try OptionReader(decoder, allowed: nil)
        let name = try head.string("method") ?? "rtn"
        guard let own = Self.methodKeys[name] else {
            throw RecipeError(head.at("method"), "\(name) is not one of rtn, gptq, vptq")
        }
        let others = Self.methodKeys.filter { $0.key != name }.sorted { $0.key < $1.key }.map { ($0.key, $0.value) }
        let elsewhere = OptionReader.owners(others, kind: "method")
        let r = try OptionReader(
            decoder, allowed: ["method"] + own + ["targets", "ignore"], elsewhere: elsewhere, owner: "method \(name)")
        if name == "vptq" {
            let o = try Self.vptq(r)
            self = QuantizeStage(withoutGrid: .vptq(o), selector: try TensorSelector(r))
            actOrder = o.actOrder
            return
        }
        if name == "gptq" {
            let damp = try r.number("damp") ?? 0.01
            guard damp > 0 && damp <= 1 else {
                throw RecipeError(r.at("damp"), "\(RecipeParser.fmt(damp)) is not in (0, 1]")
            }
            method = .gptq(damp: damp)
        } else {
            method = .rtn
        }
        guard let b = try r.integer("bits") else { throw RecipeError(r.at("bits"), "is required") }
        guard [2, 3, 4, 8].contains(b) else { throw RecipeError(r.at("bits"), "\(b) is not one of 2, 3, 4, 8") }
        bits = b
        let scheme = try r.string("scheme") ?? "symmetric"
        guard scheme == "symmetric" || scheme == "asymmetric" else {
            throw RecipeError(r.at("scheme"), "\(scheme) is not one of symmetric, asymmetric")
        }
        symmetric = scheme == "symmetric"
        granularity = try Self.granularity(r)
        selector = try TensorSelector(r)
        // Version 2's defaults for GPTQ are the best measured (docs/QUALITY.md): act order, MSE observer.
        let best = name == "gptq" && RecipeVersion.of(decoder) >= 2
        actOrder = try r.flag("act_order") ?? best
        observer = try r.choice("observer", RTNQuantizer.Observer.self) ?? (best ? .mse : .minmax)
        learnedRounding = try FlexRound.Options.read(r)
    }

    /// `granularity` and `group_size` (group when only a group size is given).
    private static func granularity(_ r: OptionReader) throws -> RTNQuantizer.Granularity {
        let size = try r.integer("group_size")
        let name = try r.string("granularity") ?? (size == nil ? "channel" : "group")
        switch name {
        case "tensor", "channel":
            if size != nil { throw RecipeError(r.at("group_size"), "only applies to granularity group") }
            return name == "tensor" ? .tensor : .channel
        case "group":
            guard let g = size else {
                throw RecipeError(r.at("group_size"), "is required for granularity group (32, 64 or 128)")
            }
            guard [32, 64, 128].contains(g) else {
                throw RecipeError(r.at("group_size"), "\(g) is not one of 32, 64, 128")
            }
            return .group(g)
        default:
            throw RecipeError(r.at("granularity"), "\(name) is not one of tensor, channel, group")
        }
    }

    /// `vector`, `centroids`, `residual`, `iterations`, `damp`, `act_order` and `outliers` of method vptq.
    private static func vptq(_ r: OptionReader) throws -> VPTQ.Options {
        var o = VPTQ.Options()
        o.vector = try r.integer("vector") ?? o.vector
        guard [2, 4, 6, 8, 12, 16].contains(o.vector) else {
            throw RecipeError(r.at("vector"), "\(o.vector) is not one of 2, 4, 6, 8, 12, 16")
        }
        for (key, least) in [("centroids", 16), ("residual", 0)] {
            guard let n = try r.integer(key) else { continue }
            guard n == 0 && least == 0 || (16...65536).contains(n) && n & (n - 1) == 0 else {
                throw RecipeError(
                    r.at(key), "\(n) is not a power of two from 16 to 65536\(least == 0 ? " (or 0)" : "")")
            }
            if key == "centroids" { o.centroids = n } else { o.residual = n }
        }
        o.iterations = try r.integer("iterations") ?? o.iterations
        guard (1...100).contains(o.iterations) else {
            throw RecipeError(r.at("iterations"), "\(o.iterations) is not in 1...100")
        }
        o.damp = try r.number("damp") ?? o.damp
        guard o.damp > 0 && o.damp <= 1 else {
            throw RecipeError(r.at("damp"), "\(RecipeParser.fmt(o.damp)) is not in (0, 1]")
        }
        o.actOrder = try r.flag("act_order") ?? o.actOrder
        o.outliers = try r.integer("outliers") ?? o.outliers
        guard o.outliers >= 0, o.outliers % o.vector == 0 else {
            throw RecipeError(r.at("outliers"), "\(o.outliers) is not a multiple of vector \(o.vector) (or 0)")
        }
        return o
    }

    public func encode(to encoder: Encoder) throws {
        var w = OptionWriter(encoder)
        try w.put("method", method.name)
        if case .vptq(let o) = method {
            try w.put("vector", o.vector)
            try w.put("centroids", o.centroids)
            try w.put("residual", o.residual)
            try w.put("iterations", o.iterations)
            try w.put("damp", o.damp)
            try w.put("act_order", o.actOrder)
            try w.put("outliers", o.outliers)
            try selector.write(&w)
            return
        }
        try w.put("bits", bits)
        try w.put("scheme", symmetric ? "symmetric" : "asymmetric")
        switch granularity {
        case .tensor: try w.put("granularity", "tensor")
        case .channel: try w.put("granularity", "channel")
        case .group(let g):
            try w.put("granularity", "group")
            try w.put("group_size", g)
        }
        if case .gptq(let damp) = method {
            try w.put("damp", damp)
            try w.put("act_order", actOrder)
        }
        try w.put("observer", observer.rawValue)
        try w.put("learned_rounding", ifPresent: learnedRounding)
        try selector.write(&w)
    }
}
