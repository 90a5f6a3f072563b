import Foundation

/// A request as the dashboard's server parsed it (GET and HEAD only).
struct HTTPRequest: Sendable {
    let method: String
    /// The path, percent-decoded, without the query.
    let path: String
    /// Query parameters, percent-decoded (the last of a repeated name wins).
    let query: [String: String]
    /// Header values by lower-cased name.
    let headers: [String: String]

    /// Parses the request line and headers (`head` is everything before the blank line); nil when malformed.
    static func parse(head: String) -> HTTPRequest? {
        let lines = head.components(separatedBy: "\r\n")
        let parts = lines[0].split(separator: " ", omittingEmptySubsequences: true)
        guard parts.count == 3, parts[2].hasPrefix("HTTP/1.") else { return nil }
        let target = String(parts[1])
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
        var headers: [String: String] = [:]
        for line in lines.dropFirst() where !line.isEmpty {
            guard let colon = line.firstIndex(of: ":") else { return nil }
            headers[line[..<colon].lowercased()] = line[line.index(after: colon)...].trimmingCharacters(
                in: .whitespaces)
        }
        return HTTPRequest(method: String(parts[0]), path: path, query: query, headers: headers)
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

    static let reasons = [
        200: "OK", 303: "See Other", 400: "Bad Request", 401: "Unauthorized", 404: "Not Found",
        405: "Method Not Allowed", 431: "Request Header Fields Too Large", 500: "Internal Server Error",
        503: "Service Unavailable"
    ]

    /// The bytes on the wire (`head` only: the body is left out, for HEAD requests).
    func serialized(headOnly: Bool) -> [UInt8] {
        var head = "HTTP/1.1 \(status) \(Self.reasons[status] ?? "Status")\r\n"
        head +=
            "Content-Type: \(contentType)\r\nContent-Length: \(body.count)\r\nConnection: close\r\nCache-Control: "
            + "no-store\r\n"
        // Pages use inline styles and SVG only: the browser may load nothing from anywhere.
        head +=
            "Content-Security-Policy: default-src 'none'; style-src 'unsafe-inline'; img-src data:; form-action "
            + "'self'\r\n"
        head += "X-Content-Type-Options: nosniff\r\nX-Frame-Options: DENY\r\nReferrer-Policy: no-referrer\r\n"
        for (k, v) in headers { head += "\(k): \(v)\r\n" }
        return Array((head + "\r\n").utf8) + (headOnly ? [] : body)
    }
}
