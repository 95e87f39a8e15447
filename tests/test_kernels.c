/*
 * Kernel tests (DESIGN section 4, kernels.h).
 *
 *  1. Bit identity: every kernel of every ISA this build and CPU can run
 *     against the scalar reference (memcmp of the outputs), at every length
 *     from 1 to two 8-lane tiles plus one (n = 1..17; dims 1..33 plus 64, 100,
 *     128, 256, 512), with Gaussian-like data, data full of exact ties and
 *     signed zeros, and data spread over many binades. Outputs past the end
 *     must stay untouched.
 *     dots (gathered rows, given by pointer) is also checked against scores
 *     with scale 1 on the same rows laid out contiguously.
 *  2. The scalar reference against float64 math: scores, page_bounds, dots and
 *     accum within a stated rounding bound of sum |terms|, exp_sum against
 *     double exp.
 *  3. vs_exp against double exp on a dense sweep of [VS_EXP_LO, VS_EXP_HI]
 *     (relative error <= 5e-7), the edges (x <= VS_EXP_LO gives 0, x above
 *     VS_EXP_HI clamps), and every ISA's exp_sum bit for bit on that sweep.
 *  4. topk against a brute-force sort (ties by lower index, increasing index
 *     order) for many n and k, ties everywhere.
 *  5. page_bounds really bounds every key of a page (checked in double, with
 *     the float rounding term the certificate must add), with bfloat16
 *     summaries rounded outward as the cache stores them (built here by
 *     arithmetic, independently of the library); and the library's bfloat16
 *     roundings (kernels.h) against that arithmetic.
 *
 * All test data come from integer hashing and + - * / only (no libm), so the
 * "output hash" printed per ISA is the same natively and under wasm.
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "kernels/kernels.h"
#include "kernels/vexp.h"
#include "testutil.h"
#include "vashista.h"

#define EPS32 (1.0 / 16777216.0) /* 2^-24: unit roundoff of float32 */

static const size_t DIMS[] = {1,  2,  3,  4,  5,  6,  7,  8,  9,   10,  11,  12, 13,
                              14, 15, 16, 17, 18, 19, 20, 21, 22,  23,  24,  25, 26,
                              27, 28, 29, 30, 31, 32, 33, 64, 100, 128, 256, 512};
#define NDIMS (sizeof DIMS / sizeof DIMS[0])
#define NMAX 17 /* two tiles plus one */
#define GUARD 9 /* elements past every output that must stay untouched */

/* ---- data ------------------------------------------------------------------ */

enum { MODE_GAUSS, MODE_TIES, MODE_WIDE, MODE_COUNT };
static const char *const MODE_NAME[] = {"gauss", "ties", "wide"};

/* Platform-independent values (no libm): */
static float gen(vs_test_rng *r, int mode) {
    switch (mode) {
        case MODE_TIES: { /* few distinct values, both zeros */
            static const float v[] = {-2.0f, -1.0f, -0.0f, 0.0f, 0.5f, 1.0f, 2.0f};
            return v[vs_test_next(r) % (sizeof v / sizeof v[0])];
        }
        case MODE_WIDE: { /* sign * (1 + u) * 2^e, e in [-20, 20] */
            uint64_t b = vs_test_next(r);
            double m = 1.0 + (double)(b >> 11) * 0x1.0p-53;
            int e = (int)((b >> 1) % 41) - 20;
            double p = 1.0;
            for (int i = 0; i < (e < 0 ? -e : e); i++) p *= 2.0;
            m = e < 0 ? m / p : m * p;
            return (float)((b & 1) ? -m : m);
        }
        default: { /* Irwin-Hall: roughly N(0, 1) */
            double s = 0.0;
            for (int i = 0; i < 4; i++) s += vs_test_uniform(r);
            return (float)((s - 2.0) * 1.7320508075688772);
        }
    }
}

static void fill(vs_test_rng *r, float *x, size_t n, int mode) {
    for (size_t i = 0; i < n; i++) x[i] = gen(r, mode);
}

static float uniform(vs_test_rng *r, double lo, double hi) {
    return (float)(lo + (hi - lo) * vs_test_uniform(r));
}

static float *alloc_f(size_t n) {
    float *p = malloc((n ? n : 1) * sizeof *p);
    if (!p) {
        fprintf(stderr, "out of memory\n");
        exit(2);
    }
    return p;
}

/* ---- bfloat16 by arithmetic ------------------------------------------------
   Independent of the library's bit manipulation: the bfloat16 grid near x has
   spacing 2^(e-7) for |x| in [2^e, 2^(e+1)), and 2^-133 below 2^-126 (the
   subnormals); rounding down / up is a floor / ceiling on that grid, exact in
   double. */
