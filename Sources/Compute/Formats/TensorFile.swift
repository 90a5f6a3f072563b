import Foundation

/// A model file whose tensors the pipeline reads by name: a safetensors file as stored, or a
/// GGUF presented under Hugging Face names with its tensors decoded (`GGUFTensorFile`).
public protocol TensorFile: AnyObject, Sendable {
    var path: String { get }
    /// Tensors as the pipeline sees them, in data order.
    var tensors: [TensorInfo] { get }
    /// safetensors `__metadata__` to carry into outputs.
    var metadata: [String: String] { get }
    /// Size of the file in bytes (at open).
    var fileSize: Int { get }
    /// The file's first bytes when its SHA-256 is the header followed by every tensor's bytes in
    /// `tensors` order (so units can hash as they read); nil when it is not.
    var hashPrefix: [UInt8]? { get }
    /// One tensor's bytes (dtype and size as `t` says) in a buffer owned for the duration of `body`.
    func withData<R>(_ t: TensorInfo, _ body: (UnsafeRawBufferPointer) throws -> R) throws -> R
    /// The elements `elements` of one tensor.
    func withData<R>(_ t: TensorInfo, elements: Range<Int>, _ body: (UnsafeRawBufferPointer) throws -> R) throws -> R
    /// Feeds the whole file's bytes, in order, to `h`.
    func hash(into h: inout SHA256, checkContinue: () throws -> Void) throws
    /// Throws `inputChanged` if the file changed since it was opened.
    func checkUnchanged() throws
    /// Tensors the file stores in a lossy block type, decoded on reading ("name: TYPE").
    var quantizedTensors: [String] { get }
}

extension SafeTensorsReader: TensorFile {
    public var metadata: [String: String] { header.metadata }
    public var quantizedTensors: [String] { [] }
    public var hashPrefix: [UInt8]? { headerBytes }

    /// The header, then each tensor's bytes in 4 MiB pieces (the hash runs beside the units, so it
    /// holds no whole tensor).
    public func hash(into h: inout SHA256, checkContinue: () throws -> Void) throws {
        h.update(headerBytes)
        for t in tensors {
            try checkContinue()
            let step = max(1, (4 << 20) / max(t.dtype.size, 1))
            var at = 0
            while at < t.numel {
                try withData(t, elements: at..<min(at + step, t.numel)) { h.update($0) }
                at += step
            }
        }
    }
}
