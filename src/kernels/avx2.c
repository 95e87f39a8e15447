/*
 * AVX2 kernels (compiled with -mavx2 only: no FMA, -ffp-contract=off).
 *
 * Bit-identical to scalar.c (rules in kernels.h): one __m256 accumulator is
 * exactly the 8 canonical lanes (lane l sums terms l, l+8, ...), every product
 * and sum is a separate vmulps / vaddps, _mm256_max_ps(a, b) is exactly
 * (a > b) ? a : b, and exp8() repeats vs_exp() operation for operation.
 * Each kernel: a full 8-wide tile loop, then the remainder handled with masked
 * loads (_mm256_maskload_ps gives +0 in the lanes past the end, and adding
 * +0 to a canonical lane never changes it: a lane starts at +0 and can never
 * become -0). page_bounds reads 16-bit data, which has no masked load: its
 * remainder is copied into a zeroed buffer of 8 (lo, hi) pairs first.
 */
#include <immintrin.h>
#include <string.h>

#include "kernels.h"
#include "vexp.h"

#define LANES 8
#define ROWS 8 /* rows (keys, pages) scored together: independent add chains */

/* ---- helpers --------------------------------------------------------------- */

/* Lanes 0..m-1 set (0 <= m <= 8). */
static inline __m256i tail_mask(size_t m) {
    static const int32_t bits[16] = {-1, -1, -1, -1, -1, -1, -1, -1, 0, 0, 0, 0, 0, 0, 0, 0};
    return _mm256_loadu_si256((const __m256i *)(bits + LANES - m));
}

/* Canonical combine of one accumulator: ((l0+l4)+(l2+l6))+((l1+l5)+(l3+l7)). */
static inline float combine1(__m256 v) {
    __m128 s = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1)); /* l_i+l_{i+4} */
    __m128 t = _mm_add_ps(s, _mm_movehl_ps(s, s)); /* s0+s2, s1+s3 */
    return _mm_cvtss_f32(_mm_add_ss(t, _mm_shuffle_ps(t, t, 1)));
}

/* Canonical combine of eight accumulators at once: result lane r = combine1(a_r). */
static inline __m256 combine8(__m256 a0, __m256 a1, __m256 a2, __m256 a3, __m256 a4, __m256 a5,
                              __m256 a6, __m256 a7) {
    /* s_r = [l0+l4, l1+l5, l2+l6, l3+l7] of row r; rows r and r+4 share a register */
    __m256 s04 =
        _mm256_add_ps(_mm256_permute2f128_ps(a0, a4, 0x20), _mm256_permute2f128_ps(a0, a4, 0x31));
    __m256 s15 =
        _mm256_add_ps(_mm256_permute2f128_ps(a1, a5, 0x20), _mm256_permute2f128_ps(a1, a5, 0x31));
    __m256 s26 =
        _mm256_add_ps(_mm256_permute2f128_ps(a2, a6, 0x20), _mm256_permute2f128_ps(a2, a6, 0x31));
    __m256 s37 =
        _mm256_add_ps(_mm256_permute2f128_ps(a3, a7, 0x20), _mm256_permute2f128_ps(a3, a7, 0x31));
    /* per 128-bit half: [s_a0+s_a2, s_a1+s_a3, s_b0+s_b2, s_b1+s_b3] */
    __m256 t01 = _mm256_add_ps(
        _mm256_castpd_ps(_mm256_unpacklo_pd(_mm256_castps_pd(s04), _mm256_castps_pd(s15))),
        _mm256_castpd_ps(_mm256_unpackhi_pd(_mm256_castps_pd(s04), _mm256_castps_pd(s15))));
    __m256 t23 = _mm256_add_ps(
        _mm256_castpd_ps(_mm256_unpacklo_pd(_mm256_castps_pd(s26), _mm256_castps_pd(s37))),
        _mm256_castpd_ps(_mm256_unpackhi_pd(_mm256_castps_pd(s26), _mm256_castps_pd(s37))));
    /* (s0+s2) + (s1+s3) for rows 0..3 (low half) and 4..7 (high half) */
    return _mm256_add_ps(_mm256_shuffle_ps(t01, t23, _MM_SHUFFLE(2, 0, 2, 0)),
                         _mm256_shuffle_ps(t01, t23, _MM_SHUFFLE(3, 1, 3, 1)));
}

