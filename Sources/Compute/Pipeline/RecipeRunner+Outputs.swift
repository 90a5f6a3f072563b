import Foundation

extension RecipeRunner {
    /// The output shards' index: the input's tensor → shard map, and the dense outputs' total size.
    func writeIndex(from index: String, to dir: String, plan: RunPlan) throws -> OutputRecord {
        var map = [(String, String)]()
        var total = 0
        for u in plan.fileOrder {
            for p in plan.outputTensors(u.tensor) {
                map.append((p.name, model.shards[u.shard].name))
                total += p.numel * plan.denseDType(u.tensor).size
            }
        }
        map.sort { $0.0 < $1.0 }
        let json = "{\"metadata\":{\"total_size\":\(total)},\"weight_map\":{" +
            map.map { "\(jsonString($0.0)):\(jsonString($0.1))" }.joined(separator: ",") + "}}\n"
        let data = Data(json.utf8)
        let sha = try FileOps.writeFile(dir + "/" + ModelSource.indexName, data)
        return OutputRecord(path: ModelSource.indexName, bytes: Int64(data.count), sha256: sha, format: "safetensors-index")
    }

    /// Copies the files beside the weights (config.json, tokenizer files) into the output.
    func copyExtraFiles(to dir: String) throws -> [OutputRecord] {
        try model.extraFiles.map { extra in
            let name = (extra as NSString).lastPathComponent
            let data = Data(try InputFile.contents(of: extra, what: "model file", limit: InputFile.modelFileLimit))
            let sha = try FileOps.writeFile(dir + "/" + name, data)
            return OutputRecord(path: name, bytes: Int64(data.count), sha256: sha, format: "model-file")
        }
    }

    /// Measures the dense output just written against the input, with the model's family.
    func evaluate(_ ev: EvaluateStage, family: ModelFamily, readers: [any TensorFile], outputDir: String,
                  outputs: [OutputRecord]) throws -> Evaluation {
        let names = model.shards.map(\.name)
        guard names.allSatisfy({ n in outputs.contains { $0.path == n } }) else {
            throw ComputeError(.invalidRecipe, "evaluate needs the dense safetensors export")
        }
        guard let dataset = ev.dataset ?? recipe.calibration?.dataset else { throw ComputeError(.invalidRecipe, "evaluate has no dataset") }
        let out = try names.map { try SafeTensorsReader(path: outputDir + "/" + $0) as any TensorFile }
        return try family.evaluate(ev, dataset: dataset, original: ModelWeights(readers: readers), compressed: ModelWeights(readers: out),
                                   threads: threads)
    }
}

func ms(since t0: DispatchTime) -> Double { Double(DispatchTime.now().uptimeNanoseconds - t0.uptimeNanoseconds) / 1e6 }
