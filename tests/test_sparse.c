/* Sparse decode: routing and candidate selection against brute force, full
   coverage against float64 dense, the tolerance ladder, ISA bit-identity. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "cli/reference.h"
#include "testutil.h"
#include "vashista.h"

typedef struct data {
    uint32_t H, G, d, dv, S, T;
    float *k, *v, *q;
    vs_cache *c;
} data;

static data make(uint32_t H, uint32_t G, uint32_t d, uint32_t dv, uint32_t S, uint32_t T,
                 uint64_t seed) {
    data x = {H, G, d, dv, S, T, NULL, NULL, NULL, NULL};
    vs_test_rng r = {seed};
    x.k = malloc(sizeof(float) * T * G * d);
    x.v = malloc(sizeof(float) * T * G * dv);
    x.q = malloc(sizeof(float) * H * d);
    /* clustered pages (a drifting center plus noise) so that routing matters */
    float *center = calloc(d, sizeof(float));
    for (uint32_t t = 0; t < T; t++) {
        if (t % S == 0)
            for (uint32_t j = 0; j < d; j++) center[j] = (float)(0.7 * center[j] + vs_test_normal(&r));
        for (uint32_t g = 0; g < G; g++)
            for (uint32_t j = 0; j < d; j++)
                x.k[((size_t)t * G + g) * d + j] = center[j] + (float)(0.3 * vs_test_normal(&r));
    }
    vs_test_fill_normal(&r, x.v, (size_t)T * G * dv, 1.0);
    vs_test_fill_normal(&r, x.q, (size_t)H * d, 1.0);
    free(center);
    vs_cache_config cfg = {H, G, d, dv, S, VS_DTYPE_F32};
    CHECK_STATUS(vs_cache_create(&cfg, &x.c), VS_OK);
    CHECK_STATUS(vs_cache_append(x.c, x.k, (size_t)T * G * d, x.v, (size_t)T * G * dv), VS_OK);
    return x;
}

static void drop(data *x) {
    vs_cache_free(x->c);
    free(x->k);
    free(x->v);
    free(x->q);
}

static double score64(const data *x, uint32_t h, uint32_t t) {
    const uint32_t g = h / (x->H / x->G);
    double s = 0;
    for (uint32_t j = 0; j < x->d; j++)
        s += (double)x->q[h * x->d + j] * x->k[((size_t)t * x->G + g) * x->d + j];
    return s / sqrt((double)x->d);
}

/* x rounded down (up = 0) or up (up = 1) to bfloat16, by arithmetic: the grid
   near x has spacing 2^(e-7) for |x| in [2^e, 2^(e+1)) (2^-133 below 2^-126). */
static double bf16_round(double x, int up) {
    if (x == 0.0) return x;
    int e;
    (void)frexp(x, &e); /* |x| in [2^(e-1), 2^e) */
    const double u = ldexp(1.0, e - 8 > -133 ? e - 8 : -133);
    return (up ? ceil(x / u) : floor(x / u)) * u;
}

/* The box bound of page p for head h, from the keys themselves, in double:
   the box the cache keeps, min rounded down and max rounded up to bfloat16. */
static double bound64(const data *x, uint32_t h, uint32_t p) {
    const uint32_t g = h / (x->H / x->G), t0 = p * x->S;
    const uint32_t t1 = t0 + x->S < x->T ? t0 + x->S : x->T;
    double u = 0;
    for (uint32_t j = 0; j < x->d; j++) {
        double lo = INFINITY, hi = -INFINITY, qj = x->q[h * x->d + j];
        for (uint32_t t = t0; t < t1; t++) {
            double kj = x->k[((size_t)t * x->G + g) * x->d + j];
            lo = kj < lo ? kj : lo;
            hi = kj > hi ? kj : hi;
        }
        lo = bf16_round(lo, 0);
        hi = bf16_round(hi, 1);
        u += fmax(qj * lo, qj * hi);
    }
    return u / sqrt((double)x->d);
}