/* Stores the first m (1..8) lanes of v. */
static inline void store_first(float *out, __m256 v, size_t m) {
    if (m == LANES)
        _mm256_storeu_ps(out, v);
    else
        _mm256_maskstore_ps(out, tail_mask(m), v);
}

/* vs_exp() on 8 lanes, operation for operation. The dead lanes (x <= LO, or
   NaN) are clamped to LO so they stay finite, then zeroed by the mask. */
static inline __m256 exp8(__m256 x) {
    const __m256 live = _mm256_cmp_ps(x, _mm256_set1_ps(VS_EXP_LO), _CMP_GT_OQ);
    x = _mm256_max_ps(x, _mm256_set1_ps(VS_EXP_LO)); /* live lanes: x itself */
    x = _mm256_min_ps(_mm256_set1_ps(VS_EXP_HI), x); /* (x > HI) ? HI : x */
    const __m256 round = _mm256_set1_ps(VS_EXP_ROUND);
    __m256 n =
        _mm256_sub_ps(_mm256_add_ps(_mm256_mul_ps(x, _mm256_set1_ps(VS_EXP_LOG2E)), round), round);
    __m256 r = _mm256_sub_ps(x, _mm256_mul_ps(n, _mm256_set1_ps(VS_EXP_LN2_HI)));
    r = _mm256_sub_ps(r, _mm256_mul_ps(n, _mm256_set1_ps(VS_EXP_LN2_LO)));
    __m256 p = _mm256_set1_ps(VS_EXP_C7);
    p = _mm256_add_ps(_mm256_mul_ps(p, r), _mm256_set1_ps(VS_EXP_C6));
    p = _mm256_add_ps(_mm256_mul_ps(p, r), _mm256_set1_ps(VS_EXP_C5));
    p = _mm256_add_ps(_mm256_mul_ps(p, r), _mm256_set1_ps(VS_EXP_C4));
    p = _mm256_add_ps(_mm256_mul_ps(p, r), _mm256_set1_ps(VS_EXP_C3));
    p = _mm256_add_ps(_mm256_mul_ps(p, r), _mm256_set1_ps(VS_EXP_C2));
    p = _mm256_add_ps(_mm256_mul_ps(p, r), _mm256_set1_ps(1.0f));
    p = _mm256_add_ps(_mm256_mul_ps(p, r), _mm256_set1_ps(1.0f));
    /* 2^n in the exponent field; n is an integer in [-126, 127], so the
       truncating conversion is exact */
    __m256i e =
        _mm256_slli_epi32(_mm256_add_epi32(_mm256_cvttps_epi32(n), _mm256_set1_epi32(127)), 23);
    return _mm256_and_ps(_mm256_mul_ps(p, _mm256_castsi256_ps(e)), live);
}

/* ---- scores and dots: canonical sums of q[j] * row[j] ------------------------ */

#define DOT_STEP(a, row, qv, load) a = _mm256_add_ps(a, _mm256_mul_ps(qv, load(row)))

