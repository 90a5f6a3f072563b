import Foundation

/// Applies a recipe to a model, one tensor at a time in file order, streaming the outputs.
/// Same input and recipe give byte-identical model files for any thread count.
public final class RecipeRunner {
    /// Hooks the caller uses to stop between units and to record progress.
    public struct Observer {
        /// Called before each unit; throw to stop (cancelled, lease lost, draining).
        public var checkContinue: () throws -> Void
        /// Called after each unit is written.
        public var unitFinished: (UnitMetrics) throws -> Void

        public init(checkContinue: @escaping () throws -> Void = {}, unitFinished: @escaping (UnitMetrics) throws -> Void = { _ in }) {
            self.checkContinue = checkContinue
            self.unitFinished = unitFinished
        }
    }

    /// What a run produced.
    public struct Result: Sendable {
        public let outputs: [OutputRecord]
        public let units: [UnitMetrics]
        /// SHA-256 of each input shard, by shard file name.
        public let inputSHA256: [String: String]
        public let inputBytes: Int64
        public let elapsedSeconds: Double
    }

    public let model: ModelSource
    public let recipe: Recipe
    public let threads: Int

    public init(model: ModelSource, recipe: Recipe, threads: Int) {
        self.model = model
        self.recipe = recipe
        self.threads = max(1, threads)
    }

    /// Runs into `outputDir` (which must exist and be empty of the output names).
    public func run(outputDir: String, observer: Observer = Observer()) throws -> Result {
        let start = DispatchTime.now()
        let readers = try model.shards.map { try SafeTensorsReader(path: $0.path) }
        var allTensors = [TensorInfo]()
        var seen = Set<String>()
        for r in readers {
            for t in r.tensors {
                guard seen.insert(t.name).inserted else {
                    throw ComputeError(.corruptHeader, "tensor appears in more than one shard", file: r.path, tensor: t.name)
                }
                allTensors.append(t)
            }
        }
        try RecipeValidator.validate(recipe, tensors: allTensors)
        let export = recipe.exportStages.first { $0.format == .safetensors }
        var outputs = [OutputRecord]()
        var units = [UnitMetrics]()
        var inputSHA = [String: String]()
        var inputBytes: Int64 = 0
        var index = 0
        for (s, reader) in readers.enumerated() {
            let shard = model.shards[s]
            var hasher = SHA256()
            hasher.update(reader.headerBytes)
            inputBytes += Int64(reader.fileSize)
            let plan = reader.tensors.map { t in (name: t.name, dtype: outputDType(t, export), shape: t.shape) }
            let writer = try export.map { _ in
                try SafeTensorsWriter(path: outputDir + "/" + shard.name, tensors: plan, metadata: reader.header.metadata)
            }
            for t in reader.tensors {
                try observer.checkContinue()
                let src = reader.data(t)
                hasher.update(src)
                let m = try processUnit(t, index: index, src: src, outDType: outputDType(t, export)) { bytes in
                    try writer?.write(name: t.name, bytes: bytes)
                }
                reader.release(t)
                units.append(m)
                try observer.unitFinished(m)
                index += 1
            }
            inputSHA[shard.name] = hasher.finalizeHex()
            if let w = writer {
                let (bytes, sha) = try w.finish()
                outputs.append(OutputRecord(path: shard.name, bytes: bytes, sha256: sha, format: "safetensors"))
            }
        }
        if export != nil, let index = model.indexFile {
            outputs.append(try writeIndex(from: index, to: outputDir, units: units))
        }
        for extra in model.extraFiles {
            let name = (extra as NSString).lastPathComponent
            guard let data = FileManager.default.contents(atPath: extra) else { throw ComputeError(.io, "cannot read", file: extra) }
            let sha = try FileOps.writeFile(outputDir + "/" + name, data)
            outputs.append(OutputRecord(path: name, bytes: Int64(data.count), sha256: sha, format: "model-file"))
        }
        let elapsed = Double(DispatchTime.now().uptimeNanoseconds - start.uptimeNanoseconds) / 1e9
        return Result(outputs: outputs, units: units, inputSHA256: inputSHA, inputBytes: inputBytes, elapsedSeconds: elapsed)
    }

    private func outputDType(_ t: TensorInfo, _ export: ExportStage?) -> DType {
        if let d = export?.dtype, t.dtype.isFloat16Or32 { return d }
        return t.dtype
    }

