import Compute
import Foundation
import Testing

/// Canonical recipe JSON is what `jobs.recipe`, manifests and GGUF metadata store: a stored job
/// must keep its bytes (and meaning) across refactors. canonical_recipes.json pins today's
/// (version 2, every option written; `SQUEEZE_WRITE_GOLDEN=1` rewrites it when a change is on
/// purpose); canonical_recipes_v1.json is what Squeeze stored before version 2 (written by the
/// parser of 653690c, from the texts in canonical_recipes_v1_texts.json) and must keep its
/// version-1 meaning.
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

    /// A job stored before recipe version 2 (no `version`, act order and the MSE observer off for
    /// GPTQ, 10 distill iterations unless written) means what its text meant under version 1.
    @Test func recipesStoredBeforeVersionTwoKeepTheirMeaning() throws {
        let data = try Data(contentsOf: URL(fileURLWithPath: Self.reference + "/canonical_recipes_v1.json"))
        let stored = try #require(try JSONSerialization.jsonObject(with: data) as? [String: String])
        // The texts those recipes had then (shipped recipes have changed since).
        let frozen = try Data(contentsOf: URL(fileURLWithPath: Self.reference + "/canonical_recipes_v1_texts.json"))
        let texts = try #require(try JSONSerialization.jsonObject(with: frozen) as? [String: String])
        #expect(Set(stored.keys) == Set(texts.keys) && stored.count >= 57)
        for (name, json) in stored.sorted(by: { $0.key < $1.key }) {
            let old = try RecipeParser.parse(stored: json)
            let text = try #require(texts[name])
            #expect(old == (try RecipeParser.parse("version: 1\n" + text)), "\(name)")
            #expect(try RecipeParser.parse(old.canonicalJSON) == old, "\(name): today's canonical JSON changes it")
        }
        let gptq = try RecipeParser.parse(stored: #"{"stages":[{"calibrate":{"dataset":"d","samples":4,"seq_len":32}},"#
            + #"{"quantize":{"bits":4,"granularity":"channel","ignore":[],"method":"gptq","damp":0.01,"scheme":"symmetric","#
            + #""targets":["*.weight"]}},{"distill":{"ignore":[],"iterations":10,"targets":["*.weight"]}},"#
            + #"{"export":{"format":"safetensors"}}]}"#)
        #expect(gptq.quantizeStages[0].actOrder == false && gptq.quantizeStages[0].observer == .minmax)
        let today = try RecipeParser.parse("stages: [{calibrate: {dataset: d}}, {quantize: {method: gptq, bits: 4}}, "
            + "{distill: {}}, {export: {}}]")
        #expect(today.quantizeStages[0].actOrder && today.quantizeStages[0].observer == .mse)
        #expect(today.stages.contains { if case .distill(let d) = $0 { d.iterations == 40 } else { false } })
    }
}
