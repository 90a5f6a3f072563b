import Foundation

/// A compression recipe: stages applied in order to the tensors their patterns select.
public struct Recipe: Equatable, Sendable {
    public var stages: [Stage]

    public init(stages: [Stage]) { self.stages = stages }

    /// The prune stages, in order.
    public var pruneStages: [PruneStage] {
        stages.compactMap {
            if case .prune(let p) = $0 { return p }
            return nil
        }
    }
    /// The quantize stages, in order.
    public var quantizeStages: [QuantizeStage] {
        stages.compactMap {
            if case .quantize(let q) = $0 { return q }
            return nil
        }
    }
    /// The calibrate stage, if any (at most one).
    public var calibration: CalibrateStage? {
        stages.lazy.compactMap {
            if case .calibrate(let c) = $0 { return c }
            return nil
        }.first
    }
    /// The evaluate stage, if any (at most one).
    public var evaluation: EvaluateStage? {
        stages.lazy.compactMap {
            if case .evaluate(let e) = $0 { return e }
            return nil
        }.first
    }
    /// The lowrank stages, in order.
    public var lowRankStages: [LowRankStage] {
        stages.compactMap {
            if case .lowrank(let l) = $0 { return l }
            return nil
        }
    }
    /// The export stages, in order.
    public var exportStages: [ExportStage] {
        stages.compactMap {
            if case .export(let e) = $0 { return e }
            return nil
        }
    }
    /// The index in `stages` of the first export of `format` (for error paths), if any.
    public func stageIndex(exporting format: ExportStage.Format) -> Int? {
        stages.firstIndex {
            if case .export(let e) = $0 { return e.format == format }
            return false
        }
    }
    /// Whether the recipe exports `format`.
    public func exports(_ format: ExportStage.Format) -> Bool { stageIndex(exporting: format) != nil }
    /// The first stage `match` gives a value for, with its index.
    private func first<T>(_ match: (Stage) -> T?) -> (Int, T)? {
        for (i, s) in stages.enumerated() {
            if let v = match(s) { return (i, v) }
        }
        return nil
    }
    /// The stage that reshapes the model before any unit runs (`prune: {method: flap}`), if any.
    public var structuralPrune: (index: Int, method: FlapPrune)? {
        first {
            if case .prune(let p) = $0 { return p.method as? FlapPrune }
            return nil
        }
    }
    /// The `awq` stage, if any (at most one), with its index.
    public var awq: (index: Int, stage: AWQStage)? {
        first {
            if case .awq(let a) = $0 { return a }
            return nil
        }
    }
    /// The `slice` stage, if any (at most one), with its index.
    public var slice: (index: Int, stage: SliceStage)? {
        first {
            if case .slice(let a) = $0 { return a }
            return nil
        }
    }
    /// How the compressed export stores tensor `name`: the last quantize stage selecting it, or a later
    /// decompose stage's stack; nil when neither selects it.
    func compression(for name: String) -> QuantizeStage? {
        for st in stages.reversed() {
            if case .quantize(let q) = st, q.selector.matches(name) { return q }
            if case .decompose(let d) = st, d.selector.matches(name) { return d.asCompression }
        }
        return nil
    }

    /// Whether a stage compresses units on their calibration inputs (a structural stage does its own pass).
    public var calibratesUnits: Bool {
        stages.contains {
            switch $0 {
            case .prune(let p): return p.method.isCalibrated && !p.method.isStructural
            case .quantize(let q):
                return q.usesHessian
            case .distill, .decompose: return true
            case .lowrank(let l): return l.isCalibrated
            case .export(let e): return e.errorFeedback || e.learnedRounding != nil || e.importance == .calibration
            default: return false
            }
        }
    }
    /// Whether a `distill` stage runs (the original model then runs beside the compressed one).
    public var distills: Bool {
        stages.contains {
            if case .distill = $0 { return true }
            return false
        }
    }

    /// The statistics of each linear layer's inputs that the recipe's calibrated stages read.
    public var calibrationNeeds: CalibrationNeeds {
        var n = CalibrationNeeds(distill: distills, gramPrecision: calibration?.hessian ?? .f32)
        for s in stages {
            switch s {
            case .prune(let p): p.method.addNeeds(to: &n)
            case .quantize(let q):
                if q.usesHessian { n.gram = true }
            case .lowrank(let l): l.addNeeds(to: &n)
            case .decompose: n.norms = true
            case .export(let e):
                if e.importance == .calibration { n.norms = true }
                if e.errorFeedback || e.learnedRounding != nil { n.gram = true }
            default: break
            }
        }
        return n
    }
}

