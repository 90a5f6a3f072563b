/// One parameter budget over many matrices' truncated SVDs (`lowrank` with `ratio` and
/// `allocation: global`): a matrix of rank r costs r·(rows + cols) parameters as factors, so each
/// starts at the rank where that equals its dense size and gives up singular values, smallest first,
/// in increasing order of σᵢ²/Σσ² (the share of its scaled energy — for svd-llm, of its output on
/// the calibration inputs — that dropping it loses) per parameter saved, until the matrices hold
/// `ratio` fewer parameters in total. Every matrix keeps rank 1 at least.
enum LowRankAllocation {
    /// One matrix's squared singular values (descending) and shape.
    struct Matrix {
        let name: String
        let rows: Int
        let cols: Int
        let energy: [Double]
    }

    /// The rank of every matrix.
    static func ranks(_ matrices: [Matrix], ratio: Double) -> [String: Int] {
        var rank = [String: Int]()
        var saved = 0.0, total = 0.0
        var candidates = [(score: Double, name: String, index: Int, cost: Int)]()
        for m in matrices {
            let dense = Double(m.rows) * Double(m.cols)
            let cost = m.rows + m.cols
            let start = max(1, min(m.energy.count, m.rows * m.cols / cost))
            rank[m.name] = start
            total += dense
            saved += dense - Double(start * cost)
            let sum = m.energy.reduce(0, +)
            for i in 1..<start {
                let share = sum > 0 ? m.energy[i] / sum : 0
                candidates.append((share / Double(cost), m.name, i, cost))
            }
        }
        candidates.sort { a, b in
            if a.score != b.score { return a.score < b.score }
            if a.name != b.name { return a.name < b.name }
            return a.index > b.index
        }
        for c in candidates where saved < ratio * total {
            rank[c.name, default: 1] -= 1
            saved += Double(c.cost)
        }
        return rank
    }
}