/* The canonical dot products of q with the 8 rows r[0..7], in lanes 0..7. */
static inline __attribute__((always_inline)) __m256 dot8(const float *const r[ROWS], const float *q,
                                                         size_t dfull, size_t d, __m256 qtail,
                                                         __m256i dmask) {
    __m256 a0 = _mm256_setzero_ps(), a1 = a0, a2 = a0, a3 = a0, a4 = a0, a5 = a0, a6 = a0, a7 = a0;
    for (size_t j = 0; j < dfull; j += LANES) {
        const __m256 qv = _mm256_loadu_ps(q + j);
#define LD(p) _mm256_loadu_ps((p) + j)
        DOT_STEP(a0, r[0], qv, LD);
        DOT_STEP(a1, r[1], qv, LD);
        DOT_STEP(a2, r[2], qv, LD);
        DOT_STEP(a3, r[3], qv, LD);
        DOT_STEP(a4, r[4], qv, LD);
        DOT_STEP(a5, r[5], qv, LD);
        DOT_STEP(a6, r[6], qv, LD);
        DOT_STEP(a7, r[7], qv, LD);
#undef LD
    }
    if (dfull < d) { /* remainder: lanes past d hold 0 * 0 = +0 */
#define LD(p) _mm256_maskload_ps((p) + dfull, dmask)
        DOT_STEP(a0, r[0], qtail, LD);
        DOT_STEP(a1, r[1], qtail, LD);
        DOT_STEP(a2, r[2], qtail, LD);
        DOT_STEP(a3, r[3], qtail, LD);
        DOT_STEP(a4, r[4], qtail, LD);
        DOT_STEP(a5, r[5], qtail, LD);
        DOT_STEP(a6, r[6], qtail, LD);
        DOT_STEP(a7, r[7], qtail, LD);
#undef LD
    }
    return combine8(a0, a1, a2, a3, a4, a5, a6, a7);
}

/* out[i] = scale * canonical_sum_j(q[j] * k[i*d + j]) */
static void scores_avx2(const float *k, size_t n, size_t d, const float *q, float scale,
                        float *out) {
    const size_t dfull = d & ~(size_t)(LANES - 1);
    const __m256i dmask = tail_mask(d - dfull);
    const __m256 qtail = dfull < d ? _mm256_maskload_ps(q + dfull, dmask) : _mm256_setzero_ps();
    const __m256 vscale = _mm256_set1_ps(scale);
    for (size_t i = 0; i < n; i += ROWS) {
        /* A short last block repeats its last row; only m results are stored. */
        const size_t m = n - i < ROWS ? n - i : ROWS;
        const float *r[ROWS];
        for (size_t t = 0; t < ROWS; t++) r[t] = k + (i + (t < m ? t : m - 1)) * d;
        store_first(out + i, _mm256_mul_ps(vscale, dot8(r, q, dfull, d, qtail, dmask)), m);
    }
}

/* out[i] = canonical_sum_j(x[j] * rows[i][j]) (x * row == row * x exactly) */
static void dots_avx2(const float *const *rows, size_t n, size_t d, const float *x, float *out) {
    const size_t dfull = d & ~(size_t)(LANES - 1);
    const __m256i dmask = tail_mask(d - dfull);
    const __m256 xtail = dfull < d ? _mm256_maskload_ps(x + dfull, dmask) : _mm256_setzero_ps();
    for (size_t i = 0; i < n; i += ROWS) {
        const size_t m = n - i < ROWS ? n - i : ROWS;
        const float *r[ROWS];
        for (size_t t = 0; t < ROWS; t++) r[t] = rows[i + (t < m ? t : m - 1)];
        store_first(out + i, dot8(r, x, dfull, d, xtail, dmask), m);
    }
}

/* ---- page_bounds: out[p] = scale * canonical_sum_j(q * (q >= 0 ? hi : lo)) - */

/* Summaries hold (lo, hi) bfloat16 pairs per channel, so 32 bytes bring both
   ends of 8 channels: channels 0-3 in the low 128-bit half, 4-7 in the high
   half. One in-lane vpshufb then selects and widens at once: dword c gets
   zero low bytes and, in its top half, the bytes of hi_c where q_c >= 0
   (bytes 4c+2, 4c+3) or of lo_c elsewhere (4c, 4c+1): exactly the float
   (uint32_t)h << 16. The control depends only on q's signs, so it is built
   once per column chunk and shared by the block's rows. */
