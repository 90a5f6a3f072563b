/// The merge loop both BPE tokenizers share: adjacent pairs of symbols merged by a rule table, the
/// lowest-ranked pair first and the leftmost among equal ranks (`tokenizers`' BPE by merge rank;
/// llama.cpp's SentencePiece tokenizer by score, ranks then being the scores' order). Candidate
/// pairs wait in a min-heap by (rank, position) over a linked list of symbols, so n symbols take
/// O(n log n) (a 200 KB run of one character was quadratic: minutes).
enum BPEMerge {
    /// (left id, right id) → the merge's rank and the merged id.
    typealias Rules = [UInt64: (rank: Int32, merged: Int32)]

    static func pairKey(_ a: Int32, _ b: Int32) -> UInt64 { UInt64(UInt32(a)) << 32 | UInt64(UInt32(b)) }

    /// Rules from "left right" merge lines, ranked by line (the first of a repeated pair wins); throws
    /// `bad(rank, line)` for the first line that does not join two tokens of `ids` into a third.
    static func rules(lines: [String], ids: [String: Int32], bad: (Int, String) -> Error) throws -> Rules {
        var rules = Rules(minimumCapacity: lines.count)
        for (rank, line) in lines.enumerated() {
            let parts = line.split(separator: " ", omittingEmptySubsequences: false)
            guard parts.count == 2, let l = ids[String(parts[0])], let r = ids[String(parts[1])],
                let m = ids[String(parts[0] + parts[1])]
            else { throw bad(rank, line) }
            if rules[pairKey(l, r)] == nil { rules[pairKey(l, r)] = (Int32(rank), m) }
        }
        return rules
    }

    /// `symbols` after every applicable merge.
    static func apply(_ symbols: [Int32], rules: Rules) -> [Int32] {
        var syms = symbols
        guard syms.count > 1 else { return syms }
        var next = Array(1...syms.count)
        next[syms.count - 1] = -1
        var prev = Array(-1..<(syms.count - 1))
        var alive = [Bool](repeating: true, count: syms.count)
        var heap = Heap<MergeCandidate>()
        func push(_ left: Int) {
            let right = next[left]
            guard right >= 0, let m = rules[pairKey(syms[left], syms[right])] else { return }
            heap.push(MergeCandidate(rank: m.rank, left: Int32(left), leftID: syms[left], rightID: syms[right]))
        }
        for i in 0..<(syms.count - 1) { push(i) }
        while let e = heap.pop() {
            let left = Int(e.left)
            let right = next[left]
            // Stale: a symbol of the pair was merged away or changed since the entry was pushed.
            guard alive[left], right >= 0, syms[left] == e.leftID, syms[right] == e.rightID,
                let m = rules[pairKey(e.leftID, e.rightID)]
            else { continue }
            syms[left] = m.merged
            alive[right] = false
            next[left] = next[right]
            if next[right] >= 0 { prev[next[right]] = left }
            if prev[left] >= 0 { push(prev[left]) }
            push(left)
        }
        var out = [Int32]()
        var i = 0
        while i >= 0 {
            out.append(syms[i])
            i = next[i]
        }
        return out
    }
}
