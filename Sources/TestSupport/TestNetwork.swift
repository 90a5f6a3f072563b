import Foundation

/// A network namespace of a test's own holding a "remote host" that reaches this machine over
/// veth links, one per service, each cut and restored on its own (`ip link set … down/up`): how
/// the partition tests cut a worker off from PostgreSQL, Redis or both. Only addresses of this
/// namespace's links are used (10.213.N.0/24, N chosen per network). Needs root and iproute2.
public final class TestNetwork: @unchecked Sendable {
    public struct Link: Sendable {
        /// The host side's interface and address (services listen there).
        public let hostInterface: String
        public let hostAddress: String
        /// The namespace side's address.
        public let peerAddress: String
    }

    public let namespace: String
    public private(set) var links: [String: Link] = [:]

    /// Whether network namespaces can be made here (root, iproute2, a kernel that allows them).
    public static let available: Bool = {
        guard getuid() == 0, FileManager.default.isExecutableFile(atPath: "/usr/sbin/ip") else { return false }
        let probe = "sqprobe\(getpid())"
        guard (try? ip(["netns", "add", probe]))?.status == 0 else { return false }
        _ = try? ip(["netns", "del", probe])
        return true
    }()

    @discardableResult
    static func ip(_ args: [String]) throws -> ProcessResult {
        try ProcessRunner.run("/usr/sbin/ip", args, timeout: 30)
    }

    /// A namespace with one link per name in `services` (at most 8).
    public init(services: [String]) throws {
        let tag = String(UInt32.random(in: 0..<UInt32.max), radix: 36)
        namespace = "sq" + tag
        try Self.check(try Self.ip(["netns", "add", namespace]), "netns add")
        try Self.check(try Self.ip(["netns", "exec", namespace, "ip", "link", "set", "lo", "up"]), "lo up")
        for (i, service) in services.enumerated() {
            let subnet = "10.213.\(Int.random(in: 1...250))"
            let host = "vh\(i)\(tag)", peer = "vp\(i)\(tag)"
            let link = Link(hostInterface: host, hostAddress: subnet + ".1", peerAddress: subnet + ".2")
            try Self.check(try Self.ip(["link", "add", host, "type", "veth", "peer", "name", peer]), "veth")
            try Self.check(try Self.ip(["link", "set", peer, "netns", namespace]), "move veth")
            try Self.check(try Self.ip(["addr", "add", link.hostAddress + "/24", "dev", host]), "host address")
            try Self.check(try Self.ip(["link", "set", host, "up"]), "host up")
            let inside = ["netns", "exec", namespace, "ip"]
            try Self.check(try Self.ip(inside + ["addr", "add", link.peerAddress + "/24", "dev", peer]), "peer address")
            try Self.check(try Self.ip(inside + ["link", "set", peer, "up"]), "peer up")
            links[service] = link
        }
    }

    private static func check(_ r: ProcessResult, _ what: String) throws {
        guard r.status == 0 else { throw TestNetworkError(message: "ip \(what): \(r.stderr)") }
    }

    deinit {
        for l in links.values { _ = try? Self.ip(["link", "del", l.hostInterface]) }
        _ = try? Self.ip(["netns", "del", namespace])
    }

    /// Cuts (`false`) or restores (`true`) the link of `service`.
    public func set(_ service: String, up: Bool) throws {
        guard let l = links[service] else { return }
        try Self.check(try Self.ip(["link", "set", l.hostInterface, up ? "up" : "down"]), "link \(service)")
    }

    /// `args` run inside the namespace (`ip netns exec`).
    public func command(_ args: [String]) -> (executable: String, arguments: [String]) {
        ("/usr/sbin/ip", ["netns", "exec", namespace] + args)
    }
}

public struct TestNetworkError: Error, CustomStringConvertible {
    public let message: String
    public var description: String { message }
}
