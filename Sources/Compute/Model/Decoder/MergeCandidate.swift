/// A BPE merge candidate, ordered by (rank, left position) in a `Heap`: the lowest-ranked pair first
/// and, among equal ranks, the leftmost, as the merge loop of `tokenizers` picks them.
struct MergeCandidate: HeapOrdered {
    var rank: Int32
    /// Index of the pair's left symbol (symbols keep their first index when merged).
    var left: Int32
    /// The pair's ids when pushed; an entry whose symbols changed since is stale.
    var leftID: Int32
    var rightID: Int32

    func precedes(_ o: MergeCandidate) -> Bool { rank != o.rank ? rank < o.rank : left < o.left }
}
