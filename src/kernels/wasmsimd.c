/*
 * WebAssembly SIMD128 kernels (compiled with -msimd128, -ffp-contract=off).
 *
 * Bit-identical to scalar.c (rules in kernels.h): the 8 canonical lanes are
 * two v128 accumulators (lanes 0-3 and 4-7), every product and sum is a
 * separate f32x4.mul / f32x4.add, (a > b) ? a : b is f32x4.pmax(b, a)
 * (pmax(x, y) = (x < y) ? y : x), and exp4() repeats vs_exp() operation for
 * operation (magic-number rounding, not f32x4.nearest). Wasm has no masked
 * load: a remainder of a canonical sum is loaded as partial vectors whose
 * missing lanes are +0 (adding +0 never changes a canonical lane, which
 * starts at +0 and can never become -0); element-wise kernels finish their
 * last few elements one by one with the same operations.
 */
#include <string.h>
#include <wasm_simd128.h>

#include "kernels.h"
#include "vexp.h"

#define LANES 8
#define ROWS 4 /* rows (keys, pages) combined together; two per pass over q */

/* ---- helpers --------------------------------------------------------------- */

/* p[0..m) into lanes 0..m-1, +0 elsewhere (0 <= m <= 4); reads nothing past p[m). */
static inline v128_t load_part(const float *p, size_t m) {
    switch (m) {
        case 0: return wasm_f32x4_splat(0.0f);
        case 1: return wasm_v128_load32_zero(p);
        case 2: return wasm_v128_load64_zero(p);
        case 3: return wasm_v128_load32_lane(p + 2, wasm_v128_load64_zero(p), 2);
        default: return wasm_v128_load(p);
    }
}

/* The 8-lane remainder p[0..m), 1 <= m <= 7: *lo gets lanes 0-3, *hi lanes 4-7. */
static inline void load_tail(const float *p, size_t m, v128_t *lo, v128_t *hi) {
    *lo = load_part(p, m < 4 ? m : 4);
    *hi = load_part(p + 4, m > 4 ? m - 4 : 0);
}

/* Lanes i < m set, for the 4 lanes starting at lane `first`. */
static inline v128_t lane_mask(size_t m, int first) {
    return wasm_i32x4_lt(wasm_i32x4_make(first, first + 1, first + 2, first + 3),
                         wasm_i32x4_splat((int32_t)m));
}

/* Canonical combine: ((l0+l4)+(l2+l6))+((l1+l5)+(l3+l7)). */
static inline float combine1(v128_t lo, v128_t hi) {
    v128_t s = wasm_f32x4_add(lo, hi);                                  /* l_i + l_{i+4} */
    v128_t t = wasm_f32x4_add(s, wasm_i32x4_shuffle(s, s, 2, 3, 2, 3)); /* s0+s2, s1+s3 */
    return wasm_f32x4_extract_lane(t, 0) + wasm_f32x4_extract_lane(t, 1);
}

/* Four rows at once: result lane r = combine1(lo_r, hi_r). */
static inline v128_t combine4(const v128_t lo[ROWS], const v128_t hi[ROWS]) {
    v128_t s0 = wasm_f32x4_add(lo[0], hi[0]), s1 = wasm_f32x4_add(lo[1], hi[1]);
    v128_t s2 = wasm_f32x4_add(lo[2], hi[2]), s3 = wasm_f32x4_add(lo[3], hi[3]);
    /* [s_a0+s_a2, s_a1+s_a3, s_b0+s_b2, s_b1+s_b3] */
    v128_t t01 = wasm_f32x4_add(wasm_i32x4_shuffle(s0, s1, 0, 1, 4, 5),
                                wasm_i32x4_shuffle(s0, s1, 2, 3, 6, 7));
    v128_t t23 = wasm_f32x4_add(wasm_i32x4_shuffle(s2, s3, 0, 1, 4, 5),
                                wasm_i32x4_shuffle(s2, s3, 2, 3, 6, 7));
    return wasm_f32x4_add(wasm_i32x4_shuffle(t01, t23, 0, 2, 4, 6),
                          wasm_i32x4_shuffle(t01, t23, 1, 3, 5, 7));
}

