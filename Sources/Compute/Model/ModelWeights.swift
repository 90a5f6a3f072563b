/// A model's own weights, decoded to F32 on request from its safetensors shards (read with pread).
public final class ModelWeights: WeightSupplier {
    private var index = [String: (any TensorFile, TensorInfo)]()

    public init(readers: [any TensorFile]) {
        for r in readers { for t in r.tensors { index[t.name] = (r, t) } }
    }

    public convenience init(model: ModelSource) throws {
        self.init(readers: try model.open())
    }

    public func has(_ name: String) -> Bool { index[name] != nil }

    public func tensor(_ name: String, count: Int) throws -> [Float] {
        guard let (r, t) = index[name] else {
            throw ComputeError(.notFound, "the model has no tensor \(name), which the forward pass needs")
        }
        guard t.dtype.isFloat16Or32 else {
            throw ComputeError(.unsupportedDType, "\(t.dtype.rawValue) is not a float dtype", tensor: name)
        }
        guard t.numel == count else {
            throw ComputeError(.shapeMismatch, "holds \(t.numel) values, the config implies \(count)", tensor: name)
        }
        var out = [Float](repeating: 0, count: count)
        try out.withUnsafeMutableBufferPointer { dst in
            try r.withData(t) { DTypeCodec.decode($0, dtype: t.dtype, into: dst, threads: 1) }
        }
        return out
    }

    public func linear(_ base: String, out: Int, in: Int, input: Activations) throws -> [Float] {
        try tensor(base + ".weight", count: out * `in`)
    }

    /// From a safetensors or GGUF file, only the rows asked for (runs of consecutive ids in one read):
    /// an embedding lookup of a few thousand tokens reads kilobytes of a vocabulary's table, not all
    /// of it. Other formats (whose ranged reads decode the whole tensor), or most of the rows, read all.
    public func rows(_ name: String, width: Int, count: Int, ids: [Int]) throws -> [Float] {
        guard let (file, t) = index[name],
            file is SafeTensorsReader || (file as? GGUFTensorFile)?.readsRowsAlone(t, width: width) == true,
            t.dtype.isFloat16Or32, t.numel == count,
            width > 0, count % width == 0, ids.count * 4 < count / width,
            ids.allSatisfy({ $0 >= 0 && $0 < count / width })
        else { return gatherRows(try tensor(name, count: count), width: width, ids: ids) }
        var out = [Float](repeating: 0, count: ids.count * width)
        try out.withUnsafeMutableBufferPointer { dst in
            var k = 0
            while k < ids.count {
                var end = k + 1
                while end < ids.count, ids[end] == ids[end - 1] + 1 { end += 1 }
                let into = UnsafeMutableBufferPointer(rebasing: dst[(k * width)..<(end * width)])
                try file.withData(t, elements: (ids[k] * width)..<((ids[end - 1] + 1) * width)) {
                    DTypeCodec.decode($0, dtype: t.dtype, into: into, threads: 1)
                }
                k = end
            }
        }
        return out
    }
}

/// A model's weights decoded once and kept (for repeated forward passes, as `generate` runs).
public final class CachedWeights: WeightSupplier {
    private let weights: ModelWeights
    private var cache = [String: [Float]]()

    public init(_ weights: ModelWeights) { self.weights = weights }

    public func tensor(_ name: String, count: Int) throws -> [Float] {
        if let v = cache[name], v.count == count { return v }
        let v = try weights.tensor(name, count: count)
        cache[name] = v
        return v
    }

    public func linear(_ base: String, out: Int, in: Int, input: Activations) throws -> [Float] {
        try tensor(base + ".weight", count: out * `in`)
    }
}
