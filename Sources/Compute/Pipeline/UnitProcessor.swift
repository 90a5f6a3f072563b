import Foundation

/// Runs the stages on one tensor and encodes it for every export slot. Memory: one F32 working
/// copy plus the encoded outputs.
struct UnitProcessor {
    let plan: RunPlan
    let threads: Int

    /// The unit's metrics and, when kernels ran, one owned buffer per slot (in slot order) holding
    /// the tensor's output pieces back to back; no buffers means "copy the input".
    func process(
        _ t: TensorInfo, index: Int, src: UnsafeRawBufferPointer, calibration: LinearCalibration? = nil,
        importance: [Float]? = nil
    ) throws -> (UnitMetrics, [UnsafeMutableRawBufferPointer]) {
        let t0 = DispatchTime.now()
        let stages = plan.stages(for: t)
        let numel = t.numel
        guard t.dtype.isFloat16Or32 && (!stages.isEmpty || plan.denseDType(t) != t.dtype || plan.hasGGUF) else {
            return (
                UnitMetrics(
                    index: index, tensor: t.name, dtype: t.dtype.rawValue, shape: t.shape, numel: numel,
                    targeted: false,
                    sparsity: t.dtype.isFloat16Or32 ? Self.zeroFraction(src, dtype: t.dtype) : 0,
                    bits: Double(t.dtype.size * 8),
                    relativeError: 0, elapsedMS: ms(since: t0), bytesIn: src.count, bytesOut: src.count), []
            )
        }
        // Untouched F32 input (no stage selects it, so nothing writes the working copy): encode
        // straight from the input buffer instead of copying it.
        let inPlace =
            stages.isEmpty && t.dtype == .F32 && Int(bitPattern: src.baseAddress) % MemoryLayout<Float>.alignment == 0
        let work =
            inPlace
            ? UnsafeMutableBufferPointer(mutating: src.bindMemory(to: Float.self))
            : UnsafeMutableBufferPointer<Float>.allocate(capacity: numel)
        defer { if !inPlace { work.deallocate() } }
        if !inPlace { DTypeCodec.decode(src, dtype: t.dtype, into: work, threads: threads) }
        // Calibrated units also need the original values (distill's target, the output error).
        let original = calibration.map { _ in Array(UnsafeBufferPointer(work)) }
        let done = try TensorTransform(plan: plan, threads: threads).run(
            t, work, stages: stages[...], calibration: calibration, original: original)
        let encoded = try encode(
            t, work: UnsafeBufferPointer(work), done: done, importance: importance, calibration: calibration)
        var m = metrics(
            t, index: index, src: src, work: UnsafeBufferPointer(work), done: done, encoded: encoded, since: t0)
        m.dampUsed = done.dampUsed
        m.learnedRounding = FlexRound.Outcome.sum([done.rounding, encoded.rounding])
        if let c = calibration, let original {
            m.outputError = original.withUnsafeBufferPointer {
                c.outputError(
                    original: $0, compressed: UnsafeBufferPointer(work), out: RunPlan.matrixShape(t).rows,
                    threads: threads)
            }
        }
        return (m, encoded.parts)
    }

    /// The slots' buffers, with the bits per value and bytes of the export that describes the
    /// tensor (the last GGUF export's, else compressed, else dense), and the GGUF bytes to measure.
    struct Encoded {
        var parts = [UnsafeMutableRawBufferPointer]()
        var bits: Double
        var bytesOut = 0
        var measured: (type: GGMLType, bytes: UnsafeRawBufferPointer)?
        /// What learned rounding did to the GGUF blocks.
        var rounding: FlexRound.Outcome?
    }

