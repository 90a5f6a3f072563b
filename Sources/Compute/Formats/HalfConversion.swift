/// IEEE half and bfloat16 conversions. Exact: F16/BF16 → F32 is lossless; F32 → F16/BF16 rounds
/// to nearest even, keeps infinities, and keeps NaN a NaN (payload truncated, quiet bit forced).
public enum HalfConversion {
    @inline(__always)
    public static func f16ToF32(_ h: UInt16) -> Float {
        let sign = UInt32(h & 0x8000) << 16
        let exp = UInt32(h >> 10) & 0x1F
        let man = UInt32(h & 0x3FF)
        if exp == 0 {
            if man == 0 { return Float(bitPattern: sign) }
            // Subnormal: value = man * 2^-24
            let v = Float(man) * Float(bitPattern: 0x3380_0000)  // 2^-24
            return sign != 0 ? -v : v
        }
        if exp == 0x1F { return Float(bitPattern: sign | 0x7F80_0000 | (man << 13)) }
        return Float(bitPattern: sign | ((exp + 112) << 23) | (man << 13))
    }

    /// `f32ToF16` for a finite value, through the CPU's conversion instruction where the build
    /// targets one (F16C): the same bits, round to nearest even (pinned by the exhaustive test).
    @inline(__always)
    static func f32ToF16Finite(_ f: Float) -> UInt16 {
        #if arch(x86_64) || arch(arm64)
            return Float16(f).bitPattern
        #else
            return f32ToF16(f)
        #endif
    }

    @inline(__always)
    public static func f32ToF16(_ f: Float) -> UInt16 {
        let x = f.bitPattern
        let sign = UInt16((x >> 16) & 0x8000)
        let exp = Int((x >> 23) & 0xFF)
        let man = x & 0x7F_FFFF
        if exp == 0xFF {
            if man == 0 { return sign | 0x7C00 }
            return sign | 0x7E00 | UInt16(truncatingIfNeeded: man >> 13)
        }
        let e = exp - 127 + 15
        if e >= 0x1F { return sign | 0x7C00 }  // overflow → inf
        if e <= 0 {
            if e < -10 { return sign }  // underflow to zero (also rounds correctly: < half of min subnormal)
            let m = man | 0x80_0000
            let shift = UInt32(14 - e)
            var r = m >> shift
            let rem = m & ((1 << shift) - 1)
            let half = UInt32(1) << (shift - 1)
            if rem > half || (rem == half && (r & 1) == 1) { r += 1 }
            return sign | UInt16(r)
        }
        var r = UInt32(e) << 10 | (man >> 13)
        let rem = man & 0x1FFF
        if rem > 0x1000 || (rem == 0x1000 && (r & 1) == 1) { r += 1 }  // may carry into exponent: correct
        return sign | UInt16(r)
    }

    @inline(__always)
    public static func bf16ToF32(_ b: UInt16) -> Float { Float(bitPattern: UInt32(b) << 16) }

    @inline(__always)
    public static func f32ToBF16(_ f: Float) -> UInt16 {
        let x = f.bitPattern
        if f.isNaN { return UInt16(x >> 16) | 0x0040 }
        let rounding = 0x7FFF + ((x >> 16) & 1)
        return UInt16((x &+ rounding) >> 16)
    }
}