static inline __m256i select_control(__m256 qv) {
    const __m256i base = _mm256_setr_epi8(-128, -128, 0, 1, -128, -128, 4, 5, -128, -128, 8, 9,
                                          -128, -128, 12, 13, -128, -128, 0, 1, -128, -128, 4, 5,
                                          -128, -128, 8, 9, -128, -128, 12, 13);
    const __m256i ge = _mm256_castps_si256(_mm256_cmp_ps(qv, _mm256_setzero_ps(), _CMP_GE_OQ));
    return _mm256_add_epi32(base, _mm256_and_si256(ge, _mm256_set1_epi32(0x02020000)));
}

static inline __m256 select8(const uint16_t *pairs, __m256i ctrl) {
    const __m256i v = _mm256_loadu_si256((const __m256i *)pairs);
    return _mm256_castsi256_ps(_mm256_shuffle_epi8(v, ctrl));
}

/* The first m (1..7) channel pairs, zero past them; reads nothing past them. */
static inline __m256 select_part(const uint16_t *pairs, size_t m, __m256i ctrl) {
    uint16_t buf[2 * LANES] = {0};
    memcpy(buf, pairs, 2 * m * sizeof *pairs);
    return select8(buf, ctrl);
}

#define BOUND_STEP(a, box, qv, sel) a = _mm256_add_ps(a, _mm256_mul_ps(qv, sel(box)))

static void page_bounds_avx2(const uint16_t *summ, size_t n, size_t d, const float *q, float scale,
                             float *out) {
    const size_t dfull = d & ~(size_t)(LANES - 1), dtail = d - dfull;
    const __m256 zero = _mm256_setzero_ps();
    /* past d: q = +0 selects hi = 0 of the zero padding, +0 * 0 = +0 */
    const __m256 qtail = dtail ? _mm256_maskload_ps(q + dfull, tail_mask(dtail)) : zero;
    const __m256i ctail = select_control(qtail);
    const __m256 vscale = _mm256_set1_ps(scale);
    for (size_t p = 0; p < n; p += ROWS) {
        const size_t m = n - p < ROWS ? n - p : ROWS;
        const uint16_t *b[ROWS]; /* the rows' (lo, hi) pairs */
        for (size_t t = 0; t < ROWS; t++) b[t] = summ + (p + (t < m ? t : m - 1)) * 2 * d;
        __m256 a0 = zero, a1 = a0, a2 = a0, a3 = a0, a4 = a0, a5 = a0, a6 = a0, a7 = a0;
        for (size_t j = 0; j < dfull; j += LANES) {
            const __m256 qv = _mm256_loadu_ps(q + j);
            const __m256i ctrl = select_control(qv);
#define SEL(x) select8((x) + 2 * j, ctrl)
            BOUND_STEP(a0, b[0], qv, SEL);
            BOUND_STEP(a1, b[1], qv, SEL);
            BOUND_STEP(a2, b[2], qv, SEL);
            BOUND_STEP(a3, b[3], qv, SEL);
            BOUND_STEP(a4, b[4], qv, SEL);
            BOUND_STEP(a5, b[5], qv, SEL);
            BOUND_STEP(a6, b[6], qv, SEL);
            BOUND_STEP(a7, b[7], qv, SEL);
#undef SEL
        }
        if (dtail) {
#define SEL(x) select_part((x) + 2 * dfull, dtail, ctail)
            BOUND_STEP(a0, b[0], qtail, SEL);
            BOUND_STEP(a1, b[1], qtail, SEL);
            BOUND_STEP(a2, b[2], qtail, SEL);
            BOUND_STEP(a3, b[3], qtail, SEL);
            BOUND_STEP(a4, b[4], qtail, SEL);
            BOUND_STEP(a5, b[5], qtail, SEL);
            BOUND_STEP(a6, b[6], qtail, SEL);
            BOUND_STEP(a7, b[7], qtail, SEL);
#undef SEL
        }
        store_first(out + p, _mm256_mul_ps(vscale, combine8(a0, a1, a2, a3, a4, a5, a6, a7)), m);
    }
}

