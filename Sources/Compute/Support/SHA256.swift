import COpenSSL
import Foundation

/// SHA-256, incremental, through OpenSSL's libcrypto (SHA-NI or AVX2 where the CPU has them).
/// Every submit and every run hashes whole models with it.
public struct SHA256 {
    private var context: Context

    public init() { context = Context() }

    public mutating func update(_ data: UnsafeRawBufferPointer) {
        if !isKnownUniquelyReferenced(&context) { context = context.copy() }
        guard let base = data.baseAddress, data.count > 0 else { return }
        check(EVP_DigestUpdate(context.pointer, base, data.count), "EVP_DigestUpdate")
    }

    public mutating func update(_ bytes: [UInt8]) { bytes.withUnsafeBytes { update($0) } }

    /// The digest as lowercase hex.
    public mutating func finalizeHex() -> String {
        var digest = [UInt8](repeating: 0, count: Int(EVP_MAX_MD_SIZE))
        var length: UInt32 = 0
        let finished = context.copy()
        check(EVP_DigestFinal_ex(finished.pointer, &digest, &length), "EVP_DigestFinal_ex")
        return digest.prefix(Int(length)).map { String(format: "%02x", $0) }.joined()
    }

    /// One EVP digest context, freed with its owner; copied before a shared one is changed.
    private final class Context {
        let pointer: OpaquePointer

        init() {
            pointer = EVP_MD_CTX_new()
            check(EVP_DigestInit_ex(pointer, EVP_sha256(), nil), "EVP_DigestInit_ex")
        }

        private init(copying other: Context) {
            pointer = EVP_MD_CTX_new()
            check(EVP_MD_CTX_copy_ex(pointer, other.pointer), "EVP_MD_CTX_copy_ex")
        }

        func copy() -> Context { Context(copying: self) }

        deinit { EVP_MD_CTX_free(pointer) }
    }
}

/// Stops on a failed libcrypto call. Not `precondition`: Compute's release build is -Ounchecked,
/// which drops a precondition's condition, and with it the call inside.
private func check(_ result: Int32, _ call: String) {
    if result != 1 { fatalError("\(call) failed") }
}
