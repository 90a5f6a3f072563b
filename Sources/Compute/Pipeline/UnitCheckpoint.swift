import Foundation

/// The checkpoint of one computed unit: its metrics and the bytes every export wrote for it.
/// Layout: "SQCK", u32 version 1, u64 metrics-JSON length, metrics JSON, u64 payload length, payload
/// (the exports' bytes concatenated in export order). Restoring streams the payload to the same
/// writers, so a resumed job's files are byte-identical to an uninterrupted run's.
public enum UnitCheckpoint {
    static let magic = Array("SQCK".utf8)

    /// Streams a checkpoint to `path` (fsynced) without concatenating the parts; returns (sha256, bytes).
    public static func write(to path: String, metrics: UnitMetrics, parts: [UnsafeRawBufferPointer]) throws -> (
        sha256: String, bytes: Int64
    ) {
        let json = try JSONEncoder().encode(metrics)
        var head = magic
        withUnsafeBytes(of: UInt32(1).littleEndian) { head += $0 }
        withUnsafeBytes(of: UInt64(json.count).littleEndian) { head += $0 }
        head += json
        withUnsafeBytes(of: UInt64(parts.reduce(0) { $0 + $1.count }).littleEndian) { head += $0 }
        let f = try OutputFile(path: path)
        try head.withUnsafeBytes { try f.write($0) }
        for p in parts { try f.write(p) }
        let sha = try f.finish()
        return (sha, f.bytesWritten)
    }

    /// Decodes a checkpoint of `tensor`; nil if it is malformed or for another tensor (then the unit is recomputed).
    public static func decode(_ b: [UInt8], tensor: TensorInfo) throws -> (
        metrics: UnitMetrics, payload: ArraySlice<UInt8>
    )? {
        guard b.count >= 24, Array(b[0..<4]) == magic else { return nil }
        func u64(_ at: Int) -> Int? {
            guard at + 8 <= b.count else { return nil }
            let v = b[at..<(at + 8)].enumerated().reduce(UInt64(0)) {
                $0 | UInt64($1.element) << (8 * UInt64($1.offset))
            }
            return v < UInt64(Int.max) ? Int(v) : nil
        }
        guard let jl = u64(8), 16 + jl + 8 <= b.count, let pl = u64(16 + jl), 24 + jl + pl == b.count,
            let m = try? JSONDecoder().decode(UnitMetrics.self, from: Data(b[16..<(16 + jl)])), m.tensor == tensor.name
        else {
            return nil
        }
        return (m, b[(24 + jl)...])
    }

    /// Streams a restored payload to the export slots, split by their sizes (slot order).
    static func emit(_ payload: ArraySlice<UInt8>, sizes: [Int], emit: (Int, UnsafeRawBufferPointer) throws -> Void)
        throws
    {
        guard sizes.reduce(0, +) == payload.count else {
            throw ComputeError(
                .corruptData, "checkpoint holds \(payload.count) bytes, the exports need \(sizes.reduce(0, +))")
        }
        try payload.withUnsafeBytes { raw in
            var off = 0
            for (i, n) in sizes.enumerated() {
                try emit(i, UnsafeRawBufferPointer(rebasing: raw[off..<(off + n)]))
                off += n
            }
        }
    }
}
