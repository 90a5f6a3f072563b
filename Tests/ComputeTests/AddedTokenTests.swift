import Foundation
import Testing
@testable import Compute

/// Added tokens are found in one pass over the text, whatever their number: a tokenizer with
/// 300,000 of them (42 MB of tokenizer.json) once took 32 s to check a dataset at submit.
@Suite struct AddedTokenTests {
    static let llama = ProcessInfo.processInfo.environment["SQUEEZE_LLAMA_DIR"]

    @Test func theLongestTokenAtTheEarliestPositionWins() {
        let m = AddedTokenMatcher([("<|a|>", 1), ("<|ab|>", 2), ("<|a", 3), ("x", 4), ("<|a|>", 9)])
        let text = Array("q<|a|>x<|ab|><|a<|".utf8)
        let found: [(Int, Int32)] = text.withUnsafeBufferPointer { b in
            (0..<b.count).compactMap { i in m.longest(in: b, at: i).map { (i, $0.id) } }
        }
        #expect(found.map(\.0) == [1, 6, 7, 13] && found.map(\.1) == [1, 4, 2, 3], "\(found)")
    }

    @Test(.enabled(if: llama != nil, "needs SQUEEZE_LLAMA_DIR (set by ops/test)"))
    func manyAddedTokensTokenizeInOnePass() throws {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("added-\(getpid())").path
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let src = Self.llama! + "/tiny/hf/tokenizer.json"
        var t = try JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: src))) as! [String: Any]
        let vocab = ((t["model"] as! [String: Any])["vocab"] as! [String: Int]).values.max()!
        let added = t["added_tokens"] as! [[String: Any]]
        let base = max(vocab, added.compactMap { $0["id"] as? Int }.max()!) + 1
        // The 300,000 entries are written as text: JSONSerialization took 10 s over them in the debug build.
        let extra = (0..<300_000).map { #"{"id":\#(base + $0),"content":"<|extra_\#($0)|>","special":true}"# }
        let own = String(String(decoding: try JSONSerialization.data(withJSONObject: added), as: UTF8.self).dropLast())
        let list: String = own + (added.isEmpty ? "" : ",") + extra.joined(separator: ",") + "]"
        t["added_tokens"] = "@ADDED@"
        let text = String(decoding: try JSONSerialization.data(withJSONObject: t), as: UTF8.self)
        try text.replacingOccurrences(of: #""@ADDED@""#, with: list)
            .write(toFile: dir + "/tokenizer.json", atomically: false, encoding: .utf8)
        let load0 = Date()
        let tok = try ByteLevelBPE(tokenizerJSON: dir + "/tokenizer.json")
        print("added tokens: tokenizer.json of 300,000 added tokens loaded in \(Date().timeIntervalSince(load0)) s")
        let prose = try String(contentsOfFile: URL(fileURLWithPath: #filePath).deletingLastPathComponent()
            .appendingPathComponent("../../.run/datasets/pydoc.txt").standardized.path, encoding: .utf8)
        let t0 = Date()
        let ids = tok.encode(prose + "<|extra_299999|> and <|extra_7|>")
        print("added tokens: 465 KB encoded in \(Date().timeIntervalSince(t0)) s")
        #expect(Date().timeIntervalSince(t0) < 20, "\(Date().timeIntervalSince(t0)) s")
        #expect(ids.last == Int32(base + 7) && ids.contains(Int32(base + 299_999)), "\(ids.suffix(6))")
    }
}
