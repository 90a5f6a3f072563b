import Foundation
import Testing
import TestSupport

/// The fuzz stage: for each parser, the hostile corpus and then seeded mutations for a time
/// budget (SQUEEZE_FUZZ_SECONDS, default 60), each input in its own `squeeze` process, which must
/// exit below 128, within 10 CPU seconds and 60 s, under 1 GB peak RSS (Tests/reference/fuzz_cli.py).
/// The seed is the UTC date (yyyymmdd), so each day's runs try new mutations; SQUEEZE_FUZZ_SEED
/// repeats a run's (the stage prints it).
@Suite struct ParserFuzzStageTests {
    static var seconds: String { ProcessInfo.processInfo.environment["SQUEEZE_FUZZ_SECONDS"] ?? "60" }
    static var seed: String {
        if let seed = ProcessInfo.processInfo.environment["SQUEEZE_FUZZ_SEED"] { return seed }
        let day = DateFormatter()
        day.dateFormat = "yyyyMMdd"
        day.timeZone = TimeZone(identifier: "UTC")
        return day.string(from: Date())
    }

    @Test(arguments: ["safetensors", "gguf", "recipe", "manifest"])
    func parserSurvivesTheCorpusAndMutations(_ kind: String) throws {
        let corpus = HostileInputTests.corpus
        let work = TestConfiguration.scratch + "/fuzz-\(kind)-\(getpid())"
        let r = try ProcessRunner.run(TestConfiguration.python,
                                      [TestConfiguration.repoRoot + "/Tests/reference/fuzz_cli.py", TestConfiguration.checkedBinary, kind, work,
                                       "--seconds", Self.seconds, "--seed", Self.seed, "--corpus", corpus],
                                      timeout: (Double(Self.seconds) ?? 60) + 300)
        print(r.stdout.trimmingCharacters(in: .whitespacesAndNewlines))
        #expect(r.status == 0, "\(r.stdout)\n\(r.stderr.suffix(1500))")
        #expect(r.stdout.range(of: #"(^|[^0-9])0 findings"#, options: .regularExpression) != nil, "\(r.stdout)")
    }
}
