import Compute
import Foundation
import Testing

/// Hostile and malformed safetensors files: each gives a clear error, nothing crashes.
@Suite struct SafeTensorsHeaderTests {
    static let dir: String = {
        let d = NSTemporaryDirectory() + "squeeze-st-\(getpid())"
        try? FileManager.default.createDirectory(atPath: d, withIntermediateDirectories: true)
        return d
    }()

    func file(_ name: String, header: String, data: [UInt8] = [], lengthOverride: UInt64? = nil) -> String {
        var bytes = [UInt8]()
        let h = Array(header.utf8)
        var n = (lengthOverride ?? UInt64(h.count)).littleEndian
        withUnsafeBytes(of: &n) { bytes += $0 }
        bytes += h + data
        let p = Self.dir + "/" + name
        FileManager.default.createFile(atPath: p, contents: Data(bytes))
        return p
    }

    func expectError(_ path: String, _ code: ComputeError.Code, _ fragment: String) {
        do {
            _ = try SafeTensorsReader(path: path)
            Issue.record("expected \(code) for \(path)")
        } catch let e as ComputeError {
            #expect(e.code == code, "\(e)")
            #expect(e.description.contains(fragment), "\(e)")
            #expect(e.description.contains(path) || e.file == path)
            #expect(!e.description.contains("\n"))
        } catch {
            Issue.record("unexpected error \(error)")
        }
    }

    @Test func validFileReads() throws {
        let p = file("ok.safetensors", header: #"{"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]},"__metadata__":{"format":"pt"}}"#,
                     data: [0, 0, 128, 63, 0, 0, 0, 64])
        let r = try SafeTensorsReader(path: p)
        #expect(r.tensors.map(\.name) == ["a"])
        #expect(r.header.metadata == ["format": "pt"])
        #expect(try r.withData(r.tensors[0]) { Array($0) } == [0, 0, 128, 63, 0, 0, 0, 64])
    }

