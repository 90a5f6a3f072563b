/// GPTQ-style error feedback on a GGUF type's own grid (`export: {format: gguf, gptq: true}`): a
/// linear layer's weight is quantized one block-column group at a time (32 columns, 256 for
/// k-quants), each group encoded by the type's quantizer (importance-weighted when the export has an
/// importance matrix) from the weights as updated so far, and the group's rounding error folded into
/// the columns not yet quantized through the inverse Hessian of the calibration inputs, as GPTQ's
/// lazy block update does (W[:, after] −= E · U[group, after], E = (W − Ŵ) / diag U). The bytes
/// written are the quantizer's own, so any llama.cpp reads them; columns inside one group share its
/// grid and do not feed each other. Rows are independent: fixed chunks of 64 over `threads`.
enum GGUFErrorFeedback {
    /// Encodes the rows × cols weight `w` as `type` into `dst` (the type's row layout); `factors`
    /// shares the Hessian factor with the other layers that read the same input; `start` gets the
    /// values each block was encoded from (the weights as updated so far).
    static func encode(
        _ w: UnsafeBufferPointer<Float>, rows: Int, cols: Int, type: GGMLType, gram: [Float], tokens: Int,
        damp: Double = 0.01,
        factors: HessianFactorCache? = nil, importance: [Float]?, into dst: UnsafeMutableRawBufferPointer,
        start: UnsafeMutableBufferPointer<Float>? = nil, threads: Int, tensor: String
    ) throws {
        var work = Array(w)
        let u = try work.withUnsafeMutableBufferPointer {
            try CalibrationHessian.inverseFactor(
                gram: gram, tokens: tokens, cols: cols, damp: damp, weight: $0, rows: rows, threads: threads,
                shared: factors, tensor: tensor
            ).u
        }
        let g = type.block.count, bytes = type.block.bytes, rowBytes = cols / g * bytes
        let chunks = Parallel.chunks(rows, chunk: 64)
        work.withUnsafeMutableBufferPointer { wp in
            u.withUnsafeBufferPointer { up in
                Parallel.forEach(chunks.count, threads: threads) { ci in
                    let r0 = chunks[ci].lowerBound, n = chunks[ci].count
                    let groupValues = UnsafeMutableBufferPointer<Float>.allocate(capacity: n * g)
                    let decoded = UnsafeMutableBufferPointer<Float>.allocate(capacity: n * g)
                    let encoded = UnsafeMutableRawBufferPointer.allocate(byteCount: n * bytes, alignment: 64)
                    let err = UnsafeMutableBufferPointer<Float>.allocate(capacity: n * g)
                    defer {
                        groupValues.deallocate()
                        decoded.deallocate()
                        encoded.deallocate()
                        err.deallocate()
                    }
                    let base = wp.baseAddress! + r0 * cols
                    for c0 in stride(from: 0, to: cols, by: g) {
                        for k in 0..<n { for j in 0..<g { groupValues[k * g + j] = base[k * cols + c0 + j] } }
                        if let start {
                            for k in 0..<n {
                                for j in 0..<g { start[(r0 + k) * cols + c0 + j] = groupValues[k * g + j] }
                            }
                        }
                        GGUFPlanner.encode(
                            UnsafeBufferPointer(groupValues), type: type, into: encoded,
                            importance: importance.map { Array($0[c0..<(c0 + g)]) }, threads: 1)
                        GGUFPlanner.decode(UnsafeRawBufferPointer(encoded), type: type, into: decoded)
                        for k in 0..<n {
                            (dst.baseAddress! + (r0 + k) * rowBytes + c0 / g * bytes).copyMemory(
                                from: encoded.baseAddress! + k * bytes, byteCount: bytes)
                            for j in 0..<g {
                                let d = up[(c0 + j) * cols + c0 + j]
                                let e = (groupValues[k * g + j] - decoded[k * g + j]) / d
                                err[k * g + j] = e.isFinite ? e : 0
                                base[k * cols + c0 + j] = decoded[k * g + j]
                            }
                        }
                        let after = c0 + g
                        if after < cols {
                            BLAS.gemm(
                                m: n, n: cols - after, k: g, a: err.baseAddress!, lda: g,
                                b: up.baseAddress! + c0 * cols + after, ldb: cols,
                                bTransposed: false, c: base + after, ldc: cols, alpha: -1, beta: 1)
                        }
                    }
                }
            }
        }
    }
}