/* ---- max ------------------------------------------------------------------- */

/* The scalar loop returns the first x[i] equal to the maximum. Equal floats
   differ in bits only as +0 / -0, so a lane-wise maximum is exact except for
   the sign of a zero, which is then taken from the first zero of x. Every
   lane starts at x[0], so a NaN in x[0] propagates as in the scalar loop and
   a NaN elsewhere never enters. */
static float max_avx2(const float *x, size_t n) {
    const __m256 first = _mm256_set1_ps(x[0]);
    __m256 m = first;
    size_t i = 0;
    for (; i + LANES <= n; i += LANES) m = _mm256_max_ps(_mm256_loadu_ps(x + i), m);
    if (i < n) { /* remainder: lanes past n repeat x[0] */
        const __m256i tm = tail_mask(n - i);
        const __m256 v =
            _mm256_blendv_ps(first, _mm256_maskload_ps(x + i, tm), _mm256_castsi256_ps(tm));
        m = _mm256_max_ps(v, m);
    }
    __m128 h = _mm_max_ps(_mm256_castps256_ps128(m), _mm256_extractf128_ps(m, 1));
    h = _mm_max_ps(h, _mm_movehl_ps(h, h));
    h = _mm_max_ss(h, _mm_shuffle_ps(h, h, 1));
    const float best = _mm_cvtss_f32(h);
    if (best == 0.0f)
        for (size_t t = 0; t < n; t++)
            if (x[t] == 0.0f) return x[t];
    return best;
}

/* ---- exp_sum: x[i] = vs_exp(x[i] - shift); returns canonical_sum(x) --------- */

static float exp_sum_avx2(float *x, size_t n, float shift) {
    const __m256 vshift = _mm256_set1_ps(shift);
    __m256 acc = _mm256_setzero_ps();
    size_t i = 0;
    for (; i + LANES <= n; i += LANES) {
        const __m256 e = exp8(_mm256_sub_ps(_mm256_loadu_ps(x + i), vshift));
        _mm256_storeu_ps(x + i, e);
        acc = _mm256_add_ps(acc, e);
    }
    if (i < n) { /* remainder: lanes past n are zeroed before the sum */
        const __m256i tm = tail_mask(n - i);
        const __m256 e = _mm256_and_ps(exp8(_mm256_sub_ps(_mm256_maskload_ps(x + i, tm), vshift)),
                                       _mm256_castsi256_ps(tm));
        _mm256_maskstore_ps(x + i, tm, e);
        acc = _mm256_add_ps(acc, e);
    }
    return combine1(acc);
}

/* ---- accum: acc[j] = acc[j] + w[i] * rows[i][j], i in order ----------------- */

/* One chunk of V vectors of acc kept in registers across all n rows; the last
   vector uses `last` (all lanes, or the remainder of dv). Each acc element
   sees the same mul-then-add sequence as in the scalar loop. */
static inline __attribute__((always_inline)) void accum_chunk(const float *const *rows,
                                                              const float *w, size_t n, float *acc,
                                                              size_t j0, int V, __m256i last) {
    __m256 a[8];
    for (int v = 0; v < V - 1; v++) a[v] = _mm256_loadu_ps(acc + j0 + LANES * v);
    a[V - 1] = _mm256_maskload_ps(acc + j0 + LANES * (V - 1), last);
    for (size_t i = 0; i < n; i++) {
        const __m256 wi = _mm256_set1_ps(w[i]);
        const float *row = rows[i] + j0;
        for (int v = 0; v < V - 1; v++)
            a[v] = _mm256_add_ps(a[v], _mm256_mul_ps(wi, _mm256_loadu_ps(row + LANES * v)));
        a[V - 1] = _mm256_add_ps(
            a[V - 1], _mm256_mul_ps(wi, _mm256_maskload_ps(row + LANES * (V - 1), last)));
    }
    for (int v = 0; v < V - 1; v++) _mm256_storeu_ps(acc + j0 + LANES * v, a[v]);
    _mm256_maskstore_ps(acc + j0 + LANES * (V - 1), last, a[V - 1]);
}