    private func processUnit(_ t: TensorInfo, index: Int, src: UnsafeRawBufferPointer, outDType: DType,
                             emit: (UnsafeRawBufferPointer) throws -> Void) throws -> UnitMetrics {
        let t0 = DispatchTime.now()
        let stages = recipe.pruneStages.filter { $0.selector.matches(t.name) }
        let numel = t.numel
        guard t.dtype.isFloat16Or32, !stages.isEmpty || outDType != t.dtype else {
            try emit(src)
            return UnitMetrics(index: index, tensor: t.name, dtype: t.dtype.rawValue, shape: t.shape, numel: numel, targeted: false,
                               sparsity: t.dtype.isFloat16Or32 ? zeroFraction(src, dtype: t.dtype) : 0, bits: Double(t.dtype.size * 8),
                               relativeError: 0, elapsedMS: ms(since: t0), bytesIn: src.count, bytesOut: src.count)
        }
        let original = UnsafeMutableBufferPointer<Float>.allocate(capacity: numel)
        let work = UnsafeMutableBufferPointer<Float>.allocate(capacity: numel)
        let out = UnsafeMutableRawBufferPointer.allocate(byteCount: numel * outDType.size, alignment: 64)
        defer { original.deallocate(); work.deallocate(); out.deallocate() }
        DTypeCodec.decode(src, dtype: t.dtype, into: original, threads: threads)
        _ = work.initialize(from: original)
        for st in stages {
            switch st.method {
            case .magnitude(let s):
                MagnitudePruning.prune(work, k: MagnitudePruning.pruneCount(sparsity: s, numel: numel), threads: threads)
            case .nm(let n, let m):
                guard numel % m == 0 else { throw ComputeError(.shapeMismatch, "\(numel) elements are not a multiple of m=\(m)", tensor: t.name) }
                MagnitudePruning.pruneNM(work, n: n, m: m, threads: threads)
            }
        }
        DTypeCodec.encode(UnsafeBufferPointer(work), dtype: outDType, into: out, threads: threads)
        try emit(UnsafeRawBufferPointer(out))
        let (err, zeros) = Self.errorAndZeros(UnsafeBufferPointer(original), UnsafeBufferPointer(work), threads: threads)
        return UnitMetrics(index: index, tensor: t.name, dtype: outDType.rawValue, shape: t.shape, numel: numel, targeted: !stages.isEmpty,
                           sparsity: numel == 0 ? 0 : Double(zeros) / Double(numel), bits: Double(outDType.size * 8),
                           relativeError: err.isFinite ? err : nil, elapsedMS: ms(since: t0), bytesIn: src.count, bytesOut: out.count)
    }

    /// ‖a − b‖ / ‖a‖ and the number of zeros in b, summed per fixed chunk in order (deterministic).
    static func errorAndZeros(_ a: UnsafeBufferPointer<Float>, _ b: UnsafeBufferPointer<Float>, threads: Int) -> (Double, Int) {
        let ranges = Parallel.chunks(a.count, chunk: 1 << 16)
        var parts = [(Double, Double, Int)](repeating: (0, 0, 0), count: ranges.count)
        parts.withUnsafeMutableBufferPointer { pb in
            Parallel.forEach(ranges.count, threads: threads) { r in
                var num = 0.0, den = 0.0, z = 0
                for i in ranges[r] {
                    let x = Double(a[i]), d = Double(a[i]) - Double(b[i])
                    num += d * d
                    den += x * x
                    if b[i] == 0 { z += 1 }
                }
                pb[r] = (num, den, z)
            }
        }
        var num = 0.0, den = 0.0, z = 0
        for p in parts { num += p.0; den += p.1; z += p.2 }
        return (den == 0 ? (num == 0 ? 0 : .infinity) : (num / den).squareRoot(), z)
    }

    private func zeroFraction(_ src: UnsafeRawBufferPointer, dtype: DType) -> Double {
        let n = src.count / dtype.size
        if n == 0 { return 0 }
        var z = 0
        switch dtype {
        case .F32: for i in 0..<n where src.loadUnaligned(fromByteOffset: i * 4, as: UInt32.self) & 0x7FFF_FFFF == 0 { z += 1 }
        default: for i in 0..<n where src.loadUnaligned(fromByteOffset: i * 2, as: UInt16.self) & 0x7FFF == 0 { z += 1 }
        }
        return Double(z) / Double(n)
    }

    private func writeIndex(from index: String, to dir: String, units: [UnitMetrics]) throws -> OutputRecord {
        var map = [(String, String)]()
        for (s, shard) in model.shards.enumerated() {
            let r = try SafeTensorsHeader.read(path: shard.path)
            _ = s
            for t in r.tensors { map.append((t.name, shard.name)) }
        }
        map.sort { $0.0 < $1.0 }
        let total = units.reduce(0) { $0 + $1.bytesOut }
        let json = "{\"metadata\":{\"total_size\":\(total)},\"weight_map\":{" +
            map.map { "\(jsonString($0.0)):\(jsonString($0.1))" }.joined(separator: ",") + "}}\n"
        let data = Data(json.utf8)
        let sha = try FileOps.writeFile(dir + "/" + ModelSource.indexName, data)
        return OutputRecord(path: ModelSource.indexName, bytes: Int64(data.count), sha256: sha, format: "safetensors-index")
    }
}

func ms(since t0: DispatchTime) -> Double { Double(DispatchTime.now().uptimeNanoseconds - t0.uptimeNanoseconds) / 1e6 }
