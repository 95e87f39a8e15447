/*
 * The certificate is a guarantee: on thousands of seeded trials of every
 * workload, against float64 dense attention on the same float32 inputs,
 *   true output error  <= error_bound,
 *   true mass off C    <= rho_cert  and  <= leakage_bound,
 *   true gap           >= the reported gap,
 * and the face theorem itself holds on planted gaps. Needles are recalled.
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli/reference.h"
#include "testutil.h"
#include "vashista.h"
#include "workloads.h"

enum { KIND_CLUSTERED = 3 }; /* this test's own generator: clustered pages, any magnitude */

typedef struct trial {
    uint32_t H, G, d, dv, S, T;
    float *k, *v, *q;
} trial;

static void generate(trial *x, uint32_t kind, vs_test_rng *r) {
    const size_t nk = (size_t)x->T * x->G * x->d, nv = (size_t)x->T * x->G * x->dv;
    x->k = malloc(nk * sizeof(float));
    x->v = malloc(nv * sizeof(float));
    x->q = malloc((size_t)x->H * x->d * sizeof(float));
    if (kind == KIND_CLUSTERED) {
        /* page-wise clusters of random tightness, at a random magnitude */
        const double mag = pow(10.0, 4 * vs_test_uniform(r) - 2), tight = pow(10.0, -3 * vs_test_uniform(r));
        double *center = calloc(x->d, sizeof(double));
        for (uint32_t t = 0; t < x->T; t++) {
            if (t % x->S == 0)
                for (uint32_t j = 0; j < x->d; j++) center[j] = vs_test_normal(r);
            for (uint32_t g = 0; g < x->G; g++)
                for (uint32_t j = 0; j < x->d; j++)
                    x->k[((size_t)t * x->G + g) * x->d + j] = (float)(mag * (center[j] + tight * vs_test_normal(r)));
        }
        free(center);
        vs_test_fill_normal(r, x->v, nv, pow(10.0, 2 * vs_test_uniform(r) - 1));
        vs_test_fill_normal(r, x->q, (size_t)x->H * x->d, 1.0);
        return;
    }
    vs_workload w;
    vs_workload_default(&w, kind);
    w.T = x->T;
    w.heads = x->H;
    w.kv_heads = x->G;
    w.head_dim = x->d;
    w.value_dim = x->dv;
    w.seed_lo = (uint32_t)vs_test_next(r);
    if (kind == VS_WL_GAP) {
        w.face = 1 + (uint32_t)(vs_test_next(r) % (x->T < 8 ? x->T : 8));
        w.margin = (float)(12 * vs_test_uniform(r));
    }
    if (kind == VS_WL_NEEDLE) {
        w.needles = 1 + (uint32_t)(vs_test_next(r) % 4);
        w.margin = (float)(16 * vs_test_uniform(r));
    }
    if (vs_workload_check(&w) != VS_OK) { /* shape too small for needles: use uniform */
        vs_workload_default(&w, VS_WL_UNIFORM);
        w.T = x->T; w.heads = x->H; w.kv_heads = x->G; w.head_dim = x->d; w.value_dim = x->dv;
    }
    CHECK_STATUS(vs_workload_tokens(&w, 0, x->T, x->k, x->v), VS_OK);
    CHECK_STATUS(vs_workload_queries(&w, (uint32_t)(vs_test_next(r) % 3), x->q), VS_OK);
}

static double score64(const trial *x, uint32_t h, uint32_t t) {
    const uint32_t g = h / (x->H / x->G);
    double s = 0;
    for (uint32_t j = 0; j < x->d; j++) s += (double)x->q[h * x->d + j] * x->k[((size_t)t * x->G + g) * x->d + j];
    return s / sqrt((double)x->d);
}

static int violations[4], informative[4];
static double tightest[4]; /* max of error / bound */

