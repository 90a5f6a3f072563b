import Foundation

/// A model on disk: one safetensors file (Squeeze's compressed export read as the dense model it
/// stands for), a sharded index, a directory holding either plus config and tokenizer files (which
/// are carried over to outputs), or a Llama GGUF file.
public struct ModelSource: Sendable {
    public enum Format: String, Sendable { case safetensors, gguf }

    /// One shard: its file name (as in the output) and absolute path.
    public struct Shard: Sendable {
        public let name: String
        public let path: String
    }

    public let path: String
    public let shards: [Shard]
    /// The model's name: its file's or directory's last path component (`general.name` of a GGUF export).
    public var name: String { (path as NSString).lastPathComponent }
    /// Files beside the weights (config.json, tokenizer files) to copy into outputs.
    public let extraFiles: [String]
    /// The sharded index file, when the model has one.
    public let indexFile: String?
    public let format: Format
    /// A compressed-tensors directory's quantization (config.json `quantization_config`): its
    /// shards are read as the dense model they stand for (CompressedTensorsFile).
    public private(set) var compressedTensors: CompressedTensorsFile.Config?
    /// The size a BitStack compressed export is loaded at (`--size`); nil loads every block.
    public var stackSize: StackSize?

    public static let indexName = "model.safetensors.index.json"

    /// Resolves `path` into shards without reading tensor data.
    public init(path rawPath: String) throws {
        let path = URL(fileURLWithPath: rawPath).standardizedFileURL.path
        self.path = path
        var isDir: ObjCBool = false
        guard FileManager.default.fileExists(atPath: path, isDirectory: &isDir) else {
            throw ComputeError(.notFound, "model not found", file: rawPath)
        }
        if isDir.boolValue {
            let entries = ((try? FileManager.default.contentsOfDirectory(atPath: path)) ?? []).sorted()
            var extras = [String]()
            // (A stack's size table describes the stack, not the model read from it; an earlier job's manifest
            // describes that job, and this job writes its own.)
            let skipped: Set<String> = [Self.indexName, CompressedLayout.sizeTableName, Manifest.fileName]
            for e in entries where !e.hasSuffix(".safetensors") && !skipped.contains(e) && !e.hasPrefix(".") {
                let full = path + "/" + e
                guard e.hasSuffix(".json") || e.hasSuffix(".txt") || e.hasSuffix(".model") || e.hasSuffix(".md") else {
                    continue
                }
                var st = stat()
                guard stat(full, &st) == 0 else {
                    throw ComputeError(.io, "cannot stat: \(String(cString: strerror(errno)))", file: full)
                }
                switch st.st_mode & S_IFMT {
                case S_IFREG: extras.append(full)
                case S_IFDIR: continue
                default:
                    throw ComputeError(
                        .notRegularFile, "model file is \(InputFile.kind(st.st_mode)), not a regular file", file: full)
                }
            }
            extraFiles = extras
            if entries.contains("config.json") {
                compressedTensors = try CompressedTensorsFile.Config.read(configFile: path + "/config.json")
            }
            if entries.contains(Self.indexName) {
                indexFile = path + "/" + Self.indexName
                shards = try Self.shards(fromIndex: indexFile!)
            } else if entries.contains("model.safetensors") {
                indexFile = nil
                shards = [Shard(name: "model.safetensors", path: path + "/model.safetensors")]
            } else {
                let st = entries.filter { $0.hasSuffix(".safetensors") }
                guard st.count == 1 else {
                    throw ComputeError(
                        .notFound,
                        st.isEmpty
                            ? "directory has no .safetensors file"
                            : "directory has \(st.count) .safetensors files and no \(Self.indexName)", file: rawPath)
                }
                indexFile = nil
                // A compressed export is read as the dense model it stands for, and written as one.
                let name = CompressedLayout.fileNames.contains(st[0]) ? "model.safetensors" : st[0]
                shards = [Shard(name: name, path: path + "/" + st[0])]
            }
        } else if path.hasSuffix(".index.json") {
            indexFile = path
            extraFiles = []
            shards = try Self.shards(fromIndex: path)
        } else {
            indexFile = nil
            extraFiles = []
            shards = [Shard(name: "model.safetensors", path: path)]
            let f = try InputFile(path: path, what: "model file")
            format = try f.read(at: 0, count: min(4, f.size)) == Array("GGUF".utf8) ? .gguf : .safetensors
            return
        }
        format = .safetensors
    }

