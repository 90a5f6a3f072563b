import ArgumentParser
import Dashboard
import Foundation

struct DashboardCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "dashboard",
        abstract: "A read-only web dashboard of the fleet, batches and jobs, with Prometheus metrics at /metrics.",
        discussion: """
            Reads only the monitoring views (a squeeze_monitor login is enough). Listens on loopback by default; \
            listening on any other address needs --token-file, whose token is then required as `Authorization: Bearer \
            TOKEN` \
            or, once, as ?token=TOKEN (which sets a cookie).
            """)

    @OptionGroup var conn: ConnectionOptions

    @Option(name: .long, help: "HOST:PORT to listen on (an IPv4 address or localhost; port 0 picks a free one).")
    var listen = "127.0.0.1:8080"

    @Option(name: .long, help: "Page refresh interval, e.g. 5s, 1m, or 0 for none.")
    var refresh = "5s"

    @Option(
        name: .long,
        help: "File holding the access token (16+ characters of A-Z a-z 0-9 . _ ~ -); required off loopback.")
    var tokenFile: String?

    func validate() throws {
        guard let address = ListenAddress(listen) else {
            throw ValidationError("--listen must be HOST:PORT with an IPv4 address or localhost, got \(listen)")
        }
        guard Self.seconds(refresh) != nil else {
            throw ValidationError("--refresh must be like 5s, 1m or 0 (at most 1 hour), got \(refresh)")
        }
        if !address.isLoopback && tokenFile == nil {
            throw ValidationError(
                "--listen \(listen) is reachable from other machines: pass --token-file FILE (or listen on 127.0.0.1)")
        }
    }

    /// `5s`, `2m`, `10` (seconds) → whole seconds; nil when malformed, fractional or over an hour.
    static func seconds(_ text: String) -> Int? {
        guard let s = Duration(argument: text)?.seconds, s <= 3600, s == s.rounded() else { return nil }
        return Int(s)
    }

    func run() throws {
        try oneLine {
            var token: String?
            if let f = tokenFile {
                guard let raw = FileManager.default.contents(atPath: f) else {
                    throw CLIError("cannot read --token-file \(f)")
                }
                let t = String(decoding: raw, as: UTF8.self).trimmingCharacters(in: .whitespacesAndNewlines)
                let allowed = Set("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789._~-")
                guard t.count >= 16, t.allSatisfy(allowed.contains) else {
                    throw CLIError("--token-file \(f): the token must be 16 or more characters of A-Z a-z 0-9 . _ ~ -")
                }
                token = t
            }
            let address = ListenAddress(listen)!
            let server = try DashboardServer(
                databaseURL: try conn.database(), listen: address, refreshSeconds: Self.seconds(refresh)!, token: token)
            // A supervisor may start us with signals blocked; SIGTERM and SIGINT must still stop the server.
            var stopSignals = sigset_t()
            sigemptyset(&stopSignals)
            for sig in [SIGTERM, SIGINT, SIGHUP] { sigaddset(&stopSignals, sig) }
            pthread_sigmask(SIG_UNBLOCK, &stopSignals, nil)
            print(
                "squeeze dashboard: http://\(address.host):\(server.port)/" + (token == nil ? "" : " (token required)"))
            fflush(stdout)
            server.run()
        }
    }
}
