import Foundation

/// The size a BitStack model is loaded at (`--size`): bytes of everything loaded, or bits per weight
/// of the decomposed matrices (their scales, errors and blocks).
public enum StackSize: Equatable, Sendable, CustomStringConvertible {
    case bytes(Int64)
    case bitsPerWeight(Double)

    /// `60MB`, `1.5G` or a byte count (as `--max-memory` reads sizes), or `3bpw`; nil otherwise.
    public init?(_ text: String) {
        let t = text.trimmingCharacters(in: .whitespaces)
        if t.lowercased().hasSuffix("bpw") {
            guard let b = Double(t.dropLast(3)), b > 0, b.isFinite else { return nil }
            self = .bitsPerWeight(b)
        } else {
            guard let b = ByteSizeText.bytes(t) else { return nil }
            self = .bytes(b)
        }
    }

    public var description: String {
        switch self {
        case .bytes(let b): return "\(b) bytes"
        case .bitsPerWeight(let b): return "\(b) bits per weight"
        }
    }
}

/// The order BitStack blocks are loaded across matrices. Every matrix's first block is always loaded;
/// then, step by step, the next block of the matrix whose next block removes the most output error per
/// byte (its recorded error before less after; ties: the matrix first by name). A size takes the
/// longest prefix of that order that fits it.
struct StackOrder {
    struct Matrix {
        var name: String
        var numel: Int
        /// Bytes loaded whatever the size: the scales and the recorded errors.
        var fixedBytes: Int
        var blockBytes: Int
        var errors: [Float]
    }

    let matrices: [Matrix]
    /// Bytes of every other tensor.
    let otherBytes: Int
    /// The matrix of each block after the first ones, in loading order.
    let steps: [Int]

    /// A matrix's next block: the error it removes per byte, and the matrix.
    struct BlockCandidate: HeapOrdered {
        var gain: Double
        var index: Int

        func precedes(_ o: BlockCandidate) -> Bool { gain != o.gain ? gain > o.gain : index < o.index }
    }

    init(_ m: [Matrix], otherBytes: Int) {
        let matrices = m.sorted { $0.name < $1.name }
        self.matrices = matrices
        self.otherBytes = otherBytes
        var next = matrices.map { _ in 1 }
        var steps = [Int]()
        // Each matrix's next block, the one removing the most error per byte first (ties: the lower index).
        func candidate(_ i: Int) -> BlockCandidate {
            let m = matrices[i]
            return .init(
                gain: (Double(m.errors[next[i] - 1]) - Double(m.errors[next[i]])) / Double(m.blockBytes), index: i)
        }
        var heap = Heap<BlockCandidate>()
        for i in matrices.indices where matrices[i].errors.count > 1 { heap.push(candidate(i)) }
        while let b = heap.pop()?.index {
            steps.append(b)
            next[b] += 1
            if next[b] < matrices[b].errors.count { heap.push(candidate(b)) }
        }
        self.steps = steps
    }

    /// Bytes and bits per weight with `counts` blocks per matrix.
    func measure(_ counts: [Int]) -> (bytes: Int, bpw: Double) {
        measure(stackBytes: zip(matrices, counts).reduce(0) { $0 + $1.0.fixedBytes + $1.1 * $1.0.blockBytes })
    }

    /// Bytes and bits per weight when the matrices load `stackBytes` of their stacks (scales, errors, blocks).
    func measure(stackBytes: Int) -> (bytes: Int, bpw: Double) {
        (otherBytes + stackBytes, Double(stackBytes * 8) / Double(max(matrices.reduce(0) { $0 + $1.numel }, 1)))
    }

    /// Blocks per matrix (in `matrices` order) of the longest prefix within `size`, every block without one.
    func counts(_ size: StackSize?, file: String) throws -> [Int] {
        var counts = matrices.map { _ in 1 }
        guard let size else { return matrices.map { $0.errors.count } }
        func fits(_ c: [Int]) -> Bool {
            let m = measure(c)
            switch size {
            case .bytes(let b): return Int64(m.bytes) <= b
            case .bitsPerWeight(let b): return m.bpw <= b
            }
        }
        guard fits(counts) else {
            let low = measure(counts)
            let high = measure(matrices.map { $0.errors.count })
            throw ComputeError(
                .invalidRecipe,
                "--size \(size) is below the smallest model of this stack: it loads from \(low.bytes) bytes "
                    + String(format: "(%.3f bpw) to %d bytes (%.3f bpw)", low.bpw, high.bytes, high.bpw), file: file)
        }
        for i in steps {
            counts[i] += 1
            if !fits(counts) {
                counts[i] -= 1
                break
            }
        }
        return counts
    }
}

extension StackSize {
    /// The `--size` option's value; nil when not given.
    public static func option(_ text: String?) throws -> StackSize? {
        guard let text else { return nil }
        guard let s = StackSize(text) else {
            throw ComputeError(
                .invalidRecipe, "--size \(TextRules.display(text)) is not a size (60MB, 1.5G, bytes, or 3bpw)")
        }
        return s
    }
}

extension ModelSource {
    /// Loads this model at `size` (`--size`, nil: whole) and returns its load line; nil for a model that is not a
    /// BitStack stack, which a size is refused for.
    public mutating func load(size text: String?) throws -> String? {
        stackSize = try StackSize.option(text)
        let line = try stackLoadLine()
        if let text, line == nil {
            throw ComputeError(
                .invalidRecipe,
                "--size \(TextRules.display(text)): not a BitStack stack (only a stack.safetensors loads at a size)",
                file: path)
        }
        return line
    }

    /// "bitstack: N of M blocks, B bytes (X bpw)" for a BitStack input, as `--size` loads it; nil for other models.
    public func stackLoadLine() throws -> String? {
        guard format == .safetensors, compressedTensors == nil else { return nil }
        for file in try open() {
            guard let c = file as? CompressedFile, let l = c.stackLoad else { continue }
            return "bitstack: \(l.blocks) of \(l.of) blocks, \(l.bytes) bytes (" + String(format: "%.3f bpw)", l.bpw)
        }
        return nil
    }
}
