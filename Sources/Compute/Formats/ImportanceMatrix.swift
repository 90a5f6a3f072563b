import Foundation

/// An importance matrix as llama.cpp's `llama-imatrix` collects it: per weight matrix (by GGUF
/// name), Σ x² of each input column over the calibration tokens, and the token count. Read from
/// and written as llama.cpp's GGUF-based imatrix file (`NAME.in_sum2`, `NAME.counts`,
/// `imatrix.*` keys) and its legacy `.dat` file.
public struct ImportanceMatrix: Equatable, Sendable {
    public struct Entry: Equatable, Sendable {
        /// Σ x² per input column (a legacy file: its stored values, the mean square times the calls).
        public var sums: [Float]
        /// The divisor llama-quantize uses: tokens summed (a legacy file: its call count).
        public var count: Float
        /// From a legacy file, whose values are left as they are when the call count is 0.
        var legacy = false

        public init(sums: [Float], count: Float) { (self.sums, self.count) = (sums, count) }

        /// Refuses values no quantizer can weigh with (naming the entry and column).
        func check(name: String, path: String) throws {
            guard count.isFinite, count >= 0 else {
                throw ComputeError(
                    .corruptData, "entry \(name): token count \(count) is not a finite count", file: path)
            }
            for (j, v) in importance.enumerated() where !(v.isFinite && v >= 0 && v <= largestImportance) {
                let why =
                    v.isFinite ? (v < 0 ? "negative" : "over 1e30, too large to weight an F32 error") : "not finite"
                throw ComputeError(
                    .corruptData, "entry \(name): column \(j) is \(v), \(why) (a corrupt or foreign imatrix?)",
                    file: path)
            }
        }

        /// What each column's error is weighted by, as llama-quantize computes it from the file:
        /// the mean square (Σ x² / count), or 1 for a matrix that saw no tokens.
        public var importance: [Float] {
            if count > 0 { return sums.map { $0 / count } }
            return legacy ? sums : [Float](repeating: 1, count: sums.count)
        }
    }

    public var entries: [String: Entry]
    /// The calibration text files (`imatrix.datasets`).
    public var datasets: [String]
    /// Calibration windows (`imatrix.chunk_count`) and their length in tokens (`imatrix.chunk_size`).
    public var chunkCount: Int
    public var chunkSize: Int

    public init(entries: [String: Entry], datasets: [String], chunkCount: Int, chunkSize: Int) {
        (self.entries, self.datasets, self.chunkCount, self.chunkSize) = (entries, datasets, chunkCount, chunkSize)
    }

    /// The files a calibrated `imatrix: true` export writes beside the model.
    public static let ggufName = "imatrix.gguf", legacyName = "imatrix.dat"

    static let fileLimit = 1 << 30
    static let maxEntries = 1 << 20
    static let maxColumns = 1 << 24

    /// Reads a GGUF imatrix file, or else a legacy `.dat` one (as llama-quantize does); refuses
    /// an entry with a non-finite, negative or overflowing value (llama.cpp refuses non-finite
    /// ones too), which would otherwise quantize its matrix to NaN or zeros.
    public static func read(path: String) throws -> ImportanceMatrix {
        let bytes = try InputFile.contents(of: path, what: "imatrix file", limit: fileLimit)
        let m = try bytes.withUnsafeBytes { raw in
            if raw.count >= 4, Array(raw[0..<4]) == Array("GGUF".utf8) { return try fromGGUF(raw, path: path) }
            return try fromLegacy(raw, path: path)
        }
        for (name, e) in m.entries.sorted(by: { $0.key < $1.key }) { try e.check(name: name, path: path) }
        return m
    }

    /// The largest mean square an entry may hold: the quantizers weight each squared error by it,
    /// in F32, so larger values overflow to infinity (real activations stay far below).
    static let largestImportance: Float = 1e30

    /// The importance to quantize with: nil (unweighted, as llama.cpp does) when every value is 0.
    static func weighting(_ values: [Float]?) -> [Float]? {
        guard let values, values.contains(where: { $0 != 0 }) else { return nil }
        return values
    }

    private static func fromGGUF(_ raw: UnsafeRawBufferPointer, path: String) throws -> ImportanceMatrix {
        let h = try GGUFReader.parse(raw, path: path)
        let meta = Dictionary(h.metadata, uniquingKeysWith: { a, _ in a })
        var sums = [String: GGUFReader.Tensor](), counts = [String: GGUFReader.Tensor]()
        for t in h.tensors {
            if t.name.hasSuffix(".in_sum2") { sums[String(t.name.dropLast(8))] = t }
            if t.name.hasSuffix(".counts") { counts[String(t.name.dropLast(7))] = t }
        }
        func floats(_ t: GGUFReader.Tensor) throws -> [Float] {
            guard t.type == .f32 else {
                throw ComputeError(.corruptData, "is \(t.type.name), not F32", file: path, tensor: t.name)
            }
            return (0..<t.numel).map {
                Float(
                    bitPattern: UInt32(
                        littleEndian: raw.loadUnaligned(fromByteOffset: t.offset + 4 * $0, as: UInt32.self)))
            }
        }
        var entries = [String: Entry]()
        for (name, s) in sums {
            guard let c = counts[name] else {
                throw ComputeError(.corruptData, "has no \(name).counts beside it", file: path, tensor: s.name)
            }
            let mats = s.dims.count > 1 ? s.dims[1...].reduce(1, *) : 1
            guard mats == 1, c.numel == 1 else {
                throw ComputeError(
                    .unsupportedModel, "holds \(mats) matrices (experts); Squeeze quantizes 2-D weights only",
                    file: path, tensor: s.name)
            }
            entries[name] = Entry(sums: try floats(s), count: try floats(c)[0])
        }
        guard !entries.isEmpty else {
            throw ComputeError(
                .corruptData, "GGUF file holds no NAME.in_sum2 / NAME.counts tensors: not an imatrix", file: path)
        }
        var datasets = [String]()
        if case .array(.string(let d))? = meta["imatrix.datasets"] { datasets = d }
        func int(_ k: String) -> Int {
            if case .uint32(let v)? = meta[k] { return Int(v) }
            return 0
        }
        return ImportanceMatrix(
            entries: entries, datasets: datasets, chunkCount: int("imatrix.chunk_count"),
            chunkSize: int("imatrix.chunk_size"))
    }

