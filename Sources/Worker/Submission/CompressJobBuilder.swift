import Compute
import Foundation
import Queue

/// Validates a compression job at submit: model headers, recipe, targets, memory estimate, checksum.
public enum CompressJobBuilder {
    /// The job for `model` and `recipeFile` (relative to `recipeBase` when given), or a `SubmitError`.
    public static func build(
        model path: String, recipeFile: String, checksum: Bool, policy: PathPolicy, recipeBase: String? = nil,
        size: String? = nil
    ) throws -> NewJob {
        guard FileManager.default.fileExists(atPath: path) else { throw SubmitError("model not found: \(path)") }
        let recipePath = recipeBase.map { recipeFile.hasPrefix("/") ? recipeFile : $0 + "/" + recipeFile } ?? recipeFile
        guard FileManager.default.fileExists(atPath: recipePath) else {
            throw SubmitError("recipe not found: \(recipePath)")
        }
        let recipe: Recipe
        do { recipe = try RecipeParser.parse(file: recipePath) } catch let e as RecipeError {
            throw SubmitError("invalid recipe \(recipePath): \(e)")
        }
        return try build(
            model: path, recipe: recipe, named: recipePath, checksum: checksum, policy: policy, size: size)
    }

    /// The job for `model` (a BitStack stack loaded at `size` when given) and a parsed recipe (`name` says where
    /// it came from in errors).
    public static func build(
        model path: String, recipe parsed: Recipe, named name: String, checksum: Bool,
        policy: PathPolicy, size: String? = nil
    ) throws -> NewJob {
        guard FileManager.default.fileExists(atPath: path) else { throw SubmitError("model not found: \(path)") }
        let recipe = parsed.resolvingDatasets(against: FileManager.default.currentDirectoryPath)
        var source = try ModelSource(path: path)
        try policy.check(model: source)
        if size != nil {
            do { _ = try source.load(size: size) } catch let e as ComputeError { throw SubmitError(e.description) }
        }
        for d in recipe.datasets { try policy.check(d) }
        let tensors = try source.readTensors()
        let family: ModelFamily?
        do { family = try RecipeValidator.validateAll(recipe, model: source, tensors: tensors) } catch let e
            as RecipeError
        {
            throw SubmitError("recipe \(name) does not fit model \(path): \(e)")
        }
        var j = NewJob(kind: JobKind.compress.rawValue, recipeJSON: recipe.canonicalJSON, inputPath: source.path)
        j.inputSize = size?.trimmingCharacters(in: .whitespaces)
        j.memoryEstimate = RecipeValidator.memoryEstimate(tensors: tensors, recipe: recipe, family: family)
        j.unitsTotal = tensors.count
        // `imatrix: {job: KEY}` and `reference: {job: KEY}` read what that job publishes: it runs after it.
        j.needsKeys = recipe.dependencyJobs
        j.inputBytes = try source.fileBytes()
        if checksum { j.inputSHA256 = ModelSource.combinedChecksum(try source.shardChecksums()) }
        return j
    }
}
