/// ggml tensor types used in GGUF files (values are the on-disk ids).
public enum GGMLType: UInt32, Sendable, CaseIterable {
    case f32 = 0, f16 = 1, q4_0 = 2, q4_1 = 3, q5_0 = 6, q5_1 = 7, q8_0 = 8, q8_1 = 9
    case q2_K = 10, q3_K = 11, q4_K = 12, q5_K = 13, q6_K = 14
    case iq4_nl = 20, iq4_xs = 23
    case i8 = 24, i16 = 25, i32 = 26, i64 = 27, f64 = 28, bf16 = 30

    /// Bytes per element for plain types (0 for block types).
    public var elementSize: Int { traits.blockCount == 1 ? traits.blockBytes : 0 }

    /// (values per block, bytes per block)
    public var block: (count: Int, bytes: Int) { (traits.blockCount, traits.blockBytes) }

    public var name: String { String(describing: self).uppercased() }

    /// Bytes of a tensor with `numel` values whose rows hold `rowLength` values; nil if rows do not fill blocks.
    public func byteCount(numel: Int, rowLength: Int) -> Int? {
        guard rowLength > 0, let row = traits.rowBytes(rowLength) else { return nil }
        return numel / rowLength * row
    }
}

/// A GGUF metadata array, held as one typed buffer (never one boxed value per element).
public enum GGUFArray: Equatable, Sendable {
    case uint8([UInt8]), int8([Int8]), uint16([UInt16]), int16([Int16]), uint32([UInt32]), int32([Int32]), float32(
        [Float])
    case bool([Bool]), string([String]), uint64([UInt64]), int64([Int64]), float64([Double])

    /// The on-disk element type id and the element count.
    public var typeAndCount: (type: UInt32, count: Int) {
        switch self {
        case .uint8(let a): return (0, a.count)
        case .int8(let a): return (1, a.count)
        case .uint16(let a): return (2, a.count)
        case .int16(let a): return (3, a.count)
        case .uint32(let a): return (4, a.count)
        case .int32(let a): return (5, a.count)
        case .float32(let a): return (6, a.count)
        case .bool(let a): return (7, a.count)
        case .string(let a): return (8, a.count)
        case .uint64(let a): return (10, a.count)
        case .int64(let a): return (11, a.count)
        case .float64(let a): return (12, a.count)
        }
    }
}

/// A GGUF metadata value.
public enum GGUFValue: Equatable, Sendable {
    case uint8(UInt8), int8(Int8), uint16(UInt16), int16(Int16), uint32(UInt32), int32(Int32), float32(Float)
    case bool(Bool), string(String), array(GGUFArray), uint64(UInt64), int64(Int64), float64(Double)

    /// The on-disk value type id.
    public var typeID: UInt32 {
        switch self {
        case .uint8: return 0
        case .int8: return 1
        case .uint16: return 2
        case .int16: return 3
        case .uint32: return 4
        case .int32: return 5
        case .float32: return 6
        case .bool: return 7
        case .string: return 8
        case .array: return 9
        case .uint64: return 10
        case .int64: return 11
        case .float64: return 12
        }
    }

    /// A short rendering for `squeeze inspect`.
    public var summary: String {
        switch self {
        case .uint8(let v): return "\(v)"
        case .int8(let v): return "\(v)"
        case .uint16(let v): return "\(v)"
        case .int16(let v): return "\(v)"
        case .uint32(let v): return "\(v)"
        case .int32(let v): return "\(v)"
        case .float32(let v): return "\(v)"
        case .bool(let v): return "\(v)"
        case .string(let s): return s.count > 60 ? String(s.prefix(57)).debugDescription + "…" : s.debugDescription
        case .array(let a): return "[\(a.typeAndCount.count) items]"
        case .uint64(let v): return "\(v)"
        case .int64(let v): return "\(v)"
        case .float64(let v): return "\(v)"
        }
    }
}

extension GGUFValue {
    /// The value of an integer key (any integer type, within Int's range).
    public var integer: Int? {
        switch self {
        case .uint8(let v): return Int(v)
        case .int8(let v): return Int(v)
        case .uint16(let v): return Int(v)
        case .int16(let v): return Int(v)
        case .uint32(let v): return Int(v)
        case .int32(let v): return Int(v)
        case .uint64(let v): return v <= UInt64(Int.max) ? Int(v) : nil
        case .int64(let v): return Int(v)
        default: return nil
        }
    }

    /// The value of a float key (f32 or f64).
    public var float: Double? {
        switch self {
        case .float32(let v): return Double(v)
        case .float64(let v): return v
        default: return nil
        }
    }
}
