/*
 * Workload generators (src/workloads.c): determinism (repeat, chunked versus
 * one-shot, pinned checksums), the gap workload's planted gap in float64 for
 * every query head and step, needle placement, validation errors.
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "testutil.h"
#include "vashista.h"
#include "workloads.h"

typedef struct {
    float *k, *v, *q;
} wl_data;

static int generate(const vs_workload *w, uint32_t step, wl_data *out) {
    size_t T = w->T;
    out->k = malloc(T * w->kv_heads * w->head_dim * sizeof(float));
    out->v = malloc(T * w->kv_heads * w->value_dim * sizeof(float));
    out->q = malloc((size_t)w->heads * w->head_dim * sizeof(float));
    if (!out->k || !out->v || !out->q) return VS_E_NOMEM;
    int st = vs_workload_tokens(w, 0, w->T, out->k, out->v);
    if (st != VS_OK) return st;
    return vs_workload_queries(w, step, out->q);
}

static void release(wl_data *d) {
    free(d->k);
    free(d->v);
    free(d->q);
}

static int all_finite(const float *x, size_t n) {
    for (size_t i = 0; i < n; i++)
        if (!(fabsf(x[i]) <= VS_MAX_ABS)) return 0;
    return 1;
}

/* FNV-1a over the bit patterns of n floats. */
static uint64_t fnv(uint64_t h, const float *x, size_t n) {
    const unsigned char *b = (const unsigned char *)x;
    for (size_t i = 0; i < n * sizeof(float); i++) {
        h ^= b[i];
        h *= 0x100000001B3ull;
    }
    return h;
}

static double score(const float *q, const float *k, size_t d) {
    double acc = 0;
    for (size_t j = 0; j < d; j++) acc += (double)q[j] * (double)k[j];
    return acc / sqrt((double)d);
}

static const char *kind_name(uint32_t kind) {
    return kind == VS_WL_GAP ? "gap" : kind == VS_WL_NEEDLE ? "needle" : "uniform";
}

