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

static int forceEmulation = 0;

int squeeze_bf16_force_emulation(int level) {
    int was = forceEmulation;
    forceEmulation = level;
    return was;
}

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
// 4 × 16 register tiles of the same arithmetic in AVX2 lanes: each pair's BF16 halves widened to
// F32 by a shift or a mask; with FTZ set, the vector fma flushes subnormal results as the
// instruction does.
__attribute__((target("avx2,fma")))
static void emulatedTileFMA(const uint32_t *packed, long pairs, long ldp, long i0, long ni, long j0, long nj, float *c, long ldc) {
    unsigned csr = _mm_getcsr();
    _mm_setcsr(csr | 0x8040u);  // FTZ | DAZ
    const __m256i high = _mm256_set1_epi32((int)0xffff0000u);
    for (long jb = j0; jb < j0 + nj; jb += 16)
        for (long ib = i0; ib < i0 + ni; ib += 4) {
            __m256 acc[4][2];
            for (int r = 0; r < 4; r++) {
                acc[r][0] = _mm256_loadu_ps(c + (ib + r) * ldc + jb);
                acc[r][1] = _mm256_loadu_ps(c + (ib + r) * ldc + jb + 8);
            }
            for (long p = 0; p < pairs; p++) {
                const uint32_t *q = packed + p * ldp;
                __m256i b0 = _mm256_loadu_si256((const __m256i *)(q + jb)), b1 = _mm256_loadu_si256((const __m256i *)(q + jb + 8));
                __m256 e0 = _mm256_castsi256_ps(_mm256_slli_epi32(b0, 16)), o0 = _mm256_castsi256_ps(_mm256_and_si256(b0, high));
                __m256 e1 = _mm256_castsi256_ps(_mm256_slli_epi32(b1, 16)), o1 = _mm256_castsi256_ps(_mm256_and_si256(b1, high));
                for (int r = 0; r < 4; r++) {
                    __m256i a = _mm256_set1_epi32((int)q[ib + r]);
                    __m256 ae = _mm256_castsi256_ps(_mm256_slli_epi32(a, 16)), ao = _mm256_castsi256_ps(_mm256_and_si256(a, high));
                    acc[r][0] = _mm256_fmadd_ps(ae, e0, _mm256_fmadd_ps(ao, o0, acc[r][0]));
                    acc[r][1] = _mm256_fmadd_ps(ae, e1, _mm256_fmadd_ps(ao, o1, acc[r][1]));
                }
            }
            for (int r = 0; r < 4; r++) {
                _mm256_storeu_ps(c + (ib + r) * ldc + jb, acc[r][0]);
                _mm256_storeu_ps(c + (ib + r) * ldc + jb + 8, acc[r][1]);
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

int squeeze_bf16_native(void) {
#if defined(__x86_64__)
    return !forceEmulation && hasNative();
#else
    return 0;
#endif
}

void squeeze_bf16_gram_tile(const uint32_t *packed, long pairs, long ldp, long i0, long ni, long j0, long nj, float *c, long ldc) {
#if defined(__x86_64__)
    if (squeeze_bf16_native()) { nativeTile(packed, pairs, ldp, i0, ni, j0, nj, c, ldc); return; }
    if (forceEmulation < 2 && hasFMA()) { emulatedTileFMA(packed, pairs, ldp, i0, ni, j0, nj, c, ldc); return; }
#endif
    emulatedTile(packed, pairs, ldp, i0, ni, j0, nj, c, ldc);
}
