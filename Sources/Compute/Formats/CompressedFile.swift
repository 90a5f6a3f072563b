import Foundation

/// Squeeze's `compressed` export (`model.compressed.safetensors`, `squeeze.format` = `compressed-v1`)
/// presented as the dense model it stands for: every tensor that `squeeze.quantization` describes is
/// read as its decoded values — (code − zero) · scale for the integer grid, scale · (entry + residual
/// entry) for VPTQ — in the dtype the metadata names; every other tensor as stored. A part whose name,
/// dtype or shape differs from what the description implies, or an index beyond its codebook, is
/// refused naming the tensor.
public final class CompressedFile: TensorFile, @unchecked Sendable {
    static let format = "compressed-v1"

    /// One quantized tensor: the stage it was written by (its grid or codebooks) and its parts.
    struct Quantized {
        var info: TensorInfo
        var stage: QuantizeStage
        var parts: [TensorInfo]
    }

    let reader: SafeTensorsReader
    public let tensors: [TensorInfo]
    private let stored: [String: TensorInfo]
    private let quantized: [String: Quantized]
    public let quantizedTensors: [String]

    public var path: String { reader.path }
    /// The file's metadata without the compressed format's own entries (outputs are written anew).
    public var metadata: [String: String] {
        reader.metadata.filter { $0.key != "squeeze.format" && $0.key != "squeeze.quantization" }
    }
    public var fileSize: Int { reader.fileSize }
    public var hashPrefix: [UInt8]? { nil }

    /// Whether `reader`'s metadata marks it as a compressed export.
    static func isCompressed(_ reader: SafeTensorsReader) -> Bool { reader.metadata["squeeze.format"] == format }

    /// Blocks loaded per BitStack tensor (all of them without a size).
    private var stackCounts = [String: Int]()
    /// What a BitStack file loads: blocks of all, bytes and bits per weight (nil for other files).
    public private(set) var stackLoad: (blocks: Int, of: Int, bytes: Int, bpw: Double)?
    /// A BitStack file's loading order (nil for other files).
    private(set) var stackOrder: StackOrder?

    /// `size` chooses the prefix of a BitStack file (StackOrder); other files ignore it.
    public init(reader: SafeTensorsReader, size: StackSize? = nil) throws {
        self.reader = reader
        let path = reader.path
        stored = Dictionary(reader.tensors.map { ($0.name, $0) }, uniquingKeysWith: { a, _ in a })
        let data = Data((reader.metadata["squeeze.quantization"] ?? "{}").utf8)
        guard let described = (try? JSONSerialization.jsonObject(with: data)) as? [String: Any] else {
            throw ComputeError(.corruptHeader, "squeeze.quantization is not a JSON object", file: path)
        }
        var byName = [String: Quantized]()
        var parts = Set<String>()
        for (name, value) in described.sorted(by: { $0.key < $1.key }) {
            let q = try Self.quantized(name, value, stored: stored, reader: reader, file: path)
            byName[name] = q
            parts.formUnion(q.parts.map(\.name))
        }
        var infos = [TensorInfo]()
        var offset = 0
        for t in reader.tensors where !parts.contains(t.name) {
            guard byName[t.name] == nil else {
                throw ComputeError(.corruptHeader, "holds both \(t.name) and its compressed form", file: path)
            }
            infos.append(
                TensorInfo(name: t.name, dtype: t.dtype, shape: t.shape, begin: offset, end: offset + t.end - t.begin))
            offset += t.end - t.begin
        }
        for name in byName.keys.sorted() {
            let i = byName[name]!.info
            let bytes = i.numel * i.dtype.size
            infos.append(TensorInfo(name: name, dtype: i.dtype, shape: i.shape, begin: offset, end: offset + bytes))
            offset += bytes
        }
        tensors = infos
        quantized = byName
        quantizedTensors = byName.keys.sorted().map { "\($0): \(Self.describe(byName[$0]!.stage))" }
        let stacks = try byName.values.compactMap { q -> StackOrder.Matrix? in
            guard case .bitstack = q.stage.method else { return nil }
            let errors = try Self.floats(q.parts[1], reader: reader)
            let block = q.parts[2...4].reduce(0) { $0 + $1.end - $1.begin }
            return .init(
                name: q.info.name, numel: q.info.numel, fixedBytes: q.parts[0...1].reduce(0) { $0 + $1.end - $1.begin },
                blockBytes: block, errors: errors)
        }
        if !stacks.isEmpty {
            let other = reader.tensors.filter { !parts.contains($0.name) }.reduce(0) { $0 + $1.end - $1.begin }
            let order = StackOrder(stacks, otherBytes: other)
            stackOrder = order
            let counts = try order.counts(size, file: path)
            for (m, c) in zip(order.matrices, counts) { stackCounts[m.name] = c }
            let (bytes, bpw) = order.measure(counts)
            stackLoad = (counts.reduce(0, +), order.matrices.reduce(0) { $0 + $1.errors.count }, bytes, bpw)
        }
    }

