import Crypto

/// SHA-256, incremental, through apple/swift-crypto (BoringSSL's implementation: SHA-NI or AVX2
/// where the CPU has them). Every submit and every run hashes whole models with it.
public struct SHA256 {
    private var hasher = Crypto.SHA256()

    public init() {}

    public mutating func update(_ data: UnsafeRawBufferPointer) { hasher.update(bufferPointer: data) }

    public mutating func update(_ bytes: [UInt8]) { bytes.withUnsafeBytes { update($0) } }

    /// The digest as lowercase hex.
    public mutating func finalizeHex() -> String {
        hasher.finalize().map { String(format: "%02x", $0) }.joined()
    }
}
