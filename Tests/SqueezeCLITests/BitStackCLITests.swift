import Foundation
import Testing
import TestSupport

/// `decompose: {method: bitstack}` on a tiny random Llama: one job writes the stack once; `run --model` of
/// it with `--size` loads the prefix an independent numpy decoder computes (order, counts and bytes), at
/// several sizes without recompressing; sizes out of range, hostile stacks and impossible recipes refused.
@Suite struct BitStackCLITests {
    static let llama = ProcessInfo.processInfo.environment["SQUEEZE_LLAMA_DIR"]
    var pydoc: String { TestConfiguration.repoRoot + "/.run/datasets/pydoc.txt" }

    func stack(_ env: SqueezeEnv) throws -> (hf: String, out: String) {
        let made = try env.madeLlama(env.scratch + "/m", ["--hidden", "128", "--blocks", "2", "--seed", "8"])
        #expect(made.status == 0, "\(made.stderr)")
        let r = try env.write("bs.yaml", """
            stages:
              - calibrate: {dataset: \(pydoc), samples: 8, seq_len: 64}
              - decompose: {method: bitstack, blocks: 6, rank: 4, targets: ["model.layers.*.weight"], ignore: ["*norm*"]}
              - export: {format: compressed}
            """)
        let out = env.scratch + "/out"
        let run = try env.squeeze(["run", "--model", env.scratch + "/m/hf", "--recipe", r, "--out", out])
        #expect(run.status == 0, "\(run.stderr)")
        return (env.scratch + "/m/hf", out)
    }

    /// Three sizes from one stack: the dense weights each loads are numpy's prefix byte for byte, and a
    /// larger size loads more blocks.
    @Test(.enabled(if: llama != nil, "needs SQUEEZE_LLAMA_DIR (set by ops/test)"))
    func anySizeLoadsThePrefixNumpyComputes() throws {
        let env = try SqueezeEnv.create()
        let (_, out) = try stack(env)
        let dense = try env.write("dense.yaml", "stages:\n  - export: {format: safetensors}\n")
        var blocks = [Int]()
        for size in ["2.5", "4", "all"] {
            let d = env.scratch + "/d-\(size)"
            var args = ["run", "--model", out + "/stack.safetensors", "--recipe", dense, "--out", d]
            if size != "all" { args += ["--size", size + "bpw"] }
            let r = try env.squeeze(args)
            #expect(r.status == 0, "\(r.stderr)")
            let c = try env.python("check_bitstack.py", [out + "/stack.safetensors", size, d + "/model.safetensors"])
            #expect(c.status == 0, "\(size): \(c.stdout) \(c.stderr.suffix(300))")
            let j = try JSONSerialization.jsonObject(with: Data(c.stdout.utf8)) as? [String: Any]
            blocks.append(j?["blocks"] as? Int ?? 0)
        }
        #expect(blocks[0] < blocks[1] && blocks[1] < blocks[2] && blocks[2] == 14 * 6, "\(blocks)")
    }

