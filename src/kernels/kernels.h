/*
 * Kernel contract shared by every instruction set (scalar, avx2, wasmsimd).
 *
 * Bit-identity rules (all ISAs must follow them exactly):
 *  - Canonical sum of n terms t_i: 8 lanes; lane l adds t_l, t_{l+8}, ... in
 *    increasing i, starting from +0.0f; lanes combine as
 *        ((l0 + l4) + (l2 + l6)) + ((l1 + l5) + (l3 + l7)).
 *    Lanes past n receive nothing (SIMD code pads with terms that are +0.0f).
 *  - Products and sums round separately: no FMA, no reassociation
 *    (build with -ffp-contract=off, never -ffast-math).
 *  - max(a, b) means (a > b) ? a : b.
 *  - exp is vs_exp() from vexp.h, operation for operation.
 */
#ifndef VS_KERNELS_H
#define VS_KERNELS_H

#include <stddef.h>
#include <stdint.h>

typedef struct vs_topk_item {
    float value;
    uint32_t index;
} vs_topk_item;

typedef struct vs_kernels {
    const char *name;

    /* out[i] = scale * canonical_sum_j(q[j] * k[i*d + j]), i < n.
       (the product q*k, summed; then one multiply by scale) */
    void (*scores)(const float *k, size_t n, size_t d, const float *q, float scale, float *out);

    /* summ: [n][d][2] bfloat16 (vs_bf16_to_f32), per page and channel the key
       minimum lo then maximum hi, rounded outward (lo down, hi up):
       lo[j] = summ[p][2j], hi[j] = summ[p][2j + 1].
       out[p] = scale * canonical_sum_j(q[j] * (q[j] >= 0 ? hi[j] : lo[j])), p < n,
       with lo, hi widened to float (exact). Where lo <= hi this is
       max(q*lo, q*hi), the box bound, with one multiply; q[j] = -0 selects hi. */
    void (*page_bounds)(const uint16_t *summ, size_t n, size_t d, const float *q, float scale,
                        float *out);

    /* Largest of x[0..n), n >= 1; a zero maximum has the sign of the first zero in x. */
    float (*max)(const float *x, size_t n);

    /* x[i] = vs_exp(x[i] - shift) for i < n; returns canonical_sum(x). */
    float (*exp_sum)(float *x, size_t n, float shift);

    /* out[i] = canonical_sum_j(x[j] * rows[i][j]), i < n, j < d: the dot products
       of x with n rows given by pointer (no scale; `scores` over row pointers). */
    void (*dots)(const float *const *rows, size_t n, size_t d, const float *x, float *out);

    /* For i = 0..n-1 in order, for j < dv: acc[j] = acc[j] + w[i] * rows[i][j]. */
    void (*accum)(const float *const *rows, const float *w, size_t n, size_t dv, float *acc);

    /* x[i] = x[i] * a for i < n. */
    void (*scale)(float *x, size_t n, float a);

    /* Indices of the min(k, n) largest x[i] (ties: lower index first), written
       to out[] in increasing index order; returns their count. scratch holds
       at least VS_TOPK_SCRATCH(k) items. x has no NaN. */
    size_t (*topk)(const float *x, size_t n, size_t k, vs_topk_item *scratch, uint32_t *out);
} vs_kernels;

/* bfloat16: the top 16 bits of a float32. Widening is exact (bits << 16) and
   the same on every ISA. The outward roundings keep a box of keys a box:
   down(x) <= x <= up(x), each the nearest bfloat16 on its side (the inputs
   are finite with |x| <= 1e30, so neither reaches infinity). */
static inline float vs_bf16_to_f32(uint16_t h) {
    union { uint32_t u; float f; } b = {(uint32_t)h << 16};
    return b.f;
}
static inline uint16_t vs_bf16_down(float x) { /* toward -inf */
    union { float f; uint32_t u; } b = {x};
    const uint16_t t = (uint16_t)(b.u >> 16); /* toward zero */
    return (b.u & 0xffffu) && (b.u >> 31) ? (uint16_t)(t + 1) : t;
}
static inline uint16_t vs_bf16_up(float x) { /* toward +inf */
    union { float f; uint32_t u; } b = {x};
    const uint16_t t = (uint16_t)(b.u >> 16);
    return (b.u & 0xffffu) && !(b.u >> 31) ? (uint16_t)(t + 1) : t;
}

extern const vs_kernels vs_kernels_scalar;
#if defined(__x86_64__) || defined(_M_X64) || defined(__i386__)
#define VS_HAVE_AVX2_KERNELS 1
extern const vs_kernels vs_kernels_avx2;
#endif
#if defined(__wasm_simd128__)
#define VS_HAVE_WASMSIMD_KERNELS 1
extern const vs_kernels vs_kernels_wasmsimd;
#endif

/* The kernels in use (selected once, lazily; see vs_set_isa in vashista.h). */
const vs_kernels *vs_kernels_active(void);

/* Top-k bookkeeping shared by every ISA (topk.c): a buffer of up to 2k
   items, kept in increasing index order. When it fills, a selection keeps
   its k best (a stable filter against the k-th best, so the order stays) and
   that k-th best value becomes the threshold: from then on only values
   strictly above it can enter (indices only grow, so ties lose), which is
   what SIMD kernels test eight at a time before offering. No heap, no sort:
   O(n + k log(n/k)) and the output comes out in index order. */
typedef struct vs_topk_buf {
    vs_topk_item *item; /* [2k] the buffer, then [2k] selection workspace */
    size_t size, k;
    float thr;          /* valid once have_thr */
    int have_thr;
} vs_topk_buf;

/* scratch holds at least VS_TOPK_SCRATCH(k) items. */
#define VS_TOPK_SCRATCH(k) (4 * (size_t)(k) + 4)

void vs_topk_init(vs_topk_buf *h, vs_topk_item *scratch, size_t k);
void vs_topk_offer(vs_topk_buf *h, float value, uint32_t index);
/* For n >= 32 k: sets a threshold below which no top-k value of x[0..n) can
   lie (from 2k block maxima, found with `max`), so that a filter pass offers
   little more than k items; returns whether it did. The selection is the same
   with or without it. */
int vs_topk_seed(vs_topk_buf *h, const float *x, size_t n, float (*max)(const float *, size_t));
/* Offers x[i + b] for every set bit b of `bits`, in increasing index order. */
void vs_topk_offer_bits(vs_topk_buf *h, const float *x, size_t i, unsigned bits);
/* Writes the best min(k, offered) indices in increasing order to out; returns the count. */
size_t vs_topk_finish(vs_topk_buf *h, uint32_t *out);

#endif /* VS_KERNELS_H */
