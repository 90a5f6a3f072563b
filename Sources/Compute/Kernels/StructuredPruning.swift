/// Structured pruning: zeroes whole output rows or whole input columns of a matrix, those with
/// the smallest L1 or L2 norm. The matrix is the tensor viewed as [numel / last, last]; shapes are
/// kept (rows and columns become zero), so the output loads like the input.
///
/// Norms are summed in Double in a fixed order (row by row, left to right; columns top to
/// bottom), so the choice does not depend on `threads`. Ties go to the lower index; a NaN norm
/// counts as the largest.
public enum StructuredPruning {
    public enum Dimension: String, Sendable, CaseIterable { case rows, columns }
    public enum Norm: String, Sendable, CaseIterable { case l1, l2 }

    /// Norms of each row (`.rows`) or column (`.columns`) of the rows × cols matrix `x`.
    public static func norms(
        _ x: UnsafeBufferPointer<Float>, rows: Int, cols: Int, dim: Dimension, norm: Norm, threads: Int
    ) -> [Double] {
        precondition(rows * cols == x.count)
        let base = x.baseAddress
        switch dim {
        case .rows:
            var out = [Double](repeating: 0, count: rows)
            out.withUnsafeMutableBufferPointer { o in
                let ranges = Parallel.chunks(rows, chunk: 64)
                Parallel.forEach(ranges.count, threads: threads) { r in
                    for i in ranges[r] {
                        let row = base! + i * cols
                        var s = 0.0
                        if norm == .l1 {
                            for j in 0..<cols { s += Double(abs(row[j])) }
                        } else {
                            for j in 0..<cols {
                                let v = Double(row[j])
                                s += v * v
                            }
                        }
                        o[i] = norm == .l1 ? s : s.squareRoot()
                    }
                }
            }
            return out
        case .columns:
            var out = [Double](repeating: 0, count: cols)
            out.withUnsafeMutableBufferPointer { o in
                let ranges = Parallel.chunks(cols, chunk: 256)
                Parallel.forEach(ranges.count, threads: threads) { r in
                    let c = ranges[r]
                    for i in 0..<rows {
                        let row = base! + i * cols
                        if norm == .l1 {
                            for j in c { o[j] += Double(abs(row[j])) }
                        } else {
                            for j in c {
                                let v = Double(row[j])
                                o[j] += v * v
                            }
                        }
                    }
                    if norm == .l2 { for j in c { o[j] = o[j].squareRoot() } }
                }
            }
            return out
        }
    }

    /// Indices of the `k` smallest norms (ties by index, NaN largest), ascending by index.
    public static func select(_ norms: [Double], k: Int) -> [Int] {
        let mask = smallestMask(norms, k: k)
        return mask.indices.filter { mask[$0] }
    }

    /// Marks the `k` smallest scores (ties by index, NaN largest), without sorting them all: a
    /// bucket select on order-preserving 64-bit keys for large inputs, quickselect for small ones.
    static func smallestMask(_ scores: [Double], k: Int) -> [Bool] {
        let k = max(0, min(k, scores.count))
        if k == 0 { return [Bool](repeating: false, count: scores.count) }
        return scores.count >= bucketMinimum ? bucketSmallestMask(scores, k: k) : quickSmallestMask(scores, k: k)
    }

    /// Below this many scores, quickselect beats the bucket select's histogram.
    static let bucketMinimum = 8192

    /// The score's rank as an unsigned integer: −0 as +0, NaN above +∞, otherwise the order of the values.
    @inline(__always) static func orderKey(_ v: Double) -> UInt64 {
        if v.isNaN { return .max }
        let b = (v + 0).bitPattern
        return b >> 63 == 1 ? ~b : b | (1 << 63)
    }

    /// Finds the bucket of the k-th smallest key by its top 16 bits (one histogram over every
    /// key), orders that bucket's keys by (key, index) to find the threshold, then marks the keys
    /// below it and, of those equal to it, the lowest-indexed ones: the same set as sorting by
    /// (value, index).
    static func bucketSmallestMask(_ scores: [Double], k: Int) -> [Bool] {
        let keys = scores.map(orderKey)
        let threshold = kthSmallest(keys, k: k)
        return keys.indices.map { threshold.admits(keys[$0], at: $0) }
    }

