import Foundation

extension SentencePieceBPE {
    /// Whether a tokenizer.json describes SentencePiece-style BPE: a Metaspace pre-tokenizer, or a
    /// normalizer that writes "▁" for spaces (Llama 2's legacy form).
    static func describes(_ root: JSONValue) -> Bool {
        func metaspace(_ p: JSONValue?) -> Bool {
            guard let p, let type = p["type"]?.stringValue else { return false }
            if type == "Sequence", case .array(let items)? = p["pretokenizers"] {
                return items.contains(where: metaspace)
            }
            return type == "Metaspace"
        }
        return metaspace(root["pre_tokenizer"])
            || normalizers(root["normalizer"]).contains { n in
                n["content"]?.stringValue == "\u{2581}" || n["prepend"]?.stringValue == "\u{2581}"
            }
    }

    /// A normalizer, or the members of a `Sequence` of them.
    private static func normalizers(_ n: JSONValue?) -> [JSONValue] {
        guard let n, n != .null else { return [] }
        if n["type"]?.stringValue == "Sequence", case .array(let list)? = n["normalizers"] { return list }
        return [n]
    }

    /// Loads a SentencePiece-style BPE tokenizer.json (`describes` it): normalizers `Prepend("▁")`,
    /// `Replace(" ", "▁")` and NFC, or a Metaspace pre-tokenizer; byte fallback; merges by rank.
    init(tokenizerJSON root: JSONValue, file: String) throws {
        func fail(_ key: String, _ why: String) -> ComputeError {
            ComputeError(.corruptData, "tokenizer.json \(key): \(why)", file: file)
        }
        guard let model = root["model"], model["type"]?.stringValue == "BPE" else {
            throw fail("model.type", "must be BPE")
        }
        var o = Options()
        o.prefix = .none
        for n in Self.normalizers(root["normalizer"]) {
            switch n["type"]?.stringValue {
            case "Prepend" where n["prepend"]?.stringValue == "\u{2581}": o.prefix = .everyPiece
            case "Replace" where n["pattern"]?["String"]?.stringValue == " " && n["content"]?.stringValue == "\u{2581}":
                continue
            case "NFC": o.nfc = true
            case let t:
                throw fail(
                    "normalizer",
                    "\(t ?? "?") is not supported here (Prepend \"▁\", Replace \" \" with \"▁\", NFC)")
            }
        }
        if let p = root["pre_tokenizer"], p != .null { try Self.readMetaspace(p, into: &o, fail: fail) }
        let (tokens, added, special) = try DecoderTokenizers.vocabulary(root, model: model, fail: fail)
        let ids = DecoderTokenizers.index(tokens)
        let merges = try DecoderTokenizers.mergeLines(model, fail: fail)
        let rules = try BPEMerge.rules(lines: merges, ids: ids) { rank, line in
            fail("model.merges", "merge \(rank) (\(TextRules.printable(line))) does not join two tokens into a third")
        }
        if let u = model["unk_token"]?.stringValue { o.unk = ids[u] }
        if case .bool(let b)? = model["fuse_unk"] { o.fuseUnknown = b }
        o.bos = DecoderTokenizers.templateBOS(root, ids: ids)
        o.addBOS = o.bos != nil
        self.init(
            tokens: tokens, rules: rules, mergeList: merges, added: added, special: special, options: o, identity: file)
    }

    /// A Metaspace pre-tokenizer's prefix and split (`prepend_scheme`, or the older `add_prefix_space`).
    private static func readMetaspace(_ p: JSONValue, into o: inout Options, fail: (String, String) -> ComputeError)
        throws
    {
        guard p["type"]?.stringValue == "Metaspace" else {
            throw fail("pre_tokenizer.type", "\(p["type"]?.stringValue ?? "?") is not supported here (Metaspace)")
        }
        guard p["replacement"]?.stringValue ?? "\u{2581}" == "\u{2581}" else {
            throw fail("pre_tokenizer.replacement", "must be \"▁\"")
        }
        switch p["prepend_scheme"]?.stringValue {
        case "always"?: o.prefix = .unlessSpace
        case "first"?: o.prefix = .firstPiece
        case "never"?: o.prefix = .none
        case nil: o.prefix = p["add_prefix_space"] == .bool(false) ? .none : .unlessSpace
        case let s?: throw fail("pre_tokenizer.prepend_scheme", "\(s) is not one of always, first, never")
        }
        if case .bool(let b)? = p["split"] { o.splitWords = b } else { o.splitWords = true }
    }