    /// The legacy layout: i32 entry count; per entry i32 name length, name, i32 calls, i32 value
    /// count, f32 values (mean square × calls); then i32 chunks and i32 length + dataset name.
    private static func fromLegacy(_ raw: UnsafeRawBufferPointer, path: String) throws -> ImportanceMatrix {
        var r = ByteReader(size: raw.count, path: path) { off, buf in
            buf.copyMemory(from: UnsafeRawBufferPointer(rebasing: raw[off..<(off + buf.count)]))
        }
        func i32() throws -> Int { Int(Int32(bitPattern: try r.u32())) }
        let n = try i32()
        guard n >= 1, n <= maxEntries, n * 12 <= raw.count else {
            throw ComputeError(
                .corruptHeader, "neither a GGUF imatrix nor a legacy .dat one (entry count \(n))", file: path)
        }
        var entries = [String: Entry]()
        for _ in 0..<n {
            let len = try i32()
            guard len >= 1, len <= 4096 else {
                throw ComputeError(.corruptHeader, "entry name length \(len) is absurd", file: path)
            }
            guard let name = try r.withNext(len, { String(validating: $0, as: UTF8.self) }) else {
                throw ComputeError(.corruptHeader, "entry name is not UTF-8", file: path)
            }
            let calls = try i32(), count = try i32()
            guard count >= 1, count <= maxColumns else {
                throw ComputeError(.corruptHeader, "value count \(count) is absurd", file: path, tensor: name)
            }
            let values = try r.withNext(4 * count) { b in
                (0..<count).map {
                    Float(bitPattern: UInt32(littleEndian: b.loadUnaligned(fromByteOffset: 4 * $0, as: UInt32.self)))
                }
            }
            guard entries[name] == nil else {
                throw ComputeError(.corruptHeader, "entry appears twice", file: path, tensor: name)
            }
            var e = Entry(sums: values, count: Float(max(calls, 0)))
            e.legacy = true
            entries[name] = e
        }
        var chunks = 0, datasets = [String]()
        if let c = try? i32() {
            chunks = max(c, 0)
            if let len = try? i32(), len > 0, len <= 1 << 16,
                let d = (try? r.withNext(len, { String(validating: $0, as: UTF8.self) })) ?? nil
            {
                datasets = [d]
            }
        }
        return ImportanceMatrix(entries: entries, datasets: datasets, chunkCount: chunks, chunkSize: 0)
    }

    /// Writes the GGUF-based file llama-imatrix writes (entries in name order).
    func writeGGUF(to path: String) throws -> (bytes: Int64, sha256: String) {
        let names = entries.keys.sorted()
        let meta: [(String, GGUFValue)] = [
            ("general.type", .string("imatrix")), ("imatrix.datasets", .array(.string(datasets))),
            ("imatrix.chunk_count", .uint32(UInt32(chunkCount))), ("imatrix.chunk_size", .uint32(UInt32(chunkSize)))
        ]
        var plan = [GGUFWriter.TensorPlan]()
        for n in names {
            let e = entries[n]!
            plan.append(
                GGUFWriter.TensorPlan(
                    name: n + ".in_sum2", shape: [1, e.sums.count], type: .f32, byteCount: 4 * e.sums.count))
            plan.append(GGUFWriter.TensorPlan(name: n + ".counts", shape: [1, 1], type: .f32, byteCount: 4))
        }
        let w = try GGUFWriter(path: path, metadata: meta, tensors: plan)
        for n in names {
            let e = entries[n]!
            try e.sums.withUnsafeBytes { try w.write(name: n + ".in_sum2", bytes: $0) }
            try [e.count].withUnsafeBytes { try w.write(name: n + ".counts", bytes: $0) }
        }
        return try w.finish()
    }

    /// The legacy `.dat` bytes llama-imatrix writes with `--output-format dat`: per entry the
    /// mean square times the calls (⌈tokens / chunk size⌉).
    func legacyData() -> Data {
        var d = Data()
        func i32(_ v: Int) {
            withUnsafeBytes(of: Int32(truncatingIfNeeded: v).littleEndian) { d.append(contentsOf: $0) }
        }
        i32(entries.count)
        let size = max(chunkSize, 1)
        for n in entries.keys.sorted() {
            let e = entries[n]!
            i32(n.utf8.count)
            d.append(contentsOf: Array(n.utf8))
            let calls = (Int(e.count) + size - 1) / size
            i32(calls)
            i32(e.sums.count)
            for v in e.sums {
                let value = e.count > 0 ? v / e.count * Float(calls) : 1
                withUnsafeBytes(of: value.bitPattern.littleEndian) { d.append(contentsOf: $0) }
            }
        }
        i32(chunkCount)
        let ds = datasets.last ?? ""
        i32(ds.utf8.count)
        d.append(contentsOf: Array(ds.utf8))
        return d
    }
}