    /// A key and its index in (key, index) order.
    struct KeyThreshold {
        let key: UInt64
        let index: Int

        /// Whether (key, i) is at or before the threshold: one of the k smallest.
        @inline(__always) func admits(_ key: UInt64, at i: Int) -> Bool {
            key < self.key || (key == self.key && i <= index)
        }
    }

    /// The k-th smallest (1 ≤ k ≤ count) of `keys` ordered by (key, index): it admits exactly the k smallest.
    static func kthSmallest(_ keys: [UInt64], k: Int) -> KeyThreshold {
        var histogram = [UInt32](repeating: 0, count: 1 << 16)
        for key in keys { histogram[Int(truncatingIfNeeded: key >> 48)] += 1 }
        var digit = 0, below = 0
        while below + Int(histogram[digit]) < k {
            below += Int(histogram[digit])
            digit += 1
        }
        var bucket = [(key: UInt64, index: Int)]()
        bucket.reserveCapacity(Int(histogram[digit]))
        for (i, key) in keys.enumerated() where Int(truncatingIfNeeded: key >> 48) == digit { bucket.append((key, i)) }
        bucket.sort { $0.key != $1.key ? $0.key < $1.key : $0.index < $1.index }
        let t = bucket[k - below - 1]
        return KeyThreshold(key: t.key, index: t.index)
    }

    /// Quickselect in linear expected time: the keys are distinct, so the set is the same as a sort's.
    static func quickSmallestMask(_ scores: [Double], k: Int) -> [Bool] {
        var mask = [Bool](repeating: false, count: scores.count)
        var keys = scores.enumerated().map { i, v in
            Key(value: v.isNaN ? .infinity : v, nan: v.isNaN, index: Int32(truncatingIfNeeded: i))
        }
        keys.withUnsafeMutableBufferPointer { buf in
            var lo = 0, hi = buf.count - 1
            while lo < hi {
                // Median of three as the pivot, then a three-way-free Lomuto partition (keys are distinct).
                let mid = lo + (hi - lo) / 2
                if buf[mid] < buf[lo] { buf.swapAt(mid, lo) }
                if buf[hi] < buf[lo] { buf.swapAt(hi, lo) }
                if buf[hi] < buf[mid] { buf.swapAt(hi, mid) }
                buf.swapAt(mid, hi)
                let pivot = buf[hi]
                var store = lo
                for i in lo..<hi where buf[i] < pivot {
                    buf.swapAt(i, store)
                    store += 1
                }
                buf.swapAt(store, hi)
                if store == k - 1 { break }
                if store < k - 1 { lo = store + 1 } else { hi = store - 1 }
            }
            for i in 0..<k { mask[Int(buf[i].index)] = true }
        }
        return mask
    }

    /// A score with its position: ordered by value, NaN last, then by index.
    struct Key: Comparable {
        let value: Double
        let nan: Bool
        let index: Int32
        static func < (a: Key, b: Key) -> Bool {
            if a.nan != b.nan { return !a.nan }
            if a.value != b.value { return a.value < b.value }
            return a.index < b.index
        }
    }

    /// Zeroes the `k` rows or columns with the smallest norms; returns their indices.
    @discardableResult
    public static func prune(
        _ x: UnsafeMutableBufferPointer<Float>, rows: Int, cols: Int, dim: Dimension, norm: Norm,
        k: Int, threads: Int
    ) -> [Int] {
        let chosen = select(
            norms(UnsafeBufferPointer(x), rows: rows, cols: cols, dim: dim, norm: norm, threads: threads), k: k)
        let base = x.baseAddress
        switch dim {
        case .rows:
            Parallel.forEach(chosen.count, threads: threads) { i in
                (base! + chosen[i] * cols).update(repeating: 0, count: cols)
            }
        case .columns:
            let ranges = Parallel.chunks(rows, chunk: 64)
            Parallel.forEach(ranges.count, threads: threads) { r in
                for i in ranges[r] { for j in chosen { base![i * cols + j] = 0 } }
            }
        }
        return chosen
    }
}
