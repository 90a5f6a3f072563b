import Compute
import Foundation
import Testing

@Suite struct RecipeParserTests {
    /// Every shipped recipe survives canonical JSON (JSONEncoder, sorted keys) unchanged.
    @Test func shippedRecipesRoundTripThroughCanonicalJSON() throws {
        let dir = URL(fileURLWithPath: #filePath).deletingLastPathComponent().appendingPathComponent("../../recipes").standardized.path
        let files = try FileManager.default.contentsOfDirectory(atPath: dir).filter { $0.hasSuffix(".yaml") }
        #expect(files.count >= 16)
        for f in files {
            let r = try RecipeParser.parse(file: dir + "/" + f)
            #expect(try RecipeParser.parse(r.canonicalJSON) == r, "\(f)")
        }
        let r = try RecipeParser.parse("stages: [{prune: {method: magnitude, sparsity: 0.5, targets: ['a/b*']}}, {export: {format: gguf, type: q8_0}}]")
        // Every option written out, with the version whose defaults the text was read under.
        #expect(r.canonicalJSON == #"{"stages":[{"prune":{"ignore":[],"method":"magnitude","scope":"layer","sparsity":0.5,"#
            + #""targets":["a/b*"]}},{"export":{"allow_fallback":true,"fallback":"f32","format":"gguf","gptq":false,"#
            + #""imatrix":false,"pure":false,"tensor_types":{},"type":"q8_0"}}],"version":2}"#)
    }

    @Test func parsesTheFoundationRecipe() throws {
        let r = try RecipeParser.parse("""
            stages:
              - prune: {method: magnitude, sparsity: 0.5, targets: ["*.weight"], ignore: ["*embeddings*", "*LayerNorm*"]}
              - export: {format: safetensors}
            """)
        #expect(r.stages.count == 2)
        #expect(r.pruneStages[0].selector.matches("encoder.layer.0.attention.self.query.weight"))
        #expect(!r.pruneStages[0].selector.matches("embeddings.word_embeddings.weight"))
        #expect(!r.pruneStages[0].selector.matches("encoder.layer.0.output.LayerNorm.weight"))
        #expect(try RecipeParser.parse(r.canonicalJSON) == r)
    }

    @Test func ggufOverridesRoundTrip() throws {
        let r = try RecipeParser.parse("stages: [{export: {format: gguf, type: q4_k_m, tensor_types: {'*attn_v*': q8_0, 'blk.0.*': q6_k}, output_type: q8_0, embedding_type: q6_k}}, {export: {format: gguf, type: q5_k_m, pure: true, allow_fallback: false}}]")
        let e = r.exportStages[0]
        #expect(e.tensorTypes == ["*attn_v*": .q8_0, "blk.0.*": .q6_k] && e.outputType == .q8_0 && e.embeddingType == .q6_k && !e.pure)
        #expect(r.exportStages[1].pure && !r.exportStages[1].allowFallback && e.allowFallback)
        #expect(try RecipeParser.parse(r.canonicalJSON) == r)
    }

    @Test func learnedRoundingRoundTripsWithEveryOption() throws {
        let r = try RecipeParser.parse(
            "stages: [{calibrate: {dataset: d.txt}}, {quantize: {method: gptq, bits: 4, group_size: 64, learned_rounding: {steps: 20}}}, {export: {format: gguf, type: q4_0, gptq: true, learned_rounding: {learning_rate: 0.01}}}]")
        var q = FlexRound.Options()
        q.steps = 20
        var e = FlexRound.Options()
        e.learningRate = 0.01
        #expect(r.quantizeStages.first?.learnedRounding == q && r.exportStages[0].learnedRounding == e)
        #expect(r.canonicalJSON.contains(#""learned_rounding":{"learning_rate":0.001,"steps":20}"#))
        #expect(r.canonicalJSON.contains(#""learned_rounding":{"learning_rate":0.01,"steps":100}"#))
        #expect(try RecipeParser.parse(r.canonicalJSON) == r)
        let plain = try RecipeParser.parse("stages: [{quantize: {bits: 4}}, {export: {format: gguf, type: q4_0}}]")
        #expect(!plain.canonicalJSON.contains("learned_rounding"), "absent: the recipe's canonical JSON is unchanged")
    }

    @Test func ggufBudgetsRoundTripAsBytesOrBitsPerWeight() throws {
        let r = try RecipeParser.parse("stages: [{export: {format: gguf, budget: 90MB, imatrix: m.gguf}}, {export: {format: gguf, bpw: 4.25}}]")
        #expect(r.exportStages[0].budget == .bytes(90 * 1_048_576) && r.exportStages[1].budget == .bitsPerWeight(4.25))
        #expect(r.canonicalJSON.contains(#""budget":94371840"#) && r.canonicalJSON.contains(#""bpw":4.25"#))
        #expect(!r.canonicalJSON.contains(#""type""#), "a budget chooses the types: no type is recorded")
        #expect(r.exportStages[0].ggufFileName == "model-budget-94371840.gguf")
        #expect(try RecipeParser.parse(r.canonicalJSON) == r)
        #expect(try RecipeParser.parse("stages: [{export: {format: gguf, budget: 1000000}}]").exportStages[0].budget == .bytes(1_000_000))
    }

    @Test func hessianPrecisionRoundTrips() throws {
        let r = try RecipeParser.parse("stages: [{calibrate: {dataset: d.txt, hessian: bf16}}, {prune: {method: sparsegpt, sparsity: 0.5}}, {export: {}}]")
        #expect(r.calibration?.hessian == .bf16 && r.calibrationNeeds.gramPrecision == .bf16)
        #expect(r.canonicalJSON.contains(#""hessian":"bf16""#))
        #expect(try RecipeParser.parse(r.canonicalJSON) == r)
        let f = try RecipeParser.parse("stages: [{calibrate: {dataset: d.txt}}, {prune: {method: sparsegpt, sparsity: 0.5}}, {export: {}}]")
        #expect(f.calibration?.hessian == .f32 && f.canonicalJSON.contains(#""hessian":"f32""#))
    }

    @Test func jsonIsAcceptedAsYAML() throws {
        let r = try RecipeParser.parse(#"{"stages": [{"prune": {"method": "nm", "n": 2, "m": 4}}, {"export": {"format": "safetensors", "dtype": "f16"}}]}"#)
        #expect(r.pruneStages[0].method as? NMPrune == NMPrune(n: 2, m: 4))
        #expect(r.exportStages[0].dtype == .F16)
    }

    /// A bad recipe and the path-naming message its parse error contains.
    static let errorCases: [(String, String)] = [
        ("stages: [{prune: {sparsity: 1.5}}, {export: {}}]", "stages[0].prune.sparsity: 1.5 is not in [0, 1)"),
        ("stages: [{shrink: {}}, {export: {}}]", "stages[0].shrink: unknown stage"),
        ("stages: [{prune: {sparsity: 0.5, colour: red}}, {export: {}}]", "stages[0].prune.colour: unknown key"),
        ("stages: [{prune: {sparsity: half}}, {export: {}}]", "stages[0].prune.sparsity: half is not a number"),
        ("stages: [{prune: {method: nm, n: 4, m: 4}}, {export: {}}]", "stages[0].prune.n: 4 must be at least 1 and less than m (4)"),
        ("stages: [{prune: {sparsity: 0.5}}]", "stages: no export stage"),
        ("stages: [{export: {format: onnx}}]", "stages[0].export.format: onnx is not one of safetensors"),
        ("stages: []", "stages: must have at least one stage"),
        ("steps: []", "steps: unknown key"),
        ("- 1", "a recipe must be a mapping"),
        ("stages: [{prune: {sparsity: 0.5, targets: {a: 1}}}, {export: {}}]", "stages[0].prune.targets: must be a list"),
        ("stages: [{prune: {sparsity: [1]}}, {export: {}}]", "stages[0].prune.sparsity: is not a number"),
        ("stages: [{quantize: {bits: 4.5}}, {export: {}}]", "stages[0].quantize.bits: 4.5 is not an integer"),
        ("stages: [{calibrate: {dataset: d.txt}}, {quantize: {method: gptq, bits: 4, act_order: 1}}, {export: {}}]", "stages[1].quantize.act_order: 1 must be true or false"),
        ("stages: 5", "stages: must be a list"),
        ("stages: [5, {export: {}}]", "stages[0]: each stage is a mapping"),
        ("stages: [{prune: 5}, {export: {}}]", "stages[0].prune: must be a mapping"),
        ("stages: [{prune: {sparsity: 0.5, schedule: 3}}, {export: {}}]", "stages[0].prune.schedule: must be a mapping"),
        ("", "a recipe must be a mapping"),
        ("stages: [{export: {format: gguf, type: q4_k_m, tensor_types: {'*attn_v*': q5_k_m}}}]", "stages[0].export.tensor_types.*attn_v*: q5_k_m is not one of"),
        ("stages: [{export: {format: gguf, type: q8_0, pure: true}}]", "stages[0].export.pure: only applies to a mix"),
        ("stages: [{export: {format: gguf, type: q4_0, budget: 90MB}}]", "stages[0].export.type: budget chooses each matrix's type; do not give type with it"),
        ("stages: [{export: {format: gguf, budget: 90MB, bpw: 4}}]", "stages[0].export.bpw: give budget or bpw, not both"),
        ("stages: [{export: {format: gguf, budget: ninety}}]", "stages[0].export.budget: ninety is not a size"),
        ("stages: [{export: {format: gguf, budget: -5}}]", "stages[0].export.budget: -5 is not a positive size"),
        ("stages: [{export: {format: gguf, bpw: 0.5}}]", "stages[0].export.bpw: 0.5 is not in [1, 32]"),
        ("stages: [{export: {format: safetensors, budget: 90MB}}]", "stages[0].export.budget: belongs to format gguf"),
        ("stages: [{calibrate: {dataset: d.txt}}, {export: {format: gguf, bpw: 4.5, imatrix: true}}]", "stages[1].export.imatrix: bpw weighs each type's error before the run"),
        ("stages: [{export: {format: gguf, type: q4_k_m, tensor_types: [a]}}]", "stages[0].export.tensor_types: must be a mapping"),
        ("stages: [{export: {format: gguf, type: q4_k_m, output_type: q9_k}}]", "stages[0].export.output_type: q9_k is not one of"),
        ("stages: [{prune: {method: structured, sparsity: 0.2, dim: diagonal}}, {export: {}}]", "stages[0].prune.dim: diagonal is not one of rows, columns"),
        ("stages: [{prune: {method: structured, sparsity: 0.2, n: 2}}, {export: {}}]", "stages[0].prune.n: belongs to methods nm, sparsegpt, not method structured (which takes dim, ignore, method, norm, sparsity, targets)"),
        ("stages: [{prune: {method: structured}}, {export: {}}]", "stages[0].prune.sparsity: is required for method structured"),
        ("stages: [{prune: {sparsity: 0.5, scope: global, schedule: {steps: 3}}}, {export: {}}]", "stages[0].prune.schedule: only applies to scope layer"),
        ("stages: [{prune: {sparsity: 0.5, schedule: {steps: 0}}}, {export: {}}]", "stages[0].prune.schedule.steps: 0 is not in [1, 1000]"),
        ("stages: [{prune: {sparsity: 0.5, schedule: {steps: 2, initial_sparsity: 0.7}}}, {export: {}}]", "stages[0].prune.schedule.initial_sparsity: 0.7 is not in [0, sparsity 0.5]"),
        ("stages: [{prune: {sparsity: 0.5, schedule: {steps: 2, type: linear}}}, {export: {}}]", "stages[0].prune.schedule.type: linear is not one of cubic"),
        ("stages: [{lowrank: {rank: 8, energy: 0.9}}, {export: {}}]", "stages[0].lowrank.energy: give one of rank, energy and ratio"),
        ("stages: [{lowrank: {ratio: 0.2, method: svd-llm}}, {export: {}}]", "stages[0].lowrank.method: svd-llm needs an earlier calibrate stage"),
        ("stages: [{lowrank: {ratio: 0.2, alpha: 0.5}}, {export: {}}]", "stages[0].lowrank.alpha: only applies to method asvd"),
        ("stages: [{lowrank: {rank: 4, allocation: global}}, {export: {}}]", "stages[0].lowrank.allocation: only applies with ratio"),
        ("stages: [{lowrank: {ratio: 1.0}}, {export: {}}]", "stages[0].lowrank.ratio: 1 is not in (0, 1)"),
        ("stages: [{lowrank: {ratio: 0.2, allocation: global, output: factors}}, {export: {}}]", "stages[0].lowrank.output: factors need each rank before the run"),
        ("stages: [{lowrank: {}}, {export: {}}]", "stages[0].lowrank: needs rank"),
        ("stages: [{lowrank: {energy: 1.5}}, {export: {}}]", "stages[0].lowrank.energy: 1.5 is not in (0, 1]"),
        ("stages: [{lowrank: {rank: 0}}, {export: {}}]", "stages[0].lowrank.rank: 0 must be at least 1"),
        ("stages: [{lowrank: {rank: 4, output: sparse}}, {export: {}}]", "stages[0].lowrank.output: sparse is not one of dense, factors"),
        ("stages: [{calibrate: {samples: 4}}, {export: {}}]", "stages[0].calibrate.dataset: is required"),
        ("stages: [{calibrate: {dataset: d.txt}}, {calibrate: {dataset: d.txt}}, {export: {}}]", "stages[1].calibrate: a recipe has at most one calibrate stage"),
        ("stages: [{distill: {}}, {export: {}}]", "stages[0].distill: needs an earlier calibrate stage"),
        ("stages: [{calibrate: {dataset: d.txt}}, {distill: {iterations: 0}}, {export: {}}]", "stages[1].distill.iterations: 0 is not in [1, 1000]"),
        ("stages: [{evaluate: {dataset: d.txt}}, {export: {format: compressed}}]", "stages: a compressed export needs a quantize stage"),
        ("stages: [{calibrate: {dataset: d.txt, samples: 0}}, {export: {}}]", "stages[0].calibrate.samples: 0 is not in [1, 4096]"),
        ("stages: [{calibrate: {dataset: d.txt, hessian: fp16}}, {export: {}}]", "stages[0].calibrate.hessian: fp16 is not one of f32, bf16"),
        ("stages: [{quantize: {method: gptq, bits: 4}}, {export: {}}]", "stages[0].quantize.method: gptq needs an earlier calibrate stage"),
        ("stages: [{quantize: {bits: 4, damp: 0.1}}, {export: {}}]", "stages[0].quantize.damp: belongs to methods gptq, vptq, not method rtn (which takes bits, granularity, group_size, ignore, learned_rounding, method, observer, scheme, targets)"),
        ("stages: [{calibrate: {dataset: d.txt}}, {quantize: {method: gptq, bits: 4, damp: 2}}, {export: {}}]", "stages[1].quantize.damp: 2 is not in (0, 1]"),
        ("stages: [{quantize: {method: awq, bits: 4}}, {export: {}}]", "stages[0].quantize.method: awq is not one of rtn, gptq"),
        ("stages: [{quantize: {bits: 4, learned_rounding: {steps: 10}}}, {export: {}}]", "stages[0].quantize.learned_rounding: needs an earlier calibrate stage"),
        ("stages: [{export: {format: gguf, type: q4_0, learned_rounding: {}}}]", "stages[0].export.learned_rounding: needs an earlier calibrate stage"),
        ("stages: [{calibrate: {dataset: d.txt}}, {quantize: {bits: 4, learned_rounding: {step: 10}}}, {export: {}}]", "stages[1].quantize.learned_rounding.step: unknown key (allowed: learning_rate, steps)"),
        ("stages: [{calibrate: {dataset: d.txt}}, {quantize: {bits: 4, learned_rounding: {learning_rate: 0}}}, {export: {}}]", "stages[1].quantize.learned_rounding.learning_rate: 0 is not in (0, 1]"),
        ("stages: [{calibrate: {dataset: d.txt}}, {quantize: {bits: 4, learned_rounding: {steps: -1}}}, {export: {}}]", "stages[1].quantize.learned_rounding.steps: -1 is not in [0, 10000]"),
        ("stages: [{calibrate: {dataset: d.txt}}, {quantize: {bits: 4, learned_rounding: 5}}, {export: {}}]", "stages[1].quantize.learned_rounding: must be a mapping"),
        ("stages: [{calibrate: {dataset: d.txt}}, {quantize: {method: vptq, learned_rounding: {}}}, {export: {}}]", "stages[1].quantize.learned_rounding: belongs to methods gptq, rtn, not method vptq"),
        ("stages: [{calibrate: {dataset: d.txt}}, {export: {format: safetensors, learned_rounding: {}}}]", "stages[1].export.learned_rounding: belongs to format gguf, not format safetensors"),
    ]

    @Test(arguments: errorCases)
    func errorsNameThePath(_ text: String, _ expected: String) {
        do {
            _ = try RecipeParser.parse(text)
            Issue.record("accepted: \(text)")
        } catch let e as RecipeError {
            #expect(e.description.hasPrefix(expected), "\(e)")
        } catch {
            Issue.record("unexpected \(error)")
        }
    }

    @Test func validatorRejectsTargetsMatchingNothing() throws {
        let r = try RecipeParser.parse("stages: [{prune: {sparsity: 0.5, targets: ['nope.*']}}, {export: {}}]")
        let t = [TensorInfo(name: "a.weight", dtype: .F32, shape: [4], begin: 0, end: 16)]
        #expect(throws: RecipeError.self) { try RecipeValidator.validate(r, tensors: t) }
        let nm = try RecipeParser.parse("stages: [{prune: {method: nm, n: 2, m: 4}}, {export: {}}]")
        #expect(throws: RecipeError.self) {
            try RecipeValidator.validate(nm, tensors: [TensorInfo(name: "a.weight", dtype: .F32, shape: [3, 6], begin: 0, end: 72)])
        }
    }
}