static double bf16_ulp(double x) {
    int e;
    (void)frexp(x, &e); /* |x| = m 2^e, m in [0.5, 1): |x| in [2^(e-1), 2^e) */
    return ldexp(1.0, e - 8 > -133 ? e - 8 : -133);
}
static double bf16_floor(float x) {
    if (x == 0.0f) return x;
    const double u = bf16_ulp(x);
    return floor(x / u) * u;
}
static double bf16_ceil(float x) {
    if (x == 0.0f) return x;
    const double u = bf16_ulp(x);
    return ceil(x / u) * u;
}
/* The stored bits of a value on the bfloat16 grid. */
static int bf16_bad; /* values that were not on the grid (must stay 0) */
static uint16_t bf16_bits(double v) {
    const float f = (float)v;
    uint32_t b;
    memcpy(&b, &f, sizeof b);
    if ((double)f != v || (b & 0xffffu) != 0) bf16_bad++;
    return (uint16_t)(b >> 16);
}
static float bf16_value(uint16_t h) {
    const uint32_t b = (uint32_t)h << 16;
    float f;
    memcpy(&f, &b, sizeof f);
    return f;
}

/* Page summaries [n][d][2] ((lo, hi) pairs, the library's layout) from float
   rows [n][2][d] (the lo row, then the hi row): lo rounded down, hi up. */
static uint16_t *summaries(const float *rows, size_t n, size_t d) {
    const size_t len = n * 2 * d;
    uint16_t *s = malloc((len ? len : 1) * sizeof *s);
    if (!s) {
        fprintf(stderr, "out of memory\n");
        exit(2);
    }
    for (size_t p = 0; p < n; p++)
        for (size_t j = 0; j < d; j++) {
            s[p * 2 * d + 2 * j] = bf16_bits(bf16_floor(rows[p * 2 * d + j]));
            s[p * 2 * d + 2 * j + 1] = bf16_bits(bf16_ceil(rows[p * 2 * d + d + j]));
        }
    return s;
}

/* Makes float summary rows [n][2][d] real boxes: lo <= hi in every channel. */
static void order_box(float *box, size_t n, size_t d) {
    for (size_t p = 0; p < n; p++)
        for (size_t j = 0; j < d; j++) {
            float *lo = box + p * 2 * d + j, *hi = lo + d;
            if (*lo > *hi) {
                const float t = *lo;
                *lo = *hi;
                *hi = t;
            }
        }
}

/* Output buffers carry GUARD sentinel floats past the end. */
static const uint32_t SENTINEL = 0x7fc0beefu;
static void set_guard(float *x, size_t n) {
    for (size_t i = 0; i < GUARD; i++) memcpy(&x[n + i], &SENTINEL, sizeof SENTINEL);
}
static int guard_ok(const float *x, size_t n) {
    for (size_t i = 0; i < GUARD; i++)
        if (memcmp(&x[n + i], &SENTINEL, sizeof SENTINEL) != 0) return 0;
    return 1;
}

/* FNV-1a over the bytes of every output a test produces for one ISA. */
static uint64_t out_hash;
static void hash_bytes(const void *p, size_t n) {
    const unsigned char *b = p;
    for (size_t i = 0; i < n; i++) out_hash = (out_hash ^ b[i]) * 0x100000001b3ull;
}

static const vs_kernels *use_isa(const char *isa) {
    if (vs_set_isa(isa) != VS_OK) return NULL;
    return vs_kernels_active();
}

/* ---- 1. bit identity against the scalar reference ------------------------- */

static void identity_scores(const vs_kernels *K, vs_test_rng *r) {
    const vs_kernels *S = &vs_kernels_scalar;
    for (int mode = 0; mode < MODE_COUNT; mode++)
        for (size_t n = 1; n <= NMAX + 47; n += (n < NMAX ? 1 : 23)) /* 1..17, 40, 63 */
            for (size_t di = 0; di < NDIMS; di++) {
                const size_t d = DIMS[di];
                float *k = alloc_f(n * d), *q = alloc_f(d);
                float *want = alloc_f(n + GUARD), *got = alloc_f(n + GUARD);
                fill(r, k, n * d, mode);
                fill(r, q, d, mode);
                const float scale = uniform(r, 0.01, 2.0);
                set_guard(want, n);
                set_guard(got, n);
                S->scores(k, n, d, q, scale, want);
                K->scores(k, n, d, q, scale, got);
                CHECK(memcmp(want, got, n * sizeof *got) == 0 && guard_ok(got, n),
                      "%s scores %s n=%zu d=%zu", K->name, MODE_NAME[mode], n, d);
                hash_bytes(got, n * sizeof *got);
                free(k), free(q), free(want), free(got);
            }
}

static void identity_page_bounds(const vs_kernels *K, vs_test_rng *r) {
    const vs_kernels *S = &vs_kernels_scalar;
    for (int mode = 0; mode < MODE_COUNT; mode++)
        for (size_t n = 1; n <= NMAX + 47; n += (n < NMAX ? 1 : 23))
            for (size_t di = 0; di < NDIMS; di++) {
                const size_t d = DIMS[di];
                float *box = alloc_f(n * 2 * d), *q = alloc_f(d);
                float *want = alloc_f(n + GUARD), *got = alloc_f(n + GUARD);
                fill(r, box, n * 2 * d, mode);
                if (mode != MODE_TIES) order_box(box, n, d); /* ties mode: anything */
                uint16_t *summ = summaries(box, n, d);
                fill(r, q, d, mode);
                const float scale = uniform(r, 0.01, 2.0);
                set_guard(want, n);
                set_guard(got, n);
                S->page_bounds(summ, n, d, q, scale, want);
                K->page_bounds(summ, n, d, q, scale, got);
                CHECK(memcmp(want, got, n * sizeof *got) == 0 && guard_ok(got, n),
                      "%s page_bounds %s n=%zu d=%zu", K->name, MODE_NAME[mode], n, d);
                hash_bytes(got, n * sizeof *got);
                free(box), free(summ), free(q), free(want), free(got);
            }
}