    @Test func hostileHeaders() {
        expectError(file("short.safetensors", header: ""), .corruptHeader, "unexpected end")
        expectError(file("huge-len.safetensors", header: "{}", lengthOverride: 1 << 63), .corruptHeader, "exceeds")
        expectError(file("longer.safetensors", header: "{}", lengthOverride: 4096), .corruptHeader, "longer than the file")
        expectError(file("notjson.safetensors", header: "{nope}"), .corruptHeader, "invalid JSON")
        expectError(file("array.safetensors", header: "[]"), .corruptHeader, "not a JSON object")
        expectError(file("nested.safetensors", header: String(repeating: "[", count: 100_000) + String(repeating: "]", count: 100_000)),
                    .corruptHeader, "not a JSON object")
        expectError(file("deep-obj.safetensors", header: "{\"a\":" + String(repeating: "{\"b\":", count: 5000) + "1" + String(repeating: "}", count: 5001)),
                    .corruptHeader, "nesting")
        expectError(file("dtype.safetensors", header: #"{"a":{"dtype":"F8","shape":[2],"data_offsets":[0,2]}}"#, data: [0, 0]),
                    .unsupportedDType, "unknown dtype F8")
        expectError(file("span.safetensors", header: #"{"a":{"dtype":"F32","shape":[3],"data_offsets":[0,8]}}"#, data: Array(repeating: 0, count: 8)),
                    .corruptHeader, "needs 12")
        expectError(file("overlap.safetensors", header: #"{"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]},"b":{"dtype":"F32","shape":[2],"data_offsets":[4,12]}}"#,
                         data: Array(repeating: 0, count: 12)), .corruptHeader, "overlap")
        expectError(file("gap.safetensors", header: #"{"a":{"dtype":"F32","shape":[1],"data_offsets":[4,8]}}"#, data: Array(repeating: 0, count: 8)),
                    .corruptHeader, "gap")
        expectError(file("oob.safetensors", header: #"{"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]}}"#, data: [0, 0]),
                    .corruptData, "truncated")
        expectError(file("trailing.safetensors", header: #"{"a":{"dtype":"U8","shape":[1],"data_offsets":[0,1]}}"#, data: [0, 1]),
                    .corruptData, "trailing")
        expectError(file("dup.safetensors", header: #"{"a":{"dtype":"U8","shape":[1],"data_offsets":[0,1]},"a":{"dtype":"U8","shape":[1],"data_offsets":[1,2]}}"#,
                         data: [0, 1]), .corruptHeader, "duplicate")
        expectError(file("shape-overflow.safetensors", header: #"{"a":{"dtype":"F32","shape":[4294967296,4294967296],"data_offsets":[0,0]}}"#),
                    .corruptHeader, "overflows")
        expectError(file("neg.safetensors", header: #"{"a":{"dtype":"F32","shape":[-1],"data_offsets":[0,4]}}"#, data: [0, 0, 0, 0]),
                    .corruptHeader, "invalid dimension")
        expectError(file("offsets-rev.safetensors", header: #"{"a":{"dtype":"U8","shape":[0],"data_offsets":[4,0]}}"#), .corruptHeader, "non-decreasing")
        var bad = Array(#"{"a\#u{FF}":{"dtype":"U8","shape":[1],"data_offsets":[0,1]}}"#.utf8)
        bad[3] = 0xFF  // invalid UTF-8 inside the name
        let p = Self.dir + "/utf8.safetensors"
        var n = UInt64(bad.count).littleEndian
        var bytes = [UInt8]()
        withUnsafeBytes(of: &n) { bytes += $0 }
        FileManager.default.createFile(atPath: p, contents: Data(bytes + bad + [7]))
        expectError(p, .corruptHeader, "UTF-8")
        expectError(Self.dir + "/missing.safetensors", .notFound, "No such file")
    }

    /// Refused at the first wrong token, with the field named, before any value is built.
    @Test func headerFieldsAreValidatedWhileParsing() throws {
        let nine = "[" + Array(repeating: "1", count: 9).joined(separator: ",") + "]"
        expectError(file("dims9.safetensors", header: #"{"a":{"dtype":"U8","shape":"# + nine + #","data_offsets":[0,1]}}"#, data: [0]),
                    .corruptHeader, "more than 8 dimensions")
        let eight = "[" + Array(repeating: "1", count: 8).joined(separator: ",") + "]"
        let p8 = file("dims8.safetensors", header: #"{"a":{"dtype":"U8","shape":"# + eight + #","data_offsets":[0,1]}}"#, data: [0])
        #expect(try SafeTensorsReader(path: p8).tensors[0].shape.count == 8)
        expectError(file("dtype-num.safetensors", header: #"{"a":{"dtype":7,"shape":[1],"data_offsets":[0,1]}}"#, data: [0]),
                    .corruptHeader, "dtype must be a string")
        expectError(file("meta-array.safetensors", header: #"{"__metadata__":{"k":[1,2,3]},"a":{"dtype":"U8","shape":[1],"data_offsets":[0,1]}}"#, data: [0]),
                    .corruptHeader, "__metadata__.k is not a string")
        expectError(file("nul-name.safetensors", header: #"{"x.weight\u0000evil":{"dtype":"U8","shape":[1],"data_offsets":[0,1]}}"#, data: [0]),
                    .invalidText, "contains a NUL byte")
        // Unknown fields inside an entry are skipped (as the reference implementation does), not built.
        let extra = file("extra.safetensors", header: #"{"a":{"dtype":"U8","shape":[1],"data_offsets":[0,1],"x":{"y":[1,{"z":null}]}}}"#, data: [0])
        #expect(try SafeTensorsReader(path: extra).tensors.map(\.name) == ["a"])
    }

    /// A file that is truncated after it was opened fails the read with `inputChanged`; no SIGBUS.
    @Test func aFileTruncatedWhileOpenFailsTheRead() throws {
        let p = file("shrinks.safetensors", header: #"{"a":{"dtype":"F32","shape":[1024],"data_offsets":[0,4096]}}"#,
                     data: Array(repeating: 1, count: 4096))
        let r = try SafeTensorsReader(path: p)
        #expect(truncate(p, 100) == 0)
        do {
            _ = try r.withData(r.tensors[0]) { Array($0) }
            Issue.record("read of a truncated file succeeded")
        } catch let e as ComputeError {
            #expect(e.code == .inputChanged, "\(e)")
        }
    }

    /// FIFOs, directories and devices are refused without blocking on open.
    @Test func nonRegularFilesAreRefusedWithoutBlocking() throws {
        let fifo = Self.dir + "/pipe.safetensors"
        unlink(fifo)
        #expect(mkfifo(fifo, 0o644) == 0)
        expectError(fifo, .notRegularFile, "FIFO")
        let d = Self.dir + "/dir.safetensors"
        try FileManager.default.createDirectory(atPath: d, withIntermediateDirectories: true)
        expectError(d, .notRegularFile, "directory")
        expectError("/dev/zero", .notRegularFile, "character device")
        do {
            _ = try RecipeParser.parse(file: fifo)
            Issue.record("a FIFO was read as a recipe")
        } catch let e as RecipeError {
            #expect(e.description.contains("FIFO"), "\(e)")
        }
    }
}