/* Routing, candidates and output of one decode, checked by brute force. */
static void check_selection(data *x, const vs_decode_options *o) {
    const uint32_t np = (x->T + x->S - 1) / x->S;
    float *out = malloc(sizeof(float) * x->H * x->dv);
    vs_head_diag *dg = malloc(sizeof *dg * x->H);
    uint32_t *pages = malloc(sizeof(uint32_t) * np), *cand = malloc(sizeof(uint32_t) * x->T);
    char *routed = malloc(np), *is_cand = malloc(x->T);
    CHECK_STATUS(vs_decode(x->c, x->q, (size_t)x->H * x->d, o, out, (size_t)x->H * x->dv, dg, x->H), VS_OK);
    for (uint32_t h = 0; h < x->H; h++) {
        size_t nr, nc;
        CHECK_STATUS(vs_decode_routed_pages(x->c, h, pages, np, &nr), VS_OK);
        CHECK_STATUS(vs_decode_candidates(x->c, h, cand, x->T, &nc), VS_OK);
        CHECK(nr == dg[h].routed_pages && nc == dg[h].candidates, "selection sizes vs diagnostics");
        uint32_t sink = o->sink_pages < np ? o->sink_pages : np;
        uint32_t recent = o->recent_pages < np - sink ? o->recent_pages : np - sink;
        uint32_t mid = np - sink - recent, want = sink + recent + (o->pages < mid ? o->pages : mid);
        CHECK(nr == want, "routed %zu pages, expected %u", nr, want);
        memset(routed, 0, np);
        for (size_t i = 0; i < nr; i++) {
            CHECK(pages[i] < np && (i == 0 || pages[i] > pages[i - 1]), "routed pages increasing");
            routed[pages[i]] = 1;
        }
        for (uint32_t p = 0; p < sink; p++) CHECK(routed[p], "sink page %u not routed", p);
        for (uint32_t p = np - recent; p < np; p++) CHECK(routed[p], "recent page %u not routed", p);
        /* every routed middle page bounds at least as high as every unrouted one */
        double min_routed = INFINITY, max_unrouted = -INFINITY;
        for (uint32_t p = sink; p < np - recent; p++) {
            double b = bound64(x, h, p);
            if (routed[p]) min_routed = fmin(min_routed, b);
            else max_unrouted = fmax(max_unrouted, b);
        }
        CHECK(min_routed >= max_unrouted - 1e-4 * (1 + fabs(max_unrouted)),
              "top-P by bound: routed min %.6f < unrouted max %.6f", min_routed, max_unrouted);
        /* candidates: the best-scoring routed tokens */
        size_t routed_tokens = 0;
        for (uint32_t t = 0; t < x->T; t++) routed_tokens += routed[t / x->S];
        CHECK(nc == (o->candidates < routed_tokens ? o->candidates : routed_tokens), "candidate count");
        memset(is_cand, 0, x->T);
        double min_c = INFINITY, max_nc = -INFINITY, m = -INFINITY;
        for (size_t i = 0; i < nc; i++) {
            CHECK(routed[cand[i] / x->S] && (i == 0 || cand[i] > cand[i - 1]), "candidate in routed pages, increasing");
            is_cand[cand[i]] = 1;
            min_c = fmin(min_c, score64(x, h, cand[i]));
            m = fmax(m, score64(x, h, cand[i]));
        }
        for (uint32_t t = 0; t < x->T; t++)
            if (routed[t / x->S] && !is_cand[t]) max_nc = fmax(max_nc, score64(x, h, t));
        CHECK(min_c >= max_nc - 1e-4 * (1 + fabs(max_nc)), "top-Kc: candidate %.6f < other %.6f", min_c, max_nc);
        /* output: exact softmax over the candidates */
        double z = 0, o64[512] = {0};
        for (size_t i = 0; i < nc; i++) z += exp(score64(x, h, cand[i]) - m);
        const uint32_t g = h / (x->H / x->G);
        for (size_t i = 0; i < nc; i++) {
            double w = exp(score64(x, h, cand[i]) - m) / z;
            for (uint32_t j = 0; j < x->dv; j++) o64[j] += w * x->v[((size_t)cand[i] * x->G + g) * x->dv + j];
        }
        double err = vs_ref_l2_diff(out + h * x->dv, o64, x->dv), nrm = vs_ref_l2(o64, x->dv);
        CHECK(err <= 1e-5 * nrm + 1e-7, "sparse output vs float64 softmax over C: rel %.3g", err / nrm);
    }
    free(out); free(dg); free(pages); free(cand); free(routed); free(is_cand);
}

