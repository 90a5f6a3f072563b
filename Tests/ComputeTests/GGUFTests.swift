import Compute
import Foundation
import Testing

@Suite struct GGUFTests {
    static let dir: String = {
        let d = NSTemporaryDirectory() + "squeeze-gguf-\(getpid())"
        try? FileManager.default.createDirectory(atPath: d, withIntermediateDirectories: true)
        return d
    }()

    @Test func writesAndReadsBack() throws {
        let path = Self.dir + "/rt.gguf"
        let values: [Float] = (0..<128).map { (i: Int) -> Float in Float(i) / 10 - 6 }
        var q = [UInt8](repeating: 0, count: 4 * 34)
        values.withUnsafeBufferPointer { src in q.withUnsafeMutableBytes { GGMLQuantizer.quantizeQ8_0(src, into: $0, threads: 2) } }
        let w = try GGUFWriter(path: path, metadata: [("general.name", .string("t")), ("k.arr", .array(.int32([1, 2]))), ("f", .float64(0.5))],
                               tensors: [.init(name: "w", shape: [2, 64], type: .q8_0, byteCount: q.count),
                                         .init(name: "b", shape: [3], type: .f32, byteCount: 12)])
        try q.withUnsafeBytes { try w.write(name: "w", bytes: $0) }
        try [Float(1), 2, 3].withUnsafeBytes { try w.write(name: "b", bytes: $0) }
        _ = try w.finish()
        let r = try GGUFReader(path: path)
        #expect(r.version == 3)
        #expect(r.metadata.map(\.0) == ["general.name", "k.arr", "f"])
        #expect(r.metadata[1].1 == .array(.int32([1, 2])))
        #expect(r.tensors.map(\.name) == ["w", "b"])
        #expect(r.tensors[0].dims == [64, 2])
        #expect(r.tensors[0].offset % 32 == 0 && r.tensors[1].offset % 32 == 0)
        #expect(try r.withData(r.tensors[0]) { Array($0) } == q)
        var back = [Float](repeating: 0, count: 128)
        try back.withUnsafeMutableBufferPointer { dst in try r.withData(r.tensors[0]) { GGMLQuantizer.dequantizeQ8_0($0, count: 128, into: dst) } }
        // Error per value is at most d/2 (d = block amax / 127, largest amax 6.7) plus the fp16 rounding of d.
        let bound: Float = 6.7 / 127 / 2 * 1.01 + 1e-3
        for (a, b) in zip(values, back) { #expect(abs(a - b) <= bound) }
    }

    func hostile(_ name: String, _ build: (inout [UInt8]) -> Void, _ fragment: String) {
        var b = [UInt8]()
        build(&b)
        let p = Self.dir + "/" + name
        FileManager.default.createFile(atPath: p, contents: Data(b))
        do {
            _ = try GGUFReader(path: p)
            Issue.record("\(name) accepted")
        } catch let e as ComputeError {
            #expect(e.description.contains(fragment), "\(name): \(e)")
        } catch { Issue.record("\(name): \(error)") }
    }

    static func u32(_ v: UInt32, _ b: inout [UInt8]) { withUnsafeBytes(of: v.littleEndian) { b += $0 } }
    static func u64(_ v: UInt64, _ b: inout [UInt8]) { withUnsafeBytes(of: v.littleEndian) { b += $0 } }
    static func header(_ b: inout [UInt8], tensors: UInt64, kvs: UInt64) {
        b += Array("GGUF".utf8); u32(3, &b); u64(tensors, &b); u64(kvs, &b)
    }

    @Test func hostileFilesGiveClearErrors() {
        hostile("empty.gguf", { _ in }, "unexpected end")
        hostile("magic.gguf", { $0 += Array("GGML".utf8) + [UInt8](repeating: 0, count: 20) }, "bad magic")
        hostile("version.gguf", { $0 += Array("GGUF".utf8); Self.u32(99, &$0) }, "unsupported GGUF version 99")
        hostile("tensors.gguf", { Self.header(&$0, tensors: UInt64.max, kvs: 0) }, "tensor count")
        hostile("kvs.gguf", { Self.header(&$0, tensors: 0, kvs: 1 << 60) }, "metadata count")
        hostile("keylen.gguf", { Self.header(&$0, tensors: 0, kvs: 1); Self.u64(UInt64.max, &$0) }, "string length")
        hostile("keytrunc.gguf", { Self.header(&$0, tensors: 0, kvs: 1); Self.u64(1000, &$0); $0 += [1, 2] }, "unexpected end")
        hostile("vtype.gguf", { Self.header(&$0, tensors: 0, kvs: 1); Self.u64(1, &$0); $0 += [97]; Self.u32(77, &$0) }, "unknown metadata value type")
        hostile("arrlen.gguf", { Self.header(&$0, tensors: 0, kvs: 1); Self.u64(1, &$0); $0 += [97]; Self.u32(9, &$0); Self.u32(0, &$0); Self.u64(1 << 40, &$0) }, "array length")
        hostile("nested.gguf", { b in
            Self.header(&b, tensors: 0, kvs: 1); Self.u64(1, &b); b += [97]; Self.u32(9, &b)
            for _ in 0..<10 { Self.u32(9, &b); Self.u64(1, &b) }
        }, "nested")
        hostile("dims.gguf", { b in Self.header(&b, tensors: 1, kvs: 0); Self.u64(1, &b); b += [116]; Self.u32(9, &b) }, "n_dims")
        hostile("overflow.gguf", { b in
            Self.header(&b, tensors: 1, kvs: 0); Self.u64(1, &b); b += [116]; Self.u32(2, &b); Self.u64(1 << 40, &b); Self.u64(1 << 40, &b)
        }, "overflow")
        hostile("type.gguf", { b in
            Self.header(&b, tensors: 1, kvs: 0); Self.u64(1, &b); b += [116]; Self.u32(1, &b); Self.u64(4, &b); Self.u32(200, &b); Self.u64(0, &b)
        }, "unknown ggml type 200")
        hostile("outside.gguf", { b in
            Self.header(&b, tensors: 1, kvs: 0); Self.u64(1, &b); b += [116]; Self.u32(1, &b); Self.u64(1024, &b); Self.u32(0, &b); Self.u64(0, &b)
        }, "outside the file")
        hostile("block.gguf", { b in
            Self.header(&b, tensors: 1, kvs: 0); Self.u64(1, &b); b += [116]; Self.u32(1, &b); Self.u64(33, &b); Self.u32(8, &b); Self.u64(0, &b)
        }, "does not fill Q8_0 blocks")
    }

    @Test func quantizersAreThreadCountIndependent() {
        var r = SplitMix(seed: 9)
        let x = (0..<(32 * 5000)).map { _ in r.gaussian() }
        for (q, bs) in [(GGMLQuantizer.quantizeQ8_0, 34), (GGMLQuantizer.quantizeQ4_0, 18), (GGMLQuantizer.quantizeQ4_1, 20),
                        (GGMLQuantizer.quantizeQ5_0, 22)] {
            var a = [UInt8](repeating: 0, count: 5000 * bs), b = a
            x.withUnsafeBufferPointer { s in
                a.withUnsafeMutableBytes { q(s, $0, 1) }
                b.withUnsafeMutableBytes { q(s, $0, 2) }
            }
            #expect(a == b)
        }
    }

    /// Dequantized Q4_1 values lie within half a step of the input; Q5_0 within one step (like
    /// Q4_0, the side opposite the block's extreme is clipped at 15·d, one step short of −16·d).
    @Test func q4_1AndQ5_0RoundTripWithinHalfAStep() {
        var r = SplitMix(seed: 12)
        let x = (0..<(32 * 200)).map { _ in r.gaussian() * 3 + 0.5 }
        for (type, bs) in [(GGMLType.q4_1, 20), (GGMLType.q5_0, 22)] {
            var q = [UInt8](repeating: 0, count: 200 * bs)
            var y = [Float](repeating: 0, count: x.count)
            x.withUnsafeBufferPointer { s in q.withUnsafeMutableBytes { GGUFPlanner.encode(s, type: type, into: $0, threads: 2) } }
            q.withUnsafeBytes { b in y.withUnsafeMutableBufferPointer { GGUFPlanner.decode(b, type: type, into: $0) } }
            for blk in 0..<200 {
                let xs = x[(blk * 32)..<(blk * 32 + 32)]
                let step = type == .q4_1 ? (xs.max()! - xs.min()!) / 15 : xs.map(abs).max()! / 16
                for j in 0..<32 { #expect(abs(x[blk * 32 + j] - y[blk * 32 + j]) <= step * (type == .q4_1 ? 0.5 : 1) * 1.01 + 1e-3, "\(type) block \(blk)") }
            }
        }
    }
}