/* ---- defaults, validation ------------------------------------------------- */
static void test_validation(void) {
    vs_workload w;
    for (uint32_t kind = 0; kind < 3; kind++) {
        vs_workload_default(&w, kind);
        CHECK_STATUS(vs_workload_check(&w), VS_OK);
        CHECK(w.T == 4096 && w.heads == 1 && w.kv_heads == 1 && w.head_dim == 128 &&
                  w.value_dim == 128 && w.face == 4 && w.needles == 4 && w.seed_lo == 1 &&
                  w.seed_hi == 0,
              "defaults of %s", kind_name(kind));
    }
    float k[8], v[8], q[8];
    uint32_t cnt = 0, pos[4];
    CHECK_STATUS(vs_workload_check(NULL), VS_E_NULL);
    vs_workload_default(&w, VS_WL_GAP);
    CHECK_STATUS(vs_workload_tokens(NULL, 0, 1, k, v), VS_E_NULL);
    CHECK_STATUS(vs_workload_tokens(&w, 0, 1, NULL, v), VS_E_NULL);
    CHECK_STATUS(vs_workload_tokens(&w, 0, 1, k, NULL), VS_E_NULL);
    CHECK_STATUS(vs_workload_queries(&w, 0, NULL), VS_E_NULL);
    CHECK_STATUS(vs_workload_queries(NULL, 0, q), VS_E_NULL);
    CHECK_STATUS(vs_workload_marked(&w, pos, 4, NULL), VS_E_NULL);
    CHECK_STATUS(vs_workload_marked(&w, NULL, 4, &cnt), VS_E_NULL);
    CHECK_STATUS(vs_workload_marked(&w, NULL, 0, &cnt), VS_OK);
    CHECK(cnt == 4, "marked count without output: %u", cnt);

    /* one field at a time */
#define EXPECT(kind_, stmt, want_)                                         \
    do {                                                                   \
        vs_workload_default(&w, kind_);                                    \
        stmt;                                                              \
        CHECK_STATUS(vs_workload_check(&w), want_);                        \
        if ((want_) != VS_OK) {                                            \
            CHECK_STATUS(vs_workload_tokens(&w, 0, 1, k, v), want_);       \
            CHECK_STATUS(vs_workload_marked(&w, pos, 4, &cnt), want_);     \
        }                                                                  \
    } while (0)
    EXPECT(VS_WL_GAP, w.kind = 3, VS_E_OPTION);
    EXPECT(VS_WL_GAP, w.T = 0, VS_E_OPTION);
    EXPECT(VS_WL_UNIFORM, w.T = VS_MAX_TOKENS + 1, VS_E_OPTION);
    EXPECT(VS_WL_UNIFORM, w.T = 1, VS_OK);
    EXPECT(VS_WL_UNIFORM, w.head_dim = 0, VS_E_DIM);
    EXPECT(VS_WL_UNIFORM, w.head_dim = VS_MAX_DIM + 1, VS_E_DIM);
    EXPECT(VS_WL_UNIFORM, w.head_dim = VS_MAX_DIM, VS_OK);
    EXPECT(VS_WL_UNIFORM, w.value_dim = 0, VS_E_DIM);
    EXPECT(VS_WL_UNIFORM, w.value_dim = VS_MAX_DIM + 1, VS_E_DIM);
    EXPECT(VS_WL_UNIFORM, w.heads = 0, VS_E_HEADS);
    EXPECT(VS_WL_UNIFORM, w.kv_heads = 0, VS_E_HEADS);
    EXPECT(VS_WL_UNIFORM, (w.heads = 6, w.kv_heads = 4), VS_E_HEADS);
    EXPECT(VS_WL_UNIFORM, (w.heads = 2, w.kv_heads = 4), VS_E_HEADS);
    EXPECT(VS_WL_UNIFORM, (w.heads = VS_MAX_HEADS + 1), VS_E_HEADS);
    EXPECT(VS_WL_UNIFORM, (w.heads = 8, w.kv_heads = 2), VS_OK);
    EXPECT(VS_WL_GAP, w.face = 0, VS_E_OPTION);
    EXPECT(VS_WL_GAP, w.face = w.T + 1, VS_E_OPTION);
    EXPECT(VS_WL_GAP, w.face = w.T, VS_OK);
    EXPECT(VS_WL_GAP, w.margin = NAN, VS_E_OPTION);
    EXPECT(VS_WL_GAP, w.margin = INFINITY, VS_E_OPTION);
    EXPECT(VS_WL_GAP, w.margin = -1.0f, VS_E_OPTION);
    EXPECT(VS_WL_GAP, w.margin = 1e6f, VS_E_OPTION);
    EXPECT(VS_WL_GAP, w.margin = 0.0f, VS_OK);
    EXPECT(VS_WL_NEEDLE, w.needles = 0, VS_E_OPTION);
    EXPECT(VS_WL_NEEDLE, w.margin = -INFINITY, VS_E_OPTION);
    EXPECT(VS_WL_NEEDLE, w.margin = -3.0f, VS_OK);
    /* T = 4096: W = 64, needles fit in [1, 4032): 4031 of them */
    EXPECT(VS_WL_NEEDLE, w.needles = 4031, VS_OK);
    EXPECT(VS_WL_NEEDLE, w.needles = 4032, VS_E_OPTION);
    EXPECT(VS_WL_NEEDLE, (w.T = 1, w.needles = 1), VS_E_OPTION);
    /* T = 10: W = 2, needles in [1, 8) */
    EXPECT(VS_WL_NEEDLE, (w.T = 10, w.needles = 7), VS_OK);
    EXPECT(VS_WL_NEEDLE, (w.T = 10, w.needles = 8), VS_E_OPTION);
    EXPECT(VS_WL_UNIFORM, (w.face = 0, w.needles = 0, w.margin = NAN), VS_OK);
#undef EXPECT

    vs_workload_default(&w, VS_WL_UNIFORM);
    w.T = 100;
    CHECK_STATUS(vs_workload_tokens(&w, 100, 0, k, v), VS_OK);
    CHECK_STATUS(vs_workload_tokens(&w, 101, 0, k, v), VS_E_LENGTH);
    CHECK_STATUS(vs_workload_tokens(&w, 100, 1, k, v), VS_E_LENGTH);
    CHECK_STATUS(vs_workload_tokens(&w, 0, 0, NULL, NULL), VS_OK);
    CHECK_STATUS(vs_workload_tokens(&w, 99, UINT32_MAX, k, v), VS_E_LENGTH);
    CHECK_STATUS(vs_workload_marked(&w, pos, 4, &cnt), VS_OK);
    CHECK(cnt == 0, "uniform has no marked positions (%u)", cnt);
}