static void full_coverage(data *x) {
    vs_decode_options o;
    vs_decode_options_default(&o);
    o.pages = x->T; /* every page, every token */
    o.candidates = x->T;
    float *out = malloc(sizeof(float) * x->H * x->dv);
    double *ref = malloc(sizeof(double) * x->H * x->dv);
    vs_head_diag *dg = malloc(sizeof *dg * x->H);
    vs_ref_attention(x->k, x->v, x->T, x->H, x->G, x->d, x->dv, x->q, 0, ref, NULL);
    CHECK_STATUS(vs_decode(x->c, x->q, (size_t)x->H * x->d, &o, out, (size_t)x->H * x->dv, dg, x->H), VS_OK);
    for (uint32_t h = 0; h < x->H; h++) {
        double err = vs_ref_l2_diff(out + h * x->dv, ref + h * x->dv, x->dv);
        double nrm = vs_ref_l2(ref + h * x->dv, x->dv);
        CHECK(err <= 1e-5 * nrm, "full coverage sparse vs dense float64: rel %.3g", err / nrm);
        CHECK(dg[h].candidates == x->T && dg[h].rho_cert == 0 && isinf(dg[h].gap) &&
                  dg[h].leakage_bound == 0 && dg[h].fallback == VS_FALLBACK_NONE,
              "full coverage diagnostics");
        CHECK(err <= dg[h].error_bound, "full coverage: error %.3g above its bound %.3g", err, dg[h].error_bound);
    }
    free(out); free(ref); free(dg);
}

/* Three planted tokens in three pages: P = Kc = 1 misses two of them, the
   widened retry (x4) finds all three; a tiny tolerance on the same data ends
   dense. */
static void tolerance_ladder(void) {
    data x = make(1, 1, 16, 8, 16, 256, 5);
    const uint32_t planted[] = {3 * 16 + 5, 7 * 16 + 1, 11 * 16 + 15};
    for (int i = 0; i < 3; i++)
        for (uint32_t j = 0; j < x.d; j++) x.k[planted[i] * x.d + j] = 8.0f * x.q[j];
    vs_cache_free(x.c);
    vs_cache_config cfg = {1, 1, 16, 8, 16, VS_DTYPE_F32};
    CHECK_STATUS(vs_cache_create(&cfg, &x.c), VS_OK);
    CHECK_STATUS(vs_cache_append(x.c, x.k, 256 * 16, x.v, 256 * 8), VS_OK);
    vs_decode_options o;
    vs_decode_options_default(&o);
    o.pages = 1;
    o.candidates = 1;
    o.sink_pages = o.recent_pages = 0;
    float out[8];
    double ref[8];
    vs_head_diag dg;
    vs_ref_attention(x.k, x.v, 256, 1, 1, 16, 8, x.q, 0, ref, NULL);
    CHECK_STATUS(vs_decode(x.c, x.q, 16, &o, out, 8, &dg, 1), VS_OK);
    CHECK(dg.fallback == VS_FALLBACK_NONE && dg.rho_cert > 0.5, "without tolerance: rho %.3g", dg.rho_cert);
    o.tolerance = 1e-3f;
    CHECK_STATUS(vs_decode(x.c, x.q, 16, &o, out, 8, &dg, 1), VS_OK);
    CHECK(dg.fallback == VS_FALLBACK_WIDENED, "expected a widened decode, got fallback %u", dg.fallback);
    CHECK(dg.routed_pages == 4 && dg.candidates == 4, "widened x4: %u pages, %u candidates", dg.routed_pages, dg.candidates);
    double err = vs_ref_l2_diff(out, ref, 8);
    CHECK(dg.error_bound <= 1e-3f * dg.output_norm && err <= dg.error_bound, "widened bound %.3g, err %.3g", dg.error_bound, err);
    uint32_t cand[8];
    size_t nc;
    CHECK_STATUS(vs_decode_candidates(x.c, 0, cand, 8, &nc), VS_OK);
    int found = 0;
    for (size_t i = 0; i < nc; i++)
        for (int j = 0; j < 3; j++) found += cand[i] == planted[j];
    CHECK(found == 3, "widened candidates hold %d of the 3 planted tokens", found);
    o.tolerance = 1e-9f; /* unreachable sparsely: dense */
    CHECK_STATUS(vs_decode(x.c, x.q, 16, &o, out, 8, &dg, 1), VS_OK);
    CHECK(dg.fallback == VS_FALLBACK_DENSE && dg.candidates == 256 && dg.rho_cert == 0, "dense fallback diagnostics");
    float dense[8];
    CHECK_STATUS(vs_decode_dense(x.c, x.q, 16, 0, dense, 8), VS_OK);
    CHECK(memcmp(dense, out, sizeof dense) == 0, "dense fallback equals vs_decode_dense bit for bit");
    err = vs_ref_l2_diff(out, ref, 8);
    CHECK(err <= dg.error_bound, "dense fallback error %.3g above its bound %.3g", err, dg.error_bound);
    CHECK_STATUS(vs_decode_candidates(x.c, 0, cand, 8, &nc), VS_OK);
    CHECK(nc == 256 && cand[7] == 7, "dense fallback reports every token as a candidate");
    CHECK_STATUS(vs_cache_truncate(x.c, 100), VS_OK);
    CHECK_STATUS(vs_decode_candidates(x.c, 0, cand, 8, &nc), VS_OK);
    CHECK(nc == 0, "a truncate clears the last selection");
    drop(&x);
}

