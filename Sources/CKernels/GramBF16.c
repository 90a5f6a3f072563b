// The BF16 Gram product: XᵀX from inputs rounded to BF16, summed in F32 pair of rows by pair of
// rows. On AVX512-BF16 CPUs a 12 × 32 register tile of VDPBF16PS; elsewhere the same arithmetic
// with fused multiply-adds (a BF16 × BF16 product is exact in F32, so each fma rounds exactly
// once, as each step of the instruction does), in the same order, so the bytes never depend on
// which path ran.
#include "CKernels.h"

#include <float.h>
#include <math.h>
#include <string.h>

#if defined(__x86_64__)
#include <immintrin.h>
#endif

// Branch-free, so the loop below vectorizes.
static inline uint32_t toBF16(uint32_t u) {
    uint32_t rounded = (u + 0x7fffu + ((u >> 16) & 1u)) >> 16;                 // nearest even
    uint32_t nan = ((u >> 16) | 0x0040u) & 0xffffu;                               // NaN, made quiet
    uint32_t zero = (u >> 16) & 0x8000u;                                          // ±0 and subnormals → ±0
    uint32_t r = (u & 0x7f800000u) == 0 ? zero : rounded;
    return (u & 0x7fffffffu) > 0x7f800000u ? nan : r;
}

__attribute__((target_clones("avx512f", "avx2", "default")))
void squeeze_bf16_pack_pairs(const float *x, long lda, long rows, long cols, uint32_t *out, long ldo) {
    for (long p = 0; p < (rows + 1) / 2; p++) {
        const uint32_t *a = (const uint32_t *)(x + 2 * p * lda);
        uint32_t *o = out + p * ldo;
        if (2 * p + 1 < rows) {
            const uint32_t *b = a + lda;
            for (long c = 0; c < cols; c++) o[c] = toBF16(a[c]) | toBF16(b[c]) << 16;
        } else {
            for (long c = 0; c < cols; c++) o[c] = toBF16(a[c]);
        }
        for (long c = cols; c < ldo; c++) o[c] = 0;
    }
}

static inline float lowHalf(uint32_t v) { uint32_t u = v << 16; float f; memcpy(&f, &u, 4); return f; }
static inline float highHalf(uint32_t v) { uint32_t u = v & 0xffff0000u; float f; memcpy(&f, &u, 4); return f; }
static inline float flushed(float v) { return fabsf(v) < FLT_MIN ? copysignf(0.0f, v) : v; }

static inline float fmaFlushed(float a, float b, float c) { return flushed(fmaf(a, b, c)); }

// Portable: acc_j = fma(even_i, even_j, fma(odd_i, odd_j, acc_j)), subnormal results flushed.
static void emulatedTile(const uint32_t *packed, long pairs, long ldp, long i0, long ni, long j0, long nj, float *c, long ldc) {
    for (long i = i0; i < i0 + ni; i++)
        for (long j = j0; j < j0 + nj; j++) {
            float acc = c[i * ldc + j];
            for (long p = 0; p < pairs; p++) {
                const uint32_t *q = packed + p * ldp;
                acc = fmaFlushed(lowHalf(q[i]), lowHalf(q[j]), fmaFlushed(highHalf(q[i]), highHalf(q[j]), acc));
            }
            c[i * ldc + j] = acc;
        }
}

#if defined(__x86_64__)
// The AVX2 emulation's panel: rows widened to F32, each pair's odd row first (the order the
// instruction sums them: step 2p is row 2p + 1, step 2p + 1 is row 2p), stored twice, as GEMM
// kernels pack their operands: in blocks of 16 columns (a register tile's B side) and of 6 columns
// (its A side), each block its steps one after another, so a tile streams through contiguous memory.
#define STEPS (2L * SQUEEZE_BF16_PANEL_PAIRS)
#define WIDE 16
#define TALL 6
// Steps of a tile's slice: the slice of a 16-column block (16 KiB) stays in the L1 cache.
#define SLICE 256

