import Foundation
import Queue

/// `/jobs/ID`: state, attempts as a timeline, events, per-layer charts along the model's depth,
/// artifacts with size and SHA-256, the recipe as submitted, and quality metrics.
enum JobPage {
    static func render(_ db: PostgresConnection, id: UUID, refresh: Int) throws -> String? {
        let store = JobStore()
        guard let j = try store.jobSummary(db, id: id) else { return nil }
        let ref = j.id.uuidString.lowercased()
        var b = "<h2>Job <span id=\"job-id\">\(ref)</span> · <span id=\"job-state\">\(HTML.state(j.state))</span></h2>"
        let units = HTML.progress(
            Double(j.unitsDone ?? 0), Double(j.unitsTotal ?? 0),
            label: "\(HTML.int(j.unitsDone))/\(HTML.int(j.unitsTotal)) units")
        let error = j.error.map { "<span class=\"err\">\(HTML.text(j.errorCode)): \(HTML.escape($0))</span>" }
        b += HTML.table(
            ["field", "value"],
            [
                ["kind", HTML.escape(j.kind)], ["batch", j.batchID.map(BatchPage.link) ?? "–"],
                ["priority", "\(j.priority)"], ["attempt", "\(j.attempt)/\(j.maxAttempts)"],
                ["input", HTML.escape(j.inputPath)], ["output", HTML.text(j.outputPath)],
                ["worker", HTML.text(j.workerID)], ["progress", units],
                ["created", HTML.escape(j.createdAt)], ["started", HTML.text(j.startedAt)],
                ["finished", HTML.text(j.finishedAt)],
                ["waited", HTML.seconds(j.waitSeconds)], ["ran", HTML.seconds(j.runSeconds)],
                ["artifact bytes", HTML.bytes(j.artifactBytes)], ["error", error ?? "–"],
                ["cancel requested", j.cancelRequested ? "t" : "f"], ["needs", try needs(db, store, id: id)]
            ], id: "job")

        if let q = try store.evaluation(db, job: id) {
            b += quality(q)
        }

        let attempts = try store.attemptLog(db, job: id)
        b += "<h2>Attempts</h2>"
        if !attempts.isEmpty {
            let colors = [
                "succeeded": "#17803d", "failed": "#b42318", "dead": "#b42318", "retry": "#d97706",
                "lease_expired": "#d97706", "released": "#777", "cancelled": "#777"
            ]
            b += SVGChart.timeline(
                attempts.map { s in
                    let a = s.attempt
                    return SVGChart.Span(
                        start: s.startEpoch, end: s.endEpoch,
                        label: "#\(a.attempt) \(a.workerID) " + (a.outcome ?? "running"),
                        color: colors[a.outcome ?? ""] ?? "#3a7bd5")
                }, title: "attempts")
        }
        b += HTML.table(
            ["attempt", "worker", "started", "ended", "outcome", "error"],
            attempts.map(\.attempt).map { a in
                [
                    "n:\(a.attempt)", HTML.escape(a.workerID), HTML.escape(a.startedAt), HTML.text(a.endedAt),
                    HTML.text(a.outcome), "<span class=\"err\">\(HTML.text(a.error))</span>"
                ]
            }, id: "attempts")

        b += layers(try store.layerMetrics(db, job: id))

        b +=
            "<h2>Artifacts</h2>"
            + HTML.table(
                ["path", "format", "bytes", "sha256", "attempt"],
                try store.artifactFiles(db, job: id).map { a in
                    [
                        HTML.escape(a.path), HTML.escape(a.format), "n:" + HTML.bytes(a.bytes),
                        "<code>\(HTML.escape(a.sha256))</code>", "n:\(a.attempt)"
                    ]
                }, id: "artifacts")

        let pretty =
            (try? JSONSerialization.jsonObject(with: Data(j.recipeJSON.utf8)))
            .flatMap { try? JSONSerialization.data(withJSONObject: $0, options: [.prettyPrinted, .sortedKeys]) }
            .map { String(decoding: $0, as: UTF8.self) } ?? j.recipeJSON
        b += "<h2>Recipe as submitted</h2><pre id=\"recipe\">\(HTML.escape(pretty))</pre>"

        b +=
            "<h2>Events (latest 200)</h2>"
            + HTML.table(
                ["at", "attempt", "event", "detail"],
                try store.latestEvents(db, job: id).map { e in
                    [
                        HTML.escape(e.at), "n:\(e.attempt)", HTML.escape(e.kind),
                        "<code>\(HTML.escape(e.detailJSON))</code>"
                    ]
                }, id: "events")
        return HTML.page(title: "job \(ref.prefix(8))", refresh: refresh, body: b)
    }