/* Sparse outputs and diagnostics are bit-identical across ISAs. */
static void isa_identity(data *x, const vs_decode_options *o) {
    const char *isas[4];
    int n = vs_test_isas(isas, 4);
    size_t no = (size_t)x->H * x->dv;
    float *first = malloc(sizeof(float) * no), *out = malloc(sizeof(float) * no);
    vs_head_diag *d0 = malloc(sizeof *d0 * x->H), *d1 = malloc(sizeof *d1 * x->H);
    for (int i = 0; i < n; i++) {
        CHECK_STATUS(vs_set_isa(isas[i]), VS_OK);
        CHECK_STATUS(vs_decode(x->c, x->q, (size_t)x->H * x->d, o, i ? out : first, no, i ? d1 : d0, x->H), VS_OK);
        if (i) {
            CHECK(memcmp(first, out, sizeof(float) * no) == 0, "%s sparse output differs from scalar", isas[i]);
            CHECK(memcmp(d0, d1, sizeof *d0 * x->H) == 0, "%s diagnostics differ from scalar", isas[i]);
        }
    }
    vs_set_isa("auto");
    free(first); free(out); free(d0); free(d1);
}

int main(void) {
    const struct { uint32_t H, G, d, dv, S, T, P, Kc, sink, recent; } cases[] = {
        {1, 1, 16, 16, 16, 1, 4, 8, 1, 1},
        {1, 1, 16, 16, 16, 15, 4, 8, 1, 1},
        {1, 1, 16, 16, 16, 17, 1, 3, 1, 1},
        {2, 1, 33, 20, 16, 1000, 8, 32, 1, 2},
        {4, 2, 64, 64, 32, 3000, 16, 100, 2, 1},
        {4, 4, 128, 128, 16, 4100, 64, 128, 1, 1},
        {3, 1, 7, 5, 1, 500, 20, 10, 3, 3},
        {2, 2, 100, 50, 64, 2000, 3, 500, 0, 0},
        {2, 1, 17, 9, 8, 800, 200, 40, 1, 1},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        data x = make(cases[i].H, cases[i].G, cases[i].d, cases[i].dv, cases[i].S, cases[i].T, 100 + i);
        vs_decode_options o;
        vs_decode_options_default(&o);
        o.pages = cases[i].P;
        o.candidates = cases[i].Kc;
        o.sink_pages = cases[i].sink;
        o.recent_pages = cases[i].recent;
        o.routing = VS_ROUTING_FLAT; /* top-P over every page's bound: checked exactly */
        check_selection(&x, &o);
        isa_identity(&x, &o);
        o.routing = VS_ROUTING_TREE;
        isa_identity(&x, &o);
        full_coverage(&x);
        drop(&x);
    }
    tolerance_ladder();
    /* NULL options are the defaults */
    data x = make(2, 1, 32, 32, 16, 5000, 9);
    float a[64], b[64];
    vs_decode_options o;
    vs_decode_options_default(&o);
    CHECK_STATUS(vs_decode(x.c, x.q, 64, NULL, a, 64, NULL, 0), VS_OK);
    CHECK_STATUS(vs_decode(x.c, x.q, 64, &o, b, 64, NULL, 0), VS_OK);
    CHECK(memcmp(a, b, sizeof a) == 0, "NULL options differ from the defaults");
    drop(&x);
    return vs_test_finish("test_sparse");
}
