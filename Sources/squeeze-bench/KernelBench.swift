import ArgumentParser
import Compute
import Foundation

/// `squeeze-bench`: times Compute kernels over every matrix of a model, in memory, and prints JSON
/// (used by `ops/bench kernels`). A harness for measurements, not part of the production CLI.
@main
struct KernelBench: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "squeeze-bench",
        abstract: "Time quantization kernels and a memcpy bound over a model's matrices (JSON).")

    @Option(name: .long, help: "Model file or directory.")
    var model: String = ""

    @Option(
        name: .long, help: "Instead: SHA-256 of this file as Squeeze hashes inputs, against a plain read of it (JSON).")
    var sha256: String?

    @Option(name: .long, help: "Threads.")
    var threads: Int = ProcessInfo.processInfo.activeProcessorCount

    @Option(name: .long, help: "Repetitions; the best time is reported.")
    var repeats: Int = 5

    func run() throws {
        if let file = sha256 { return try hashBench(file) }
        let mats = try matrices()
        let params = mats.reduce(0) { $0 + $1.count }
        var seconds = quantizers(mats)
        seconds["memcpy"] = memcpy(mats)
        let (plan, global, zeros) = globalPrune(mats)
        guard zeros >= MagnitudePruning.pruneCount(sparsity: 0.5, numel: params) else {
            throw ValidationError("global pruning left \(zeros) zeros, fewer than half of \(params)")
        }
        seconds["global_prune"] = global
        seconds["global_prune_plan"] = plan
        let json = try JSONSerialization.data(
            withJSONObject: ["matrices": mats.count, "params": params, "threads": threads, "seconds": seconds],
            options: [.prettyPrinted, .sortedKeys])
        print(String(decoding: json, as: UTF8.self))
    }

    /// Every F16/F32 matrix whose rows fill 32-value blocks, decoded to F32.
    func matrices() throws -> [[Float]] {
        var mats = [[Float]]()
        for s in try ModelSource(path: model).shards {
            let r = try SafeTensorsReader(path: s.path)
            for t in r.tensors where t.dtype.isFloat16Or32 && t.shape.count >= 2 && (t.shape.last ?? 0) % 32 == 0 {
                var v = [Float](repeating: 0, count: t.numel)
                try v.withUnsafeMutableBufferPointer { dst in
                    try r.withData(t) { DTypeCodec.decode($0, dtype: t.dtype, into: dst, threads: threads) }
                }
                mats.append(v)
            }
        }
        return mats
    }

    /// The best of `repeats` runs, in seconds.
    func best(_ body: () -> Void) -> Double {
        var b = Double.infinity
        for _ in 0..<max(1, repeats) {
            let t0 = DispatchTime.now()
            body()
            b = min(b, Double(DispatchTime.now().uptimeNanoseconds - t0.uptimeNanoseconds) / 1e9)
        }
        return b
    }

    func quantizers(_ mats: [[Float]]) -> [String: Double] {
        var out = mats.map { [UInt8](repeating: 0, count: $0.count / 32 * 34) }
        var seconds = [String: Double]()
        for (name, type) in [("q8_0", GGMLType.q8_0), ("q4_0", .q4_0), ("q4_1", .q4_1), ("q5_0", .q5_0)] {
            seconds[name] = best {
                for i in mats.indices {
                    mats[i].withUnsafeBufferPointer { s in
                        out[i].withUnsafeMutableBytes { GGUFPlanner.encode(s, type: type, into: $0, threads: threads) }
                    }
                }
            }
        }
        return seconds
    }

    /// The bound: a parallel copy of the same floats.
    func memcpy(_ mats: [[Float]]) -> Double {
        var copies = mats.map { [Float](repeating: 0, count: $0.count) }
        return best {
            for i in mats.indices {
                mats[i].withUnsafeBytes { s in
                    copies[i].withUnsafeMutableBytes { d in
                        let ranges = Parallel.chunks(s.count, chunk: 1 << 20)
                        Parallel.forEach(ranges.count, threads: threads) { r in
                            (d.baseAddress! + ranges[r].lowerBound).copyMemory(
                                from: s.baseAddress! + ranges[r].lowerBound, byteCount: ranges[r].count)
                        }
                    }
                }
            }
        }
    }

    /// Global 50% magnitude pruning over the same matrices: exact threshold and ties, then each
    /// matrix copied to its output buffer (as the pipeline decodes it) and zeroed there.
    /// Returns (planning seconds, whole seconds, zeros left).
    func globalPrune(_ mats: [[Float]]) -> (Double, Double, Int) {
        var pruned = mats.map { [Float](repeating: 0, count: $0.count) }
        let sources = mats.indices.map { i in
            GlobalMagnitude.Source(numel: mats[i].count) { range, dst in
                mats[i].withUnsafeBufferPointer { s in
                    dst.baseAddress!.update(from: s.baseAddress! + range.lowerBound, count: range.count)
                }
            }
        }
        var plans = [GlobalMagnitude.Plan]()
        let plan = best { plans = GlobalMagnitude.plans(sources, sparsity: 0.5, minKeep: 0, threads: threads) }
        let global = best {
            plans = GlobalMagnitude.plans(sources, sparsity: 0.5, minKeep: 0, threads: threads)
            for i in mats.indices {
                mats[i].withUnsafeBufferPointer { s in
                    pruned[i].withUnsafeMutableBufferPointer { d in
                        let ranges = Parallel.chunks(s.count, chunk: 1 << 16)
                        Parallel.forEach(ranges.count, threads: threads) { r in
                            (d.baseAddress! + ranges[r].lowerBound).update(
                                from: s.baseAddress! + ranges[r].lowerBound, count: ranges[r].count)
                        }
                        GlobalMagnitude.apply(plans[i], to: d, threads: threads)
                    }
                }
            }
        }
        return (plan, global, pruned.reduce(0) { $0 + $1.reduce(0) { $0 + ($1 == 0 ? 1 : 0) } })
    }

    /// Seconds to read `file` with pread in 4 MiB chunks, and to hash it the way submit and the
    /// worker do (`FileOps.sha256`); the best of `repeats` each, page cache warm.
    func hashBench(_ file: String) throws {
        let f = try InputFile(path: file)
        var failure: Error?
        let read = best { do { try f.forEachChunk { _ in } } catch { failure = error } }
        var digest = ""
        let hash = best { do { digest = try FileOps.sha256(ofFile: file) } catch { failure = error } }
        if let failure { throw failure }
        let json = try JSONSerialization.data(
            withJSONObject: ["bytes": f.size, "read_seconds": read, "sha256_seconds": hash, "sha256": digest],
            options: [.prettyPrinted, .sortedKeys])
        print(String(decoding: json, as: UTF8.self))
    }
}
