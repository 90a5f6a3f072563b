/// What a `Heap` orders: `precedes` is true when `self` must come out before `other`.
protocol HeapOrdered {
    func precedes(_ other: Self) -> Bool
}

/// A binary heap: `pop` returns the element that precedes every other one.
struct Heap<Element: HeapOrdered> {
    private var items = [Element]()

    var isEmpty: Bool { items.isEmpty }

    mutating func push(_ e: Element) {
        items.append(e)
        var i = items.count - 1
        while i > 0 {
            let parent = (i - 1) / 2
            guard items[i].precedes(items[parent]) else { break }
            items.swapAt(i, parent)
            i = parent
        }
    }

    mutating func pop() -> Element? {
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
