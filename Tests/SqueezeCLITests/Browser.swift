import Foundation
import TestSupport

/// A real headless Chromium (Debian's `chromium`) for page tests: DOM dumps and screenshots.
/// Every request to a host other than loopback goes to `OffHostTrap`, a proxy that only counts.
struct Browser {
    static let path = ["/usr/bin/chromium", "/usr/bin/chromium-browser"].first { FileManager.default.isExecutableFile(atPath: $0) }
    let trap: OffHostTrap

    /// Flags that keep Chromium's own background traffic (updates, safe browsing, metrics) off.
    var flags: [String] {
        ["--headless", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--hide-scrollbars", "--no-first-run", "--disable-background-networking",
         "--disable-component-update", "--disable-sync", "--disable-default-apps", "--disable-domain-reliability",
         "--disable-client-side-phishing-detection", "--no-pings", "--disable-breakpad", "--metrics-recording-only",
         // Without these Chromium 156 still asks accounts.google.com, update.googleapis.com and clients2.google.com.
         "--disable-extensions", "--disable-field-trial-config", "--no-service-autorun", "--password-store=basic", "--allow-browser-signin=false",
         "--disable-features=Translate,OptimizationHints,MediaRouter,DialMediaRouteProvider,CertificateTransparencyComponentUpdater,AutofillServerCommunication,NetworkTimeServiceQuerying",
         "--proxy-server=http://127.0.0.1:\(trap.port)", "--user-data-dir=\(NSTemporaryDirectory())squeeze-chromium-\(getpid())"]
    }

    /// The DOM after the page loaded (and followed redirects).
    func dom(_ url: String) throws -> String {
        let r = try ProcessRunner.run(Self.path!, flags + ["--virtual-time-budget=3000", "--dump-dom", url], timeout: 90)
        return r.stdout
    }

    /// A PNG screenshot of the page at `width`×`height`; returns the file's bytes.
    func screenshot(_ url: String, to file: String, width: Int = 1280, height: Int = 1600) throws -> Data {
        try? FileManager.default.removeItem(atPath: file)
        _ = try ProcessRunner.run(Self.path!, flags + ["--window-size=\(width),\(height)", "--screenshot=\(file)", url], timeout: 90)
        return FileManager.default.contents(atPath: file) ?? Data()
    }
}

/// A listening socket standing in for "any other host": it accepts connections and keeps the first
/// line of each request (`CONNECT host:443 …`, `GET http://host/ …`).
final class OffHostTrap: @unchecked Sendable {
    let fd: Int32
    let port: UInt16
    private let lock = NSLock()
    private var lines: [String] = []

    init() throws {
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        var addr = sockaddr_in()
        addr.sin_family = sa_family_t(AF_INET)
        addr.sin_addr.s_addr = inet_addr("127.0.0.1")
        _ = withUnsafePointer(to: &addr) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) } }
        listen(fd, 16)
        var len = socklen_t(MemoryLayout<sockaddr_in>.size)
        _ = withUnsafeMutablePointer(to: &addr) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { getsockname(fd, $0, &len) } }
        self.fd = fd
        port = UInt16(bigEndian: addr.sin_port)
        let t = Thread { [self] in
            while true {
                let c = accept(fd, nil, nil)
                guard c >= 0 else { return }
                var timeout = timeval(tv_sec: 2, tv_usec: 0)
                setsockopt(c, SOL_SOCKET, SO_RCVTIMEO, &timeout, socklen_t(MemoryLayout<timeval>.size))
                var buf = [UInt8](repeating: 0, count: 2048)
                let n = buf.withUnsafeMutableBytes { recv(c, $0.baseAddress, $0.count, 0) }
                let first = String(decoding: buf[..<max(n, 0)], as: UTF8.self).components(separatedBy: "\r\n")[0]
                // A connection that sends nothing within the timeout carried no request (Chromium
                // preconnects to its proxy); a request it later sends comes on a new connection.
                if !first.isEmpty { lock.lock(); lines.append(first); lock.unlock() }
                close(c)
            }
        }
        t.start()
    }

    /// Chromium's own services, which it calls whatever page it shows (component updates, sign-in,
    /// network time) despite the flags above: *.google.com, *.gvt1.com and *.googleapis.com except
    /// fonts.googleapis.com (which a page could load). Anything else came from a page.
    static func isChromiumService(_ host: String) -> Bool {
        host == "google.com" || host.hasSuffix(".google.com") || host.hasSuffix(".gvt1.com")
            || (host.hasSuffix(".googleapis.com") && host != "fonts.googleapis.com")
    }

    /// The requests from pages that tried to leave the machine so far.
    var requests: [String] {
        lock.lock(); defer { lock.unlock() }
        return lines.filter { line in
            let target = line.split(separator: " ").dropFirst().first.map(String.init) ?? ""
            let host = (target.hasPrefix("http://") ? URL(string: target)?.host : target.split(separator: ":").first.map(String.init)) ?? target
            return !Self.isChromiumService(host)
        }
    }
}

/// A GET through curl: status, headers (lower-cased names) and body.
func httpGet(_ url: String, headers: [String] = []) throws -> (status: Int, headers: [String: String], body: String) {
    let r = try ProcessRunner.run("/usr/bin/curl", ["-sS", "-i", "--max-time", "60"] + headers.flatMap { ["-H", $0] } + [url], timeout: 90)
    guard let split = r.stdout.range(of: "\r\n\r\n") else { return (0, [:], r.stderr) }
    let head = r.stdout[..<split.lowerBound].components(separatedBy: "\r\n")
    var h: [String: String] = [:]
    for line in head.dropFirst() {
        if let c = line.firstIndex(of: ":") { h[line[..<c].lowercased()] = line[line.index(after: c)...].trimmingCharacters(in: .whitespaces) }
    }
    let status = Int(head[0].split(separator: " ").dropFirst().first ?? "") ?? 0
    return (status, h, String(r.stdout[split.upperBound...]))
}
