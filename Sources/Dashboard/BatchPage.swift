import Foundation
import Queue

/// `/batches` (every batch, newest first) and `/batches/ID`: the batch's jobs with recipe, state,
/// duration, bytes and quality, and a scatter of output size against quality with its Pareto front.
enum BatchPage {
    static let pageSize = 200

    static func list(_ db: PostgresConnection, page: Int, refresh: Int) throws -> String {
        let rows = try db.query(
            """
            SELECT batch_id, name, created_at, jobs, queued, running, succeeded, failed, cancelled, pct_done
            FROM batch_progress ORDER BY created_at DESC, batch_id LIMIT $1 OFFSET $2
            """, [pageSize + 1, page * pageSize])
        let body =
            HTML.table(
                ["batch", "name", "created", "jobs", "progress", "succeeded", "failed", "cancelled"],
                rows.prefix(pageSize).map { r in
                    let id = r.text("batch_id") ?? ""
                    return [
                        "<a href=\"/batches/\(HTML.escape(id))\">\(HTML.escape(String(id.prefix(8))))</a>",
                        r.html("name"),
                        r.html("created_at"),
                        "n:" + r.html("jobs"),
                        HTML.progress(r.double("pct_done") ?? 0, 100, label: "\(r.html("pct_done"))%"),
                        "n:" + r.html("succeeded"), "n:" + r.html("failed"), "n:" + r.html("cancelled")
                    ]
                }, id: "batch-list") + pager("/batches", page: page, more: rows.count > pageSize)
        return HTML.page(title: "batches", refresh: refresh, body: "<h2>Batches</h2>" + body)
    }

    static func render(_ db: PostgresConnection, id: UUID, page: Int, refresh: Int) throws -> String? {
        guard
            let p = try db.query(
                """
                SELECT batch_id, name, created_at, jobs, queued, running, succeeded, failed, cancelled, pct_done
                FROM batch_progress WHERE batch_id = $1
                """, [id]
            ).first
        else { return nil }
        var b = "<h2>Batch \(p.html("name")) <span class=\"muted\">\(p.html("batch_id"))</span></h2>"
        b +=
            "<div class=\"cards\" id=\"batch-counts\">"
            + ["jobs", "queued", "running", "succeeded", "failed", "cancelled"].map {
                "<div class=\"card\"><b data-count=\"\($0)\">\(p.html($0))</b>\($0)</div>"
            }.joined() + "</div><p>"
            + HTML.progress(p.double("pct_done") ?? 0, 100, label: "\(p.html("pct_done"))% done")
            + "</p>"
        b += try scatter(db, batch: id)

        let rows = try db.query(
            """
            SELECT s.job_id, s.kind, s.state, s.recipe::text AS recipe, s.input_path, s.run_s, s.artifact_bytes,
                s.attempt,
                   q.perplexity_ratio, q.mean_kl, q.mean_cosine, s.error
            FROM job_summary s LEFT JOIN job_quality q ON q.job_id = s.job_id
            WHERE s.batch_id = $1 ORDER BY s.created_at, s.job_id LIMIT $2 OFFSET $3
            """, [id, pageSize + 1, page * pageSize])
        b +=
            "<h2>Jobs</h2>"
            + HTML.table(
                ["job", "recipe", "input", "state", "attempt", "duration", "bytes", "ppl ratio", "mean KL", "cosine"],
                rows.prefix(pageSize).map { r in
                    let running =
                        r.text("state") == "running" || r.text("state") == "succeeded" || r.text("state") == "failed"
                        || r.text("state") == "dead"
                    return [
                        HTML.jobLink(r.text("job_id") ?? ""), HTML.escape(RecipeLabel.of(r.text("recipe"))),
                        r.html("input_path"),
                        HTML.state(r.text("state") ?? "")
                            + (r.text("error").map { " <span class=\"err\" title=\"\(HTML.escape($0))\">!</span>" }
                                ?? ""),
                        "n:" + r.html("attempt"), "n:" + (running ? HTML.seconds(r.double("run_s")) : "–"),
                        "n:" + HTML.bytes(r.int64("artifact_bytes")),
                        "n:" + HTML.number(r.double("perplexity_ratio")), "n:" + HTML.number(r.double("mean_kl")),
                        "n:" + HTML.number(r.double("mean_cosine"))
                    ]
                }, id: "jobs")
            + pager("/batches/\(id.uuidString.lowercased())", page: page, more: rows.count > pageSize)
        return HTML.page(title: "batch \(p.text("name") ?? "")", refresh: refresh, body: b)
    }