    /// Opens every shard for reading (a GGUF as HF-named tensors).
    public func open() throws -> [any TensorFile] {
        switch format {
        case .gguf: return [try GGUFTensorFile(path: shards[0].path)]
        case .safetensors:
            if let ct = compressedTensors {
                return try shards.map { try CompressedTensorsFile(path: $0.path, config: ct) }
            }
            return try shards.map {
                let reader = try SafeTensorsReader(path: $0.path)
                return CompressedFile.isCompressed(reader)
                    ? try CompressedFile(reader: reader, size: stackSize) : reader
            }
        }
    }

    private static func shards(fromIndex file: String) throws -> [Shard] {
        let data = try InputFile.contents(of: file, what: "sharded index", limit: InputFile.configLimit)
        let root: JSONValue
        do { root = try JSONParser.parse(data, maxDepth: 8) } catch {
            throw ComputeError(.corruptHeader, "index: \(error)", file: file)
        }
        guard case .object(let map)? = root["weight_map"] else {
            throw ComputeError(.corruptHeader, "index has no weight_map object", file: file)
        }
        var names = [String]()
        for (tensor, v) in map {
            try TextRules.check(tensor, field: "tensor name", file: file)
            guard let s = v.stringValue, !s.isEmpty, !s.contains("/"), !s.utf8.contains(0), s != "..", s != "." else {
                throw ComputeError(
                    .corruptHeader, "weight_map entry must be a plain file name in the same directory", file: file,
                    tensor: tensor)
            }
            if !names.contains(s) { names.append(s) }
        }
        guard !names.isEmpty else { throw ComputeError(.corruptHeader, "weight_map is empty", file: file) }
        let dir = (file as NSString).deletingLastPathComponent
        return names.sorted().map { Shard(name: $0, path: dir + "/" + $0) }
    }

    /// Reads every shard's header only (cheap; used at submit): the tensors as the pipeline sees
    /// them. Checks names are unique across shards.
    public func readTensors() throws -> [TensorInfo] {
        if format == .gguf { return try GGUFTensorFile(path: shards[0].path).tensors }
        if compressedTensors != nil { return try open().flatMap(\.tensors) }
        var seen = Set<String>()
        return try shards.flatMap { s in
            let h = try SafeTensorsHeader.read(path: s.path)
            if h.metadata["squeeze.format"] == CompressedFile.format {
                return try CompressedFile(reader: SafeTensorsReader(path: s.path), size: stackSize).tensors
            }
            for t in h.tensors where !seen.insert(t.name).inserted {
                throw ComputeError(
                    .corruptHeader, "tensor appears in more than one shard", file: s.path, tensor: t.name)
            }
            return h.tensors
        }
    }
}

extension ModelSource {
    /// One checksum for the whole model: the file's SHA-256 for one shard, else the SHA-256 of
    /// the sorted `name sha256` lines of every shard.
    public static func combinedChecksum(_ byShard: [String: String]) -> String {
        if byShard.count == 1 { return byShard.first!.value }
        var h = SHA256()
        for (k, v) in byShard.sorted(by: { $0.key < $1.key }) { h.update(Array("\(k) \(v)\n".utf8)) }
        return h.finalizeHex()
    }

    /// Total size of the shard files.
    public func fileBytes() throws -> Int64 {
        try shards.reduce(0) { sum, s in
            var st = stat()
            guard stat(s.path, &st) == 0 else {
                throw ComputeError(.io, "cannot stat: \(String(cString: strerror(errno)))", file: s.path)
            }
            return sum + Int64(st.st_size)
        }
    }

    /// SHA-256 of every shard file, by shard name.
    public func shardChecksums() throws -> [String: String] {
        var out = [String: String]()
        for s in shards { out[s.name] = try FileOps.sha256(ofFile: s.path) }
        return out
    }
}