/* Stores the first m (1..4) lanes of v. */
static inline void store_first(float *out, v128_t v, size_t m) {
    if (m == 4) {
        wasm_v128_store(out, v);
    } else {
        float buf[4];
        wasm_v128_store(buf, v);
        memcpy(out, buf, m * sizeof *out);
    }
}

/* vs_exp() on 4 lanes, operation for operation. The dead lanes (x <= LO, or
   NaN) are clamped to LO so they stay finite, then zeroed by the mask. */
static inline v128_t exp4(v128_t x) {
    const v128_t live = wasm_f32x4_gt(x, wasm_f32x4_splat(VS_EXP_LO));
    x = wasm_f32x4_pmax(wasm_f32x4_splat(VS_EXP_LO), x); /* (LO < x) ? x : LO */
    x = wasm_f32x4_pmin(x, wasm_f32x4_splat(VS_EXP_HI)); /* (HI < x) ? HI : x */
    const v128_t round = wasm_f32x4_splat(VS_EXP_ROUND);
    v128_t n = wasm_f32x4_sub(
        wasm_f32x4_add(wasm_f32x4_mul(x, wasm_f32x4_splat(VS_EXP_LOG2E)), round), round);
    v128_t r = wasm_f32x4_sub(x, wasm_f32x4_mul(n, wasm_f32x4_splat(VS_EXP_LN2_HI)));
    r = wasm_f32x4_sub(r, wasm_f32x4_mul(n, wasm_f32x4_splat(VS_EXP_LN2_LO)));
    v128_t p = wasm_f32x4_splat(VS_EXP_C7);
    p = wasm_f32x4_add(wasm_f32x4_mul(p, r), wasm_f32x4_splat(VS_EXP_C6));
    p = wasm_f32x4_add(wasm_f32x4_mul(p, r), wasm_f32x4_splat(VS_EXP_C5));
    p = wasm_f32x4_add(wasm_f32x4_mul(p, r), wasm_f32x4_splat(VS_EXP_C4));
    p = wasm_f32x4_add(wasm_f32x4_mul(p, r), wasm_f32x4_splat(VS_EXP_C3));
    p = wasm_f32x4_add(wasm_f32x4_mul(p, r), wasm_f32x4_splat(VS_EXP_C2));
    p = wasm_f32x4_add(wasm_f32x4_mul(p, r), wasm_f32x4_splat(1.0f));
    p = wasm_f32x4_add(wasm_f32x4_mul(p, r), wasm_f32x4_splat(1.0f));
    /* 2^n in the exponent field; n is an integer in [-126, 127]: exact */
    v128_t e =
        wasm_i32x4_shl(wasm_i32x4_add(wasm_i32x4_trunc_sat_f32x4(n), wasm_i32x4_splat(127)), 23);
    return wasm_v128_and(wasm_f32x4_mul(p, e), live);
}

/* ---- scores: out[i] = scale * canonical_sum_j(q[j] * k[i*d + j]) ------------ */

/* Rows a and b: lo/hi accumulators (lanes 0-3, 4-7) of the canonical sums. */
static inline void dot_pair(const float *q, const float *a, const float *b, size_t dfull,
                            size_t dtail, v128_t qt_lo, v128_t qt_hi, v128_t lo[2], v128_t hi[2]) {
    v128_t a0 = wasm_f32x4_splat(0.0f), a1 = a0, b0 = a0, b1 = a0;
    for (size_t j = 0; j < dfull; j += LANES) {
        const v128_t q0 = wasm_v128_load(q + j), q1 = wasm_v128_load(q + j + 4);
        a0 = wasm_f32x4_add(a0, wasm_f32x4_mul(q0, wasm_v128_load(a + j)));
        a1 = wasm_f32x4_add(a1, wasm_f32x4_mul(q1, wasm_v128_load(a + j + 4)));
        b0 = wasm_f32x4_add(b0, wasm_f32x4_mul(q0, wasm_v128_load(b + j)));
        b1 = wasm_f32x4_add(b1, wasm_f32x4_mul(q1, wasm_v128_load(b + j + 4)));
    }
    if (dtail) { /* remainder: lanes past d hold 0 * 0 = +0 */
        v128_t k0, k1;
        load_tail(a + dfull, dtail, &k0, &k1);
        a0 = wasm_f32x4_add(a0, wasm_f32x4_mul(qt_lo, k0));
        a1 = wasm_f32x4_add(a1, wasm_f32x4_mul(qt_hi, k1));
        load_tail(b + dfull, dtail, &k0, &k1);
        b0 = wasm_f32x4_add(b0, wasm_f32x4_mul(qt_lo, k0));
        b1 = wasm_f32x4_add(b1, wasm_f32x4_mul(qt_hi, k1));
    }
    lo[0] = a0, hi[0] = a1, lo[1] = b0, hi[1] = b1;
}

