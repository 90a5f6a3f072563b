import Foundation

/// Calibration inputs of one linear layer, handed to its unit in a calibrated run.
struct LinearCalibration {
    /// The student's (compressed model's) input to the layer, all calibration tokens.
    let input: Activations
    /// The teacher's input to the same layer (when a `distill` stage needs it).
    let teacherInput: Activations?
}

/// What an `evaluate` stage measured: the original and the compressed model embed the same
/// held-out windows; cosine similarity of the sentence embeddings.
public struct Evaluation: Sendable, Codable, Equatable {
    enum CodingKeys: String, CodingKey {
        case dataset, samples, seqLen = "seq_len", meanCosine = "mean_cosine", minCosine = "min_cosine", seconds
    }
    public let dataset: String
    public let samples: Int
    public let seqLen: Int
    public let meanCosine: Double
    public let minCosine: Double
    public let seconds: Double
}

extension RecipeRunner {
    /// Units in the order the forward pass asks for them (found by a dry run on two tokens),
    /// then every tensor it does not use (position ids, pooler, ...) in file order.
    func forwardOrder(_ all: [(shard: Int, tensor: TensorInfo)], config: BertConfig) throws -> [(shard: Int, tensor: TensorInfo)] {
        final class Recorder: BertWeights {
            var names = [String]()
            func tensor(_ name: String, count: Int) throws -> [Float] {
                names.append(name)
                return [Float](repeating: 0, count: count)
            }
            func linear(_ base: String, out: Int, in: Int, input: Activations) throws -> [Float] {
                names.append(base + ".weight")
                return [Float](repeating: 0, count: out * `in`)
            }
        }
        let rec = Recorder()
        _ = try BertEncoder(config: config, samples: 1, seqLen: 2, threads: 1).forward([[0, 0]], rec)
        let byName = Dictionary(all.map { ($0.tensor.name, $0) }, uniquingKeysWith: { a, _ in a })
        var order = [(shard: Int, tensor: TensorInfo)]()
        var used = Set<String>()
        for n in rec.names where used.insert(n).inserted {
            guard let e = byName[n] else { throw ComputeError(.notFound, "the model has no tensor \(n), which its BERT config implies", file: model.path) }
            order.append(e)
        }
        return order + all.filter { !used.contains($0.tensor.name) }
    }

    /// Supplies the compressed model's weights to the forward pass by running each tensor's unit
    /// when it is asked for (linear weights with their calibration inputs). The forward asks for
    /// every tensor once, in unit order; nothing is kept after it is handed out.
    final class StudentWeights: BertWeights {
        let runner: RecipeRunner
        let state: RunState
        var teacherInputs = [String: Activations]()

        init(runner: RecipeRunner, state: RunState) {
            self.runner = runner
            self.state = state
        }

        private func run(_ name: String, _ calibration: LinearCalibration?) throws -> [Float] {
            guard state.next < state.order.count, state.order[state.next].tensor.name == name else {
                throw ComputeError(.internalError, "forward pass asked for \(name) out of unit order")
            }
            return try runner.unit(state, calibration: calibration, wantValues: true) ?? []
        }

        func tensor(_ name: String, count: Int) throws -> [Float] {
            let v = try run(name, nil)
            guard v.count == count else { throw ComputeError(.shapeMismatch, "holds \(v.count) values, the config implies \(count)", tensor: name) }
            return v
        }

        func linear(_ base: String, out: Int, in: Int, input: Activations) throws -> [Float] {
            let v = try run(base + ".weight", LinearCalibration(input: input, teacherInput: teacherInputs[base]))
            guard v.count == out * `in` else {
                throw ComputeError(.shapeMismatch, "holds \(v.count) values, the config implies \(out) × \(`in`)", tensor: base + ".weight")
            }
            return v
        }
    }

    /// The original weights, recording the input each linear layer receives.
    final class TeacherWeights: BertWeights {
        let weights: ModelWeights
        var inputs = [String: Activations]()

        init(_ weights: ModelWeights) { self.weights = weights }

        func tensor(_ name: String, count: Int) throws -> [Float] { try weights.tensor(name, count: count) }

        func linear(_ base: String, out: Int, in: Int, input: Activations) throws -> [Float] {
            inputs[base] = input
            return try weights.linear(base, out: out, in: `in`, input: input)
        }
    }