static void run_trial(uint32_t kind, vs_test_rng *r) {
    static const uint32_t dims[] = {2, 8, 16, 33, 64, 128}, dvs[] = {1, 4, 16, 40};
    static const uint32_t pagesz[] = {1, 3, 8, 16, 32};
    static const uint32_t hg[][2] = {{1, 1}, {2, 1}, {4, 2}};
    trial x;
    const uint32_t *sh = hg[vs_test_next(r) % 3];
    x.H = sh[0];
    x.G = sh[1];
    x.d = dims[vs_test_next(r) % 6];
    x.dv = dvs[vs_test_next(r) % 4];
    x.S = pagesz[vs_test_next(r) % 5];
    x.T = 1 + (uint32_t)(vs_test_next(r) % 2500);
    generate(&x, kind, r);
    vs_decode_options o;
    vs_decode_options_default(&o);
    o.pages = 1 + (uint32_t)(vs_test_next(r) % 8);
    o.candidates = 1 + (uint32_t)(vs_test_next(r) % 64);
    o.sink_pages = (uint32_t)(vs_test_next(r) % 2);
    o.recent_pages = (uint32_t)(vs_test_next(r) % 3);
    if (vs_test_next(r) % 4 == 0) o.tolerance = 1e-3f;

    vs_cache_config cfg = {x.H, x.G, x.d, x.dv, x.S, VS_DTYPE_F32};
    vs_cache *c;
    CHECK_STATUS(vs_cache_create(&cfg, &c), VS_OK);
    CHECK_STATUS(vs_cache_append(c, x.k, (size_t)x.T * x.G * x.d, x.v, (size_t)x.T * x.G * x.dv), VS_OK);
    float *out = malloc(sizeof(float) * x.H * x.dv);
    double *ref = malloc(sizeof(double) * x.H * x.dv), *wts = malloc(sizeof(double) * x.H * x.T);
    vs_head_diag dg[4];
    uint32_t *cand = malloc(sizeof(uint32_t) * x.T);
    char *in_c = malloc(x.T);
    CHECK_STATUS(vs_decode(c, x.q, (size_t)x.H * x.d, &o, out, (size_t)x.H * x.dv, dg, x.H), VS_OK);
    vs_ref_attention(x.k, x.v, x.T, x.H, x.G, x.d, x.dv, x.q, 0, ref, wts);
    for (uint32_t h = 0; h < x.H; h++) {
        size_t nc;
        CHECK_STATUS(vs_decode_candidates(c, h, cand, x.T, &nc), VS_OK);
        memset(in_c, 0, x.T);
        for (size_t i = 0; i < nc; i++) in_c[cand[i]] = 1;
        double off = 0, min_c = INFINITY, max_off = -INFINITY, m = -INFINITY;
        for (uint32_t t = 0; t < x.T; t++) {
            double s = score64(&x, h, t);
            if (in_c[t]) {
                min_c = fmin(min_c, s);
                m = fmax(m, s);
            } else {
                off += wts[(size_t)h * x.T + t];
                max_off = fmax(max_off, s);
            }
        }
        const double err = vs_ref_l2_diff(out + h * x.dv, ref + h * x.dv, x.dv);
        int ok = err <= dg[h].error_bound;
        CHECK(ok, "kind %u T=%u d=%u S=%u: error %.6g > bound %.6g (rho %.3g)", kind, x.T, x.d, x.S, err,
              dg[h].error_bound, dg[h].rho_cert);
        /* mass and gap statements are about exact arithmetic: allow double rounding */
        CHECK(off <= dg[h].rho_cert * (1 + 1e-9) + 1e-300, "kind %u: off-candidate mass %.6g > rho_cert %.6g", kind, off, dg[h].rho_cert);
        CHECK(off <= dg[h].leakage_bound * (1 + 1e-9) + 1e-300, "kind %u: off mass %.6g > leakage bound %.6g", kind, off, dg[h].leakage_bound);
        if (nc < x.T)
            CHECK(min_c - max_off >= dg[h].gap - 1e-9 * (1 + fabs(dg[h].gap)), "kind %u: true gap %.9g < reported %.9g", kind,
                  min_c - max_off, dg[h].gap);
        /* effective support: exp(entropy) of the softmax over C */
        if (dg[h].fallback != VS_FALLBACK_DENSE) {
            double z = 0, e = 0;
            for (size_t i = 0; i < nc; i++) z += exp(score64(&x, h, cand[i]) - m);
            for (size_t i = 0; i < nc; i++) {
                double a = exp(score64(&x, h, cand[i]) - m) / z;
                if (a > 0) e -= a * log(a);
            }
            CHECK(fabs(dg[h].effective_support - exp(e)) <= 1e-3 * exp(e), "effective support %.6g vs %.6g",
                  dg[h].effective_support, exp(e));
        }
        if (o.tolerance > 0)
            CHECK(dg[h].fallback == VS_FALLBACK_DENSE || dg[h].error_bound <= o.tolerance * dg[h].output_norm,
                  "tolerance not honoured");
        if (!ok) violations[kind]++;
        if (dg[h].rho_cert < 1e-2) informative[kind]++;
        if (dg[h].error_bound > 0 && err / dg[h].error_bound > tightest[kind]) tightest[kind] = err / dg[h].error_bound;
    }
    vs_cache_free(c);
    free(out); free(ref); free(wts); free(cand); free(in_c);
    free(x.k); free(x.v); free(x.q);
}

