import Foundation

/// Runs a tensor's stages on its F32 values in place, in recipe order. After a `lowrank` stage the
/// values are the product of the factors.
struct TensorTransform {
    let plan: RunPlan
    let threads: Int

    /// What the stages produced besides the values left in the work buffer.
    struct Result {
        var codes: RTNQuantizer.Result?
        /// VPTQ's indices, codebooks and row scales.
        var vectors: VPTQ.Result?
        /// BitStack's blocks.
        var stack: BitStack.Result?
        var factors: LowRank.Factors?
        var rank: Int?
        /// The dampening SparseGPT's Hessian needed when the recipe's was not enough.
        var dampUsed: Double?
        /// What a quantize stage's learned rounding did.
        var rounding: FlexRound.Outcome?
    }

    func run(
        _ t: TensorInfo, _ work: UnsafeMutableBufferPointer<Float>, stages: ArraySlice<Stage>,
        calibration: LinearCalibration? = nil, original: [Float]? = nil
    ) throws -> Result {
        var out = Result()
        for stage in stages {
            switch stage {
            case .prune(let st): if let d = try prune(t, work, st, calibration: calibration) { out.dampUsed = d }
            case .distill(let d):
                try distill(t, work, d, calibration: needCalibration("distill", calibration, t), original: original)
            case .quantize(let q):
                if case .vptq(let o) = q.method {
                    let c = try needCalibration("vptq", calibration, t)
                    let (rows, cols) = RunPlan.matrixShape(t)
                    let h = try c.inputHessian(threads: threads)
                    out.vectors = try VPTQ.quantize(
                        work, rows: rows, cols: cols, gram: h.gram, tokens: c.tokens, options: o, factors: h.factors,
                        threads: threads, tensor: t.name)
                    out.codes = nil
                } else {
                    (out.codes, out.rounding) = try quantize(t, work, q, calibration: calibration)
                    out.vectors = nil
                }
            case .lowrank(let l):
                let (rows, cols) = RunPlan.matrixShape(t)
                let w = UnsafeBufferPointer(work)
                let f: LowRank.Factors
                var l = l
                if let r = plan.allocatedRanks[t.name] { l.rank = .fixed(r) }
                if l.isCalibrated,
                    let scaling = try LowRank.InputScaling.of(
                        l, calibration: needCalibration(l.method.rawValue, calibration, t), cols: cols,
                        threads: threads, tensor: t.name)
                {
                    f = try LowRank.factorize(w, rows: rows, cols: cols, rank: l.rank, scaling: scaling, tensor: t.name)
                } else {
                    f = try LowRank.factorize(w, rows: rows, cols: cols, rank: l.rank, tensor: t.name)
                }
                LowRank.multiply(f.u, f.v, rows: rows, rank: f.rank, cols: cols, into: work)
                out.rank = f.rank
                if l.output == .factors {
                    guard f.rank == plan.factorRanks[t.name] else {
                        throw ComputeError(
                            .internalError, "rank \(f.rank) differs from the planned \(plan.factorRanks[t.name] ?? 0)",
                            tensor: t.name)
                    }
                    out.factors = f
                }
            case .decompose(let d):
                let c = try needCalibration("decompose", calibration, t)
                let (rows, cols) = RunPlan.matrixShape(t)
                let norms = try c.inputNorms(threads: threads)
                let meanSquares = norms.map { Float($0 * $0 / Double(max(c.tokens, 1))) }
                out.stack = try BitStack.decompose(
                    work, rows: rows, cols: cols, meanSquares: meanSquares, blocks: d.blocks, rank: d.rank,
                    tensor: t.name)
                (out.codes, out.vectors) = (nil, nil)
            case .awq, .slice, .calibrate, .evaluate, .export: break
            }
        }
        return out
    }

    private func needCalibration(_ what: String, _ c: LinearCalibration?, _ t: TensorInfo) throws -> LinearCalibration {
        guard let c else {
            throw ComputeError(
                .invalidRecipe, "\(what) needs calibration inputs, and this tensor is not a linear layer's weight",
                tensor: t.name)
        }
        return c
    }

