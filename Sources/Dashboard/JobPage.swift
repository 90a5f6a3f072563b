import Foundation
import Queue

/// `/jobs/ID`: state, attempts as a timeline, events, per-layer charts along the model's depth,
/// artifacts with size and SHA-256, the recipe as submitted, and quality metrics.
enum JobPage {
    static func render(_ db: PostgresConnection, id: UUID, refresh: Int) throws -> String? {
        guard
            let j = try db.query(
                """
                SELECT job_id, batch_id, kind, state, priority, attempt, max_attempts, input_path, output_path,
                    worker_id,
                       units_done, units_total, error_code, error, cancel_requested, recipe::text AS recipe,
                       created_at, started_at, finished_at, wait_s, run_s, artifact_bytes
                FROM job_summary WHERE job_id = $1
                """, [id]
            ).first
        else { return nil }
        var b =
            "<h2>Job <span id=\"job-id\">\(j.html("job_id"))</span> · <span "
            + "id=\"job-state\">\(HTML.state(j.text("state") ?? ""))</span></h2>"
        let batch =
            j.text("batch_id").map {
                "<a href=\"/batches/\(HTML.escape($0))\">\(HTML.escape(String($0.prefix(8))))</a>"
            }
            ?? "–"
        let units = HTML.progress(
            j.double("units_done") ?? 0, j.double("units_total") ?? 0,
            label: "\(j.html("units_done"))/\(j.html("units_total")) units")
        b += HTML.table(
            ["field", "value"],
            [
                ["kind", j.html("kind")], ["batch", batch], ["priority", j.html("priority")],
                ["attempt", "\(j.html("attempt"))/\(j.html("max_attempts"))"],
                ["input", j.html("input_path")], ["output", j.html("output_path")], ["worker", j.html("worker_id")],
                ["progress", units],
                ["created", j.html("created_at")], ["started", j.html("started_at")],
                ["finished", j.html("finished_at")],
                ["waited", HTML.seconds(j.double("wait_s"))], ["ran", HTML.seconds(j.double("run_s"))],
                ["artifact bytes", HTML.bytes(j.int64("artifact_bytes"))],
                [
                    "error",
                    j.text("error").map { "<span class=\"err\">\(j.html("error_code")): \(HTML.escape($0))</span>" }
                        ?? "–"
                ],
                ["cancel requested", j.html("cancel_requested")],
                ["needs", try needs(db, id: id)]
            ], id: "job")

        if let q = try db.query(
            """
            SELECT perplexity, original_perplexity, perplexity_ratio, mean_kl, top1_agreement, scored_tokens,
                mean_cosine, min_cosine, samples, seq_len, dataset
            FROM job_quality WHERE job_id = $1
            """, [id]
        ).first {
            let fields = [
                "perplexity", "original_perplexity", "perplexity_ratio", "mean_kl", "top1_agreement", "scored_tokens",
                "mean_cosine", "min_cosine", "samples", "seq_len", "dataset"
            ].filter { q.text($0) != nil }
            let cells = fields.map { f -> String in
                guard f != "dataset", f != "scored_tokens", f != "samples", f != "seq_len", let v = q.double(f) else {
                    return q.html(f)
                }
                return "n:" + HTML.number(v, v >= 100 ? "%.2f" : "%.4f")
            }
            b += "<h2>Quality</h2>" + HTML.table(fields, [cells], id: "quality")
        }

        let attempts = try db.query(
            """
            SELECT attempt, worker_id, started_at, ended_at, outcome, error, started_epoch, ended_epoch
            FROM job_attempt_log WHERE job_id = $1 ORDER BY attempt
            """, [id])
        b += "<h2>Attempts</h2>"
        if !attempts.isEmpty {
            let colors = [
                "succeeded": "#17803d", "failed": "#b42318", "dead": "#b42318", "retry": "#d97706",
                "lease_expired": "#d97706",
                "released": "#777", "cancelled": "#777"
            ]
            b += SVGChart.timeline(
                attempts.map {
                    SVGChart.Span(
                        start: $0.double("started_epoch") ?? 0, end: $0.double("ended_epoch") ?? 0,
                        label: "#\($0.text("attempt") ?? "") \($0.text("worker_id") ?? "") "
                            + ($0.text("outcome") ?? "running"),
                        color: colors[$0.text("outcome") ?? ""] ?? "#3a7bd5")
                }, title: "attempts")
        }
        b += HTML.table(
            ["attempt", "worker", "started", "ended", "outcome", "error"],
            attempts.map {
                [
                    "n:" + $0.html("attempt"), $0.html("worker_id"), $0.html("started_at"), $0.html("ended_at"),
                    $0.html("outcome"),
                    "<span class=\"err\">\($0.html("error"))</span>"
                ]
            }, id: "attempts")

        b += try layers(db, id: id)

        let artifacts = try db.query(
            "SELECT path, bytes, sha256, format, attempt FROM job_artifact_files WHERE job_id = $1 ORDER BY path", [id])
        b +=
            "<h2>Artifacts</h2>"
            + HTML.table(
                ["path", "format", "bytes", "sha256", "attempt"],
                artifacts.map {
                    [
                        $0.html("path"), $0.html("format"), "n:" + HTML.bytes($0.int64("bytes")),
                        "<code>\($0.html("sha256"))</code>", "n:" + $0.html("attempt")
                    ]
                }, id: "artifacts")

        let pretty =
            j.text("recipe").flatMap { try? JSONSerialization.jsonObject(with: Data($0.utf8)) }
            .flatMap { try? JSONSerialization.data(withJSONObject: $0, options: [.prettyPrinted, .sortedKeys]) }
            .map { String(decoding: $0, as: UTF8.self) } ?? j.text("recipe") ?? ""
        b += "<h2>Recipe as submitted</h2><pre id=\"recipe\">\(HTML.escape(pretty))</pre>"

        let events = try db.query(
            """
            SELECT at, attempt, kind, left(detail::text, 400) AS detail FROM job_event_log WHERE job_id = $1 ORDER BY
                id DESC LIMIT 200
            """, [id])
        b +=
            "<h2>Events (latest 200)</h2>"
            + HTML.table(
                ["at", "attempt", "event", "detail"],
                events.map {
                    [$0.html("at"), "n:" + $0.html("attempt"), $0.html("kind"), "<code>\($0.html("detail"))</code>"]
                }, id: "events")
        return HTML.page(title: "job \(String((j.text("job_id") ?? "").prefix(8)))", refresh: refresh, body: b)
    }

