#ifndef SQUEEZE_CKERNELS_H
#define SQUEEZE_CKERNELS_H

#include <stdint.h>

/// Hand-written kernels that Swift cannot express: the BF16 Gram product (AVX512-BF16 where the
/// CPU has it, an exact emulation of the instruction elsewhere).

/// Tile edge of `squeeze_bf16_gram_tile`: tiles start at, and span, multiples of this.
#define SQUEEZE_BF16_TILE 96

/// Rounds `rows` rows of `cols` floats (row stride `lda`) to BF16 (nearest even; NaN kept quiet,
/// subnormals flushed to signed zero) and stores row pairs interleaved: out[p * ldo + c] holds
/// column c of rows 2p (low half) and 2p + 1 (high half). An odd last row is paired with zeros;
/// columns cols..<ldo are zero.
void squeeze_bf16_pack_pairs(const float *x, long lda, long rows, long cols, uint32_t *out, long ldo);

/// c[i * ldc + j] += Σ_p x(2p, i) x(2p, j) + x(2p+1, i) x(2p+1, j) for i in i0..<i0+ni, j in
/// j0..<j0+nj over `pairs` packed pairs (stride ldp), summing pair by pair in order exactly as
/// VDPBF16PS does: the odd row's product first, each addition rounded to F32, subnormal results
/// flushed to zero. i0, j0, ni, nj: multiples of SQUEEZE_BF16_TILE.
void squeeze_bf16_gram_tile(const uint32_t *packed, long pairs, long ldp, long i0, long ni, long j0, long nj, float *c, long ldc);

/// 1 when the tile product runs on AVX512-BF16 instructions, 0 when it is emulated (same bytes).
int squeeze_bf16_native(void);

/// Forces an emulated path, for tests that compare the paths: 0 the fastest the CPU has, 1 the
/// AVX2/FMA emulation, 2 the portable C one. Returns the previous setting.
int squeeze_bf16_force_emulation(int level);

#endif
