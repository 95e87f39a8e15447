/*
 * vs_exp: the one exp of the library, written so that the scalar, AVX2 and
 * wasm SIMD kernels can repeat it operation for operation and agree bit for
 * bit (libm's expf differs between glibc and the wasm libc).
 *
 *   exp(x) = 2^n * exp(r),  n = round(x / ln2),  r = x - n ln2 in [-ln2/2, ln2/2]
 *   n:      rounded to nearest-even by adding and subtracting 1.5 * 2^23
 *   r:      Cody-Waite, ln2 split in two so that n * LN2_HI is exact (|n| < 512)
 *   exp(r): Taylor polynomial of degree 7 (truncation < 6e-9 relative), Horner
 *   2^n:    built in the exponent field.
 * Relative error <= 5e-7 over [VS_EXP_LO, VS_EXP_HI] (tests/test_kernels.c
 * checks it against double exp); x <= VS_EXP_LO gives 0, so every result it
 * drops is < exp(VS_EXP_LO) (the certificate accounts for that).
 */
#ifndef VS_VEXP_H
#define VS_VEXP_H

#include <stdint.h>
#include <string.h>

#define VS_EXP_LO (-87.0f)
#define VS_EXP_HI 88.0f
#define VS_EXP_LOG2E 1.44269504088896341f
#define VS_EXP_ROUND 12582912.0f /* 1.5 * 2^23 */
#define VS_EXP_LN2_HI 0.693145751953125f
#define VS_EXP_LN2_LO 1.42860682028622680e-06f
#define VS_EXP_C7 (1.0f / 5040.0f)
#define VS_EXP_C6 (1.0f / 720.0f)
#define VS_EXP_C5 (1.0f / 120.0f)
#define VS_EXP_C4 (1.0f / 24.0f)
#define VS_EXP_C3 (1.0f / 6.0f)
#define VS_EXP_C2 0.5f
/* Bound on |vs_exp(x) / exp(x) - 1| used by the certificate (measured max is
   below 5e-7; the margin covers nothing but caution). */
#define VS_EXP_REL_ERR 1.0e-6

static inline float vs_exp(float x) {
    if (!(x > VS_EXP_LO)) return 0.0f;
    if (x > VS_EXP_HI) x = VS_EXP_HI;
    float n = (x * VS_EXP_LOG2E + VS_EXP_ROUND) - VS_EXP_ROUND;
    float r = x - n * VS_EXP_LN2_HI;
    r = r - n * VS_EXP_LN2_LO;
    float p = VS_EXP_C7;
    p = p * r + VS_EXP_C6;
    p = p * r + VS_EXP_C5;
    p = p * r + VS_EXP_C4;
    p = p * r + VS_EXP_C3;
    p = p * r + VS_EXP_C2;
    p = p * r + 1.0f;
    p = p * r + 1.0f;
    uint32_t bits = (uint32_t)((int32_t)n + 127) << 23;
    float two_n;
    memcpy(&two_n, &bits, sizeof two_n);
    return p * two_n;
}

#endif /* VS_VEXP_H */