    /// A calibrated run: embeddings, then each encoder layer, in forward order through the
    /// compressed model; with a `distill` stage the original model runs alongside, one layer
    /// ahead, so each linear layer sees the teacher's input too. Remaining tensors follow.
    func runLayers(_ state: RunState, bert: BertModelFiles, calibration cal: CalibrateStage) throws {
        let ids = try CalibrationText.batches(file: cal.dataset, tokenizer: bert.tokenizer, samples: cal.samples, seqLen: cal.seqLen,
                                              part: .calibration)
        let enc = BertEncoder(config: bert.config, samples: cal.samples, seqLen: cal.seqLen, threads: threads)
        let student = StudentWeights(runner: self, state: state)
        let distills = recipe.stages.contains { if case .distill = $0 { return true }; return false }
        let teacher = distills ? TeacherWeights(ModelWeights(readers: state.readers)) : nil
        var xs = try enc.embed(ids, student)
        var xt = try teacher.map { try enc.embed(ids, $0) }
        for i in 0..<bert.config.layers {
            if let teacher, let x = xt {
                teacher.inputs = [:]
                xt = try enc.layer(i, x, teacher)
                student.teacherInputs = teacher.inputs
            }
            xs = try enc.layer(i, xs, student)
        }
        while state.next < state.order.count { _ = try unit(state, calibration: nil, wantValues: false) }
    }

    /// Embeds held-out windows with the input model and with the dense output just written.
    func evaluate(_ ev: EvaluateStage, bert: BertModelFiles, readers: [SafeTensorsReader], outputDir: String,
                  outputs: [OutputRecord]) throws -> Evaluation {
        let t0 = DispatchTime.now()
        let names = model.shards.map(\.name)
        guard names.allSatisfy({ n in outputs.contains { $0.path == n } }) else {
            throw ComputeError(.invalidRecipe, "evaluate needs the dense safetensors export")
        }
        guard let dataset = ev.dataset ?? recipe.calibration?.dataset else { throw ComputeError(.invalidRecipe, "evaluate has no dataset") }
        let ids = try CalibrationText.batches(file: dataset, tokenizer: bert.tokenizer, samples: ev.samples, seqLen: ev.seqLen, part: .evaluation)
        let enc = BertEncoder(config: bert.config, samples: ev.samples, seqLen: ev.seqLen, threads: threads)
        let a = enc.sentenceEmbeddings(try enc.forward(ids, ModelWeights(readers: readers)))
        let out = try names.map { try SafeTensorsReader(path: outputDir + "/" + $0) }
        let b = enc.sentenceEmbeddings(try enc.forward(ids, ModelWeights(readers: out)))
        let cos = zip(a, b).map { x, y in zip(x, y).reduce(0.0) { $0 + Double($1.0) * Double($1.1) } }
        return Evaluation(dataset: dataset, samples: ev.samples, seqLen: ev.seqLen, meanCosine: cos.reduce(0, +) / Double(cos.count),
                          minCosine: cos.min() ?? 0, seconds: Double(DispatchTime.now().uptimeNanoseconds - t0.uptimeNanoseconds) / 1e9)
    }

    /// ‖X_s Ŵᵀ − X_t Wᵀ‖² / ‖X_t Wᵀ‖² on the first 512 calibration tokens, where W is the
    /// original weight and X_t the teacher's input (the student's own when there is no teacher).
    static func outputError(_ c: LinearCalibration, original: UnsafeBufferPointer<Float>, compressed: UnsafeBufferPointer<Float>,
                            out: Int, threads: Int) -> Double {
        let n = c.input.width
        let rows = min(c.input.rows, 512)
        let xs = Array(c.input.data[0..<(rows * n)])
        let xt = c.teacherInput.map { Array($0.data[0..<(rows * n)]) } ?? xs
        let ys = BLAS.gemmRows(m: rows, n: out, k: n, a: xs, b: Array(compressed), bTransposed: true, threads: threads)
        let yt = BLAS.gemmRows(m: rows, n: out, k: n, a: xt, b: Array(original), bTransposed: true, threads: threads)
        var num = 0.0, den = 0.0
        for i in ys.indices {
            let d = Double(ys[i]) - Double(yt[i])
            num += d * d
            den += Double(yt[i]) * Double(yt[i])
        }
        return den > 0 ? num / den : 0
    }
}