    /// Sparsity, bits and output error of each compressed tensor, in the model's order.
    /// The jobs this one waits for (`job_waits`), linked, with their states; "–" when none.
    static func needs(_ db: PostgresConnection, id: UUID) throws -> String {
        let deps = try JobStore().dependencies(db, job: id)
        guard !deps.isEmpty else { return "–" }
        return deps.map { d in
            let ref = d.id.uuidString.lowercased()
            let key = d.key.map { " " + HTML.escape($0) } ?? ""
            return "<a href=\"/jobs/\(ref)\">\(ref.prefix(8))</a>\(key) \(HTML.state(d.state))"
        }.joined(separator: "<br>")
    }

    static func layers(_ db: PostgresConnection, id: UUID) throws -> String {
        let rows = try db.query(
            """
            SELECT tensor, dtype, numel, sparsity, bits, relative_error, output_error, rank, elapsed_ms, bytes_in,
                bytes_out
            FROM job_layer_metrics WHERE job_id = $1 ORDER BY unit_index LIMIT 5000
            """, [id])
        guard !rows.isEmpty else { return "<h2>Layers</h2><p class=\"muted\">No per-layer metrics (yet).</p>" }
        let names = rows.map { $0.text("tensor") ?? "" }
        func series(_ column: String) -> [(label: String, value: Double?)] {
            zip(names, rows.map { $0.double(column) }).map { ($0, $1) }
        }
        var b = "<h2>Layers along the model's depth (\(rows.count) tensors)</h2><div id=\"layer-charts\">"
        b += SVGChart.bars(series("sparsity"), title: "sparsity", yLabel: "", color: "#3a7bd5")
        b += SVGChart.bars(series("bits"), title: "bits per weight", yLabel: "", color: "#6b4fbb")
        let errorColumn = rows.contains { $0.double("output_error") != nil } ? "output_error" : "relative_error"
        b += SVGChart.bars(
            series(errorColumn), title: errorColumn.replacingOccurrences(of: "_", with: " "), yLabel: "",
            color: "#b42318")
        b +=
            "</div>"
            + HTML.table(
                [
                    "tensor", "dtype", "params", "sparsity", "bits", "rel. error", "output error", "rank", "ms",
                    "bytes in", "bytes out"
                ],
                rows.map {
                    [
                        $0.html("tensor"), $0.html("dtype"), "n:" + $0.html("numel"),
                        "n:" + HTML.number($0.double("sparsity")),
                        "n:" + HTML.number($0.double("bits"), "%.2f"),
                        "n:" + HTML.number($0.double("relative_error")), "n:" + HTML.number($0.double("output_error")),
                        "n:" + $0.html("rank"),
                        "n:" + HTML.number($0.double("elapsed_ms"), "%.1f"), "n:" + HTML.bytes($0.int64("bytes_in")),
                        "n:" + HTML.bytes($0.int64("bytes_out"))
                    ]
                }, id: "layers")
        return b
    }
}
