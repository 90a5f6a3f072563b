import Foundation
import Testing
@testable import Compute

/// docs/RECIPES.md documents exactly the keys each options type declares: one table per stage,
/// prune method and export format, under a heading the test looks up, its first column the keys.
@Suite struct RecipeDocsTests {
    static let doc = URL(fileURLWithPath: #filePath).deletingLastPathComponent()
        .appendingPathComponent("../../docs/RECIPES.md").standardized.path

    /// Every documented heading and the keys its table must list.
    static var expected: [(heading: String, keys: [String])] {
        var out: [(String, [String])] = [("`prune` (every method)", PruneStage.sharedKeys)]
        for m in PruneStage.methods { out.append(("`prune`, method `\(m.name)`", m.keys)) }
        out += [("`quantize`", QuantizeStage.keys), ("`lowrank`", LowRankStage.keys), ("`awq`", AWQStage.keys), ("`slice`", SliceStage.keys), ("`decompose`", DecomposeStage.keys),
                ("`calibrate`", CalibrateStage.keys),
                ("`distill`", DistillStage.keys), ("`evaluate`", EvaluateStage.keys)]
        for f in ExportStage.Format.allCases {
            out.append(("`export`, format `\(f.rawValue)`", ["format"] + (ExportStage.formatKeys[f] ?? [])))
        }
        return out
    }

    /// The backticked keys in the first column of the first table under `heading` (outside code blocks).
    static func documentedKeys(_ lines: [String], heading: String) -> [String]? {
        var inCode = false
        var start: Int?
        for (i, l) in lines.enumerated() {
            if l.hasPrefix("```") { inCode.toggle() }
            if !inCode, l.hasPrefix("#"), l.drop(while: { $0 == "#" }).trimmingCharacters(in: .whitespaces) == heading {
                start = i + 1
                break
            }
        }
        guard let start else { return nil }
        var keys = [String]()
        var inTable = false
        for l in lines[start...] {
            if l.hasPrefix("#") { break }
            guard l.hasPrefix("|") else {
                if inTable { break }
                continue
            }
            inTable = true
            let cell = l.split(separator: "|", omittingEmptySubsequences: false)[1]
            guard cell.contains("`") else { continue }
            keys += cell.split(separator: "`").enumerated().filter { $0.offset % 2 == 1 }.map { String($0.element) }
        }
        return keys
    }

    @Test func recipesDocDocumentsExactlyTheDeclaredKeys() throws {
        let lines = try String(contentsOfFile: Self.doc, encoding: .utf8).components(separatedBy: "\n")
        for (heading, keys) in Self.expected {
            let documented = Self.documentedKeys(lines, heading: heading)
            #expect(documented != nil, "docs/RECIPES.md has no heading \(heading)")
            #expect(documented.map { Set($0) } == Set(keys), "\(heading): documented \(documented ?? []), declared \(keys)")
            #expect(documented?.count == Set(documented ?? []).count, "\(heading) documents a key twice")
        }
    }

    /// Each prune method and export format refuses the keys of the others and names who takes them.
    @Test func aKeyOfAnotherMethodIsRefusedNamingIt() {
        for m in PruneStage.methods {
            let foreign = PruneStage.methods.flatMap { $0.keys }.first { !m.keys.contains($0) }
            guard let foreign else { continue }
            let text = "stages: [{prune: {method: \(m.name), \(foreign): 1}}, {export: {}}]"
            #expect(throws: RecipeError.self) { try RecipeParser.parse(text) }
            do { _ = try RecipeParser.parse(text) } catch {
                #expect("\(error)".contains("stages[0].prune.\(foreign): belongs to"), "\(error)")
                #expect("\(error)".contains("not method \(m.name) (which takes"), "\(error)")
            }
        }
    }
}