/* Rows are scored in blocks of 4 (one combine4), two rows per pass over q:
   8 live accumulators spill under V8, 4 do not (measured). */
static void scores_wasmsimd(const float *k, size_t n, size_t d, const float *q, float scale,
                            float *out) {
    const size_t dfull = d & ~(size_t)(LANES - 1), dtail = d - dfull;
    v128_t qt_lo = wasm_f32x4_splat(0.0f), qt_hi = qt_lo;
    if (dtail) load_tail(q + dfull, dtail, &qt_lo, &qt_hi);
    const v128_t vscale = wasm_f32x4_splat(scale);
    for (size_t i = 0; i < n; i += ROWS) {
        /* A short last block repeats its last row; only m results are stored. */
        const size_t m = n - i < ROWS ? n - i : ROWS;
        const float *r[ROWS];
        for (size_t t = 0; t < ROWS; t++) r[t] = k + (i + (t < m ? t : m - 1)) * d;
        v128_t lo[ROWS], hi[ROWS];
        dot_pair(q, r[0], r[1], dfull, dtail, qt_lo, qt_hi, lo, hi);
        if (m > 2)
            dot_pair(q, r[2], r[3], dfull, dtail, qt_lo, qt_hi, lo + 2, hi + 2);
        else
            lo[2] = lo[3] = lo[1], hi[2] = hi[3] = hi[1];
        store_first(out + i, wasm_f32x4_mul(vscale, combine4(lo, hi)), m);
    }
}

/* out[i] = canonical_sum_j(x[j] * rows[i][j]): scores over row pointers, no
   scale (x * row == row * x exactly). */
static void dots_wasmsimd(const float *const *rows, size_t n, size_t d, const float *x,
                          float *out) {
    const size_t dfull = d & ~(size_t)(LANES - 1), dtail = d - dfull;
    v128_t xt_lo = wasm_f32x4_splat(0.0f), xt_hi = xt_lo;
    if (dtail) load_tail(x + dfull, dtail, &xt_lo, &xt_hi);
    for (size_t i = 0; i < n; i += ROWS) {
        const size_t m = n - i < ROWS ? n - i : ROWS;
        const float *r[ROWS];
        for (size_t t = 0; t < ROWS; t++) r[t] = rows[i + (t < m ? t : m - 1)];
        v128_t lo[ROWS], hi[ROWS];
        dot_pair(x, r[0], r[1], dfull, dtail, xt_lo, xt_hi, lo, hi);
        if (m > 2)
            dot_pair(x, r[2], r[3], dfull, dtail, xt_lo, xt_hi, lo + 2, hi + 2);
        else
            lo[2] = lo[3] = lo[1], hi[2] = hi[3] = hi[1];
        store_first(out + i, combine4(lo, hi), m);
    }
}

/* ---- page_bounds: out[p] = scale * canonical_sum_j(q * (q >= 0 ? hi : lo)) - */

/* Summaries hold (lo, hi) bfloat16 pairs per channel: 16 bytes bring both
   ends of 4 channels. One swizzle selects and widens at once: 32-bit lane c
   gets zero low bytes (index 16 reads 0) and, in its top half, the bytes of
   hi_c where q_c >= 0 (4c+2, 4c+3) or of lo_c elsewhere (4c, 4c+1): exactly
   the float (uint32_t)h << 16. The control depends only on q's signs. */