    private func encode(
        _ t: TensorInfo, work: UnsafeBufferPointer<Float>, done: TensorTransform.Result, importance: [Float]?,
        calibration: LinearCalibration?
    ) throws -> Encoded {
        let pieces = plan.outputTensors(t)
        // Each output piece's F32 values: the work buffer, or the two factors.
        func eachPiece(_ body: (Int, UnsafeBufferPointer<Float>) -> Void) {
            if let f = done.factors {
                f.u.withUnsafeBufferPointer { body(0, $0) }
                f.v.withUnsafeBufferPointer { body(1, $0) }
            } else {
                body(0, work)
            }
        }
        func encodeAll(
            _ slot: ExportSlot, _ body: (UnsafeBufferPointer<Float>, TensorInfo, UnsafeMutableRawBufferPointer) -> Void
        )
            -> UnsafeMutableRawBufferPointer
        {
            let sizes = pieces.map { slot.bytes($0, of: t, plan: plan) }
            let out = UnsafeMutableRawBufferPointer.allocate(byteCount: sizes.reduce(0, +), alignment: 64)
            var off = 0
            eachPiece { k, values in
                body(values, pieces[k], UnsafeMutableRawBufferPointer(rebasing: out[off..<(off + sizes[k])]))
                off += sizes[k]
            }
            return out
        }
        var e = Encoded(bits: Double(plan.denseDType(t).size * 8))
        let numel = max(t.numel, 1)
        for slot in plan.slots {
            let out: UnsafeMutableRawBufferPointer
            switch slot.kind {
            case .dense:
                let dtype = plan.denseDType(t)
                out = encodeAll(slot) { v, _, dst in DTypeCodec.encode(v, dtype: dtype, into: dst, threads: threads) }
                e.bytesOut = out.count
            case .gguf:
                var overflow: (type: GGMLType, block: Int, piece: TensorInfo)?
                var encodeError: Error?
                var rounding: FlexRound.Outcome?
                out = encodeAll(slot) { v, p, dst in
                    guard !plan.ggufDropped(p.name) else { return }
                    let ty = slot.ggufType(p)
                    let imp = done.factors == nil ? slot.importance(p, plan: plan, calibrated: importance) : nil
                    // Learned rounding needs the layer's inputs and a grid with fixed scales (no k-quant).
                    let refinable = done.factors == nil && calibration != nil && GGMLBlockGrid.of(ty) != nil
                    let learned = refinable ? slot.export.learnedRounding : nil
                    var start = learned == nil ? [] : Array(v)
                    if slot.export.errorFeedback, done.factors == nil, ty.block.count > 1, let c = calibration {
                        do {
                            let (rows, cols) = RunPlan.matrixShape(p)
                            let h = try c.inputHessian(threads: threads)
                            try start.withUnsafeMutableBufferPointer { sp in
                                try GGUFErrorFeedback.encode(
                                    v, rows: rows, cols: cols, type: ty, gram: h.gram, tokens: c.tokens,
                                    factors: h.factors, importance: imp, into: dst, start: sp.isEmpty ? nil : sp,
                                    threads: threads, tensor: p.name)
                            }
                        } catch { encodeError = error }
                    } else {
                        GGUFPlanner.encode(v, type: ty, into: dst, importance: imp, threads: threads)
                    }
                    if let learned, let c = calibration, encodeError == nil {
                        do {
                            let (rows, cols) = RunPlan.matrixShape(p)
                            let gram = try c.inputHessian(threads: threads).gram
                            let o = start.withUnsafeBufferPointer { sp in
                                FlexRound.refine(
                                    dst, type: ty, weight: v, start: sp, rows: rows, cols: cols, gram: gram,
                                    tokens: c.tokens, options: learned, threads: threads)
                            }
                            rounding = FlexRound.Outcome.sum([rounding, o])
                        } catch { encodeError = error }
                    }
                    if overflow == nil, let b = GGUFPlanner.firstOverflowingBlock(UnsafeRawBufferPointer(dst), type: ty)
                    {
                        overflow = (ty, b, p)
                    }
                }
                let failure =
                    encodeError
                    ?? overflow.map { o in
                        ComputeError(
                            .numerical,
                            "block \(o.block) (values \(o.block * o.type.block.count)…) is too large for "
                                + "\(o.type.name)'s fp16 scales: the export would hold infinite scales (llama.cpp "
                                + "refuses "
                                + "such a row too); give this tensor f32 with tensor_types, or check the weights",
                            tensor: o.piece.name)
                    }
                if let failure {
                    out.deallocate()
                    for part in e.parts { part.deallocate() }
                    throw failure
                }
                e.rounding = FlexRound.Outcome.sum([e.rounding, rounding])
                if !plan.ggufDropped(t.name) {
                    if done.factors == nil { e.measured = (slot.ggufType(t), UnsafeRawBufferPointer(out)) }
                    e.bits = Double(out.count * 8) / Double(numel)
                    e.bytesOut = out.count
                }
            case .compressed, .compressedTensors:
                if let q = plan.lastQuantize(for: t), done.codes != nil || done.vectors != nil || done.stack != nil {
                    let bytes: [UInt8]
                    if case .bitstack = q.method, let s = done.stack {
                        bytes = CompressedLayout.encode(stack: s)
                    } else if case .vptq(let o) = q.method, let v = done.vectors {
                        bytes = CompressedLayout.encode(t, options: o, result: v)
                    } else if let c = done.codes {
                        bytes =
                            slot.kind == .compressed
                            ? CompressedLayout.encode(t, stage: q, result: c)
                            : CompressedTensorsLayout.encode(t, stage: q, result: c)
                    } else {
                        throw ComputeError(.internalError, "no codes for the \(q.method.name) export", tensor: t.name)
                    }
                    out = UnsafeMutableRawBufferPointer.allocate(byteCount: bytes.count, alignment: 64)
                    bytes.withUnsafeBytes { out.copyMemory(from: $0) }
                    e.bits = Double(bytes.count * 8) / Double(numel)
                } else {
                    out = encodeAll(slot) { v, _, dst in
                        DTypeCodec.encode(v, dtype: t.dtype, into: dst, threads: threads)
                    }
                }
                if !plan.hasGGUF { e.bytesOut = out.count }
            }
            e.parts.append(out)
        }
        if done.factors != nil && !plan.hasGGUF { e.bits = Double(e.bytesOut * 8) / Double(numel) }
        return e
    }