static void accum_avx2(const float *const *rows, const float *w, size_t n, size_t dv, float *acc) {
    if (n == 0 || dv == 0) return;
    const size_t nvec = (dv + LANES - 1) / LANES; /* the last one may be partial */
    const __m256i full = tail_mask(LANES);
    const __m256i part = tail_mask(dv - (nvec - 1) * LANES);
    size_t v = 0;
    /* chunks of 8, then 4, 2, 1 vectors; only the final chunk can be partial */
    for (; v + 8 <= nvec; v += 8)
        accum_chunk(rows, w, n, acc, v * LANES, 8, v + 8 == nvec ? part : full);
    if (v + 4 <= nvec) {
        accum_chunk(rows, w, n, acc, v * LANES, 4, v + 4 == nvec ? part : full);
        v += 4;
    }
    if (v + 2 <= nvec) {
        accum_chunk(rows, w, n, acc, v * LANES, 2, v + 2 == nvec ? part : full);
        v += 2;
    }
    if (v < nvec) accum_chunk(rows, w, n, acc, v * LANES, 1, part);
}

/* ---- scale: x[i] = x[i] * a ------------------------------------------------ */

static void scale_avx2(float *x, size_t n, float a) {
    const __m256 va = _mm256_set1_ps(a);
    size_t i = 0;
    for (; i + LANES <= n; i += LANES)
        _mm256_storeu_ps(x + i, _mm256_mul_ps(_mm256_loadu_ps(x + i), va));
    if (i < n) {
        const __m256i tm = tail_mask(n - i);
        _mm256_maskstore_ps(x + i, tm, _mm256_mul_ps(_mm256_maskload_ps(x + i, tm), va));
    }
}

/* ---- topk ------------------------------------------------------------------ */


/* Same offers as the scalar loop, minus those that cannot enter: once the
   buffer has a threshold only values strictly above it can (indices grow),
   and the threshold only rises, so a value at or below it before the block
   stays out (vs_topk_offer re-checks the ones that pass). */
static size_t topk_avx2(const float *x, size_t n, size_t k, vs_topk_item *scratch, uint32_t *out) {
    vs_topk_buf h;
    vs_topk_init(&h, scratch, k);
    if (k == 0) return 0;
    size_t i = 0;
    vs_topk_seed(&h, x, n, max_avx2);
    for (; i < n && !h.have_thr; i++) vs_topk_offer(&h, x[i], (uint32_t)i);
    for (; i + LANES <= n; i += LANES) {
        const __m256 root = _mm256_set1_ps(h.thr);
        const unsigned bits =
            (unsigned)_mm256_movemask_ps(_mm256_cmp_ps(_mm256_loadu_ps(x + i), root, _CMP_GT_OQ));
        if (bits) vs_topk_offer_bits(&h, x, i, bits);
    }
    if (i < n) { /* remainder: only the first n - i lanes count */
        const __m256i tm = tail_mask(n - i);
        const __m256 root = _mm256_set1_ps(h.thr);
        const unsigned bits = (unsigned)_mm256_movemask_ps(
            _mm256_and_ps(_mm256_cmp_ps(_mm256_maskload_ps(x + i, tm), root, _CMP_GT_OQ),
                          _mm256_castsi256_ps(tm)));
        if (bits) vs_topk_offer_bits(&h, x, i, bits);
    }
    return vs_topk_finish(&h, out);
}

const vs_kernels vs_kernels_avx2 = {
    .name = "avx2",
    .scores = scores_avx2,
    .page_bounds = page_bounds_avx2,
    .max = max_avx2,
    .exp_sum = exp_sum_avx2,
    .dots = dots_avx2,
    .accum = accum_avx2,
    .scale = scale_avx2,
    .topk = topk_avx2,
};
