import Foundation

/// `quantize`: integer quantization on the round-to-nearest grid — plain RTN, or GPTQ (error
/// feedback through the calibration Hessian; needs `calibrate`). The tensor continues through the
/// recipe as its dequantized values, and a `compressed` export stores the packed codes and scales.
public struct QuantizeStage: Equatable, Sendable {
    public enum Method: Equatable, Sendable {
        case rtn
        /// `damp`: fraction of the Hessian's mean diagonal added to its diagonal.
        case gptq(damp: Double)

        var name: String { self == .rtn ? "rtn" : "gptq" }
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

extension QuantizeStage: StageOptions {
    /// The keys of the integer grid, which every method reads.
    static let gridKeys = ["bits", "scheme", "granularity", "group_size", "observer"]
    /// Each method's own keys besides the grid's.
    static let methodKeys = ["rtn": [String](), "gptq": ["damp", "act_order"]]
    public static let keys = ["method"] + gridKeys + ["damp", "act_order", "targets", "ignore"]

    public init(from decoder: Decoder) throws {
        let head = try OptionReader(decoder, allowed: nil)
        let name = try head.string("method") ?? "rtn"
        guard let own = Self.methodKeys[name] else {
            throw RecipeError(head.at("method"), "\(name) is not one of rtn, gptq")
        }
        let others = Self.methodKeys.filter { $0.key != name }.sorted { $0.key < $1.key }.map { ($0.key, $0.value) }
        let elsewhere = OptionReader.owners(others, kind: "method")
        let r = try OptionReader(
            decoder, allowed: ["method"] + Self.gridKeys + own + ["targets", "ignore"],
            elsewhere: elsewhere, owner: "method \(name)")
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

    public func encode(to encoder: Encoder) throws {
        var w = OptionWriter(encoder)
        try w.put("method", method.name)
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
        try selector.write(&w)
    }
}
