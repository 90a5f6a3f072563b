/// The grid of a ggml block type whose values are one scale (and min) per group times a level:
/// Q4_0, Q4_1, Q5_0, Q5_1, Q8_0, IQ4_NL and IQ4_XS. It reads a tensor's encoded blocks as codes
/// on a `FlexRound.Grid` with the blocks' own scales, and writes changed codes back into the same
/// bytes, scales untouched, so learned rounding keeps the type's ordinary blocks.
struct GGMLBlockGrid {
    /// Level of each code, ascending.
    let levels: [Float]
    /// Values sharing one scale and min.
    let groupLength: Int
    let type: GGMLType
    /// Each group's scale and min of one block: (a, b) with value = a · level + b.
    private let affine: (UnsafeRawPointer, _ group: Int) -> (Float, Float)
    /// Where value j of a block keeps its code: (byte, shift) of its four low bits, and the
    /// (byte, bit) of its fifth (nil: four-bit codes) — Q8_0 stores whole bytes instead.
    private let nibble: (Int) -> (byte: Int, shift: Int, high: (byte: Int, bit: Int)?)

    /// The grid of `type`; nil for types without one (the k-quants, F16, F32).
    static func of(_ type: GGMLType) -> GGMLBlockGrid? {
        func half(_ p: UnsafeRawPointer, _ at: Int) -> Float {
            HalfConversion.f16ToF32(p.loadUnaligned(fromByteOffset: at, as: UInt16.self).littleEndian)
        }
        let ints = { (lo: Int, hi: Int) in (lo...hi).map(Float.init) }
        // Value j < 16 in the low nibble of byte `at` + j, value j ≥ 16 in the high nibble of byte `at` + j − 16.
        let nibbles = { (at: Int) in { (j: Int) in (at + j % 16, j < 16 ? 0 : 4, nil as (Int, Int)?) } }
        let withHigh = { (at: Int, qh: Int) in { (j: Int) in (at + j % 16, j < 16 ? 0 : 4, (qh + j / 8, j % 8)) } }
        let iq4 = (0..<16).map { GGMLQuantizer.iq4Grid[$0] }
        switch type {
        case .q4_0:
            return .init(ints(-8, 7), 32, type, { p, _ in (half(p, 0), 0) }, nibbles(2))
        case .q4_1:
            return .init(ints(0, 15), 32, type, { p, _ in (half(p, 0), half(p, 2)) }, nibbles(4))
        case .q5_0:
            return .init(ints(-16, 15), 32, type, { p, _ in (half(p, 0), 0) }, withHigh(6, 2))
        case .q5_1:
            return .init(ints(0, 31), 32, type, { p, _ in (half(p, 0), half(p, 2)) }, withHigh(8, 4))
        case .q8_0:
            return .init(ints(-128, 127), 32, type, { p, _ in (half(p, 0), 0) }, { (2 + $0, 8, nil) })
        case .iq4_nl:
            return .init(iq4, 32, type, { p, _ in (half(p, 0), 0) }, nibbles(2))
        case .iq4_xs:
            let affine = { (p: UnsafeRawPointer, ib: Int) -> (Float, Float) in
                let high = UInt16(littleEndian: p.loadUnaligned(fromByteOffset: 2, as: UInt16.self))
                let low = Int((p.load(fromByteOffset: 4 + ib / 2, as: UInt8.self) >> (4 * UInt8(ib % 2))) & 0xF)
                let scale = low | (Int((high >> (2 * UInt16(ib))) & 3) << 4)
                return (half(p, 0) * Float(scale - 32), 0)
            }
            return .init(iq4, 32, type, affine) { j in (8 + 16 * (j / 32) + j % 16, j % 32 < 16 ? 0 : 4, nil) }
        default:
            return nil
        }
    }

    private init(
        _ levels: [Float], _ groupLength: Int, _ type: GGMLType,
        _ affine: @escaping (UnsafeRawPointer, Int) -> (Float, Float),
        _ nibble: @escaping (Int) -> (byte: Int, shift: Int, high: (byte: Int, bit: Int)?)
    ) {
        (self.levels, self.groupLength, self.type) = (levels, groupLength, type)
        (self.affine, self.nibble) = (affine, nibble)
    }

    /// The grid and codes of `count` values encoded in `bytes`.
    func read(_ bytes: UnsafeRawBufferPointer, count: Int) -> (FlexRound.Grid, [UInt8]) {
        let n = type.block.count, size = type.block.bytes
        let perBlock = n / groupLength
        var grid = FlexRound.Grid(
            levels: levels, groupLength: groupLength, a: [Float](repeating: 0, count: count / groupLength),
            b: [Float](repeating: 0, count: count / groupLength))
        var codes = [UInt8](repeating: 0, count: count)
        for blk in 0..<(count / n) {
            let p = bytes.baseAddress! + blk * size
            for g in 0..<perBlock { (grid.a[blk * perBlock + g], grid.b[blk * perBlock + g]) = affine(p, g) }
            for j in 0..<n { codes[blk * n + j] = code(p, j) }
        }
        return (grid, codes)
    }

    /// Writes `codes` into the blocks of `bytes`, keeping their scales.
    func write(_ codes: [UInt8], into bytes: UnsafeMutableRawBufferPointer) {
        let n = type.block.count, size = type.block.bytes
        for blk in 0..<(codes.count / n) {
            let p = bytes.baseAddress! + blk * size
            for j in 0..<n { set(p, j, codes[blk * n + j]) }
        }
    }

    private func code(_ p: UnsafeRawPointer, _ j: Int) -> UInt8 {
        let (byte, shift, high) = nibble(j)
        let b = p.load(fromByteOffset: byte, as: UInt8.self)
        if shift == 8 { return b &+ 128 }  // Q8_0: int8 q is code q + 128
        var c = (b >> UInt8(shift)) & 0xF
        if let (hb, bit) = high { c |= ((p.load(fromByteOffset: hb, as: UInt8.self) >> UInt8(bit)) & 1) << 4 }
        return c
    }

    private func set(_ p: UnsafeMutableRawPointer, _ j: Int, _ c: UInt8) {
        let (byte, shift, high) = nibble(j)
        if shift == 8 {
            p.storeBytes(of: c &- 128, toByteOffset: byte, as: UInt8.self)
            return
        }
        let b = p.load(fromByteOffset: byte, as: UInt8.self)
        let mask: UInt8 = 0xF << UInt8(shift)
        p.storeBytes(of: (b & ~mask) | ((c & 0xF) << UInt8(shift)), toByteOffset: byte, as: UInt8.self)
        if let (hb, bit) = high {
            let h = p.load(fromByteOffset: hb, as: UInt8.self)
            let m: UInt8 = 1 << UInt8(bit)
            p.storeBytes(of: (h & ~m) | (((c >> 4) & 1) << UInt8(bit)), toByteOffset: hb, as: UInt8.self)
        }
    }
}
