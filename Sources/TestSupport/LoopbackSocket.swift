import Foundation

#if canImport(Glibc)
    import Glibc
#endif

/// A TCP connection to 127.0.0.1:`port`: its descriptor, or nil when nothing accepts there.
public func connectLoopback(port: UInt16) -> Int32? {
    let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
    guard fd >= 0 else { return nil }
    var addr = sockaddr_in()
    addr.sin_family = sa_family_t(AF_INET)
    addr.sin_port = port.bigEndian
    inet_pton(AF_INET, "127.0.0.1", &addr.sin_addr)
    return connected(fd, to: &addr)
}

/// `fd` connected to `addr` (a sockaddr_in or sockaddr_un), or nil (and `fd` closed) when nothing accepts there.
func connected<Address>(_ fd: Int32, to addr: inout Address) -> Int32? {
    let ok = withUnsafePointer(to: &addr) {
        $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
            connect(fd, $0, socklen_t(MemoryLayout<Address>.size))
        }
    }
    guard ok == 0 else {
        close(fd)
        return nil
    }
    return fd
}
