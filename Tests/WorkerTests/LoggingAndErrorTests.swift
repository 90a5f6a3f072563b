import Compute
import Foundation
import Queue
import Testing
@testable import Worker

/// Error codes have one vocabulary; log lines quote what needs quoting.
@Suite struct LoggingAndErrorTests {
    @Test func everyComputeErrorCodeIsAJobErrorCode() {
        for c in ComputeError.Code.allCases {
            #expect(JobErrorCode(rawValue: c.rawValue) != nil, "\(c)")
            #expect(c.rawValue == c.rawValue.lowercased(), "\(c.rawValue) is not snake_case")
        }
        #expect(ErrorClassifier.classify(ComputeError(.inputChanged, "x")).code == .inputChanged)
        #expect(ErrorClassifier.classify(ComputeError(.inputChanged, "x")).permanent)
        #expect(!ErrorClassifier.classify(ComputeError(.io, "x")).permanent)
        #expect(ErrorClassifier.classify(RecipeError("a", "b")).code == .invalidRecipe)
        #expect(ErrorClassifier.classify(PostgresError(code: .connectionLost, message: "x")).code == .database)
    }

    @Test func logfmtAndJSONLines() throws {
        let pairs = [("msg", "job failed"), ("job_id", "abc"), ("error", "a \"quoted\"\nline")]
        #expect(LineLogHandler.logfmt(pairs) == #"msg="job failed" job_id=abc error="a \"quoted\"\nline""#)
        let json = try JSONSerialization.jsonObject(with: Data(LineLogHandler.json(pairs).utf8)) as? [String: String]
        #expect(json == ["msg": "job failed", "job_id": "abc", "error": "a \"quoted\"\nline"])
    }
}
