/* Dense decode against float64 attention, closed forms, and ISA bit-identity. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "cli/reference.h"
#include "testutil.h"
#include "vashista.h"

typedef struct shape {
    uint32_t heads, kv, d, dv, S, T;
} shape;

/* Builds a cache with random data; appends in uneven chunks to cross pages. */
static vs_cache *make(shape s, uint64_t seed, float **keys, float **values) {
    vs_test_rng r = {seed};
    vs_cache_config cfg = {s.heads, s.kv, s.d, s.dv, s.S, VS_DTYPE_F32};
    vs_cache *c = NULL;
    CHECK_STATUS(vs_cache_create(&cfg, &c), VS_OK);
    size_t nk = (size_t)s.T * s.kv * s.d, nv = (size_t)s.T * s.kv * s.dv;
    *keys = malloc(nk * sizeof(float) + 4);
    *values = malloc(nv * sizeof(float) + 4);
    vs_test_fill_normal(&r, *keys, nk, 1.0);
    vs_test_fill_normal(&r, *values, nv, 1.0);
    for (uint32_t t = 0; t < s.T;) {
        uint32_t n = 1 + (uint32_t)(vs_test_next(&r) % (2 * s.S + 3));
        if (n > s.T - t) n = s.T - t;
        CHECK_STATUS(vs_cache_append(c, *keys + (size_t)t * s.kv * s.d, (size_t)n * s.kv * s.d,
                                     *values + (size_t)t * s.kv * s.dv, (size_t)n * s.kv * s.dv),
                     VS_OK);
        t += n;
    }
    return c;
}

static void check_shape(shape s, uint64_t seed) {
    float *k, *v;
    vs_cache *c = make(s, seed, &k, &v);
    vs_test_rng r = {seed ^ 0xabcdef};
    size_t nq = (size_t)s.heads * s.d, no = (size_t)s.heads * s.dv;
    float *q = malloc(nq * sizeof(float)), *out = malloc(no * sizeof(float));
    float *first = malloc(no * sizeof(float));
    double *ref = malloc(no * sizeof(double));
    vs_test_fill_normal(&r, q, nq, 1.0);
    vs_ref_attention(k, v, s.T, s.heads, s.kv, s.d, s.dv, q, 0, ref, NULL);
    const char *isas[4];
    int n = vs_test_isas(isas, 4);
    for (int i = 0; i < n; i++) {
        vs_set_isa(isas[i]);
        CHECK_STATUS(vs_decode_dense(c, q, nq, 0.0f, out, no), VS_OK);
        double err = vs_ref_l2_diff(out, ref, no), nrm = vs_ref_l2(ref, no);
        CHECK(err <= 1e-5 * nrm, "%s heads=%u kv=%u d=%u dv=%u S=%u T=%u: rel err %.3g",
              isas[i], s.heads, s.kv, s.d, s.dv, s.S, s.T, err / nrm);
        if (i == 0) memcpy(first, out, no * sizeof(float));
        else
            CHECK(memcmp(first, out, no * sizeof(float)) == 0,
                  "%s dense output differs from scalar bit for bit (d=%u T=%u)", isas[i], s.d, s.T);
    }
    vs_set_isa("auto");
    vs_cache_free(c);
    free(k); free(v); free(q); free(out); free(first); free(ref);
}

/* T = 1: the output is the value itself; equal keys: the mean of the values. */
static void closed_forms(void) {
    vs_cache_config cfg = {2, 1, 5, 3, 4, VS_DTYPE_F32};
    vs_cache *c;
    CHECK_STATUS(vs_cache_create(&cfg, &c), VS_OK);
    float k[5] = {1, -2, 3, 0.5f, 0}, v[3] = {0.25f, -7, 3.5f};
    float q[10] = {1, 2, 3, 4, 5, -1, 0, 1, 0, 2}, out[6];
    CHECK_STATUS(vs_cache_append(c, k, 5, v, 3), VS_OK);
    CHECK_STATUS(vs_decode_dense(c, q, 10, 0, out, 6), VS_OK);
    for (int h = 0; h < 2; h++)
        for (int j = 0; j < 3; j++) CHECK(out[h * 3 + j] == v[j], "T=1 output must equal v exactly");
    /* 9 more tokens with the same key: weights all 1/10 */
    float vs[27];
    double mean[3] = {v[0], v[1], v[2]};
    for (int t = 0; t < 9; t++) {
        CHECK_STATUS(vs_cache_append(c, k, 5, vs + 3 * t, 0), VS_E_LENGTH);
        for (int j = 0; j < 3; j++) mean[j] += (vs[3 * t + j] = (float)(t - 4) * 0.5f + (float)j);
        CHECK_STATUS(vs_cache_append(c, k, 5, vs + 3 * t, 3), VS_OK);
    }
    CHECK_STATUS(vs_decode_dense(c, q, 10, 0, out, 6), VS_OK);
    for (int h = 0; h < 2; h++)
        for (int j = 0; j < 3; j++)
            CHECK(fabs(out[h * 3 + j] - mean[j] / 10) <= 1e-6 * (1 + fabs(mean[j] / 10)),
                  "equal keys: output %g, mean %g", out[h * 3 + j], mean[j] / 10);
    vs_cache_free(c);
}

int main(void) {
    const uint32_t dims[] = {1, 3, 17, 64, 100, 128, 256};
    const uint32_t S = 16;
    const uint32_t Ts[] = {1, S - 1, S + 1, 10000};
    uint64_t seed = 1;
    for (size_t i = 0; i < sizeof dims / sizeof dims[0]; i++)
        for (size_t j = 0; j < sizeof Ts / sizeof Ts[0]; j++)
            check_shape((shape){2, 1, dims[i], dims[i], S, Ts[j]}, seed++);
    /* grouped-query attention, dv != d, odd page sizes, the largest dims */
    check_shape((shape){8, 2, 40, 24, 7, 999}, 77);
    check_shape((shape){6, 3, 128, 64, 32, 4097}, 78);
    check_shape((shape){4, 4, 9, 130, 1, 300}, 79);
    check_shape((shape){1, 1, 512, 512, 64, 700}, 80);
    closed_forms();
    return vs_test_finish("test_dense");
}