    /// Loads `tokenizer.ggml.*` with model `llama`: tokens, scores (merge priority: the higher score
    /// first, as llama.cpp merges), token types, special ids, `add_space_prefix`.
    init(gguf meta: [String: GGUFValue], file: String) throws {
        func fail(_ key: String, _ why: String) -> ComputeError {
            ComputeError(.corruptData, "\(key): \(why)", file: file)
        }
        guard case .array(.string(let tokens))? = meta["tokenizer.ggml.tokens"], !tokens.isEmpty else {
            throw fail("tokenizer.ggml.tokens", "missing or not a string array")
        }
        guard case .array(.float32(let scores))? = meta["tokenizer.ggml.scores"], scores.count == tokens.count else {
            throw fail("tokenizer.ggml.scores", "must be \(tokens.count) float32 values")
        }
        var types = [Int32](repeating: 1, count: tokens.count)
        if let t = meta["tokenizer.ggml.token_type"] {
            guard case .array(.int32(let list)) = t, list.count == tokens.count else {
                throw fail("tokenizer.ggml.token_type", "must be \(tokens.count) int32 values")
            }
            types = list
        }
        func id(_ key: String) throws -> Int32? {
            guard let v = meta[key] else { return nil }
            guard let n = v.integer, n >= 0, n < tokens.count else {
                throw fail(key, "is not a token id below \(tokens.count)")
            }
            return Int32(n)
        }
        var o = Options()
        o.unk = try id("tokenizer.ggml.unknown_token_id")
        o.bos = try id("tokenizer.ggml.bos_token_id")
        o.eos = try id("tokenizer.ggml.eos_token_id")
        if case .bool(let b)? = meta["tokenizer.ggml.add_bos_token"] { o.addBOS = b }
        o.addBOS = o.addBOS && o.bos != nil
        if case .bool(false)? = meta["tokenizer.ggml.add_space_prefix"] { o.prefix = .none }
        // llama.cpp matches control, user-defined and unknown tokens in text.
        var added = [(String, Int32)]()
        var special = Set<Int32>()
        for (i, ty) in types.enumerated() where ty == 2 || ty == 3 || ty == 4 {
            added.append((tokens[i], Int32(i)))
            if ty != 4 { special.insert(Int32(i)) }
        }
        let (rules, mergeList) = Self.rules(tokens: tokens, scores: scores)
        self.init(
            tokens: tokens, rules: rules, mergeList: mergeList, added: added, special: special, options: o,
            identity: file)
    }

    /// Merge rules from scores: every split of a token into two tokens, ranked by the token's score
    /// (higher first; equal scores share a rank, so the leftmost pair goes first, as in llama.cpp).
    static func rules(tokens: [String], scores: [Float]) -> (BPEMerge.Rules, [String]) {
        let ids = DecoderTokenizers.index(tokens)
        let distinct = Array(Set(scores.filter { !$0.isNaN })).sorted(by: >)
        let rankOf = Dictionary(uniqueKeysWithValues: distinct.enumerated().map { ($1, Int32($0)) })
        var rules = BPEMerge.Rules()
        var lines = [(rank: Int32, left: Int32, right: Int32, text: String)]()
        for (i, t) in tokens.enumerated() {
            guard let rank = rankOf[scores[i]], ids[t] == Int32(i) else { continue }
            var cut = t.unicodeScalars.index(after: t.unicodeScalars.startIndex)
            while cut < t.unicodeScalars.endIndex {
                let a = String(t.unicodeScalars[..<cut])
                let b = String(t.unicodeScalars[cut...])
                if let l = ids[a], let r = ids[b] {
                    rules[BPEMerge.pairKey(l, r)] = (rank, Int32(i))
                    lines.append((rank, l, r, a + " " + b))
                }
                cut = t.unicodeScalars.index(after: cut)
            }
        }
        lines.sort { ($0.rank, $0.left, $0.right) < ($1.rank, $1.left, $1.right) }
        return (rules, lines.map(\.text))
    }
}