static size_t lengths(size_t t) { /* 0..NDIMS-1: 1..33, 64, 100, 128, 256, 512; then 1000 */
    return t < NDIMS ? DIMS[t] : 1000;
}
#define NLENGTHS (NDIMS + 1)

static void identity_max(const vs_kernels *K, vs_test_rng *r) {
    const vs_kernels *S = &vs_kernels_scalar;
    for (int mode = 0; mode < MODE_COUNT + 2; mode++)
        for (size_t t = 0; t < NLENGTHS; t++) {
            const size_t n = lengths(t);
            float *x = alloc_f(n);
            for (int rep = 0; rep < 8; rep++) {
                if (mode < MODE_COUNT) {
                    fill(r, x, n, mode);
                } else if (mode == MODE_COUNT) { /* all negative: padding must not be 0 */
                    fill(r, x, n, MODE_GAUSS);
                    for (size_t i = 0; i < n; i++) x[i] = -fabsf(x[i]) - 1.0f;
                } else { /* only signed zeros and negatives: the sign of the max zero */
                    for (size_t i = 0; i < n; i++) {
                        uint64_t b = vs_test_next(r);
                        x[i] = (b & 3) == 0 ? -1.0f : (b & 4) ? -0.0f : 0.0f;
                    }
                }
                const float want = S->max(x, n), got = K->max(x, n);
                CHECK(memcmp(&want, &got, sizeof got) == 0, "%s max mode=%d n=%zu rep=%d: %g vs %g",
                      K->name, mode, n, rep, (double)got, (double)want);
                hash_bytes(&got, sizeof got);
            }
            free(x);
        }
}

static void identity_exp_sum(const vs_kernels *K, vs_test_rng *r) {
    const vs_kernels *S = &vs_kernels_scalar;
    static const float edges[] = {-87.0f,    -86.99999f, -87.00001f, 0.0f,   -0.0f,  88.0f,
                                  88.00001f, 100.0f,     -1000.0f,   1e-30f, -1e-30f};
    for (size_t t = 0; t < NLENGTHS; t++) {
        const size_t n = lengths(t);
        float *x0 = alloc_f(n), *want = alloc_f(n + GUARD), *got = alloc_f(n + GUARD);
        for (int rep = 0; rep < 6; rep++) {
            const float shift = rep == 0 ? 0.0f : uniform(r, -3.0, 3.0);
            for (size_t i = 0; i < n; i++) {
                uint64_t b = vs_test_next(r);
                x0[i] = (b & 7) == 0 ? edges[(b >> 3) % (sizeof edges / sizeof edges[0])]
                                     : uniform(r, -100.0, 10.0);
            }
            memcpy(want, x0, n * sizeof *x0);
            memcpy(got, x0, n * sizeof *x0);
            set_guard(want, n);
            set_guard(got, n);
            const float ws = S->exp_sum(want, n, shift), gs = K->exp_sum(got, n, shift);
            CHECK(memcmp(want, got, n * sizeof *got) == 0 && memcmp(&ws, &gs, sizeof gs) == 0 &&
                      guard_ok(got, n),
                  "%s exp_sum n=%zu rep=%d shift=%g", K->name, n, rep, (double)shift);
            hash_bytes(got, n * sizeof *got);
            hash_bytes(&gs, sizeof gs);
        }
        free(x0), free(want), free(got);
    }
}

static void identity_accum(const vs_kernels *K, vs_test_rng *r) {
    const vs_kernels *S = &vs_kernels_scalar;
    for (int mode = 0; mode < MODE_COUNT; mode++)
        for (size_t n = 0; n <= NMAX; n++)
            for (size_t di = 0; di < NDIMS; di++) {
                const size_t dv = DIMS[di];
                float *rowbuf[NMAX];
                const float *rows[NMAX];
                for (size_t i = 0; i < n; i++) { /* separate, exactly sized rows */
                    rowbuf[i] = alloc_f(dv);
                    fill(r, rowbuf[i], dv, mode);
                    rows[i] = rowbuf[i];
                }
                float w[NMAX];
                fill(r, w, n, mode);
                float *want = alloc_f(dv + GUARD), *got = alloc_f(dv + GUARD);
                fill(r, want, dv, mode);
                memcpy(got, want, dv * sizeof *want);
                set_guard(want, dv);
                set_guard(got, dv);
                S->accum(rows, w, n, dv, want);
                K->accum(rows, w, n, dv, got);
                CHECK(memcmp(want, got, dv * sizeof *got) == 0 && guard_ok(got, dv),
                      "%s accum %s n=%zu dv=%zu", K->name, MODE_NAME[mode], n, dv);
                hash_bytes(got, dv * sizeof *got);
                for (size_t i = 0; i < n; i++) free(rowbuf[i]);
                free(want), free(got);
            }
}

/* dots: rows given by pointer, each row its own exactly sized allocation (so a
   read past d is caught by sanitizers), in a shuffled order with repeats. */
