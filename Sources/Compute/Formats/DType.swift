/// Element types of safetensors files.
public enum DType: String, Sendable, CaseIterable, Codable {
    case F64, F32, F16, BF16, I64, I32, I16, I8, U64, U32, U16, U8, BOOL

    /// Bytes per element.
    public var size: Int {
        switch self {
        case .F64, .I64, .U64: return 8
        case .F32, .I32, .U32: return 4
        case .F16, .BF16, .I16, .U16: return 2
        case .I8, .U8, .BOOL: return 1
        }
    }

    /// True for the float types that kernels decode to F32 and back (lossless round trip).
    public var isFloat16Or32: Bool { self == .F32 || self == .F16 || self == .BF16 }
}