/* The face theorem on planted gaps, in float64: rho <= (T - m)/m e^-Delta. */
static void face_theorem(vs_test_rng *r) {
    for (int i = 0; i < 200; i++) {
        trial x = {1, 1, 32, 8, 16, 500 + (uint32_t)(vs_test_next(r) % 3000), NULL, NULL, NULL};
        vs_workload w;
        vs_workload_default(&w, VS_WL_GAP);
        w.T = x.T; w.head_dim = x.d; w.value_dim = x.dv;
        w.face = 1 + (uint32_t)(vs_test_next(r) % 6);
        w.margin = (float)(10 * vs_test_uniform(r));
        w.seed_lo = (uint32_t)vs_test_next(r);
        x.k = malloc(sizeof(float) * x.T * x.d);
        x.v = malloc(sizeof(float) * x.T * x.dv);
        x.q = malloc(sizeof(float) * x.d);
        CHECK_STATUS(vs_workload_tokens(&w, 0, x.T, x.k, x.v), VS_OK);
        CHECK_STATUS(vs_workload_queries(&w, 0, x.q), VS_OK);
        uint32_t face[8], nf;
        CHECK_STATUS(vs_workload_marked(&w, face, 8, &nf), VS_OK);
        CHECK(nf == w.face, "marked %u of a face of %u", nf, w.face);
        double *wts = malloc(sizeof(double) * x.T), out[8];
        vs_ref_attention(x.k, x.v, x.T, 1, 1, x.d, x.dv, x.q, 0, out, wts);
        char *on = calloc(x.T, 1);
        for (uint32_t j = 0; j < nf; j++) on[face[j]] = 1;
        double min_f = INFINITY, max_o = -INFINITY, off = 0;
        for (uint32_t t = 0; t < x.T; t++) {
            double s = score64(&x, 0, t);
            if (on[t]) min_f = fmin(min_f, s);
            else {
                max_o = fmax(max_o, s);
                off += wts[t];
            }
        }
        const double delta = min_f - max_o;
        CHECK(delta >= w.margin - 1e-4, "planted gap %.6f below the margin %.3f", delta, w.margin);
        CHECK(off <= (double)(x.T - nf) / nf * exp(-delta) * (1 + 1e-9), "face theorem: rho %.6g > bound %.6g", off,
              (double)(x.T - nf) / nf * exp(-delta));
        free(x.k); free(x.v); free(x.q); free(wts); free(on);
    }
}

/* Needles at random depths are among the candidates at the default options. */
static void needle_recall(vs_test_rng *r) {
    int found = 0, total = 0;
    for (int i = 0; i < 20; i++) {
        vs_workload w;
        vs_workload_default(&w, VS_WL_NEEDLE);
        w.T = 20000 + (uint32_t)(vs_test_next(r) % 20000);
        w.head_dim = w.value_dim = 64;
        w.heads = 2;
        w.seed_lo = (uint32_t)vs_test_next(r);
        float *k = malloc(sizeof(float) * 4096 * 64), *v = malloc(sizeof(float) * 4096 * 64), q[128], out[128];
        vs_cache_config cfg = {2, 1, 64, 64, 0, VS_DTYPE_F32};
        vs_cache *c;
        CHECK_STATUS(vs_cache_create(&cfg, &c), VS_OK);
        for (uint32_t t = 0; t < w.T; t += 4096) {
            uint32_t n = w.T - t < 4096 ? w.T - t : 4096;
            CHECK_STATUS(vs_workload_tokens(&w, t, n, k, v), VS_OK);
            CHECK_STATUS(vs_cache_append(c, k, (size_t)n * 64, v, (size_t)n * 64), VS_OK);
        }
        CHECK_STATUS(vs_workload_queries(&w, (uint32_t)i, q), VS_OK);
        CHECK_STATUS(vs_decode(c, q, 128, NULL, out, 128, NULL, 0), VS_OK);
        uint32_t needles[16], nn, cand[4096];
        size_t nc;
        CHECK_STATUS(vs_workload_marked(&w, needles, 16, &nn), VS_OK);
        for (uint32_t h = 0; h < 2; h++) {
            CHECK_STATUS(vs_decode_candidates(c, h, cand, 4096, &nc), VS_OK);
            for (uint32_t j = 0; j < nn; j++) {
                int hit = 0;
                for (size_t a = 0; a < nc; a++) hit |= cand[a] == needles[j];
                found += hit;
                total++;
            }
        }
        vs_cache_free(c);
        free(k);
        free(v);
    }
    CHECK(total > 0 && found == total, "needle recall %d / %d at the default options", found, total);
}

int main(void) {
    vs_test_rng r = {2026};
    const uint32_t kinds[] = {VS_WL_GAP, VS_WL_NEEDLE, VS_WL_UNIFORM, KIND_CLUSTERED};
    for (int k = 0; k < 4; k++)
        for (int i = 0; i < 1000; i++) run_trial(kinds[k], &r);
    face_theorem(&r);
    needle_recall(&r);
    const char *names[] = {"gap", "needle", "uniform", "clustered"};
    for (int k = 0; k < 4; k++)
        printf("%-9s violations %d, heads with rho_cert < 1e-2: %d, max error/bound %.3g\n", names[k],
               violations[k], informative[k], tightest[k]);
    return vs_test_finish("test_certificate");
}