/* ---- determinism ------------------------------------------------------------ */
static void test_determinism(void) {
    static const uint32_t chunks[] = {1, 7, 64, 1000};
    for (uint32_t kind = 0; kind < 3; kind++) {
        vs_workload w;
        vs_workload_default(&w, kind);
        w.T = 1500;
        w.heads = 4;
        w.kv_heads = 2;
        w.head_dim = 17;
        w.value_dim = 9;
        w.seed_lo = 12345;
        w.seed_hi = 7;
        wl_data a, b;
        CHECK_STATUS(generate(&w, 3, &a), VS_OK);
        CHECK_STATUS(generate(&w, 3, &b), VS_OK);
        size_t nk = (size_t)w.T * w.kv_heads * w.head_dim, nv = (size_t)w.T * w.kv_heads * w.value_dim;
        size_t nq = (size_t)w.heads * w.head_dim;
        CHECK(memcmp(a.k, b.k, nk * 4) == 0 && memcmp(a.v, b.v, nv * 4) == 0 &&
                  memcmp(a.q, b.q, nq * 4) == 0,
              "%s: repeat generation differs", kind_name(kind));
        CHECK(all_finite(a.k, nk) && all_finite(a.v, nv) && all_finite(a.q, nq),
              "%s: non-finite or out-of-range output", kind_name(kind));

        /* chunked generation with uneven chunk sizes equals one-shot */
        for (size_t c = 0; c < sizeof chunks / sizeof chunks[0]; c++) {
            memset(b.k, 0xFF, nk * 4);
            memset(b.v, 0xFF, nv * 4);
            int ok = 1;
            for (uint32_t s = 0; s < w.T;) {
                uint32_t n = chunks[c] + (s % 3); /* vary the chunk size too */
                if (n > w.T - s) n = w.T - s;
                ok &= vs_workload_tokens(&w, s, n, b.k + (size_t)s * w.kv_heads * w.head_dim,
                                         b.v + (size_t)s * w.kv_heads * w.value_dim) == VS_OK;
                s += n;
            }
            CHECK(ok && memcmp(a.k, b.k, nk * 4) == 0 && memcmp(a.v, b.v, nv * 4) == 0,
                  "%s: chunks of ~%u differ from one-shot", kind_name(kind), chunks[c]);
        }

        /* another seed, another kind, another step: different numbers */
        wl_data c2;
        vs_workload w2 = w;
        w2.seed_hi = 8;
        CHECK_STATUS(generate(&w2, 3, &c2), VS_OK);
        CHECK(memcmp(a.k, c2.k, nk * 4) != 0 && memcmp(a.v, c2.v, nv * 4) != 0,
              "%s: seed_hi is ignored", kind_name(kind));
        release(&c2);
        if (kind != VS_WL_GAP) { /* gap queries only scale with the step */
            float *q0 = malloc(nq * 4);
            CHECK_STATUS(vs_workload_queries(&w, 4, q0), VS_OK);
            CHECK(memcmp(q0, a.q, nq * 4) != 0, "%s: steps give equal queries", kind_name(kind));
            free(q0);
        }
        release(&a);
        release(&b);
    }
    /* the kind is part of the seed: uniform values differ from needle values */
    vs_workload u, n;
    vs_workload_default(&u, VS_WL_UNIFORM);
    vs_workload_default(&n, VS_WL_NEEDLE);
    u.T = n.T = 64;
    float ku[64 * 128], vu[64 * 128], kn[64 * 128], vn[64 * 128];
    vs_workload_tokens(&u, 0, 64, ku, vu);
    vs_workload_tokens(&n, 0, 64, kn, vn);
    CHECK(memcmp(vu, vn, sizeof vu) != 0, "uniform and needle values coincide");
}

/* Pinned checksums: any change to the generators changes every golden vector
   and every cross-platform comparison, so it must be deliberate. Update these
   (and regenerate tests/vectors) when the generators change on purpose. */
static void test_pinned(void) {
    static const uint64_t want[3] = {0x3991c7a56227b7e5ull, 0x4a4a202b47021781ull,
                                     0xd22767b3750e47fcull};
    for (uint32_t kind = 0; kind < 3; kind++) {
        vs_workload w;
        vs_workload_default(&w, kind);
        w.T = 300;
        w.heads = 4;
        w.kv_heads = 2;
        w.head_dim = 33;
        w.value_dim = 5;
        wl_data a;
        CHECK_STATUS(generate(&w, 1, &a), VS_OK);
        uint64_t h = 0xCBF29CE484222325ull;
        h = fnv(h, a.k, (size_t)w.T * w.kv_heads * w.head_dim);
        h = fnv(h, a.v, (size_t)w.T * w.kv_heads * w.value_dim);
        h = fnv(h, a.q, (size_t)w.heads * w.head_dim);
        CHECK(h == want[kind], "%s: checksum 0x%016llxull, pinned 0x%016llxull", kind_name(kind),
              (unsigned long long)h, (unsigned long long)want[kind]);
        release(&a);
    }
}

