/// A binary min-heap of BPE merge candidates ordered by (rank, left position): the lowest-ranked
/// pair first and, among equal ranks, the leftmost, as the merge loop of `tokenizers` picks them.
struct PairHeap {
    struct Entry {
        var rank: Int32
        /// Index of the pair's left symbol (symbols keep their first index when merged).
        var left: Int32
        /// The pair's ids when pushed; an entry whose symbols changed since is stale.
        var leftID: Int32
        var rightID: Int32

        func precedes(_ o: Entry) -> Bool { rank != o.rank ? rank < o.rank : left < o.left }
    }

    private var items = [Entry]()

    mutating func push(_ e: Entry) {
        items.append(e)
        var i = items.count - 1
        while i > 0 {
            let parent = (i - 1) / 2
            guard items[i].precedes(items[parent]) else { break }
            items.swapAt(i, parent)
            i = parent
        }
    }

    mutating func pop() -> Entry? {
        guard let top = items.first else { return nil }
        let last = items.removeLast()
        guard !items.isEmpty else { return top }
        items[0] = last
        var i = 0
        while true {
            let l = 2 * i + 1
            let r = l + 1
            var best = i
            if l < items.count && items[l].precedes(items[best]) { best = l }
            if r < items.count && items[r].precedes(items[best]) { best = r }
            guard best != i else { break }
            items.swapAt(i, best)
            i = best
        }
        return top
    }
}
