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

/// The paths of the tile product, fastest first; every one gives the same bytes. Native:
/// AVX512-BF16 VDPBF16PS on interleaved BF16 pairs; AVX2: an FMA emulation on rows widened to F32;
/// portable: a plain C emulation on interleaved pairs.
#define SQUEEZE_BF16_NATIVE 0
#define SQUEEZE_BF16_AVX2 1
#define SQUEEZE_BF16_PORTABLE 2

/// The fastest path this CPU runs.
int squeeze_bf16_fastest_path(void);

/// 1 when this CPU runs `path`.
int squeeze_bf16_path_runs(int path);

/// Pairs of rows a panel holds.
#define SQUEEZE_BF16_PANEL_PAIRS 256

/// Words (uint32) of a panel of SQUEEZE_BF16_PANEL_PAIRS pairs of rows of `ldo` columns (a multiple
/// of SQUEEZE_BF16_TILE) in the layout `path` reads: the interleaved pairs above, or for the AVX2
/// emulation rows widened to F32 in column blocks, twice.
long squeeze_bf16_panel_words(int path, long ldo);

/// Packs `rows` rows (rounded as `squeeze_bf16_pack_pairs` rounds) into a panel for `path` as
/// pairs firstPair, firstPair + 1, …; pieces of a panel may be packed concurrently.
void squeeze_bf16_pack_panel(int path, const float *x, long lda, long rows, long cols, uint32_t *panel, long ldo, long firstPair);

/// c[i * ldc + j] += Σ_p x(2p, i) x(2p, j) + x(2p+1, i) x(2p+1, j) for i in i0..<i0+ni, j in
/// j0..<j0+nj over the first `pairs` pairs of a panel packed for `path` (one this CPU runs),
/// summing pair by pair in order exactly as VDPBF16PS does: the odd row's product first, each
/// addition rounded to F32, subnormal results flushed to zero. i0, j0, ni, nj: multiples of
/// SQUEEZE_BF16_TILE.
void squeeze_bf16_gram_tile(int path, const uint32_t *panel, long pairs, long ldo, long i0, long ni, long j0, long nj, float *c, long ldc);

#endif