/* ---- the normal generator --------------------------------------------------- */
static void test_moments(void) {
    vs_workload w;
    vs_workload_default(&w, VS_WL_UNIFORM);
    w.T = 8192;
    w.head_dim = 64;
    w.value_dim = 64;
    wl_data a;
    CHECK_STATUS(generate(&w, 0, &a), VS_OK);
    size_t n = (size_t)w.T * 64;
    double s1 = 0, s2 = 0, s4 = 0;
    for (size_t i = 0; i < n; i++) {
        double x = a.k[i];
        s1 += x;
        s2 += x * x;
        s4 += x * x * x * x;
    }
    double mean = s1 / n, var = s2 / n - mean * mean, kurt = s4 / n / (var * var);
    CHECK(fabs(mean) < 0.005, "uniform keys: mean %g", mean);
    CHECK(fabs(var - 1) < 0.01, "uniform keys: variance %g", var);
    /* Irwin-Hall(8): kurtosis 3 - 1.2/8 = 2.85 */
    CHECK(fabs(kurt - 2.85) < 0.03, "uniform keys: kurtosis %g", kurt);
    release(&a);
}

/* ---- gap: the planted face and its margin, in float64 ---------------------- */
static void check_gap(uint32_t T, uint32_t heads, uint32_t kvh, uint32_t d, uint32_t face,
                      float margin, uint32_t seed) {
    vs_workload w;
    vs_workload_default(&w, VS_WL_GAP);
    w.T = T;
    w.heads = heads;
    w.kv_heads = kvh;
    w.head_dim = d;
    w.value_dim = 3;
    w.face = face;
    w.margin = margin;
    w.seed_lo = seed;
    wl_data a;
    CHECK_STATUS(generate(&w, 0, &a), VS_OK);
    uint32_t *pos = malloc(face * sizeof *pos), cnt = 0;
    CHECK_STATUS(vs_workload_marked(&w, pos, face, &cnt), VS_OK);
    CHECK(cnt == face, "gap: %u marked, face %u", cnt, face);
    int sorted = 1;
    for (uint32_t i = 0; i < cnt; i++) sorted &= pos[i] < T && (i == 0 || pos[i - 1] < pos[i]);
    CHECK(sorted, "gap: face positions not distinct, sorted and in range");
    unsigned char *in_face = calloc(T, 1);
    for (uint32_t i = 0; i < cnt; i++) in_face[pos[i]] = 1;

    float *q = malloc((size_t)heads * d * sizeof *q);
    for (uint32_t step = 0; step < 4; step++) {
        CHECK_STATUS(vs_workload_queries(&w, step, q), VS_OK);
        for (uint32_t h = 0; h < heads; h++) {
            uint32_t g = h / (heads / kvh);
            double face_min = INFINITY, face_max = -INFINITY, rest_max = -INFINITY, rest_min = INFINITY;
            for (uint32_t t = 0; t < T; t++) {
                double s = score(q + (size_t)h * d, a.k + ((size_t)t * kvh + g) * d, d);
                if (in_face[t]) {
                    face_min = fmin(face_min, s);
                    face_max = fmax(face_max, s);
                } else {
                    rest_max = fmax(rest_max, s);
                    rest_min = fmin(rest_min, s);
                }
            }
            /* step 0: scores planted exactly up to float rounding of the keys */
            double tol = 1e-4 * (1 + margin);
            CHECK(face_min - (rest_max > 0 ? rest_max : 0) >= margin - tol,
                  "gap T=%u d=%u h=%u step=%u: gap %.6f < margin %g", T, d, h, step,
                  face_min - rest_max, margin);
            if (step == 0) {
                CHECK(face_min >= margin - tol && face_max <= margin + 1 + tol,
                      "gap d=%u: face scores [%g, %g] outside [margin, margin + 1]", d, face_min,
                      face_max);
                if (face < T)
                    CHECK(rest_max <= tol && rest_min >= -4 - tol,
                          "gap d=%u: other scores [%g, %g] outside [-4, 0]", d, rest_min, rest_max);
            }
            /* heads of one group ask the same question */
            if (h % (heads / kvh))
                CHECK(memcmp(q + (size_t)h * d, q + (size_t)(h - 1) * d, d * sizeof *q) == 0,
                      "gap: heads %u and %u of one group differ", h - 1, h);
        }
    }
    free(q);
    free(in_face);
    free(pos);
    release(&a);
}