static inline v128_t select_control(v128_t qv) {
    const v128_t base = wasm_i8x16_make(16, 16, 0, 1, 16, 16, 4, 5, 16, 16, 8, 9, 16, 16, 12, 13);
    const v128_t ge = wasm_f32x4_ge(qv, wasm_f32x4_splat(0.0f));
    return wasm_i32x4_add(base, wasm_v128_and(ge, wasm_i32x4_splat(0x02020000)));
}

/* 8 channels of one page (pairs at b): the products added to the two
   accumulators (lanes 0-3, 4-7). */
static inline void bound_step(v128_t *a0, v128_t *a1, v128_t q0, v128_t q1, v128_t c0, v128_t c1,
                              const uint16_t *b) {
    *a0 = wasm_f32x4_add(*a0, wasm_f32x4_mul(q0, wasm_i8x16_swizzle(wasm_v128_load(b), c0)));
    *a1 = wasm_f32x4_add(*a1, wasm_f32x4_mul(q1, wasm_i8x16_swizzle(wasm_v128_load(b + 8), c1)));
}

/* The first m (1..7) channel pairs of b in a zeroed buffer (reads nothing past them). */
static inline void pairs_part(const uint16_t *b, size_t m, uint16_t buf[2 * LANES]) {
    memset(buf, 0, 2 * LANES * sizeof *buf);
    memcpy(buf, b, 2 * m * sizeof *b);
}

/* Pages a and b: lo/hi accumulators. */
static inline void bound_pair(const float *q, const uint16_t *a, const uint16_t *b, size_t dfull,
                              size_t dtail, v128_t qt_lo, v128_t qt_hi, v128_t lo[2], v128_t hi[2]) {
    v128_t a0 = wasm_f32x4_splat(0.0f), a1 = a0, b0 = a0, b1 = a0;
    for (size_t j = 0; j < dfull; j += LANES) {
        const v128_t q0 = wasm_v128_load(q + j), q1 = wasm_v128_load(q + j + 4);
        const v128_t c0 = select_control(q0), c1 = select_control(q1);
        bound_step(&a0, &a1, q0, q1, c0, c1, a + 2 * j);
        bound_step(&b0, &b1, q0, q1, c0, c1, b + 2 * j);
    }
    if (dtail) { /* remainder: q = +0 selects a zero of the padding, +0 * 0 = +0 */
        const v128_t c0 = select_control(qt_lo), c1 = select_control(qt_hi);
        uint16_t buf[2 * LANES];
        pairs_part(a + 2 * dfull, dtail, buf);
        bound_step(&a0, &a1, qt_lo, qt_hi, c0, c1, buf);
        pairs_part(b + 2 * dfull, dtail, buf);
        bound_step(&b0, &b1, qt_lo, qt_hi, c0, c1, buf);
    }
    lo[0] = a0, hi[0] = a1, lo[1] = b0, hi[1] = b1;
}

static void page_bounds_wasmsimd(const uint16_t *summ, size_t n, size_t d, const float *q,
                                 float scale, float *out) {
    const size_t dfull = d & ~(size_t)(LANES - 1), dtail = d - dfull;
    v128_t qt_lo = wasm_f32x4_splat(0.0f), qt_hi = qt_lo;
    if (dtail) load_tail(q + dfull, dtail, &qt_lo, &qt_hi);
    const v128_t vscale = wasm_f32x4_splat(scale);
    for (size_t p = 0; p < n; p += ROWS) {
        const size_t m = n - p < ROWS ? n - p : ROWS;
        const uint16_t *mn[ROWS]; /* the rows' (lo, hi) pairs */
        for (size_t t = 0; t < ROWS; t++) mn[t] = summ + (p + (t < m ? t : m - 1)) * 2 * d;
        v128_t lo[ROWS], hi[ROWS];
        bound_pair(q, mn[0], mn[1], dfull, dtail, qt_lo, qt_hi, lo, hi);
        if (m > 2)
            bound_pair(q, mn[2], mn[3], dfull, dtail, qt_lo, qt_hi, lo + 2, hi + 2);
        else
            lo[2] = lo[3] = lo[1], hi[2] = hi[3] = hi[1];
        store_first(out + p, wasm_f32x4_mul(vscale, combine4(lo, hi)), m);
    }
}

/* ---- max ------------------------------------------------------------------- */

