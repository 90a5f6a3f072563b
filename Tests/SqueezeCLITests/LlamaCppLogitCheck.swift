import Foundation
import TestSupport

extension SqueezeEnv {
    /// Whether the real llama.cpp's logits for `gguf` on two evaluation windows of `dataset` agree
    /// with Squeeze's for the same file within `bound` of the largest logit, with at least `top1`
    /// of the argmaxes the same (llama_cpp_check.py); the text says what differed.
    func llamaCppAgrees(
        _ gguf: String, dataset: String, seqLen: Int = 48, bound: String, top1: String, tag: String = ""
    ) throws -> (ok: Bool, text: String) {
        let bin = scratch + "/logits\(tag).bin"
        let l = try squeeze([
            "logits", "--model", gguf, "--dataset", dataset, "--samples", "2", "--seq-len", "\(seqLen)", "--part",
            "evaluation", "--out", bin
        ])
        guard l.status == 0 else { return (false, l.stderr) }
        let c = try pythonLlamaCpp(
            "llama_cpp_check.py", ["logits", gguf, try write("ids\(tag).json", l.stdout), bin, bound, top1])
        return (c.status == 0, "\(c.stdout) \(c.stderr.suffix(800))")
    }
}