/// One recipe stage.
public enum Stage: Equatable, Sendable {
    case prune(PruneStage)
    case quantize(QuantizeStage)
    case lowrank(LowRankStage)
    case awq(AWQStage)
    case slice(SliceStage)
    case decompose(DecomposeStage)
    case calibrate(CalibrateStage)
    case distill(DistillStage)
    case evaluate(EvaluateStage)
    case export(ExportStage)

    /// The tensors a transforming stage selects (nil for export).
    public var selector: TensorSelector? {
        switch self {
        case .prune(let p): return p.method.isStructural ? nil : p.selector
        case .quantize(let q): return q.selector
        case .lowrank(let l): return l.selector
        case .distill(let d): return d.selector
        case .decompose(let d): return d.selector
        case .awq, .slice, .calibrate, .evaluate, .export: return nil
        }
    }
}

/// Tensor selection by glob patterns on names (`*` and `?` match any character, dots included).
/// A Llama tensor also answers to its GGUF name (`blk.0.attn_q.weight` for
/// `model.layers.0.self_attn.q_proj.weight`).
public struct TensorSelector: Equatable, Sendable {
    public var targets: [String]
    public var ignore: [String]

    public init(targets: [String], ignore: [String] = []) {
        self.targets = targets
        self.ignore = ignore
    }

    public func matches(_ name: String) -> Bool {
        let alias = LlamaNames.gguf(name)
        let hit = { (p: String) in Glob.match(p, name) || alias.map { Glob.match(p, $0) } ?? false }
        return targets.contains(where: hit) && !ignore.contains(where: hit)
    }

    /// `targets` (default every `*.weight`) and `ignore` of a stage's mapping.
    init(_ r: OptionReader) throws {
        let t = try r.patterns("targets") ?? ["*.weight"]
        guard !t.isEmpty else { throw RecipeError(r.at("targets"), "must not be empty") }
        self.init(targets: t, ignore: try r.patterns("ignore") ?? [])
    }

    func write(_ w: inout OptionWriter) throws {
        try w.put("targets", targets)
        try w.put("ignore", ignore)
    }
}

extension Recipe {
    /// The input files the recipe reads besides the model (datasets, imatrix files, evaluation references).
    public var datasets: [String] {
        stages.flatMap { st -> [String] in
            switch st {
            case .calibrate(let c): return [c.dataset]
            case .evaluate(let e):
                guard case .file(let f)? = e.reference else { return e.dataset.map { [$0] } ?? [] }
                return (e.dataset.map { [$0] } ?? []) + [f]
            case .export(let e):
                guard case .file(let f)? = e.importance else { return [] }
                return [f]
            default: return []
            }
        }
    }

    /// Keys of the jobs whose published files the recipe reads (`imatrix: {job: KEY}`, an
    /// evaluation's `reference: {job: KEY}`): the jobs it waits for.
    public var dependencyJobs: [String] {
        var keys = [String]()
        for st in stages {
            switch st {
            case .export(let e): if case .job(let k)? = e.importance, !keys.contains(k) { keys.append(k) }
            case .evaluate(let e): if case .job(let k)? = e.reference, !keys.contains(k) { keys.append(k) }
            default: break
            }
        }
        return keys
    }

    /// The recipe with each `{job: KEY}` replaced by the file `path(KEY, name)` (the worker's
    /// resolution of a dependency's published imatrix.gguf or eval-reference.bin).
    public func resolvingJobFiles(_ path: (_ key: String, _ name: String) throws -> String) rethrows -> Recipe {
        Recipe(
            stages: try stages.map {
                switch $0 {
                case .export(var e):
                    guard case .job(let k)? = e.importance else { return $0 }
                    e.importance = .file(try path(k, ImportanceMatrix.ggufName))
                    return .export(e)
                case .evaluate(var e):
                    guard case .job(let k)? = e.reference else { return $0 }
                    e.reference = .file(try path(k, EvaluationReference.fileName))
                    return .evaluate(e)
                default: return $0
                }
            })
    }

    /// The recipe with relative dataset (imatrix, reference file) paths made absolute against `base` (the submitter's
    /// directory).
    public func resolvingDatasets(against base: String) -> Recipe {
        func abs(_ p: String) -> String { p.hasPrefix("/") ? p : (base as NSString).appendingPathComponent(p) }
        return Recipe(
            stages: stages.map {
                switch $0 {
                case .calibrate(var c):
                    c.dataset = abs(c.dataset)
                    return .calibrate(c)
                case .evaluate(var e):
                    e.dataset = e.dataset.map(abs)
                    if case .file(let f)? = e.reference { e.reference = .file(abs(f)) }
                    return .evaluate(e)
                case .export(var e):
                    if case .file(let f)? = e.importance { e.importance = .file(abs(f)) }
                    return .export(e)
                default: return $0
                }
            })
    }
}