/* As in avx2.c: the scalar loop returns the first x[i] equal to the maximum;
   equal floats differ in bits only as +0 / -0, so the lane-wise maximum is
   exact except for the sign of a zero, taken then from the first zero of x.
   Every lane starts at x[0] (a NaN there propagates as in the scalar loop). */
static float max_wasmsimd(const float *x, size_t n) {
    const v128_t first = wasm_f32x4_splat(x[0]);
    v128_t m0 = first, m1 = first;
    size_t i = 0;
    for (; i + LANES <= n; i += LANES) { /* m = (x > m) ? x : m */
        m0 = wasm_f32x4_pmax(m0, wasm_v128_load(x + i));
        m1 = wasm_f32x4_pmax(m1, wasm_v128_load(x + i + 4));
    }
    if (i < n) { /* remainder: lanes past n repeat x[0] */
        v128_t v0, v1;
        load_tail(x + i, n - i, &v0, &v1);
        m0 = wasm_f32x4_pmax(m0, wasm_v128_bitselect(v0, first, lane_mask(n - i, 0)));
        m1 = wasm_f32x4_pmax(m1, wasm_v128_bitselect(v1, first, lane_mask(n - i, 4)));
    }
    v128_t h = wasm_f32x4_pmax(m0, m1);
    h = wasm_f32x4_pmax(h, wasm_i32x4_shuffle(h, h, 2, 3, 2, 3));
    h = wasm_f32x4_pmax(h, wasm_i32x4_shuffle(h, h, 1, 1, 1, 1));
    const float best = wasm_f32x4_extract_lane(h, 0);
    if (best == 0.0f)
        for (size_t t = 0; t < n; t++)
            if (x[t] == 0.0f) return x[t];
    return best;
}

/* ---- exp_sum: x[i] = vs_exp(x[i] - shift); returns canonical_sum(x) --------- */

static float exp_sum_wasmsimd(float *x, size_t n, float shift) {
    const v128_t vshift = wasm_f32x4_splat(shift);
    v128_t acc0 = wasm_f32x4_splat(0.0f), acc1 = acc0;
    size_t i = 0;
    for (; i + LANES <= n; i += LANES) {
        const v128_t e0 = exp4(wasm_f32x4_sub(wasm_v128_load(x + i), vshift));
        const v128_t e1 = exp4(wasm_f32x4_sub(wasm_v128_load(x + i + 4), vshift));
        wasm_v128_store(x + i, e0);
        wasm_v128_store(x + i + 4, e1);
        acc0 = wasm_f32x4_add(acc0, e0);
        acc1 = wasm_f32x4_add(acc1, e1);
    }
    if (i < n) { /* remainder: lanes past n are zeroed before the sum */
        const size_t m = n - i;
        v128_t v0, v1;
        load_tail(x + i, m, &v0, &v1);
        const v128_t e0 = wasm_v128_and(exp4(wasm_f32x4_sub(v0, vshift)), lane_mask(m, 0));
        const v128_t e1 = wasm_v128_and(exp4(wasm_f32x4_sub(v1, vshift)), lane_mask(m, 4));
        float buf[LANES];
        wasm_v128_store(buf, e0);
        wasm_v128_store(buf + 4, e1);
        memcpy(x + i, buf, m * sizeof *x);
        acc0 = wasm_f32x4_add(acc0, e0);
        acc1 = wasm_f32x4_add(acc1, e1);
    }
    return combine1(acc0, acc1);
}

/* ---- accum: acc[j] = acc[j] + w[i] * rows[i][j], i in order ----------------- */

/* V vectors (4 floats each) of acc kept in registers across all n rows; each
   acc element sees the same mul-then-add sequence as in the scalar loop. */
static inline __attribute__((always_inline)) void accum_chunk(const float *const *rows,
                                                              const float *w, size_t n, float *acc,
                                                              size_t j0, int V) {
    v128_t a[8];
    for (int v = 0; v < V; v++) a[v] = wasm_v128_load(acc + j0 + 4 * v);
    for (size_t i = 0; i < n; i++) {
        const v128_t wi = wasm_f32x4_splat(w[i]);
        const float *row = rows[i] + j0;
        for (int v = 0; v < V; v++)
            a[v] = wasm_f32x4_add(a[v], wasm_f32x4_mul(wi, wasm_v128_load(row + 4 * v)));
    }
    for (int v = 0; v < V; v++) wasm_v128_store(acc + j0 + 4 * v, a[v]);
}

