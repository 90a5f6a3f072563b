import Foundation
import NIOHTTP1

/// A request as the server received it (GET and HEAD only reach a handler).
struct HTTPRequest: Sendable {
    let method: String
    /// The path, percent-decoded, without the query.
    let path: String
    /// Query parameters, percent-decoded (the last of a repeated name wins).
    let query: [String: String]
    /// Header values by lower-cased name.
    let headers: [String: String]

    /// Splits `target` (`/path?query`) and percent-decodes it; nil when it is not an origin-form target.
    init?(method: String, target: String, headers: HTTPHeaders) {
        guard target.hasPrefix("/") else { return nil }
        let pieces = target.split(separator: "?", maxSplits: 1, omittingEmptySubsequences: false)
        guard let path = String(pieces[0]).removingPercentEncoding else { return nil }
        var query: [String: String] = [:]
        if pieces.count == 2 {
            for pair in pieces[1].split(separator: "&") {
                let kv = pair.split(separator: "=", maxSplits: 1, omittingEmptySubsequences: false)
                let decode = { (s: Substring) in
                    s.replacingOccurrences(of: "+", with: " ").removingPercentEncoding ?? ""
                }
                query[decode(kv[0])] = kv.count == 2 ? decode(kv[1]) : ""
            }
        }
        var fields: [String: String] = [:]
        for (name, value) in headers { fields[name.lowercased()] = value }
        self.method = method
        self.path = path
        self.query = query
        self.headers = fields
    }

    /// The value of cookie `name`, if the request carries it.
    func cookie(_ name: String) -> String? {
        for c in (headers["cookie"] ?? "").split(separator: ";") {
            let kv = c.split(separator: "=", maxSplits: 1)
            if kv.count == 2 && kv[0].trimmingCharacters(in: .whitespaces) == name { return String(kv[1]) }
        }
        return nil
    }
}

/// A complete response; the server adds Content-Length, Connection: close and the security headers.
struct HTTPResponse: Sendable {
    var status: Int
    var contentType: String
    var body: [UInt8]
    var headers: [(String, String)] = []

    static func html(_ page: String) -> HTTPResponse {
        HTTPResponse(status: 200, contentType: "text/html; charset=utf-8", body: Array(page.utf8))
    }

    /// A plain-text response of one line (errors, refusals).
    static func text(_ status: Int, _ line: String) -> HTTPResponse {
        HTTPResponse(status: status, contentType: "text/plain; charset=utf-8", body: Array((line + "\n").utf8))
    }

    /// Prometheus text exposition format.
    static func metrics(_ body: [UInt8]) -> HTTPResponse {
        HTTPResponse(status: 200, contentType: "text/plain; version=0.0.4; charset=utf-8", body: body)
    }

    static func redirect(to location: String, headers: [(String, String)] = []) -> HTTPResponse {
        HTTPResponse(
            status: 303, contentType: "text/plain; charset=utf-8", body: [], headers: [("Location", location)] + headers
        )
    }

    /// The response's header fields: the content's, Connection: close and the security headers, then its own.
    var headerFields: [(String, String)] {
        [
            ("Content-Type", contentType), ("Content-Length", String(body.count)), ("Connection", "close"),
            ("Cache-Control", "no-store"),
            // Pages use inline styles and SVG only: the browser may load nothing from anywhere.
            (
                "Content-Security-Policy",
                "default-src 'none'; style-src 'unsafe-inline'; img-src data:; form-action 'self'"
            ),
            ("X-Content-Type-Options", "nosniff"), ("X-Frame-Options", "DENY"), ("Referrer-Policy", "no-referrer")
        ] + headers
    }
}
