import Foundation

/// The grid each linear is quantized to after an `awq` stage, read from the recipe's plan: the last
/// `quantize` stage that selects it (its integer grid, RTN on min/max), else the last GGUF export's
/// type for it.
struct AWQTargets {
    let plan: RunPlan
    let threads: Int

    /// `name`'s [rows, cols] weight with its grid, or nil when the recipe does not quantize it.
    func linear(_ name: String, weight: [Float], rows: Int, cols: Int) -> AWQSearch.Linear? {
        let threads = self.threads
        if let q = plan.lastQuantize(for: TensorInfo(name: name, dtype: .F32, shape: [rows, cols], begin: 0, end: 0)) {
            let group: Int
            if case .group(let g) = q.granularity, cols % g == 0 { group = g } else { group = cols }
            return AWQSearch.Linear(
                weight: weight, rows: rows,
                // The min/max grid (as AutoAWQ searches), whatever the stage's observer: the MSE observer's
                // 80 shrunk ranges per group made the pass 5.5× a GPTQ job, and clipping searches ranges too.
                quantize: { w, rows, _ in
                    _ = RTNQuantizer.quantize(
                        w, shape: [rows, cols], bits: q.bits, symmetric: q.symmetric, granularity: q.granularity,
                        observer: .minmax, threads: threads)
                },
                usesImportance: false, group: group, symmetric: q.symmetric)
        }
        guard let slot = plan.slots.last(where: { $0.kind == .gguf }) else { return nil }
        let t = TensorInfo(name: name, dtype: .F32, shape: [rows, cols], begin: 0, end: 0)
        let type = slot.ggufType(t)
        guard type.traits.blockCount > 1, let bytes = type.traits.rowBytes(cols) else { return nil }
        return AWQSearch.Linear(
            weight: weight, rows: rows,
            quantize: { w, rows, importance in
                let buffer = UnsafeMutableRawBufferPointer.allocate(byteCount: rows * bytes, alignment: 64)
                defer { buffer.deallocate() }
                GGUFPlanner.encode(
                    UnsafeBufferPointer(w), type: type, into: buffer, importance: importance, threads: threads)
                GGUFPlanner.decode(UnsafeRawBufferPointer(buffer), type: type, into: w)
            },
            usesImportance: slot.export.importance == .calibration && type.traits.usesImportance,
            group: type.traits.blockCount, symmetric: !type.traits.hasMin)
    }
}