    /// One description of `squeeze.quantization`, checked against the parts the file holds.
    private static func quantized(
        _ name: String, _ value: Any, stored: [String: TensorInfo], reader: SafeTensorsReader, file: String
    ) throws -> Quantized {
        func bad(_ why: String) -> ComputeError { ComputeError(.corruptHeader, why, file: file, tensor: name) }
        guard let e = value as? [String: Any], let shape = e["shape"] as? [Int], (1...4).contains(shape.count),
            shape.allSatisfy({ $0 > 0 && $0 <= 1 << 24 }), shape.reduce(1, *) <= 1 << 32,
            let dtypeName = e["dtype"] as? String, let dtype = DType(rawValue: dtypeName), dtype.isFloat16Or32
        else { throw bad("squeeze.quantization: needs a shape of 1 to 4 positive sizes and a float dtype") }
        let selector = TensorSelector(targets: [name])
        var stage: QuantizeStage
        switch e["method"] as? String {
        case "vptq":
            var o = VPTQ.Options()
            let outliers = e["outliers"] as? Int ?? 0
            guard let v = e["vector"] as? Int, let k = e["centroids"] as? Int, let r = e["residual"] as? Int,
                (1...64).contains(v), shape.count == 2, shape[1] % v == 0, (2...65536).contains(k),
                r == 0 || (2...65536).contains(r), outliers >= 0, outliers % v == 0, outliers < shape[1]
            else {
                throw bad(
                    "squeeze.quantization: vptq needs a 2-D shape, vector dividing its rows, centroids and residual, "
                        + "outliers a multiple of vector below the row length")
            }
            (o.vector, o.centroids, o.residual, o.outliers) = (v, k, r, outliers)
            o.actOrder = e["act_order"] as? Bool ?? false
            stage = QuantizeStage(withoutGrid: .vptq(o), selector: selector)
        case "bitstack":
            guard let blocks = e["blocks"] as? Int, let rank = e["rank"] as? Int, (1...64).contains(blocks),
                (1...256).contains(rank), shape.count == 2
            else { throw bad("squeeze.quantization: bitstack needs a 2-D shape, blocks (1-64) and rank (1-256)") }
            stage = QuantizeStage(withoutGrid: .bitstack(blocks: blocks, rank: rank), selector: selector)
        case "rtn", "gptq":
            guard let bits = e["bits"] as? Int, [2, 3, 4, 8].contains(bits),
                let scheme = e["scheme"] as? String, scheme == "symmetric" || scheme == "asymmetric"
            else { throw bad("squeeze.quantization: needs bits 2, 3, 4 or 8 and a scheme") }
            let granularity: RTNQuantizer.Granularity
            switch e["granularity"] as? String {
            case "tensor": granularity = .tensor
            case "channel" where shape.count >= 2: granularity = .channel
            case "group":
                guard let g = e["group_size"] as? Int, g > 0, shape[shape.count - 1] % g == 0 else {
                    throw bad("squeeze.quantization: group_size must divide the rows")
                }
                granularity = .group(g)
            default: throw bad("squeeze.quantization: granularity must be tensor, channel or group")
            }
            stage = QuantizeStage(
                bits: bits, symmetric: scheme == "symmetric", granularity: granularity, selector: selector)
        default: throw bad("squeeze.quantization: method must be rtn, gptq, vptq or bitstack")
        }
        guard stage.method.hasGrid || shape.reduce(1, *) <= 1 << 28 else {
            throw bad("squeeze.quantization: more than 2^28 values")
        }
        let info = TensorInfo(name: name, dtype: dtype, shape: shape, begin: 0, end: 0)
        var parts = [TensorInfo]()
        for (partName, partDType, partShape) in CompressedLayout.plan(info, stage: stage) {
            guard let p = stored[partName] else { throw bad("\(partName) is missing") }
            guard p.dtype == partDType, p.shape == partShape else {
                throw bad("\(partName) is \(p.dtype.rawValue) \(p.shape), expected \(partDType.rawValue) \(partShape)")
            }
            parts.append(p)
        }
        let q = Quantized(info: info, stage: stage, parts: parts)
        try checkIndices(q, reader: reader)
        return q
    }