    /// The job writes its size table beside the stack: every row's `--size`, given to `run --model` of the
    /// output directory, loads exactly the row's blocks and bytes; rows grow from the smallest model to
    /// the whole stack.
    @Test(.enabled(if: llama != nil, "needs SQUEEZE_LLAMA_DIR (set by ops/test)"))
    func theSizeTableSaysWhatEachSizeLoads() throws {
        let env = try SqueezeEnv.create()
        let (_, out) = try stack(env)
        let data = try Data(contentsOf: URL(fileURLWithPath: out + "/stack-sizes.json"))
        let table = try #require(try JSONSerialization.jsonObject(with: data) as? [String: Any])
        let rows = try #require(table["sizes"] as? [[String: Any]])
        #expect(table["file"] as? String == "stack.safetensors" && table["blocks"] as? Int == 14 * 6, "\(table)")
        let bytes = rows.compactMap { $0["bytes"] as? Int }, blocks = rows.compactMap { $0["blocks"] as? Int }
        #expect(rows.count >= 4 && bytes.count == rows.count && zip(bytes, bytes.dropFirst()).allSatisfy { $0 < $1 })
        #expect(blocks.first == 14 && blocks.last == 14 * 6, "\(blocks)")
        let manifest = try String(contentsOfFile: out + "/manifest.json", encoding: .utf8)
        #expect(manifest.contains("stack-sizes.json") && !manifest.contains("model.compressed.safetensors"))
        let dense = try env.write("dense.yaml", "stages:\n  - export: {format: safetensors}\n")
        for (i, row) in [rows[0], rows[rows.count / 2], rows[rows.count - 1]].enumerated() {
            let size = try #require(row["size"] as? String)
            let r = try env.squeeze(["run", "--model", out, "--size", size, "--recipe", dense, "--out", env.scratch + "/t\(i)"])
            #expect(r.status == 0, "\(r.stderr)")
            let line = "bitstack: \(row["blocks"] as? Int ?? -1) of \(14 * 6) blocks, \(row["bytes"] as? Int ?? -1) bytes"
            #expect(r.stderr.contains(line), "\(size): \(r.stderr)")
            #expect(!FileManager.default.fileExists(atPath: env.scratch + "/t\(i)/stack-sizes.json"))
        }
    }

    /// `logits --size` runs the forward pass on the prefix a size loads: the same logits, bit for bit, as
    /// the dense model `run --size` writes at that size, and other logits than the whole stack's.
    @Test(.enabled(if: llama != nil, "needs SQUEEZE_LLAMA_DIR (set by ops/test)"))
    func logitsAtASizeAreThoseOfThePrefix() throws {
        let env = try SqueezeEnv.create()
        let (_, out) = try stack(env)
        let dense = try env.write("dense.yaml", "stages:\n  - export: {format: safetensors}\n")
        let d = env.scratch + "/d"
        let r = try env.squeeze(["run", "--model", out, "--size", "3bpw", "--recipe", dense, "--out", d])
        #expect(r.status == 0, "\(r.stderr)")
        func logits(_ model: String, _ size: String?, _ name: String) throws -> Data? {
            let bin = env.scratch + "/" + name
            var args = ["logits", "--model", model, "--dataset", pydoc, "--samples", "2", "--seq-len", "32", "--out", bin]
            if let size { args += ["--size", size] }
            let l = try env.squeeze(args)
            #expect(l.status == 0, "\(l.stderr)")
            return FileManager.default.contents(atPath: bin)
        }
        let atSize = try logits(out, "3bpw", "size.bin"), prefix = try logits(d, nil, "dense.bin")
        let whole = try logits(out, nil, "whole.bin")
        #expect(atSize != nil && atSize == prefix && atSize != whole)
    }