static inline float *wideBlock(float *panel, long col) { return panel + col / WIDE * (STEPS * WIDE); }
static inline float *tallBlock(float *panel, long ldo, long col) { return panel + ldo * STEPS + col / TALL * (STEPS * TALL); }

// Columns widened at a time: whole wide and tall blocks (SQUEEZE_BF16_TILE is a multiple).
#define RUN 48

__attribute__((target("avx2")))
static void packWidened(const float *x, long lda, long rows, long cols, float *panel, long ldo, long firstPair) {
    for (long p = 0; p < (rows + 1) / 2; p++) {
        const uint32_t *even = (const uint32_t *)(x + 2 * p * lda), *odd = 2 * p + 1 < rows ? even + lda : NULL;
        for (int half = 0; half < 2; half++) {
            const uint32_t *src = half == 0 ? odd : even;
            long step = 2 * (firstPair + p) + half;
            for (long c0 = 0; c0 < ldo; c0 += RUN) {
                uint32_t run[RUN];
                if (src && c0 + RUN <= cols) {
                    for (int c = 0; c < RUN; c++) run[c] = toBF16(src[c0 + c]) << 16;
                } else {
                    for (int c = 0; c < RUN; c++) run[c] = src && c0 + c < cols ? toBF16(src[c0 + c]) << 16 : 0;
                }
                for (int c = 0; c < RUN; c += WIDE) memcpy(wideBlock(panel, c0 + c) + step * WIDE, run + c, sizeof(float) * WIDE);
                for (int c = 0; c < RUN; c += TALL) memcpy(tallBlock(panel, ldo, c0 + c) + step * TALL, run + c, sizeof(float) * TALL);
            }
        }
    }
}

// A 6 × 16 register tile over `steps` steps (a: 6 floats a step, b: 16): twelve accumulators, each
// updated once per step with one fma (enough of them to hide its latency; with two B vectors and
// one broadcast they fill the sixteen registers, no spill).
__attribute__((target("avx2,fma")))
static inline void microTile(long steps, const float *a, const float *b, float *c, long ldc) {
    __m256 acc[TALL][2];
    for (int r = 0; r < TALL; r++)
        for (int v = 0; v < 2; v++) acc[r][v] = _mm256_loadu_ps(c + r * ldc + 8 * v);
    for (long k = 0; k < steps; k++, a += TALL, b += WIDE) {
        __m256 b0 = _mm256_loadu_ps(b), b1 = _mm256_loadu_ps(b + 8);
        for (int r = 0; r < TALL; r++) {
            __m256 x = _mm256_broadcast_ss(a + r);
            acc[r][0] = _mm256_fmadd_ps(x, b0, acc[r][0]);
            acc[r][1] = _mm256_fmadd_ps(x, b1, acc[r][1]);
        }
    }
    for (int r = 0; r < TALL; r++)
        for (int v = 0; v < 2; v++) _mm256_storeu_ps(c + r * ldc + 8 * v, acc[r][v]);
}

// The tile over the widened panel: acc = fma(odd_i, odd_j, acc), then fma(even_i, even_j, acc),
// pair by pair; with FTZ set, the vector fma flushes subnormal results as the instruction does.
// Each entry's sum carries on in c from one slice of steps to the next: the order is unchanged.
__attribute__((target("avx2,fma")))
static void emulatedTileFMA(float *panel, long pairs, long ldo, long i0, long ni, long j0, long nj, float *c, long ldc) {
    unsigned csr = _mm_getcsr();
    _mm_setcsr(csr | 0x8040u);  // FTZ | DAZ
    for (long k0 = 0; k0 < 2 * pairs; k0 += SLICE) {
        long steps = 2 * pairs - k0 < SLICE ? 2 * pairs - k0 : SLICE;
        for (long j = j0; j < j0 + nj; j += WIDE) {
            const float *b = wideBlock(panel, j) + k0 * WIDE;
            for (long i = i0; i < i0 + ni; i += TALL)
                microTile(steps, tallBlock(panel, ldo, i) + k0 * TALL, b, c + i * ldc + j, ldc);
        }
    }
    _mm_setcsr(csr);
}

