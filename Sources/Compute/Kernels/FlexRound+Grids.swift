/// Learned rounding on the two grids Squeeze writes: the integer grid of `quantize` (RTN or GPTQ
/// codes with their group scales and zero points) and a GGUF type's own blocks.
extension FlexRound {
    /// Refines `result` (the integer-grid codes of `weight`, from `start`'s values) and writes
    /// the dequantized values of the codes kept into `work`.
    static func refine(
        _ result: inout RTNQuantizer.Result, weight: [Float], start: [Float], work: UnsafeMutableBufferPointer<Float>,
        rows: Int, cols: Int, bits: Int, granularity: RTNQuantizer.Granularity, gram: [Float], tokens: Int,
        options: Options, threads: Int
    ) -> Outcome {
        let gl = RTNQuantizer.groupLength(granularity, shape: [rows, cols])
        let grid = Grid(
            levels: (0..<(1 << bits)).map(Float.init), groupLength: gl, a: result.scales,
            b: zip(result.scales, result.zeros).map { -Float($1) * $0 })
        let outcome = weight.withUnsafeBufferPointer { w in
            start.withUnsafeBufferPointer { v in
                result.codes.withUnsafeMutableBufferPointer { c in
                    refine(
                        weight: w, start: v, codes: c, grid: grid, rows: rows, cols: cols, gram: gram, tokens: tokens,
                        options: options, threads: threads)
                }
            }
        }
        for i in 0..<(rows * cols) {
            let g = i / gl
            work[i] = RTNQuantizer.value(Float(result.codes[i]), scale: result.scales[g], zero: Float(result.zeros[g]))
        }
        return outcome
    }

    /// Refines the codes of `weight` encoded as `type` in `bytes` (from `start`'s values), in place;
    /// nil when the type has no fixed-scale grid (the k-quants), whose blocks stay as they are.
    static func refine(
        _ bytes: UnsafeMutableRawBufferPointer, type: GGMLType, weight: UnsafeBufferPointer<Float>,
        start: UnsafeBufferPointer<Float>, rows: Int, cols: Int, gram: [Float], tokens: Int, options: Options,
        threads: Int
    ) -> Outcome? {
        guard let layout = GGMLBlockGrid.of(type) else { return nil }
        let (grid, first) = layout.read(UnsafeRawBufferPointer(bytes), count: rows * cols)
        var codes = first
        let outcome = codes.withUnsafeMutableBufferPointer { c in
            refine(
                weight: weight, start: start, codes: c, grid: grid, rows: rows, cols: cols, gram: gram, tokens: tokens,
                options: options, threads: threads)
        }
        layout.write(codes, into: bytes)
        return outcome
    }
}