static void identity_dots(const vs_kernels *K, vs_test_rng *r) {
    const vs_kernels *S = &vs_kernels_scalar;
    enum { NR = NMAX + 47 };
    for (int mode = 0; mode < MODE_COUNT; mode++)
        for (size_t n = 1; n <= NR; n += (n < NMAX ? 1 : 23)) /* 1..17, 40, 63 */
            for (size_t di = 0; di < NDIMS; di++) {
                const size_t d = DIMS[di];
                float *rowbuf[NR];
                const float *rows[NR];
                for (size_t i = 0; i < n; i++) {
                    rowbuf[i] = alloc_f(d);
                    fill(r, rowbuf[i], d, mode);
                }
                for (size_t i = 0; i < n; i++) /* some rows twice, out of order */
                    rows[i] = rowbuf[(i * 7 + (vs_test_next(r) % 3 == 0)) % n];
                float *x = alloc_f(d), *want = alloc_f(n + GUARD), *got = alloc_f(n + GUARD);
                fill(r, x, d, mode);
                set_guard(want, n);
                set_guard(got, n);
                S->dots(rows, n, d, x, want);
                K->dots(rows, n, d, x, got);
                CHECK(memcmp(want, got, n * sizeof *got) == 0 && guard_ok(got, n),
                      "%s dots %s n=%zu d=%zu", K->name, MODE_NAME[mode], n, d);
                /* dots is scores over row pointers: with contiguous rows and scale 1
                   the two agree bit for bit */
                float *k = alloc_f(n * d), *sc = alloc_f(n);
                for (size_t i = 0; i < n; i++) memcpy(k + i * d, rows[i], d * sizeof *k);
                K->scores(k, n, d, x, 1.0f, sc);
                CHECK(memcmp(sc, got, n * sizeof *got) == 0,
                      "%s dots == scores(scale 1) %s n=%zu d=%zu", K->name, MODE_NAME[mode], n, d);
                hash_bytes(got, n * sizeof *got);
                for (size_t i = 0; i < n; i++) free(rowbuf[i]);
                free(x), free(want), free(got), free(k), free(sc);
            }
}

static void identity_scale(const vs_kernels *K, vs_test_rng *r) {
    const vs_kernels *S = &vs_kernels_scalar;
    for (int mode = 0; mode < MODE_COUNT; mode++)
        for (size_t t = 0; t < NLENGTHS; t++) {
            const size_t n = lengths(t);
            float *want = alloc_f(n + GUARD), *got = alloc_f(n + GUARD);
            fill(r, want, n, mode);
            memcpy(got, want, n * sizeof *want);
            set_guard(want, n);
            set_guard(got, n);
            const float a = gen(r, mode);
            S->scale(want, n, a);
            K->scale(got, n, a);
            CHECK(memcmp(want, got, n * sizeof *got) == 0 && guard_ok(got, n), "%s scale %s n=%zu",
                  K->name, MODE_NAME[mode], n);
            hash_bytes(got, n * sizeof *got);
            free(want), free(got);
        }
}

/* ---- 4. topk against brute force ------------------------------------------ */

static const float *sort_x;
static int by_rank(const void *a, const void *b) { /* larger value first, then lower index */
    uint32_t i = *(const uint32_t *)a, j = *(const uint32_t *)b;
    if (sort_x[i] != sort_x[j]) return sort_x[i] > sort_x[j] ? -1 : 1;
    return (i > j) - (i < j);
}
static int by_index(const void *a, const void *b) {
    uint32_t i = *(const uint32_t *)a, j = *(const uint32_t *)b;
    return (i > j) - (i < j);
}

static size_t topk_brute(const float *x, size_t n, size_t k, uint32_t *out) {
    uint32_t *idx = malloc((n ? n : 1) * sizeof *idx);
    for (size_t i = 0; i < n; i++) idx[i] = (uint32_t)i;
    sort_x = x;
    qsort(idx, n, sizeof *idx, by_rank);
    size_t m = k < n ? k : n;
    memcpy(out, idx, m * sizeof *out);
    qsort(out, m, sizeof *out, by_index);
    free(idx);
    return m;
}

static void check_topk(const vs_kernels *K, vs_test_rng *r) {
    static const size_t NS[] = {1,  2,  3,  4,  5,  6,  7,  8,  9,  10, 11,  12,  13,   14,
                                15, 16, 17, 18, 23, 24, 25, 31, 33, 64, 100, 257, 1000, 4099};
    for (int mode = 0; mode < MODE_COUNT + 2; mode++)
        for (size_t ni = 0; ni < sizeof NS / sizeof NS[0]; ni++) {
            const size_t n = NS[ni];
            const size_t ks[] = {0, 1, 2, 3, 7, 8, 9, n / 2, n > 1 ? n - 1 : 1, n, n + 1, n + 9};
            float *x = alloc_f(n);
            if (mode < MODE_COUNT) {
                fill(r, x, n, mode);
            } else if (mode == MODE_COUNT) { /* all equal */
                for (size_t i = 0; i < n; i++) x[i] = 1.5f;
            } else { /* increasing: every element enters the heap, then leaves */
                for (size_t i = 0; i < n; i++) x[i] = (float)i * 0.25f - 3.0f;
            }
            for (size_t ki = 0; ki < sizeof ks / sizeof ks[0]; ki++) {
                const size_t k = ks[ki];
                vs_topk_item *scratch = malloc(VS_TOPK_SCRATCH(k) * sizeof *scratch);
                uint32_t *want = malloc((n + 1) * sizeof *want),
                         *got = malloc((n + 1) * sizeof *got);
                const size_t wn = topk_brute(x, n, k, want);
                const size_t gn = K->topk(x, n, k, scratch, got);
                CHECK(wn == gn && memcmp(want, got, wn * sizeof *got) == 0,
                      "%s topk mode=%d n=%zu k=%zu: count %zu vs %zu", K->name, mode, n, k, gn, wn);
                const uint64_t count = gn; /* size_t differs between wasm32 and x86-64 */
                hash_bytes(&count, sizeof count);
                hash_bytes(got, gn * sizeof *got);
                free(scratch), free(want), free(got);
            }
            free(x);
        }
}