    /// Every index within its codebook (only a codebook whose size is not a power of two can be exceeded), and
    /// the outlier columns ascending whole groups of the row.
    private static func checkIndices(_ q: Quantized, reader: SafeTensorsReader) throws {
        guard case .vptq(let o) = q.stage.method else { return }
        let (rows, cols) = RunPlan.matrixShape(q.info)
        let groups = o.codedGroups(cols: cols)
        for (b, entries) in o.books.enumerated() where entries & (entries - 1) != 0 {
            let part = q.parts[2 * b]
            let indices = try reader.withData(part) {
                VPTQ.unpack($0, rows: rows, groups: groups, bits: VPTQ.indexBits(entries))
            }
            if let i = indices.firstIndex(where: { Int($0) >= entries }) {
                throw ComputeError(
                    .corruptHeader,
                    "\(part.name): index \(indices[i]) at row \(i / groups) is beyond the codebook's "
                        + "\(entries) entries", file: reader.path, tensor: q.info.name)
            }
        }
        guard o.outliers > 0 else { return }
        let part = q.parts[2 * o.books.count + 1]
        let columns = try outlierColumns(part, reader: reader)
        for (j, c) in columns.enumerated() {
            // Ascending, in range, and whole vectors: column j of group j / vector is that group's j % vector-th.
            let first = j % o.vector == 0
            let ok =
                (0..<cols).contains(Int(c)) && (j == 0 || c > columns[j - 1])
                && (first ? Int(c) % o.vector == 0 : c == columns[j - 1] + 1)
            guard ok else {
                throw ComputeError(
                    .corruptHeader,
                    "\(part.name): column \(c) at \(j) is not an ascending whole vector of the \(cols) columns",
                    file: reader.path, tensor: q.info.name)
            }
        }
    }

    /// A VPTQ tensor's outlier columns (I32, little-endian).
    private static func outlierColumns(_ p: TensorInfo, reader: SafeTensorsReader) throws -> [Int32] {
        try reader.withData(p) { b in
            (0..<p.numel).map { Int32(littleEndian: b.loadUnaligned(fromByteOffset: 4 * $0, as: Int32.self)) }
        }
    }

    private static func describe(_ q: QuantizeStage) -> String {
        if case .bitstack(let blocks, let rank) = q.method { return "bitstack \(blocks) blocks of rank \(rank)" }
        if case .vptq(let o) = q.method {
            let outliers = o.outliers > 0 ? ", \(o.outliers) outlier columns" : ""
            return
                "vptq vector \(o.vector), \(o.centroids)\(o.residual > 0 ? " + \(o.residual)" : "") entries\(outliers)"
        }
        return "int\(q.bits) \(q.symmetric ? "symmetric" : "asymmetric") \(q.method.name)"
    }