static void accum_wasmsimd(const float *const *rows, const float *w, size_t n, size_t dv,
                           float *acc) {
    const size_t nvec = dv / 4;
    size_t v = 0;
    for (; v + 8 <= nvec; v += 8) accum_chunk(rows, w, n, acc, 4 * v, 8);
    if (v + 4 <= nvec) accum_chunk(rows, w, n, acc, 4 * v, 4), v += 4;
    if (v + 2 <= nvec) accum_chunk(rows, w, n, acc, 4 * v, 2), v += 2;
    if (v < nvec) accum_chunk(rows, w, n, acc, 4 * v, 1), v += 1;
    /* remainder: the last dv % 4 columns, element by element */
    for (size_t j = 4 * v; j < dv; j++) {
        float a = acc[j];
        for (size_t i = 0; i < n; i++) a = a + w[i] * rows[i][j];
        acc[j] = a;
    }
}

/* ---- scale: x[i] = x[i] * a ------------------------------------------------ */

static void scale_wasmsimd(float *x, size_t n, float a) {
    const v128_t va = wasm_f32x4_splat(a);
    size_t i = 0;
    for (; i + LANES <= n; i += LANES) {
        wasm_v128_store(x + i, wasm_f32x4_mul(wasm_v128_load(x + i), va));
        wasm_v128_store(x + i + 4, wasm_f32x4_mul(wasm_v128_load(x + i + 4), va));
    }
    if (i + 4 <= n) {
        wasm_v128_store(x + i, wasm_f32x4_mul(wasm_v128_load(x + i), va));
        i += 4;
    }
    for (; i < n; i++) x[i] = x[i] * a; /* remainder: element by element */
}

/* ---- topk ------------------------------------------------------------------ */

/* Same offers as the scalar loop, minus those that cannot enter: once the
   buffer has a threshold only values strictly above it can (indices grow),
   and the threshold only rises, so a value at or below it before the block
   stays out (vs_topk_offer re-checks the ones that pass). */
static size_t topk_wasmsimd(const float *x, size_t n, size_t k, vs_topk_item *scratch,
                            uint32_t *out) {
    vs_topk_buf h;
    vs_topk_init(&h, scratch, k);
    if (k == 0) return 0;
    size_t i = 0;
    vs_topk_seed(&h, x, n, max_wasmsimd);
    for (; i < n && !h.have_thr; i++) vs_topk_offer(&h, x[i], (uint32_t)i);
    for (; i + LANES <= n; i += LANES) {
        const v128_t root = wasm_f32x4_splat(h.thr);
        const unsigned bits = wasm_i32x4_bitmask(wasm_f32x4_gt(wasm_v128_load(x + i), root)) |
                              wasm_i32x4_bitmask(wasm_f32x4_gt(wasm_v128_load(x + i + 4), root))
                                  << 4;
        if (bits) vs_topk_offer_bits(&h, x, i, bits);
    }
    if (i < n) { /* remainder: only the first n - i lanes count */
        const size_t m = n - i;
        const v128_t root = wasm_f32x4_splat(h.thr);
        v128_t v0, v1;
        load_tail(x + i, m, &v0, &v1);
        const unsigned bits = (wasm_i32x4_bitmask(wasm_f32x4_gt(v0, root)) |
                               wasm_i32x4_bitmask(wasm_f32x4_gt(v1, root)) << 4) &
                              ((1u << m) - 1u);
        if (bits) vs_topk_offer_bits(&h, x, i, bits);
    }
    return vs_topk_finish(&h, out);
}

const vs_kernels vs_kernels_wasmsimd = {
    .name = "wasmsimd",
    .scores = scores_wasmsimd,
    .page_bounds = page_bounds_wasmsimd,
    .max = max_wasmsimd,
    .exp_sum = exp_sum_wasmsimd,
    .dots = dots_wasmsimd,
    .accum = accum_wasmsimd,
    .scale = scale_wasmsimd,
    .topk = topk_wasmsimd,
};