/* ---- 2. scalar reference against float64 --------------------------------- */

static void scalar_vs_double(vs_test_rng *r) {
    const vs_kernels *S = &vs_kernels_scalar;
    double worst_scores = 0, worst_bounds = 0, worst_exp = 0, worst_accum = 0, worst_dots = 0;
    for (int mode = 0; mode < MODE_COUNT; mode++)
        for (size_t di = 0; di < NDIMS; di++) {
            const size_t d = DIMS[di], n = 9;
            float *k = alloc_f(n * d), *box = alloc_f(n * 2 * d), *q = alloc_f(d), out[9];
            fill(r, k, n * d, mode);
            fill(r, box, n * 2 * d, mode);
            order_box(box, n, d);
            uint16_t *summ = summaries(box, n, d);
            fill(r, q, d, mode);
            const float scale = uniform(r, 0.01, 2.0);
            /* Rounding bound: products and the scale round once each, a lane adds
               ceil(d/8) terms, the combine adds 3 levels: gamma_m, m = ceil(d/8)+5;
               the stated relative bound 1e-5 of sum |terms| covers it for d <= 512. */
            const double rel = 1e-5;
            CHECK(((d + 7) / 8 + 5) * EPS32 * 1.001 < rel, "rounding bound too tight for d=%zu", d);
            S->scores(k, n, d, q, scale, out);
            int ok = 1;
            for (size_t i = 0; i < n; i++) {
                double s = 0, a = 0;
                for (size_t j = 0; j < d; j++) {
                    double t = (double)q[j] * k[i * d + j];
                    s += t;
                    a += fabs(t);
                }
                s *= scale;
                a *= scale;
                double err = fabs(out[i] - s);
                if (a > 0 && err / a > worst_scores) worst_scores = err / a;
                if (!(err <= rel * a)) ok = 0;
            }
            CHECK(ok, "scalar scores vs double %s d=%zu", MODE_NAME[mode], d);

            /* page_bounds: the exact box bound max(q lo, q hi) of the widened
               bfloat16 summaries, which the select q >= 0 ? hi : lo equals */
            S->page_bounds(summ, n, d, q, scale, out);
            ok = 1;
            int same = 1;
            for (size_t p = 0; p < n; p++) {
                const uint16_t *pair = summ + p * 2 * d; /* lo_j, hi_j = pair[2j], pair[2j + 1] */
                double s = 0, a = 0;
                for (size_t j = 0; j < d; j++) {
                    double u = (double)q[j] * bf16_value(pair[2 * j]),
                           v = (double)q[j] * bf16_value(pair[2 * j + 1]);
                    double t = u > v ? u : v;
                    if (t != (q[j] >= 0.0f ? v : u)) same = 0;
                    s += t;
                    a += fabs(t);
                }
                s *= scale;
                a *= scale;
                double err = fabs(out[p] - s);
                if (a > 0 && err / a > worst_bounds) worst_bounds = err / a;
                if (!(err <= rel * a)) ok = 0;
            }
            CHECK(ok, "scalar page_bounds vs double %s d=%zu", MODE_NAME[mode], d);
            CHECK(same, "select (q >= 0 ? hi : lo) differs from max(q lo, q hi) %s d=%zu",
                  MODE_NAME[mode], d);

            /* dots: the same rounding bound as scores (no scale: one rounding less) */
            {
                const float *rows[9];
                for (size_t i = 0; i < n; i++) rows[i] = k + (n - 1 - i) * d;
                S->dots(rows, n, d, q, out);
                ok = 1;
                for (size_t i = 0; i < n; i++) {
                    double s = 0, a = 0;
                    for (size_t j = 0; j < d; j++) {
                        double t = (double)q[j] * rows[i][j];
                        s += t;
                        a += fabs(t);
                    }
                    double err = fabs(out[i] - s);
                    if (a > 0 && err / a > worst_dots) worst_dots = err / a;
                    if (!(err <= rel * a)) ok = 0;
                }
                CHECK(ok, "scalar dots vs double %s d=%zu", MODE_NAME[mode], d);
            }

            /* accum: acc_j + sum_i w_i v_ij, 2 roundings per row */
            {
                const size_t nr = 1 + d % 17;
                float *acc = alloc_f(d), *vals = alloc_f(nr * d), w[17];
                const float *rows[17];
                double *ref = malloc(d * sizeof *ref), *mag = malloc(d * sizeof *mag);
                fill(r, acc, d, mode);
                fill(r, vals, nr * d, mode);
                fill(r, w, nr, mode);
                for (size_t j = 0; j < d; j++) ref[j] = acc[j], mag[j] = fabs(acc[j]);
                for (size_t i = 0; i < nr; i++) {
                    rows[i] = vals + i * d;
                    for (size_t j = 0; j < d; j++) {
                        ref[j] += (double)w[i] * vals[i * d + j];
                        mag[j] += fabs((double)w[i] * vals[i * d + j]);
                    }
                }
                S->accum(rows, w, nr, d, acc);
                ok = 1;
                for (size_t j = 0; j < d; j++) {
                    double err = fabs(acc[j] - ref[j]);
                    if (mag[j] > 0 && err / mag[j] > worst_accum) worst_accum = err / mag[j];
                    if (!(err <= 2.0 * (double)(nr + 1) * EPS32 * mag[j])) ok = 0;
                }
                CHECK(ok, "scalar accum vs double %s n=%zu dv=%zu", MODE_NAME[mode], nr, d);
                free(acc), free(vals), free(ref), free(mag);
            }
            free(k), free(box), free(summ), free(q);
        }

    /* exp_sum: each element vs double exp of the float argument x - shift,
       the sum vs the double sum of exact exps */
    for (size_t t = 0; t < NLENGTHS; t++) {
        const size_t n = lengths(t);
        float *x = alloc_f(n), *x0 = alloc_f(n);
        const float shift = uniform(r, -5.0, 5.0);
        for (size_t i = 0; i < n; i++) x0[i] = uniform(r, -95.0, 5.0);
        memcpy(x, x0, n * sizeof *x);
        const float sum = S->exp_sum(x, n, shift);
        double ref = 0;
        int ok = 1;
        for (size_t i = 0; i < n; i++) {
            const float arg = x0[i] - shift;
            if (arg <= VS_EXP_LO) {
                if (x[i] != 0.0f) ok = 0;
                continue;
            }
            const double e = exp((double)arg), rel = fabs(x[i] - e) / e;
            if (rel > worst_exp) worst_exp = rel;
            if (!(rel <= 5e-7)) ok = 0;
            ref += e;
        }
        CHECK(ok, "scalar exp_sum elements vs double exp n=%zu", n);
        /* sum: element errors 5e-7 plus summation gamma_{ceil(n/8)+3} */
        const double bound = (5e-7 + ((n + 7) / 8 + 3) * EPS32) * ref + 1e-37;
        CHECK(fabs(sum - ref) <= bound, "scalar exp_sum sum n=%zu: %.9g vs %.9g", n, (double)sum,
              ref);
        free(x), free(x0);
    }
    printf(
        "  scalar vs float64: worst |err|/sum|terms|: scores %.3g, page_bounds %.3g, "
        "dots %.3g, accum %.3g; exp_sum worst rel %.3g\n",
        worst_scores, worst_bounds, worst_dots, worst_accum, worst_exp);
}