    private func metrics(
        _ t: TensorInfo, index: Int, src: UnsafeRawBufferPointer, work: UnsafeBufferPointer<Float>,
        done: TensorTransform.Result, encoded e: Encoded, since t0: DispatchTime
    ) -> UnitMetrics {
        let numel = t.numel
        let (err, zeros) = Self.errorAndZeros(src: src, dtype: t.dtype, count: numel, threads: threads) { range, dst in
            if let (ty, bytes) = e.measured {
                let (c, b) = ty.block
                GGUFPlanner.decode(
                    UnsafeRawBufferPointer(rebasing: bytes[(range.lowerBound / c * b)..<(range.upperBound / c * b)]),
                    type: ty, into: dst)
            } else {
                for (k, i) in range.enumerated() { dst[k] = work[i] }
            }
        }
        let lastGGUF = plan.slots.last { $0.kind == .gguf }
        var m = UnitMetrics(
            index: index, tensor: t.name, dtype: lastGGUF.map { $0.ggufType(t).name } ?? plan.denseDType(t).rawValue,
            shape: t.shape, numel: numel, targeted: true, sparsity: numel == 0 ? 0 : Double(zeros) / Double(numel),
            bits: e.bits,
            relativeError: err.isFinite ? err : nil, elapsedMS: ms(since: t0), bytesIn: src.count, bytesOut: e.bytesOut)
        m.rank = done.rank
        return m
    }

    /// ‖a − b‖ / ‖a‖ and the number of zeros in b, where a is decoded from `src` and b produced by
    /// `reconstruct` one 64 Ki-element chunk at a time (a multiple of 32: whole quant blocks);
    /// partial sums are combined in chunk order, so the result does not depend on `threads`.
    static func errorAndZeros(
        src: UnsafeRawBufferPointer, dtype: DType, count: Int, threads: Int,
        reconstruct: (Range<Int>, UnsafeMutableBufferPointer<Float>) -> Void
    ) -> (Double, Int) {
        let ranges = Parallel.chunks(count, chunk: 1 << 16)
        var parts = [(Double, Double, Int)](repeating: (0, 0, 0), count: ranges.count)
        parts.withUnsafeMutableBufferPointer { pb in
            Parallel.forEach(ranges.count, threads: threads) { r in
                let range = ranges[r]
                let b = UnsafeMutableBufferPointer<Float>.allocate(capacity: range.count)
                defer { b.deallocate() }
                let sz = dtype.size
                let raw = UnsafeRawBufferPointer(rebasing: src[(range.lowerBound * sz)..<(range.upperBound * sz)])
                reconstruct(range, b)
                if dtype == .F32 {  // F32 input: read in place, no decoded copy
                    pb[r] = errorSums(raw.baseAddress!, UnsafeRawPointer(b.baseAddress!), count: range.count)
                } else {
                    let a = UnsafeMutableBufferPointer<Float>.allocate(capacity: range.count)
                    defer { a.deallocate() }
                    DTypeCodec.decode(raw, dtype: dtype, into: a, threads: 1)
                    pb[r] = errorSums(
                        UnsafeRawPointer(a.baseAddress!), UnsafeRawPointer(b.baseAddress!), count: range.count)
                }
            }
        }
        var num = 0.0, den = 0.0, z = 0
        for p in parts {
            num += p.0
            den += p.1
            z += p.2
        }
        return (den == 0 ? (num == 0 ? 0 : .infinity) : (num / den).squareRoot(), z)
    }

    /// Σ (a − b)², Σ a² (in F64, four lanes at a time, lanes added in a fixed order) and the zeros of b.
    @inline(__always)
    private static func errorSums(_ pa: UnsafeRawPointer, _ pb: UnsafeRawPointer, count n: Int) -> (Double, Double, Int)
    {
        typealias D4 = SIMD4<Double>
        var num = D4(), den = D4(), zeros = SIMD4<Int32>()
        let whole = n / 4 * 4
        var i = 0
        while i < whole {
            let av = pa.loadUnaligned(fromByteOffset: 4 * i, as: SIMD4<Float>.self)
            let bv = pb.loadUnaligned(fromByteOffset: 4 * i, as: SIMD4<Float>.self)
            let ad = D4(Double(av[0]), Double(av[1]), Double(av[2]), Double(av[3]))
            let d = ad - D4(Double(bv[0]), Double(bv[1]), Double(bv[2]), Double(bv[3]))
            num += d * d
            den += ad * ad
            zeros &+= SIMD4<Int32>(repeating: 0).replacing(with: 1, where: bv .== 0)
            i += 4
        }
        var s = (num.sum(), den.sum(), Int(zeros.wrappedSum()))
        for j in whole..<n {
            let av = pa.loadUnaligned(fromByteOffset: 4 * j, as: Float.self),
                bv = pb.loadUnaligned(fromByteOffset: 4 * j, as: Float.self)
            let x = Double(av), d = x - Double(bv)
            s.0 += d * d
            s.1 += x * x
            if bv == 0 { s.2 += 1 }
        }
        return s
    }

    static func zeroFraction(_ src: UnsafeRawBufferPointer, dtype: DType) -> Double {
        let n = src.count / dtype.size
        return n == 0 ? 0 : Double(DTypeCodec.zeroCount(src, dtype: dtype) ?? 0) / Double(n)
    }
}