    /// The size/quality scatter: perplexity ratio when the jobs measured it, else mean KL, else cosine;
    /// size is the file evaluated (the model a user downloads), else, for older jobs, all their outputs.
    static func scatter(_ db: PostgresConnection, batch: UUID) throws -> String {
        let rows = try db.query(
            """
            SELECT s.job_id, s.input_path, s.recipe::text AS recipe, coalesce(q.model_bytes, s.artifact_bytes) AS size,
                q.perplexity_ratio, q.mean_kl, q.mean_cosine
            FROM job_summary s JOIN job_quality q ON q.job_id = s.job_id
            WHERE s.batch_id = $1 AND s.state = 'succeeded' AND coalesce(q.model_bytes, s.artifact_bytes) > 0
            ORDER BY size LIMIT 5000
            """, [batch])
        let metric: (column: String, label: String, higherIsBetter: Bool)? =
            rows.contains { $0.double("perplexity_ratio") != nil }
            ? ("perplexity_ratio", "perplexity ÷ original (lower is better)", false)
            : rows.contains { $0.double("mean_kl") != nil }
                ? ("mean_kl", "mean KL (lower is better)", false)
                : rows.contains { $0.double("mean_cosine") != nil }
                    ? ("mean_cosine", "mean cosine (higher is better)", true) : nil
        guard let metric else {
            return
                "<p class=\"muted\" id=\"scatter-none\">No job of this batch has measured quality yet (add an evaluate "
                + "stage).</p>"
        }
        let points = rows.compactMap { r -> SVGChart.Point? in
            guard let y = r.double(metric.column), let x = r.double("size"), let id = r.text("job_id") else {
                return nil
            }
            return SVGChart.Point(
                x: x, y: y, href: "/jobs/\(id)",
                title:
                    "\(id.prefix(8)) \(RecipeLabel.of(r.text("recipe"))): \(HTML.bytes(Int64(x))), "
                    + "\(String(format: "%.4f", y))"
            )
        }
        let front = SVGChart.paretoFront(points, higherIsBetter: metric.higherIsBetter)
        // Large batches: the front and an even sample of the rest keep the page small.
        let onFront = Set(front.map(\.href)), rest = points.filter { !onFront.contains($0.href) }
        let stride = max(1, rest.count / 400)
        let shown = front + rest.enumerated().filter { $0.offset % stride == 0 }.map(\.element)
        return "<h2>Size against quality</h2>"
            + SVGChart.scatter(
                shown, front: front, title: "\(points.count) jobs, Pareto front in orange",
                xLabel: "model file bytes", yLabel: metric.label)
            + "<p id=\"pareto\">Pareto front: "
            + front.map { "<a href=\"\($0.href)\">\(HTML.escape(String($0.href.dropFirst(6).prefix(8))))</a>" }
            .joined(separator: ", ") + "</p>"
    }

    static func pager(_ base: String, page: Int, more: Bool) -> String {
        var s = "<nav class=\"pages\">"
        if page > 0 { s += "<a href=\"\(base)?page=\(page - 1)\">← previous</a>" }
        s += "page \(page + 1)"
        if more { s += " <a href=\"\(base)?page=\(page + 1)\">next →</a>" }
        return s + "</nav>"
    }
}