/* ---- 3. vs_exp against double exp ----------------------------------------- */

#define SWEEP 2000001

static void check_exp(const char *const *isas, int nisa) {
    float *xs = alloc_f(SWEEP + 16), *ys = alloc_f(SWEEP + 16);
    size_t n = 0;
    for (size_t i = 0; i < SWEEP; i++) /* dense sweep of [-87, 88] */
        xs[n++] = (float)(VS_EXP_LO + ((double)VS_EXP_HI - VS_EXP_LO) * (double)i / (SWEEP - 1));
    const float edges[] = {nextafterf(VS_EXP_LO, 0.0f),
                           nextafterf(VS_EXP_HI, 0.0f),
                           VS_EXP_HI,
                           0.0f,
                           -0.0f,
                           1e-30f,
                           -1e-30f,
                           1.0f,
                           -1.0f,
                           0.34657359f,
                           -0.34657359f};
    for (size_t i = 0; i < sizeof edges / sizeof edges[0]; i++) xs[n++] = edges[i];

    double worst = 0;
    float worst_x = 0;
    int bad = 0;
    for (size_t i = 0; i < n; i++) {
        const float x = xs[i];
        const float y = vs_exp(x);
        ys[i] = y;
        if (x <= VS_EXP_LO) {
            if (y != 0.0f) bad++;
            continue;
        }
        const double e = exp((double)x), rel = fabs(y - e) / e;
        if (rel > worst) worst = rel, worst_x = x;
        if (!(rel <= 5e-7)) bad++;
    }
    CHECK(bad == 0 && worst <= 5e-7, "vs_exp: %d bad points, worst relative error %.3g at x=%.9g",
          bad, worst, (double)worst_x);
    CHECK(worst <= VS_EXP_REL_ERR, "vs_exp exceeds VS_EXP_REL_ERR: %.3g", worst);
    printf("  vs_exp: %zu points, max relative error %.3g at x=%.9g\n", n, worst, (double)worst_x);

    /* the edges */
    const float below[] = {
        VS_EXP_LO, nextafterf(VS_EXP_LO, -100.0f), -88.0f, -100.0f, -1e30f, -INFINITY, NAN};
    for (size_t i = 0; i < sizeof below / sizeof below[0]; i++) {
        const float y = vs_exp(below[i]);
        const uint32_t zero = 0;
        CHECK(memcmp(&y, &zero, sizeof y) == 0, "vs_exp(%g) = %g, want +0", (double)below[i],
              (double)y);
    }
    const float above[] = {nextafterf(VS_EXP_HI, 100.0f), 89.0f, 1e30f, INFINITY};
    for (size_t i = 0; i < sizeof above / sizeof above[0]; i++) {
        const float y = vs_exp(above[i]), top = vs_exp(VS_EXP_HI);
        CHECK(memcmp(&y, &top, sizeof y) == 0 && isfinite(y), "vs_exp(%g) = %g, want clamp %g",
              (double)above[i], (double)y, (double)top);
    }
    CHECK(vs_exp(0.0f) == 1.0f, "vs_exp(0) = %.9g", (double)vs_exp(0.0f));

    /* every ISA's exp_sum, bit for bit, over the sweep (in pieces of odd length
       so that every tail length occurs) */
    float *buf = alloc_f(SWEEP + 16);
    const float all_edges[] = {VS_EXP_LO, nextafterf(VS_EXP_LO, -100.0f), -1e30f, -INFINITY,
                               NAN,       nextafterf(VS_EXP_HI, 100.0f),  1e30f,  INFINITY};
    for (int a = 0; a < nisa; a++) {
        const vs_kernels *K = use_isa(isas[a]);
        if (!K) continue;
        memcpy(buf, xs, n * sizeof *xs);
        size_t piece = 1;
        for (size_t i = 0; i < n; i += piece, piece = piece % 37 + 1) {
            size_t m = n - i < piece ? n - i : piece;
            (void)K->exp_sum(buf + i, m, 0.0f);
        }
        CHECK(memcmp(buf, ys, n * sizeof *ys) == 0, "%s exp_sum differs from vs_exp on the sweep",
              K->name);
        float e[sizeof all_edges / sizeof all_edges[0]];
        memcpy(e, all_edges, sizeof e);
        (void)K->exp_sum(e, sizeof e / sizeof e[0], 0.0f);
        int same = 1;
        for (size_t i = 0; i < sizeof e / sizeof e[0]; i++) {
            const float y = vs_exp(all_edges[i]);
            if (memcmp(&e[i], &y, sizeof y) != 0) same = 0;
        }
        CHECK(same, "%s exp_sum differs from vs_exp at the edges", K->name);
    }
    free(xs), free(ys), free(buf);
}

