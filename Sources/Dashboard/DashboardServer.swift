import Foundation
import Queue

/// `squeeze dashboard`: the read-only web dashboard and `/metrics`, over one database connection
/// (requests take turns on it; it reconnects after an error). Reads monitoring views only.
public final class DashboardServer: @unchecked Sendable {
    private var server: HTTPServer?
    let databaseURL: String
    let refresh: Int
    let token: String?
    let metrics = FleetMetrics()
    private let lock = NSLock()
    private var connection: PostgresConnection?

    /// Binds `listen`; `token` (when given) is required on every request.
    public init(databaseURL: String, listen: ListenAddress, refreshSeconds: Int, token: String?) throws {
        self.databaseURL = databaseURL
        refresh = refreshSeconds
        self.token = token
        server = try HTTPServer(listen) { [unowned self] in respond($0) }
    }

    /// The bound port.
    public var port: UInt16 { server?.port ?? 0 }

    /// Serves until the process ends.
    public func run() -> Never {
        server?.waitUntilClosed()
        fatalError("the dashboard's listening socket closed")
    }

    func respond(_ request: HTTPRequest) -> HTTPResponse {
        if let denied = authorize(request) { return denied }
        lock.lock()
        defer { lock.unlock() }
        do {
            let db = try connection ?? PostgresConnection(url: databaseURL)
            connection = db
            return try route(request, db) ?? .text(404, "not found: \(request.path)")
        } catch let error as PostgresError where error.code == .decoding || error.sqlState?.hasPrefix("42") == true {
            // A view's column is missing, renamed or of another type than the page reads (SQLSTATE class 42:
            // undefined column or table, no privilege): say which, loudly; the connection is fine.
            return .text(500, "the monitoring views do not match this squeeze: \(error.message)")
        } catch {
            connection?.close()
            connection = nil
            let line = String(describing: error).split(separator: "\n").first.map(String.init) ?? "error"
            return .text(503, "database unavailable: \(line)")
        }
    }

    func route(_ request: HTTPRequest, _ db: PostgresConnection) throws -> HTTPResponse? {
        let page = min(max(Int(request.query["page"] ?? "") ?? 0, 0), 1_000_000)
        let parts = request.path.split(separator: "/").map(String.init)
        switch (parts.first, parts.count) {
        case (nil, _): return .html(try OverviewPage.render(db, refresh: refresh))
        case ("batches", 1): return .html(try BatchPage.list(db, page: page, refresh: refresh))
        case ("batches", 2):
            guard let id = UUID(uuidString: parts[1]) else { return .text(404, "not a batch id: \(parts[1])") }
            return try BatchPage.render(db, id: id, page: page, refresh: refresh).map(HTTPResponse.html)
        case ("jobs", 2):
            guard let id = UUID(uuidString: parts[1]) else { return .text(404, "not a job id: \(parts[1])") }
            return try JobPage.render(db, id: id, refresh: refresh).map(HTTPResponse.html)
        case ("metrics", 1):
            return .metrics(Array(try metrics.scrape(db).utf8))
        case ("healthz", 1):
            _ = try db.query("SELECT 1")
            return .text(200, "ok")
        default: return nil
        }
    }

    /// nil when the request may proceed; otherwise the refusal (or, for `?token=`, the redirect that sets the cookie).
    func authorize(_ request: HTTPRequest) -> HTTPResponse? {
        guard let token else { return nil }
        if let given = request.query["token"] {
            guard Self.same(given, token) else { return .text(401, "wrong token") }
            let rest = request.query.filter { $0.key != "token" }
                .map { pair in
                    let key = pair.key.addingPercentEncoding(withAllowedCharacters: .alphanumerics) ?? ""
                    let value = pair.value.addingPercentEncoding(withAllowedCharacters: .alphanumerics) ?? ""
                    return "\(key)=\(value)"
                }
            // A local path only: `//host/x` or `/\\host` would send the browser to another site.
            let local = "/" + request.path.drop(while: { $0 == "/" || $0 == "\\" })
            let path = local.addingPercentEncoding(withAllowedCharacters: .urlPathAllowed) ?? "/"
            // Secure when the page is served over TLS by the proxy in front (it says so).
            let secure = request.headers["x-forwarded-proto"]?.lowercased() == "https" ? "; Secure" : ""
            return .redirect(
                to: path + (rest.isEmpty ? "" : "?" + rest.joined(separator: "&")),
                headers: [("Set-Cookie", "squeeze_token=\(token); Path=/; HttpOnly; SameSite=Strict\(secure)")])
        }
        if let auth = request.headers["authorization"], auth.hasPrefix("Bearer "),
            Self.same(String(auth.dropFirst(7)), token)
        {
            return nil
        }
        if let cookie = request.cookie("squeeze_token"), Self.same(cookie, token) { return nil }
        return HTTPResponse(
            status: 401, contentType: "text/plain; charset=utf-8",
            body: Array("token required: Authorization: Bearer TOKEN, or open the page once with ?token=TOKEN\n".utf8),
            headers: [("WWW-Authenticate", "Bearer")])
    }

    /// Compares in time independent of where the strings differ.
    static func same(_ a: String, _ b: String) -> Bool {
        let x = Array(a.utf8), y = Array(b.utf8)
        var diff = UInt8(x.count == y.count ? 0 : 1)
        for i in 0..<max(x.count, y.count) { diff |= (i < x.count ? x[i] : 0) ^ (i < y.count ? y[i] : 0) }
        return diff == 0
    }
}