__attribute__((target("avx512f,avx512bf16")))
static void nativeTile(const uint32_t *packed, long pairs, long ldp, long i0, long ni, long j0, long nj, float *c, long ldc) {
    for (long jb = j0; jb < j0 + nj; jb += 32)
        for (long ib = i0; ib < i0 + ni; ib += 12) {
            __m512 acc[12][2];
            for (int r = 0; r < 12; r++) {
                acc[r][0] = _mm512_loadu_ps(c + (ib + r) * ldc + jb);
                acc[r][1] = _mm512_loadu_ps(c + (ib + r) * ldc + jb + 16);
            }
            for (long p = 0; p < pairs; p++) {
                const uint32_t *q = packed + p * ldp;
                __m512bh b0 = (__m512bh)_mm512_loadu_si512(q + jb), b1 = (__m512bh)_mm512_loadu_si512(q + jb + 16);
                for (int r = 0; r < 12; r++) {
                    __m512bh a = (__m512bh)_mm512_set1_epi32((int)q[ib + r]);
                    acc[r][0] = _mm512_dpbf16_ps(acc[r][0], a, b0);
                    acc[r][1] = _mm512_dpbf16_ps(acc[r][1], a, b1);
                }
            }
            for (int r = 0; r < 12; r++) {
                _mm512_storeu_ps(c + (ib + r) * ldc + jb, acc[r][0]);
                _mm512_storeu_ps(c + (ib + r) * ldc + jb + 16, acc[r][1]);
            }
        }
}

static int hasNative(void) {
    __builtin_cpu_init();
    return __builtin_cpu_supports("avx512bf16") && __builtin_cpu_supports("avx512f");
}

static int hasFMA(void) {
    __builtin_cpu_init();
    return __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma");
}
#endif

int squeeze_bf16_fastest_path(void) {
#if defined(__x86_64__)
    if (hasNative()) return SQUEEZE_BF16_NATIVE;
    if (hasFMA()) return SQUEEZE_BF16_AVX2;
#endif
    return SQUEEZE_BF16_PORTABLE;
}

int squeeze_bf16_path_runs(int path) { return path >= squeeze_bf16_fastest_path() && path <= SQUEEZE_BF16_PORTABLE; }

long squeeze_bf16_panel_words(int path, long ldo) { return (path == SQUEEZE_BF16_AVX2 ? 4 : 1) * SQUEEZE_BF16_PANEL_PAIRS * ldo; }

void squeeze_bf16_pack_panel(int path, const float *x, long lda, long rows, long cols, uint32_t *panel, long ldo, long firstPair) {
#if defined(__x86_64__)
    if (path == SQUEEZE_BF16_AVX2) { packWidened(x, lda, rows, cols, (float *)panel, ldo, firstPair); return; }
#endif
    squeeze_bf16_pack_pairs(x, lda, rows, cols, panel + firstPair * ldo, ldo);
}

void squeeze_bf16_gram_tile(int path, const uint32_t *panel, long pairs, long ldo, long i0, long ni, long j0, long nj, float *c, long ldc) {
    switch (path) {
#if defined(__x86_64__)
    case SQUEEZE_BF16_NATIVE: nativeTile(panel, pairs, ldo, i0, ni, j0, nj, c, ldc); return;
    case SQUEEZE_BF16_AVX2: emulatedTileFMA((float *)panel, pairs, ldo, i0, ni, j0, nj, c, ldc); return;
#endif
    default: emulatedTile(panel, pairs, ldo, i0, ni, j0, nj, c, ldc);
    }
}
