import Foundation

/// `manifest.json` of an artifact directory: recipe, input and output checksums, per-layer metrics, versions, timings.
public enum Manifest {
    public static let fileName = "manifest.json"
    public static let toolVersion = "0.1.0"
    /// The OpenBLAS kernel this process runs (e.g. Haswell, Prescott, Cooperlake). Calibrated
    /// outputs are byte-identical for any thread count on one kernel, and may differ between kernels.
    public static var blasCore: String { BLAS.coreName }

    /// Writes the manifest (fsynced) and returns its record; `inputSize` is the `--size` a BitStack input loaded at.
    public static func write(
        dir: String, recipe: Recipe, inputPath: String, result: RecipeRunner.Result,
        threads: Int, inputSize: String? = nil, extra: [String: String] = [:]
    ) throws -> OutputRecord {
        var timings: [String: Any] = ["total_s": result.elapsedSeconds, "threads": threads]
        // A calibrated run's compression alone, as peers time theirs (`RecipeRunner.Result.calibrationSeconds`).
        if let c = result.calibrationSeconds { timings["calibration_s"] = c }
        var m: [String: Any] = [
            "tool": "squeeze",
            "version": toolVersion,
            "recipe": try JSONSerialization.jsonObject(with: Data(recipe.canonicalJSON.utf8)),
            "input": ["path": inputPath, "bytes": result.inputBytes, "sha256": result.inputSHA256],
            "outputs": result.outputs.map {
                ["path": $0.path, "bytes": $0.bytes, "sha256": $0.sha256, "format": $0.format]
            },
            "layers": result.units.map { u -> [String: Any] in
                [
                    "tensor": u.tensor, "dtype": u.dtype, "shape": u.shape, "numel": u.numel, "targeted": u.targeted,
                    "sparsity": u.sparsity, "bits": u.bits,
                    "relative_error": u.relativeError.map { $0 as Any } ?? NSNull(),
                    "elapsed_ms": u.elapsedMS, "bytes_in": u.bytesIn, "bytes_out": u.bytesOut,
                    "rank": u.rank.map { $0 as Any } ?? NSNull(),
                    "output_error": u.outputError.map { $0 as Any } ?? NSNull(),
                    "damp_used": u.dampUsed.map { $0 as Any } ?? NSNull()
                ].merging(u.learnedRounding.map { ["learned_rounding": Self.rounding($0)] } ?? [:]) { a, _ in a }
            },
            "timings": timings,
            "blas_core": blasCore
        ]
        if let st = result.structure { m["structure"] = try plain(st) }
        if !result.budgets.isEmpty { m["gguf_budgets"] = try plain(result.budgets) }
        if let s = result.slice { m["slice"] = try plain(s) }
        if let a = result.awq { m["awq"] = try plain(a) }
        let rounded = result.units.compactMap(\.learnedRounding)
        if let total = FlexRound.Outcome.sum(rounded) {
            m["learned_rounding"] = Self.rounding(total).merging(["matrices": rounded.count]) { a, _ in a }
        }
        if !result.quantizedInput.isEmpty {
            // The input's own lossy types: every metric compares against the model they decode to.
            m["input"] =
                [
                    "path": inputPath, "bytes": result.inputBytes, "sha256": result.inputSHA256,
                    "quantized_tensors": result.quantizedInput
                ] as [String: Any]
        }
        // The size a BitStack input was loaded at (`--size`), as given.
        if let inputSize, var input = m["input"] as? [String: Any] {
            input["size"] = inputSize
            m["input"] = input
        }
        if let e = result.evaluation {
            m["evaluation"] = try plain(e)
        }
        for (k, v) in extra { m[k] = v }
        let data = try JSONSerialization.data(withJSONObject: m, options: [.prettyPrinted, .sortedKeys])
        let sha = try FileOps.writeFile(dir + "/" + fileName, data)
        return OutputRecord(path: fileName, bytes: Int64(data.count), sha256: sha, format: "manifest")
    }

    /// Learned rounding's outcome as manifest fields (errors: tr(ΔW H ΔWᵀ) summed over matrices).
    private static func rounding(_ o: FlexRound.Outcome) -> [String: Any] {
        ["start_error": o.startError, "error": o.error, "changed_codes": o.changed, "seconds": o.seconds]
    }

    /// A summary's JSON as the plain objects the manifest dictionary holds.
    private static func plain<T: Encodable>(_ value: T) throws -> Any {
        try JSONSerialization.jsonObject(with: JSONEncoder().encode(value))
    }
}
