import Compute
import Foundation
import Testing

/// Canonical recipe JSON is what `jobs.recipe`, manifests and GGUF metadata store: a stored job
/// must keep its bytes (and meaning) across refactors. The golden file was written by the parser
/// before the options types; `SQUEEZE_WRITE_GOLDEN=1` rewrites it when a change is on purpose.
@Suite struct CanonicalRecipeTests {
    static let reference = URL(fileURLWithPath: #filePath).deletingLastPathComponent()
        .appendingPathComponent("../reference").standardized.path
    static let recipes = URL(fileURLWithPath: #filePath).deletingLastPathComponent()
        .appendingPathComponent("../../recipes").standardized.path

    /// Each corpus line (`- stages: ...`) and each shipped recipe file, by a stable name.
    static func corpus() throws -> [(name: String, text: String)] {
        let lines = try String(contentsOfFile: reference + "/canonical_recipes.yaml", encoding: .utf8)
            .split(separator: "\n").map(String.init).filter { $0.hasPrefix("- ") }
        var out = lines.enumerated().map { i, l in (name: "corpus[\(i)]", text: String(l.dropFirst(2))) }
        for dir in ["", "/decoder"] {
            let files = try FileManager.default.contentsOfDirectory(atPath: recipes + dir).filter { $0.hasSuffix(".yaml") }.sorted()
            for f in files {
                let text = try String(contentsOfFile: recipes + dir + "/" + f, encoding: .utf8)
                out.append((name: "recipes\(dir)/\(f)", text: text))
            }
        }
        return out
    }

    @Test func canonicalJSONOfEveryCorpusRecipeIsUnchanged() throws {
        let golden = Self.reference + "/canonical_recipes.json"
        var actual = [String: String]()
        for (name, text) in try Self.corpus() {
            let r = try RecipeParser.parse(text)
            actual[name] = r.canonicalJSON
            #expect(try RecipeParser.parse(r.canonicalJSON) == r, "\(name) does not round-trip")
        }
        if ProcessInfo.processInfo.environment["SQUEEZE_WRITE_GOLDEN"] == "1" {
            let data = try JSONSerialization.data(withJSONObject: actual, options: [.sortedKeys, .prettyPrinted])
            try data.write(to: URL(fileURLWithPath: golden))
            return
        }
        let data = try Data(contentsOf: URL(fileURLWithPath: golden))
        let expected = try #require(try JSONSerialization.jsonObject(with: data) as? [String: String])
        for (name, json) in expected.sorted(by: { $0.key < $1.key }) {
            #expect(actual[name] == json, "\(name): canonical JSON changed")
        }
        #expect(Set(actual.keys) == Set(expected.keys), "the corpus and the golden file list different recipes")
    }
}