    public func withData<R>(_ t: TensorInfo, _ body: (UnsafeRawBufferPointer) throws -> R) throws -> R {
        guard let q = quantized[t.name] else {
            guard let s = stored[t.name] else { throw ComputeError(.notFound, "no tensor \(t.name)", file: path) }
            return try reader.withData(s, body)
        }
        return try DTypeCodec.withEncoded(try decode(q), as: q.info.dtype, body)
    }

    public func withData<R>(_ t: TensorInfo, elements: Range<Int>, _ body: (UnsafeRawBufferPointer) throws -> R) throws
        -> R
    {
        try withData(t) { try body(DTypeCodec.slice($0, elements: elements, size: t.dtype.size)) }
    }

    /// One part's values in F32.
    private static func floats(_ p: TensorInfo, reader: SafeTensorsReader) throws -> [Float] {
        try reader.withData(p) { b in
            var out = [Float](repeating: 0, count: p.numel)
            out.withUnsafeMutableBufferPointer { DTypeCodec.decode(b, dtype: p.dtype, into: $0, threads: 1) }
            return out
        }
    }

    /// The decoded F32 values of one quantized tensor; only the parts it needs are read (a BitStack's
    /// blocks up to the size loaded).
    private func decode(_ q: Quantized) throws -> [Float] {
        let (rows, cols) = RunPlan.matrixShape(q.info)
        func floats(_ k: Int) throws -> [Float] { try Self.floats(q.parts[k], reader: reader) }
        func bytes(_ k: Int) throws -> [UInt8] { try reader.withData(q.parts[k]) { Array($0) } }
        switch q.stage.method {
        case .bitstack(let blocks, let rank):
            let count = stackCounts[q.info.name] ?? blocks
            var stack = BitStack.Result(scales: try floats(0), signs: [], u: [], v: [], errors: [])
            for k in 0..<count {
                stack.signs.append(try bytes(2 + 3 * k))
                stack.u.append(try floats(3 + 3 * k))
                stack.v.append(try floats(4 + 3 * k))
            }
            return BitStack.decode(stack, count: count, rows: rows, cols: cols, rank: rank)
        case .vptq(let o):
            var result = VPTQ.Result(codebooks: [], indices: [], scales: try floats(2 * o.books.count))
            if o.outliers > 0 {
                result.outlierColumns = try Self.outlierColumns(q.parts[2 * o.books.count + 1], reader: reader)
                result.outliers = try floats(2 * o.books.count + 2)
            }
            for (b, entries) in o.books.enumerated() {
                let indices = try bytes(2 * b).withUnsafeBytes {
                    VPTQ.unpack($0, rows: rows, groups: o.codedGroups(cols: cols), bits: VPTQ.indexBits(entries))
                }
                result.indices.append(indices)
                result.codebooks.append(try floats(2 * b + 1))
            }
            return VPTQ.decode(result, rows: rows, cols: cols, vector: o.vector)
        case .rtn, .gptq:
            let st = q.stage
            let pb = RTNQuantizer.packedBits(st.bits)
            let perByte = 8 / pb
            let rowBytes = (cols + perByte - 1) / perByte
            let codes = try bytes(0)
            let scales = try floats(1)
            let zeros = st.symmetric ? [] : try bytes(2)
            let groupLength = RTNQuantizer.groupLength(st.granularity, shape: q.info.shape)
            var out = [Float](repeating: 0, count: rows * cols)
            for r in 0..<rows {
                for c in 0..<cols {
                    let byte = codes[r * rowBytes + c / perByte]
                    let code = Float(Int(byte >> UInt8(pb * (c % perByte))) & ((1 << pb) - 1))
                    let g = (r * cols + c) / groupLength
                    let zero = st.symmetric ? Float(1 << (st.bits - 1)) : Float(zeros[g])
                    out[r * cols + c] = RTNQuantizer.value(code, scale: scales[g], zero: zero)
                }
            }
            return out
        }
    }

    /// The safetensors file's bytes, as stored.
    public func hash(into h: inout SHA256, checkContinue: () throws -> Void) throws {
        try reader.hash(into: &h, checkContinue: checkContinue)
    }

    public func checkUnchanged() throws { try reader.checkUnchanged() }
}
