import Compute
import Foundation
import Queue
import Testing
@testable import Worker

/// The executor's decisions against a fake attempt store (PostgreSQL is not the point): what it
/// records for success, planned failure and a lost fence, and that a fenced-out compression job
/// publishes nothing.
@Suite struct JobExecutorTests {
    final class FakeAttempts: AttemptStore {
        var completed = [(UUID, [ArtifactRecord])]()
        var failed = [(JobErrorCode, Bool)]()
        var units = 0
        var completeAnswer = true
        var fenceAfterUnits = Int.max
        func setUnitsTotal(job: UUID, attempt: Int, total: Int) throws -> Bool { true }
        func checkpoints(job: UUID) throws -> [String: (file: String, sha256: String, bytes: Int64, attempt: Int)] { [:] }
        func recordUnit(job: UUID, attempt: Int, metric: LayerMetricRecord, checkpoint: (file: String, sha256: String, bytes: Int64)?) throws -> Bool {
            units += 1
            return units <= fenceAfterUnits
        }
        func unitRestored(job: UUID, attempt: Int) throws -> Bool { true }
        func event(job: UUID, attempt: Int, kind: String, detailJSON: String) throws {}
        func complete(job: UUID, attempt: Int, outputPath: String?, artifacts: [ArtifactRecord]) throws -> Bool {
            completed.append((job, artifacts))
            return completeAnswer
        }
        func stateAndAttempt(job: UUID) throws -> (state: String, attempt: Int)? { nil }
        func fail(job: UUID, attempt: Int, code: JobErrorCode, message: String, permanent: Bool, backoffSeconds: Double) throws -> FailureOutcome? {
            failed.append((code, permanent))
            return permanent ? .failed : .retry
        }
        func markCancelled(job: UUID, attempt: Int) throws -> Bool { true }
        func release(job: UUID, attempt: Int, reason: String) throws -> SubmittedJob? { nil }
        func publishedFile(jobKey key: String, name: String) throws -> String? { nil }
    }

    final class NoHints: HintSink {
        func push(_ items: [(id: UUID, score: Double)]) throws {}
    }

    /// The executor's collaborators: the fake store, a scratch artifact root, nothing that connects.
    func worker(_ fake: FakeAttempts) throws -> JobExecutor.Collaborators {
        let root = NSTemporaryDirectory() + "exec-\(UUID().uuidString.prefix(8))"
        try FileManager.default.createDirectory(atPath: root + "/models", withIntermediateDirectories: true)
        var cfg = Worker.Configuration(databaseURL: "-", redisURL: "-", artifactRoot: root)
        cfg.inputRoots = [root + "/models"]
        cfg.threads = 1
        return JobExecutor.Collaborators(
            config: cfg, attempts: fake, publisher: try ArtifactPublisher(root: root), hints: NoHints(),
            metrics: WorkerMetrics(), stop: StopFlag(), log: Log(level: .error))
    }

    func run(_ w: JobExecutor.Collaborators, kind: JobKind, recipe: String, input: String = "-") -> ActiveJob {
        let aj = ActiveJob(job: ClaimedJob(id: UUID(), attempt: 1, kind: kind.rawValue, recipeJSON: recipe, inputPath: input, inputSHA256: nil,
                                           maxAttempts: 3, releases: 0, memoryEstimate: nil), leaseSeconds: 15)
        JobExecutor(w, active: aj).execute()
        return aj
    }

    /// A two-tensor F32 model under the worker's input root.
    func model(_ w: JobExecutor.Collaborators) throws -> String {
        let path = w.publisher.root + "/models/m.safetensors"
        let out = try SafeTensorsWriter(path: path, tensors: [(name: "a.weight", dtype: DType.F32, shape: [4, 32]), (name: "b.bias", dtype: DType.F32, shape: [4])])
        let a = (0..<128).map { Float($0) - 64 }, b: [Float] = [1, 2, 3, 4]
        try a.withUnsafeBytes { try out.write(name: "a.weight", bytes: $0) }
        try b.withUnsafeBytes { try out.write(name: "b.bias", bytes: $0) }
        _ = try out.finish()
        return path
    }

    @Test func noopOutcomes() throws {
        let fake = FakeAttempts()
        let w = try worker(fake)
        _ = run(w, kind: .noop, recipe: NoopSpec(sleepMS: 0, failTimes: 0).json)
        #expect(fake.completed.count == 1)
        _ = run(w, kind: .noop, recipe: NoopSpec(sleepMS: 0, failTimes: 1).json)
        #expect(fake.failed.count == 1 && fake.failed[0].0 == .plannedFailure && !fake.failed[0].1)
        fake.completeAnswer = false
        let lost = run(w, kind: .noop, recipe: NoopSpec(sleepMS: 0, failTimes: 0).json)
        #expect(lost.leaseLost, "a completion fenced out means another attempt owns the job")
        #expect(fake.failed.count == 1)
    }

    @Test func compressionPublishesAndRecordsEveryUnit() throws {
        let fake = FakeAttempts()
        let w = try worker(fake)
        let recipe = try RecipeParser.parse("stages: [{prune: {method: magnitude, sparsity: 0.5}}, {export: {format: safetensors}}]")
        let aj = run(w, kind: .compress, recipe: recipe.canonicalJSON, input: try model(w))
        #expect(fake.failed.isEmpty, "\(fake.failed)")
        #expect(fake.units == 2)
        let paths = fake.completed.first?.1.map { ($0.path as NSString).lastPathComponent }.sorted()
        #expect(paths == ["manifest.json", "model.safetensors"])
        #expect(FileManager.default.fileExists(atPath: w.publisher.root + "/artifacts/\(aj.job.id.uuidString.lowercased())/attempt-1/model.safetensors"))
    }

    @Test func aFencedOutCompressionPublishesNothing() throws {
        let fake = FakeAttempts()
        fake.fenceAfterUnits = 1
        let w = try worker(fake)
        let recipe = try RecipeParser.parse("stages: [{prune: {method: magnitude, sparsity: 0.5}}, {export: {format: safetensors}}]")
        let aj = run(w, kind: .compress, recipe: recipe.canonicalJSON, input: try model(w))
        #expect(aj.leaseLost)
        #expect(fake.completed.isEmpty && fake.failed.isEmpty)
        #expect(!FileManager.default.fileExists(atPath: w.publisher.root + "/artifacts/\(aj.job.id.uuidString.lowercased())"))
        #expect(((try? FileManager.default.contentsOfDirectory(atPath: w.publisher.root + "/staging")) ?? []).isEmpty)
    }
}