static void test_gap(void) {
    check_gap(1, 1, 1, 1, 1, 16.0f, 1);
    check_gap(2000, 1, 1, 1, 4, 16.0f, 2);
    check_gap(2000, 4, 2, 3, 7, 0.5f, 3);
    check_gap(3000, 4, 2, 17, 1, 2.0f, 4);
    check_gap(4096, 2, 1, 128, 4, 16.0f, 5);
    check_gap(1000, 1, 1, 100, 1000, 16.0f, 6); /* every token in the face */
    check_gap(5000, 2, 2, 512, 32, 100.0f, 7);
    check_gap(1000, 1, 1, 64, 4, 0.0f, 8);
}

/* ---- needle: placement and planted strength ------------------------------- */
static void check_needle(uint32_t T, uint32_t heads, uint32_t kvh, uint32_t d, uint32_t needles,
                         uint32_t seed) {
    vs_workload w;
    vs_workload_default(&w, VS_WL_NEEDLE);
    w.T = T;
    w.heads = heads;
    w.kv_heads = kvh;
    w.head_dim = d;
    w.value_dim = 4;
    w.needles = needles;
    w.seed_lo = seed;
    uint32_t W = T / 4 < 64 ? T / 4 : 64;
    uint32_t *pos = malloc(needles * sizeof *pos), cnt = 0;
    CHECK_STATUS(vs_workload_marked(&w, pos, needles, &cnt), VS_OK);
    CHECK(cnt == needles, "needle: %u marked for %u needles", cnt, needles);
    int ok = 1;
    for (uint32_t i = 0; i < cnt; i++)
        ok &= pos[i] >= 1 && pos[i] < T - W && (i == 0 || pos[i - 1] < pos[i]);
    CHECK(ok, "needle T=%u: positions not distinct, sorted, outside sink and recent window", T);
    /* a smaller cap writes a prefix and still reports the total */
    if (needles > 1) {
        uint32_t first = UINT32_MAX;
        CHECK_STATUS(vs_workload_marked(&w, &first, 1, &cnt), VS_OK);
        CHECK(cnt == needles && first == pos[0], "needle: capped marked output");
    }
    if (d >= 16 && T >= 1000) {
        /* the default margin lifts every needle above every background token */
        wl_data a;
        CHECK_STATUS(generate(&w, 0, &a), VS_OK);
        unsigned char *mark = calloc(T, 1);
        for (uint32_t i = 0; i < cnt; i++) mark[pos[i]] = 1;
        for (uint32_t step = 0; step < 3; step++) {
            CHECK_STATUS(vs_workload_queries(&w, step, a.q), VS_OK);
            for (uint32_t h = 0; h < heads; h++) {
                uint32_t g = h / (heads / kvh);
                double needle_min = INFINITY, bg_max = -INFINITY, sink = 0;
                for (uint32_t t = 0; t < T; t++) {
                    double s = score(a.q + (size_t)h * d, a.k + ((size_t)t * kvh + g) * d, d);
                    if (mark[t]) needle_min = fmin(needle_min, s);
                    else if (t == 0) sink = s;
                    else bg_max = fmax(bg_max, s);
                }
                CHECK(needle_min > bg_max + 4 && sink > bg_max - 2,
                      "needle T=%u h=%u step=%u: needle min %g, sink %g, background max %g", T, h,
                      step, needle_min, sink, bg_max);
            }
        }
        free(mark);
        release(&a);
    }
    free(pos);
}

static void test_needle(void) {
    check_needle(3, 1, 1, 1, 1, 1);
    check_needle(10, 1, 1, 3, 7, 2); /* every allowed position */
    check_needle(300, 2, 1, 17, 20, 3);
    check_needle(4096, 4, 2, 128, 4, 4);
    check_needle(20000, 1, 1, 64, 8, 5);
    check_needle(200000, 1, 1, 1, 5000, 6);
}

int main(void) {
    test_validation();
    test_determinism();
    test_pinned();
    test_moments();
    test_gap();
    test_needle();
    return vs_test_finish("test_workloads");
}