    /// The evaluation's measured fields (those it has), numbers to 4 decimals (2 from 100 up).
    static func quality(_ q: JobViews.Evaluation) -> String {
        func number(_ v: Double?) -> String? { v.map { "n:" + HTML.number($0, $0 >= 100 ? "%.2f" : "%.4f") } }
        let fields: [(String, String?)] = [
            ("perplexity", number(q.perplexity)), ("original_perplexity", number(q.originalPerplexity)),
            ("perplexity_ratio", number(q.perplexityRatio)), ("mean_kl", number(q.meanKL)),
            ("top1_agreement", number(q.top1)), ("scored_tokens", q.scoredTokens.map(String.init)),
            ("mean_cosine", number(q.meanCosine)), ("min_cosine", number(q.minCosine)),
            ("samples", q.samples.map(String.init)), ("seq_len", q.seqLen.map(String.init)),
            ("dataset", q.dataset.map(HTML.escape))
        ]
        let present = fields.compactMap { name, cell in cell.map { (name, $0) } }
        return "<h2>Quality</h2>" + HTML.table(present.map(\.0), [present.map(\.1)], id: "quality")
    }

    /// The jobs this one waits for (`job_waits`), linked, with their states; "–" when none.
    static func needs(_ db: PostgresConnection, _ store: JobStore, id: UUID) throws -> String {
        let deps = try store.dependencies(db, job: id)
        guard !deps.isEmpty else { return "–" }
        return deps.map { d in
            let ref = d.id.uuidString.lowercased()
            let key = d.key.map { " " + HTML.escape($0) } ?? ""
            return "<a href=\"/jobs/\(ref)\">\(ref.prefix(8))</a>\(key) \(HTML.state(d.state))"
        }.joined(separator: "<br>")
    }

    /// Sparsity, bits and output error of each compressed tensor, in the model's order.
    static func layers(_ rows: [JobViews.Metric]) -> String {
        guard !rows.isEmpty else { return "<h2>Layers</h2><p class=\"muted\">No per-layer metrics (yet).</p>" }
        func series(_ value: (JobViews.Metric) -> Double?) -> [(label: String, value: Double?)] {
            rows.map { ($0.tensor, value($0)) }
        }
        var b = "<h2>Layers along the model's depth (\(rows.count) tensors)</h2><div id=\"layer-charts\">"
        b += SVGChart.bars(series(\.sparsity), title: "sparsity", yLabel: "", color: "#3a7bd5")
        b += SVGChart.bars(series(\.bits), title: "bits per weight", yLabel: "", color: "#6b4fbb")
        let hasOutputError = rows.contains { $0.outputError != nil }
        b += SVGChart.bars(
            series(hasOutputError ? \.outputError : \.relativeError),
            title: hasOutputError ? "output error" : "relative error", yLabel: "", color: "#b42318")
        b +=
            "</div>"
            + HTML.table(
                [
                    "tensor", "dtype", "params", "sparsity", "bits", "rel. error", "output error", "rank", "ms",
                    "bytes in", "bytes out"
                ],
                rows.map { m in
                    [
                        HTML.escape(m.tensor), HTML.escape(m.dtype), "n:\(m.numel)", "n:" + HTML.number(m.sparsity),
                        "n:" + HTML.number(m.bits, "%.2f"), "n:" + HTML.number(m.relativeError),
                        "n:" + HTML.number(m.outputError), "n:" + HTML.int(m.rank),
                        "n:" + HTML.number(m.elapsedMS, "%.1f"), "n:" + HTML.bytes(m.bytesIn.map(Int64.init)),
                        "n:" + HTML.bytes(m.bytesOut.map(Int64.init))
                    ]
                }, id: "layers")
        return b
    }
}