/* ---- 5. page_bounds bounds every key --------------------------------------- */

static void check_bound_holds(const char *const *isas, int nisa) {
    static const size_t PS[] = {1, 2, 3, 7, 16, 33, 64};
    static const size_t DS[] = {1, 3, 8, 17, 64, 128};
    long below_float = 0, keys = 0;
    double looser = 0; /* largest (u_bf16 - u_f32box) / sum |terms| */
    for (int a = 0; a < nisa; a++) {
        const vs_kernels *K = use_isa(isas[a]);
        if (!K) continue;
        vs_test_rng r = {0x5eed0005u};
        for (int mode = 0; mode < MODE_COUNT; mode++)
            for (size_t pi = 0; pi < sizeof PS / sizeof PS[0]; pi++)
                for (size_t di = 0; di < sizeof DS / sizeof DS[0]; di++) {
                    const size_t P = PS[pi], d = DS[di], pages = 5;
                    float *k = alloc_f(pages * P * d), *box = alloc_f(pages * 2 * d);
                    float *q = alloc_f(d), bound[5];
                    fill(&r, k, pages * P * d, mode);
                    fill(&r, q, d, mode);
                    for (size_t p = 0; p < pages; p++)
                        for (size_t j = 0; j < d; j++) {
                            float lo = k[p * P * d + j], hi = lo;
                            for (size_t t = 1; t < P; t++) {
                                const float v = k[(p * P + t) * d + j];
                                lo = v < lo ? v : lo;
                                hi = v > hi ? v : hi;
                            }
                            box[p * 2 * d + j] = lo;
                            box[p * 2 * d + d + j] = hi;
                        }
                    uint16_t *summ = summaries(box, pages, d); /* rounded outward */
                    const float scale = uniform(&r, 0.01, 1.0);
                    K->page_bounds(summ, pages, d, q, scale, bound);
                    int ok_exact = 1, ok_float = 1;
                    for (size_t p = 0; p < pages; p++) {
                        /* exact (double) bound and the float bound's rounding term */
                        double u = 0, mag = 0, u32 = 0;
                        for (size_t j = 0; j < d; j++) {
                            const double x = (double)q[j] * bf16_value(summ[p * 2 * d + 2 * j]);
                            const double y = (double)q[j] * bf16_value(summ[p * 2 * d + 2 * j + 1]);
                            const double x32 = (double)q[j] * box[p * 2 * d + j];
                            const double y32 = (double)q[j] * box[p * 2 * d + d + j];
                            u += x > y ? x : y;
                            mag += fabs(x > y ? x : y);
                            u32 += x32 > y32 ? x32 : y32;
                        }
                        u *= scale;
                        mag *= scale;
                        u32 *= scale;
                        /* the rounded box holds the float box: never a lower bound */
                        if (!(u >= u32)) ok_exact = 0;
                        if (mag > 0 && (u - u32) / mag > looser) looser = (u - u32) / mag;
                        const double slack = ((d + 7) / 8 + 5) * EPS32 * mag;
                        for (size_t t = 0; t < P; t++) {
                            double s = 0;
                            for (size_t j = 0; j < d; j++)
                                s += (double)q[j] * k[(p * P + t) * d + j];
                            s *= scale;
                            keys++;
                            if (!(u >= s - 1e-12 * mag)) ok_exact = 0;
                            if (!(bound[p] + slack >= s)) ok_float = 0;
                            if (bound[p] < s) below_float++;
                        }
                    }
                    CHECK(ok_exact, "%s page bound (double) below a key score: %s P=%zu d=%zu",
                          K->name, MODE_NAME[mode], P, d);
                    CHECK(ok_float,
                          "%s page bound + rounding term below a key score: %s P=%zu d=%zu",
                          K->name, MODE_NAME[mode], P, d);
                    free(k), free(box), free(summ), free(q);
                }
    }
    printf(
        "  page_bounds: %ld key scores bounded; the float bound alone was below the double "
        "score %ld times (rounding: the certificate must add its rounding term); bfloat16 "
        "boxes raise a bound by at most %.3g of sum |terms| over the float boxes\n",
        keys, below_float, looser);
}

