import Foundation

extension RecipeRunner {
    /// Ranks of the matrices of every `lowrank` stage with `ratio` and `allocation: global`: each
    /// selected matrix's singular values, scaled as its method scales it, shared out by
    /// LowRankAllocation. svd-llm and asvd take their scales from a forward pass of the calibration
    /// windows through the submitted model (stages before the `lowrank` are not applied there).
    func allocateLowRank(_ plan: RunPlan, readers: [any TensorFile], observer: Observer) throws -> [String: Int] {
        var out = [String: Int]()
        for l in recipe.lowRankStages {
            guard case .ratio(let ratio) = l.rank, l.allocation == .global else { continue }
            let selected = plan.units.map(\.tensor).filter { l.selector.matches($0.name) && $0.shape.count >= 2 }
            let byName = Dictionary(selected.map { ($0.name, $0) }, uniquingKeysWith: { a, _ in a })
            let weights = ModelWeights(readers: readers)
            var spectra = [String: [Double]]()
            func spectrum(_ t: TensorInfo, _ w: [Float], _ c: LinearCalibration?) throws {
                let (rows, cols) = RunPlan.matrixShape(t)
                try w.withUnsafeBufferPointer { p in
                    if let c,
                        let scaling = try LowRank.InputScaling.of(
                            l, calibration: c, cols: cols, threads: threads, tensor: t.name)
                    {
                        spectra[t.name] = try LowRank.scaledEnergy(
                            p, rows: rows, cols: cols, scaling: scaling, tensor: t.name)
                    } else {
                        let s = try LowRank.singularValues(p, rows: rows, cols: cols, tensor: t.name)
                        spectra[t.name] = s.map { Double($0) * Double($0) }
                    }
                }
            }
            if l.isCalibrated {
                guard let cal = recipe.calibration, let family else {
                    throw ComputeError(
                        .invalidRecipe, "\(l.method.rawValue) needs a calibrate stage and a model family")
                }
                var needs = CalibrationNeeds(gramPrecision: cal.hessian)
                l.addNeeds(to: &needs)
                let counts = Dictionary(
                    plan.units.map { ($0.tensor.name, $0.tensor.numel) }, uniquingKeysWith: { a, _ in a })
                try family.calibrate(cal, needs: needs, teacher: nil, threads: threads) { name, c in
                    try observer.checkContinue()
                    let w = try weights.tensor(name, count: counts[name] ?? 0)
                    if let t = byName[name] { try spectrum(t, w, c) }
                    return w
                }
            } else {
                for t in selected {
                    try observer.checkContinue()
                    try spectrum(t, try weights.tensor(t.name, count: t.numel), nil)
                }
            }
            let matrices = selected.compactMap { t -> LowRankAllocation.Matrix? in
                guard let e = spectra[t.name] else { return nil }
                let (rows, cols) = RunPlan.matrixShape(t)
                return .init(name: t.name, rows: rows, cols: cols, energy: e)
            }
            out.merge(LowRankAllocation.ranks(matrices, ratio: ratio)) { a, _ in a }
        }
        return out
    }
}
