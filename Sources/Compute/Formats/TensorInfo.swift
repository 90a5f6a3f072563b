/// One tensor's entry in a safetensors header. Offsets are relative to the data buffer.
public struct TensorInfo: Sendable, Equatable {
    public let name: String
    public let dtype: DType
    public let shape: [Int]
    public let begin: Int
    public let end: Int

    public init(name: String, dtype: DType, shape: [Int], begin: Int, end: Int) {
        self.name = name
        self.dtype = dtype
        self.shape = shape
        self.begin = begin
        self.end = end
    }

    public var numel: Int { shape.reduce(1, *) }
    public var byteCount: Int { end - begin }
}
