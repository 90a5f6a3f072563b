import Foundation

/// Connection settings parsed from `redis://[:password@]host[:port][/db]`.
public struct RedisURL: Sendable, Equatable {
    public var host: String = "127.0.0.1"
    public var port: Int = 6379
    public var username: String?
    public var password: String?
    public var database: Int = 0

    public init(host: String = "127.0.0.1", port: Int = 6379, password: String? = nil, database: Int = 0) {
        self.host = host
        self.port = port
        self.password = password
        self.database = database
    }

    /// Parses a redis:// URL; throws `RedisError(.badURL)` naming the problem.
    public init(_ string: String) throws {
        guard let comps = URLComponents(string: string), comps.scheme == "redis" else {
            throw RedisError(code: .badURL, message: "not a redis:// URL: \(string)")
        }
        if let h = comps.host, !h.isEmpty { host = h }
        if let p = comps.port { port = p }
        if let u = comps.user, !u.isEmpty { username = u.removingPercentEncoding ?? u }
        if let pw = comps.password { password = pw.removingPercentEncoding ?? pw }
        let path = comps.path.trimmingCharacters(in: CharacterSet(charactersIn: "/"))
        if !path.isEmpty {
            guard let db = Int(path), db >= 0 else {
                throw RedisError(code: .badURL, message: "database in \(string) must be a non-negative number")
            }
            database = db
        }
    }
}