/* ---- 6. the library's bfloat16 roundings against arithmetic ---------------- */

static void check_bf16(void) {
    static const float edges[] = {0.0f,       -0.0f,       1.0f,         -1.0f,
                                  1.0078125f, -1.0078125f, 1.00390625f,  -1.00390625f,
                                  1.0039063f, -1.0039063f, 1.9999999f,   -1.9999999f,
                                  1e-45f,     -1e-45f,     1.1754942e-38f, -1.1754942e-38f,
                                  1.1754944e-38f, -1.1754944e-38f, 9.2e-41f, -9.2e-41f,
                                  1e30f,      -1e30f,      3.0e-39f,     -65504.0f};
    vs_test_rng r = {0xbf16};
    long n = 0, bad = 0;
    for (long i = 0; i < 400000; i++) {
        float x;
        if (i < (long)(sizeof edges / sizeof edges[0])) {
            x = edges[i];
        } else if (i % 2) { /* any finite float with |x| <= 1e30 */
            const uint32_t b = (uint32_t)vs_test_next(&r);
            memcpy(&x, &b, sizeof x);
            if (!(fabsf(x) <= 1e30f)) continue;
        } else {
            x = gen(&r, (int)(i % MODE_COUNT));
        }
        const uint16_t dn = vs_bf16_down(x), up = vs_bf16_up(x);
        const double fd = bf16_floor(x), fu = bf16_ceil(x);
        n++;
        /* bits, zeros included: floor and ceiling keep the sign of x at zero */
        if (dn != bf16_bits(fd) || up != bf16_bits(fu)) bad++;
        if (!(vs_bf16_to_f32(dn) <= x && x <= vs_bf16_to_f32(up))) bad++;
        if ((double)vs_bf16_to_f32(dn) != fd || (double)vs_bf16_to_f32(up) != fu) bad++;
        if (vs_bf16_to_f32(dn) != bf16_value(dn)) bad++;
    }
    CHECK(bad == 0, "vs_bf16_down / vs_bf16_up differ from arithmetic rounding: %ld of %ld", bad,
          n);
    CHECK(bf16_bad == 0, "%d test values off the bfloat16 grid", bf16_bad);
    printf("  bfloat16: %ld values rounded down and up as by arithmetic\n", n);
}

/* ---- main ------------------------------------------------------------------ */

int main(void) {
    const char *isas[8];
    const int nisa = vs_test_isas(isas, 8);
    CHECK(nisa >= 1 && strcmp(isas[0], "scalar") == 0, "ISA list must start with scalar");
    printf("  ISAs:");
    for (int a = 0; a < nisa; a++) printf(" %s", isas[a]);
    printf("\n");

    uint64_t hash[8] = {0};
    for (int a = 0; a < nisa; a++) {
        const vs_kernels *K = use_isa(isas[a]);
        CHECK(K != NULL && strcmp(K->name, isas[a]) == 0, "vs_set_isa(%s) selects its table",
              isas[a]);
        if (!K) continue;
        vs_test_rng r = {0x6b65726e656c73u}; /* same data for every ISA */
        out_hash = 0xcbf29ce484222325ull;
        identity_scores(K, &r);
        identity_page_bounds(K, &r);
        identity_max(K, &r);
        identity_exp_sum(K, &r);
        identity_accum(K, &r);
        identity_dots(K, &r);
        identity_scale(K, &r);
        check_topk(K, &r);
        hash[a] = out_hash;
        printf("  %s: output hash %016llx\n", isas[a], (unsigned long long)hash[a]);
        CHECK(hash[a] == hash[0], "%s output hash differs from scalar", isas[a]);
    }

    vs_test_rng r = {0x64626c};
    scalar_vs_double(&r);
    check_exp(isas, nisa);
    check_bound_holds(isas, nisa);
    check_bf16();

    vs_set_isa("auto");
    CHECK(vs_set_isa("no-such-isa") == VS_E_ISA, "unknown ISA is refused");
    return vs_test_finish("test_kernels");
}