    /// A batch over sizes from one stack, with no recompression: jobs submitted with `--size` or a manifest
    /// entry's `size` publish the dense model `run --size` writes at that size, byte for byte; the job row,
    /// `show` and the artifact's manifest say the size, and job_quality's model_bytes is what the size loads
    /// (the batch's size-against-quality chart); the whole stack loads without one.
    @Test(.enabled(if: llama != nil, "needs SQUEEZE_LLAMA_DIR (set by ops/test)"))
    func jobsSubmittedAtASizeLoadThatPrefix() throws {
        let env = try SqueezeEnv.create()
        let (_, out) = try stack(env)
        let dense = try env.write("dense.yaml", """
            stages:
              - evaluate: {dataset: \(pydoc), samples: 2, seq_len: 32}
              - export: {format: safetensors}
            """)
        let one = try env.submit(["--model", out, "--size", "3bpw", "--recipe", dense, "--key", "s3"])
        #expect(!one.isEmpty)
        let manifest = try env.write("sizes.yaml", """
            - {model: \(out), recipe: \(dense), size: 2.5bpw, key: s2.5}
            - {model: \(out), recipe: \(dense), size: 4bpw, key: s4}
            - {model: \(out), recipe: \(dense), key: all}
            """)
        #expect(try env.squeeze(["submit", "--manifest", manifest]).status == 0)
        try env.drain()
        var models = Set<Data>()
        for (key, size) in [("s2.5", "2.5bpw"), ("s3", "3bpw"), ("s4", "4bpw"), ("all", nil)] {
            let state = try env.scalar("SELECT state || ' ' || coalesce(input_size, '-') FROM jobs WHERE idempotency_key = $1", [key])
            #expect(state == "succeeded " + (size ?? "-"), "\(key): \(state ?? "no job")")
            let rel = try env.scalar("SELECT output_path FROM jobs WHERE idempotency_key = $1", [key]) ?? "?"
            let published = FileManager.default.contents(atPath: env.artifactRoot + "/" + rel + "/model.safetensors")
            let local = env.scratch + "/local-\(key)"
            let r = try env.squeeze(["run", "--model", out, "--recipe", dense, "--out", local] + (size.map { ["--size", $0] } ?? []))
            #expect(r.status == 0, "\(r.stderr)")
            #expect(published != nil && published == FileManager.default.contents(atPath: local + "/model.safetensors"), "\(key)")
            let loaded = try r.stderr.firstMatch(of: Regex("blocks, ([0-9]+) bytes")).map { String($0.output[1].substring ?? "") }
            let bytes = try env.scalar("SELECT model_bytes FROM job_quality q JOIN jobs j ON j.id = q.job_id WHERE j.idempotency_key = $1", [key])
            #expect(loaded != nil && bytes == loaded, "\(key): job_quality says \(bytes ?? "nothing"), the stack loads \(loaded ?? "?")")
            if let published { models.insert(published) }
            let m = try JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: env.artifactRoot + "/" + rel + "/manifest.json"))) as? [String: Any]
            #expect((m?["input"] as? [String: Any])?["size"] as? String == size, "\(key): \(m?["input"] ?? "")")
        }
        #expect(models.count == 4, "four sizes, four models")
        let shown = try env.squeeze(["show", one])
        #expect(shown.stdout.contains("size      3bpw"), "\(shown.stdout)")
    }

    /// `submit --size` on a model that is no stack, below the stack's smallest model, or a manifest size
    /// that is no size: one line, and nothing is inserted.
    @Test(.enabled(if: llama != nil, "needs SQUEEZE_LLAMA_DIR (set by ops/test)"))
    func impossibleSizesAreRefusedAtSubmit() throws {
        let env = try SqueezeEnv.create()
        let (hf, out) = try stack(env)
        let dense = try env.write("dense.yaml", "stages:\n  - export: {format: safetensors}\n")
        let bad = try env.write("bad.yaml", "- {model: \(out), recipe: \(dense), size: [1]}\n")
        for (args, expected) in [
            (["--model", hf, "--size", "3bpw"], "--size 3bpw: not a BitStack stack"),
            (["--model", out, "--size", "1bpw"], "is below the smallest model of this stack: it loads from"),
            (["--model", out, "--size", "lots"], "--size lots is not a size"),
            (["--manifest", bad], "entry 0: size must be a size"),
        ] {
            let r = try env.squeeze(["submit"] + args + (args.contains("--model") ? ["--recipe", dense] : []))
            #expect(r.status != 0 && r.stderr.contains(expected), "\(args): \(r.stderr)")
            #expect(r.stderr.trimmingCharacters(in: .whitespacesAndNewlines).split(separator: "\n").count == 1, "\(r.stderr)")
        }
        // A usage error (ArgumentParser adds its usage lines).
        let noop = try env.squeeze(["submit", "--noop", "--size", "3bpw"])
        #expect(noop.status != 0 && noop.stderr.hasPrefix("Error: --size goes with --model"), "\(noop.stderr)")
        #expect(try env.scalar("SELECT count(*) FROM jobs") == "0")
    }

    /// A size below the stack's smallest model names the range; text that is no size is refused.
    @Test(.enabled(if: llama != nil, "needs SQUEEZE_LLAMA_DIR (set by ops/test)"), arguments: [
        ("1bpw", "is below the smallest model of this stack: it loads from"), ("lots", "--size lots is not a size"),
    ])
    func sizesOutOfRangeAreRefused(_ size: String, _ expected: String) throws {
        let env = try SqueezeEnv.create()
        let (_, out) = try stack(env)
        let dense = try env.write("dense.yaml", "stages:\n  - export: {format: safetensors}\n")
        let r = try env.squeeze(["run", "--model", out + "/stack.safetensors", "--size", size, "--recipe", dense, "--out", env.scratch + "/d"])
        #expect(r.status != 0 && r.stderr.contains(expected), "\(r.stderr)")
        #expect(r.stderr.trimmingCharacters(in: .whitespacesAndNewlines).split(separator: "\n").count == 1, "\(r.stderr)")
    }

    /// A truncated stack and a block of the wrong shape are refused in one line naming the file or tensor.
    @Test(.enabled(if: llama != nil, "needs SQUEEZE_LLAMA_DIR (set by ops/test)"), arguments: [
        ("truncate", "bad.safetensors"), ("stack-shape", ".bs_u.0 is F16"),
    ])
    func hostileStacksAreRefused(_ mode: String, _ expected: String) throws {
        let env = try SqueezeEnv.create()
        let (_, out) = try stack(env)
        let bad = env.scratch + "/bad.safetensors"
        let made = try env.python("corrupt_compressed.py", [out + "/stack.safetensors", bad, mode])
        #expect(made.status == 0, "\(made.stderr)")
        let dense = try env.write("dense.yaml", "stages:\n  - export: {format: safetensors}\n")
        let r = try env.squeeze(["run", "--model", bad, "--size", "3bpw", "--recipe", dense, "--out", env.scratch + "/d"], timeout: 60)
        #expect(r.status != 0 && r.stderr.contains(expected), "\(r.stderr)")
        #expect(r.stderr.trimmingCharacters(in: .whitespacesAndNewlines).split(separator: "\n").count == 1, "\(r.stderr)")
    }

    @Test(.enabled(if: llama != nil, "needs SQUEEZE_LLAMA_DIR (set by ops/test)"))
    func impossibleDecomposeRecipesAreRefused() throws {
        let env = try SqueezeEnv.create()
        let made = try env.madeLlama(env.scratch + "/m", ["--hidden", "128", "--blocks", "2", "--seed", "8"])
        #expect(made.status == 0)
        let cal = "  - calibrate: {dataset: \(pydoc)}\n"
        let d = "  - decompose: {method: bitstack, targets: [\"model.layers.*.weight\"], ignore: [\"*norm*\"]}\n"
        for (text, expected) in [
            ("stages:\n" + d + "  - export: {format: compressed}\n", "needs an earlier calibrate stage"),
            ("stages:\n" + cal + d + "  - export: {format: safetensors}\n", "decompose stores its stack in the compressed export"),
            ("stages:\n" + cal + d + "  - export: {format: compressed}\n  - export: {format: compressed-tensors}\n", "compressed-tensors has no BitStack blocks"),
            ("stages:\n" + cal + "  - decompose: {method: svd}\n  - export: {format: compressed}\n", "svd is not one of bitstack"),
            ("stages:\n" + cal + "  - decompose: {blocks: 0}\n  - export: {format: compressed}\n", "0 is not in [1, 64]"),
        ] {
            let r = try env.squeeze(["submit", "--model", env.scratch + "/m/hf", "--recipe", try env.write("v.yaml", text)])
            #expect(r.status != 0 && r.stderr.contains(expected), "\(r.stderr)")
        }
    }
}
