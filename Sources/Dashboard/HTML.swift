import Foundation

/// Building blocks of the dashboard's server-rendered pages: escaping, the page frame with its
/// inline stylesheet, tables and number formats. Nothing is loaded from anywhere else.
enum HTML {
    /// `s` with &, <, >, " and ' escaped for text and attribute values.
    static func escape(_ s: String) -> String {
        var out = ""
        out.reserveCapacity(s.count)
        for c in s {
            switch c {
            case "&": out += "&amp;"
            case "<": out += "&lt;"
            case ">": out += "&gt;"
            case "\"": out += "&quot;"
            case "'": out += "&#39;"
            default: out.append(c)
            }
        }
        return out
    }

    static let style = """
        body{font:14px/1.4 system-ui,sans-serif;margin:0;color:#1d2433;background:#f6f7f9}
        header{background:#1d2433;color:#fff;padding:10px 20px;display:flex;gap:20px;align-items:baseline}
        header a{color:#fff;text-decoration:none;font-weight:600}header span{color:#aab}
        main{padding:12px 20px;max-width:1400px}h2{font-size:16px;margin:18px 0 6px}
        table{border-collapse:collapse;background:#fff;margin-bottom:8px}
        td,th{border:1px solid #dde;padding:3px 8px;text-align:left;vertical-align:top}th{background:#eef0f4}
        td.n{text-align:right;font-variant-numeric:tabular-nums}
        .bar{display:inline-block;width:160px;height:10px;background:#e3e6ec;vertical-align:middle}
        .bar i{display:block;height:10px;background:#3a7bd5}
        .state-succeeded{color:#17803d}.state-failed,.state-dead{color:#b42318}.state-running{color:#3a7bd5}
        .state-cancelled{color:#777}
        .err{color:#b42318;max-width:700px;word-break:break-word}.muted{color:#777}
        .cards{display:flex;gap:10px;flex-wrap:wrap}
        .card{background:#fff;border:1px solid #dde;padding:8px 14px;min-width:110px}
        .card b{display:block;font-size:22px}
        pre{background:#fff;border:1px solid #dde;padding:8px;overflow:auto;max-width:1000px}
        svg{background:#fff;border:1px solid #dde}svg text{font:11px system-ui,sans-serif;fill:#445}
        nav.pages a{margin-right:8px}
        """

    /// A whole page: title, navigation, optional meta refresh, body.
    static func page(title: String, refresh: Int, body: String) -> String {
        let meta = refresh > 0 ? "<meta http-equiv=\"refresh\" content=\"\(refresh)\">" : ""
        let now = ISO8601DateFormatter().string(from: Date())
        return """
            <!DOCTYPE html><html lang="en"><head><meta charset="utf-8">\(meta)<title>\(escape(title)) · squeeze</title>
            <style>\(style)</style></head><body><header><a href="/">squeeze</a><span>\(escape(title))</span>
            <span>\(now)</span><a href="/metrics">metrics</a></header><main>\(body)</main></body></html>
            """
    }

    /// A table with `headers` and already-escaped cell HTML; numeric cells (`n:` prefix) align right.
    static func table(_ headers: [String], _ rows: [[String]], id: String? = nil) -> String {
        var t =
            "<table\(id.map { " id=\"\($0)\"" } ?? "")><tr>" + headers.map { "<th>\(escape($0))</th>" }.joined()
            + "</tr>"
        for r in rows {
            t +=
                "<tr>"
                + r.map { $0.hasPrefix("n:") ? "<td class=\"n\">\($0.dropFirst(2))</td>" : "<td>\($0)</td>" }.joined()
                + "</tr>"
        }
        return t + "</table>"
    }

    /// A link to a job, showing its first 8 characters.
    static func jobLink(_ id: String) -> String {
        "<a href=\"/jobs/\(escape(id))\">\(escape(String(id.prefix(8))))</a>"
    }

    static func state(_ s: String) -> String { "<span class=\"state-\(escape(s))\">\(escape(s))</span>" }

    /// A progress bar for done of total (empty when the total is unknown), with the figures beside it.
    static func progress(_ done: Double, _ total: Double, label: String) -> String {
        let pct = total > 0 ? min(100, max(0, 100 * done / total)) : 0
        return
            "<span class=\"bar\" title=\"\(String(format: "%.1f", pct))%\"><i "
            + "style=\"width:\(String(format: "%.1f", pct))%\"></i></span> \(escape(label))"
    }

    static func bytes(_ n: Int64?) -> String {
        guard let n else { return "–" }
        let units = ["B", "KB", "MB", "GB", "TB"]
        var v = Double(n), u = 0
        while v >= 1000 && u < units.count - 1 {
            v /= 1000
            u += 1
        }
        return u == 0 ? "\(n) B" : String(format: "%.1f %@", v, units[u])
    }

    static func seconds(_ s: Double?) -> String {
        guard let s, s.isFinite else { return "–" }
        if s < 60 { return String(format: "%.1f s", s) }
        if s < 3600 { return String(format: "%d min %02d s", Int(s) / 60, Int(s) % 60) }
        return String(format: "%d h %02d min", Int(s) / 3600, Int(s) % 3600 / 60)
    }

    /// Escaped text, "–" for none.
    static func text(_ s: String?) -> String { s.map(escape) ?? "–" }

    /// An integer, "–" for none.
    static func int(_ n: Int?) -> String { n.map(String.init) ?? "–" }

    static func number(_ x: Double?, _ format: String = "%.4f") -> String {
        x.map { String(format: format, $0) } ?? "–"
    }
}