    /// Prunes in place; returns the dampening SparseGPT needed when it exceeded the recipe's.
    private func prune(
        _ t: TensorInfo, _ work: UnsafeMutableBufferPointer<Float>, _ st: PruneStage, calibration: LinearCalibration?
    ) throws -> Double? {
        let numel = t.numel
        let (rows, cols) = RunPlan.matrixShape(t)
        switch st.method {
        case let m as MagnitudePrune:
            if case .global = m.scope {
                GlobalMagnitude.apply(
                    plan.globalCounts[t.name] ?? .init(count: 0, threshold: nil), to: work, threads: threads)
            } else {
                for step in m.schedule?.targets ?? [m.sparsity] {
                    MagnitudePruning.prune(
                        work, k: MagnitudePruning.pruneCount(sparsity: step, numel: numel), threads: threads)
                }
            }
        case let m as NMPrune:
            guard numel % m.m == 0 else {
                throw ComputeError(.shapeMismatch, "\(numel) elements are not a multiple of m=\(m.m)", tensor: t.name)
            }
            MagnitudePruning.pruneNM(work, n: m.n, m: m.m, threads: threads)
        case let m as StructuredPrune:
            let k = MagnitudePruning.pruneCount(sparsity: m.sparsity, numel: m.dim == .rows ? rows : cols)
            StructuredPruning.prune(work, rows: rows, cols: cols, dim: m.dim, norm: m.norm, k: k, threads: threads)
        case let m as SparseGPTPrune:
            let c = try needCalibration("sparsegpt", calibration, t)
            let h = try c.inputHessian(threads: threads)
            let used = try SparseGPT.prune(
                work, rows: rows, cols: cols, gram: h.gram, tokens: c.tokens, pattern: m.pattern,
                damp: m.damp, factors: h.factors, threads: threads, tensor: t.name)
            return used > m.damp ? used : nil
        case let m as WandaPrune:
            let c = try needCalibration("wanda pruning", calibration, t)
            try Wanda.prune(
                work, rows: rows, cols: cols, norms: c.inputNorms(threads: threads),
                k: MagnitudePruning.pruneCount(sparsity: m.sparsity, numel: cols), threads: threads)
        case is FlapPrune: break  // applied to the whole model before the units (StructuredModelPass)
        default:
            throw ComputeError(.internalError, "prune method \(type(of: st.method).name) has no kernel", tensor: t.name)
        }
        return nil
    }

    private func distill(
        _ t: TensorInfo, _ work: UnsafeMutableBufferPointer<Float>, _ d: DistillStage, calibration c: LinearCalibration,
        original: [Float]?
    ) throws {
        guard let teacherW = original else {
            throw ComputeError(.internalError, "distill has no original weights", tensor: t.name)
        }
        var w = Array(work)
        let problem = try c.distillProblem(weight: teacherW, out: RunPlan.matrixShape(t).rows, threads: threads)
        LayerReconstruction.fit(&w, problem, iterations: d.iterations, threads: threads)
        _ = w.withUnsafeBufferPointer { work.update(fromContentsOf: $0) }
    }

    private func quantize(
        _ t: TensorInfo, _ work: UnsafeMutableBufferPointer<Float>, _ q: QuantizeStage,
        calibration: LinearCalibration?
    ) throws -> (RTNQuantizer.Result, FlexRound.Outcome?) {
        let weight = q.learnedRounding == nil ? [] : Array(work)
        var start = weight
        var result: RTNQuantizer.Result
        switch q.method {
        case .rtn:
            result = RTNQuantizer.quantize(
                work, shape: t.shape, bits: q.bits, symmetric: q.symmetric, granularity: q.granularity,
                observer: q.observer, threads: threads)
        case .gptq(let damp):
            let c = try needCalibration("gptq", calibration, t)
            let (rows, cols) = RunPlan.matrixShape(t)
            let h = try c.inputHessian(threads: threads)
            result = try start.withUnsafeMutableBufferPointer { sp in
                try GPTQ.quantize(
                    work, rows: rows, cols: cols, gram: h.gram, tokens: c.tokens, bits: q.bits,
                    symmetric: q.symmetric, granularity: q.granularity, damp: damp, actOrder: q.actOrder,
                    observer: q.observer, factors: h.factors, start: sp.isEmpty ? nil : sp.baseAddress,
                    threads: threads, tensor: t.name)
            }
        case .vptq, .bitstack:
            throw ComputeError(.internalError, "\(q.method.name) is not a grid quantizer", tensor: t.name)
        }
        guard let options = q.learnedRounding else { return (result, nil) }
        let c = try needCalibration("learned rounding", calibration, t)
        let (rows, cols) = RunPlan.matrixShape(t)
        let outcome = FlexRound.refine(
            &result, weight: weight, start: start, work: work, rows: rows, cols: cols, bits: q.bits,
            granularity: q.granularity, gram: try c.inputHessian(threads: threads).gram, tokens: c.tokens,
            options: options, threads: threads)
        return (result, outcome)
    }
}
