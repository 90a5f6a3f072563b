import Foundation
import Queue

/// `/batches` (every batch, newest first) and `/batches/ID`: the batch's jobs with recipe, state,
/// duration, bytes and quality, and a scatter of output size against quality with its Pareto front.
enum BatchPage {
    static let pageSize = 200

    /// A link to a batch, showing its first 8 characters.
    static func link(_ id: UUID) -> String {
        let text = id.uuidString.lowercased()
        return "<a href=\"/batches/\(text)\">\(text.prefix(8))</a>"
    }

    static func list(_ db: PostgresConnection, page: Int, refresh: Int) throws -> String {
        let rows = try JobStore().batchSummaries(db, limit: pageSize + 1, offset: page * pageSize)
        let body =
            HTML.table(
                ["batch", "name", "created", "jobs", "progress", "succeeded", "failed", "cancelled"],
                rows.prefix(pageSize).map { p in
                    [
                        link(p.id), HTML.escape(p.name), HTML.escape(p.createdAt), "n:\(p.jobs)",
                        HTML.progress(p.pctDone, 100, label: "\(p.pctDone)%"),
                        "n:\(p.succeeded)", "n:\(p.failed)", "n:\(p.cancelled)"
                    ]
                }, id: "batch-list") + pager("/batches", page: page, more: rows.count > pageSize)
        return HTML.page(title: "batches", refresh: refresh, body: "<h2>Batches</h2>" + body)
    }

    static func render(_ db: PostgresConnection, id: UUID, page: Int, refresh: Int) throws -> String? {
        let store = JobStore()
        guard let p = try store.batchSummary(db, id: id) else { return nil }
        var b =
            "<h2>Batch \(HTML.escape(p.name)) <span class=\"muted\">\(p.id.uuidString.lowercased())</span></h2>"
        let counts = [
            ("jobs", p.jobs), ("queued", p.queued), ("running", p.running), ("succeeded", p.succeeded),
            ("failed", p.failed), ("cancelled", p.cancelled)
        ]
        b +=
            "<div class=\"cards\" id=\"batch-counts\">"
            + counts.map { "<div class=\"card\"><b data-count=\"\($0.0)\">\($0.1)</b>\($0.0)</div>" }.joined()
            + "</div><p>" + HTML.progress(p.pctDone, 100, label: "\(p.pctDone)% done") + "</p>"
        b += scatter(try store.batchSizeQuality(db, batch: id))

        let rows = try store.batchJobs(db, batch: id, limit: pageSize + 1, offset: page * pageSize)
        b +=
            "<h2>Jobs</h2>"
            + HTML.table(
                ["job", "recipe", "input", "state", "attempt", "duration", "bytes", "ppl ratio", "mean KL", "cosine"],
                rows.prefix(pageSize).map { r in
                    let j = r.job
                    let started = ["running", "succeeded", "failed", "dead"].contains(j.state)
                    let error = j.error.map { " <span class=\"err\" title=\"\(HTML.escape($0))\">!</span>" } ?? ""
                    return [
                        HTML.jobLink(j.id.uuidString.lowercased()), HTML.escape(RecipeLabel.of(j.recipeJSON)),
                        HTML.escape(j.inputPath), HTML.state(j.state) + error, "n:\(j.attempt)",
                        "n:" + (started ? HTML.seconds(j.runSeconds) : "–"), "n:" + HTML.bytes(j.artifactBytes),
                        "n:" + HTML.number(r.perplexityRatio), "n:" + HTML.number(r.meanKL),
                        "n:" + HTML.number(r.meanCosine)
                    ]
                }, id: "jobs")
            + pager("/batches/\(id.uuidString.lowercased())", page: page, more: rows.count > pageSize)
        return HTML.page(title: "batch \(p.name)", refresh: refresh, body: b)
    }

    /// The size/quality scatter: perplexity ratio when the jobs measured it, else mean KL, else cosine;
    /// size is the file evaluated (the model a user downloads), else, for older jobs, all their outputs.
    static func scatter(_ rows: [JobViews.SizeQuality]) -> String {
        let metrics: [(value: (JobViews.SizeQuality) -> Double?, label: String, higherIsBetter: Bool)] = [
            (\.perplexityRatio, "perplexity ÷ original (lower is better)", false),
            (\.meanKL, "mean KL (lower is better)", false),
            (\.meanCosine, "mean cosine (higher is better)", true)
        ]
        guard let metric = metrics.first(where: { m in rows.contains { m.value($0) != nil } }) else {
            return
                "<p class=\"muted\" id=\"scatter-none\">No job of this batch has measured quality yet (add an evaluate "
                + "stage).</p>"
        }
        let points = rows.compactMap { r -> SVGChart.Point? in
            guard let y = metric.value(r) else { return nil }
            let id = r.id.uuidString.lowercased()
            return SVGChart.Point(
                x: Double(r.size), y: y, href: "/jobs/\(id)",
                title: "\(id.prefix(8)) \(RecipeLabel.of(r.recipeJSON)): \(HTML.bytes(r.size)), "
                    + "\(String(format: "%.4f", y))")
        }
        let front = SVGChart.paretoFront(points, higherIsBetter: metric.higherIsBetter)
        // Large batches: the front and an even sample of the rest keep the page small.
        let onFront = Set(front.map(\.href))
        let rest = points.filter { !onFront.contains($0.href) }
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
