/* Paged cache: summaries against brute force, append/truncate across pages. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "internal.h"
#include "testutil.h"

/* bfloat16 by arithmetic, independently of the library: the grid near x has
   spacing 2^(e-7) for |x| in [2^e, 2^(e+1)) (2^-133 below 2^-126); rounding
   down / up is a floor / ceiling on that grid, exact in double. */
static double bf16_round(float x, int up) {
    if (x == 0.0f) return x;
    int e;
    (void)frexp(x, &e); /* |x| in [2^(e-1), 2^e) */
    const double u = ldexp(1.0, e - 8 > -133 ? e - 8 : -133);
    return (up ? ceil(x / u) : floor(x / u)) * u;
}
static double bf16_widen(uint16_t h) {
    const uint32_t b = (uint32_t)h << 16;
    float f;
    memcpy(&f, &b, sizeof f);
    return f;
}

/* Every page summary is the min/max of its keys rounded outward to bfloat16
   (min down, max up); vnorm bounds the value norms from above, tightly; kabs
   bounds every |k| and every |lo|, |hi|, and is attained by one of them. */
static void check_summaries(const vs_cache *c, const char *when) {
    const uint32_t d = c->cfg.head_dim, dv = c->cfg.value_dim;
    int ok = 1, kabs_ok = 1;
    double *kmax = calloc((size_t)c->cfg.kv_heads * d, sizeof *kmax);
    for (uint32_t g = 0; g < c->cfg.kv_heads; g++)
        for (uint32_t p = 0; p < c->npages; p++) {
            const uint32_t n = vs_page_count(c, p);
            const float *k = vs_page_keys(c, p, g), *v = vs_page_values(c, p, g);
            const float *kabs = c->kabs + (size_t)g * d;
            const uint16_t *pair = vs_summary(c, g, p); /* lo_j, hi_j = pair[2j], pair[2j + 1] */
            double vmax = 0;
            for (uint32_t j = 0; j < d; j++) {
                float mn = INFINITY, mx = -INFINITY;
                for (uint32_t i = 0; i < n; i++) {
                    float x = k[(size_t)i * d + j];
                    mn = x < mn ? x : mn;
                    mx = x > mx ? x : mx;
                    if (fabsf(x) > kabs[j]) kabs_ok = 0;
                }
                const double l = bf16_widen(pair[2 * j]), h = bf16_widen(pair[2 * j + 1]);
                if (l != bf16_round(mn, 0) || h != bf16_round(mx, 1)) ok = 0;
                if (!(l <= mn && mx <= h)) ok = 0;
                if (fabs(l) > kabs[j] || fabs(h) > kabs[j]) kabs_ok = 0;
                double *km = kmax + (size_t)g * d + j;
                *km = fmax(*km, fmax(fabs(l), fabs(h)));
            }
            for (uint32_t i = 0; i < n; i++) {
                double s = 0;
                for (uint32_t j = 0; j < dv; j++) s += (double)v[(size_t)i * dv + j] * v[(size_t)i * dv + j];
                vmax = sqrt(s) > vmax ? sqrt(s) : vmax;
            }
            const double vn = c->vnorm[(size_t)g * c->page_cap + p];
            if (!(vn >= vmax && vn <= vmax * (1 + 1e-6) + 1e-30)) ok = 0;
        }
    for (size_t i = 0; i < (size_t)c->cfg.kv_heads * d; i++)
        if (c->kabs[i] != kmax[i]) kabs_ok = 0;
    free(kmax);
    CHECK(ok, "page summaries wrong %s (T=%u)", when, c->length);
    CHECK(kabs_ok, "kabs wrong %s (T=%u): must bound |k|, |lo|, |hi| and be attained", when,
          c->length);
}

static void dense_of(vs_cache *c, const float *q, float *out) {
    CHECK_STATUS(vs_decode_dense(c, q, (size_t)c->cfg.heads * c->cfg.head_dim, 0, out,
                                 (size_t)c->cfg.heads * c->cfg.value_dim), VS_OK);
}

int main(void) {
    const uint32_t S = 16, G = 2, H = 4, d = 19, dv = 11, T = 200;
    vs_test_rng r = {42};
    float *keys = malloc(sizeof(float) * T * G * d), *vals = malloc(sizeof(float) * T * G * dv);
    vs_test_fill_normal(&r, keys, (size_t)T * G * d, 2.0);
    vs_test_fill_normal(&r, vals, (size_t)T * G * dv, 1.0);
    float q[H * d], a[H * dv], b[H * dv];
    vs_test_fill_normal(&r, q, H * d, 1.0);
    vs_cache_config cfg = {H, G, d, dv, S, VS_DTYPE_F32};

    /* one token at a time vs one call: same summaries, same bits out */
    vs_cache *one, *all;
    CHECK_STATUS(vs_cache_create(&cfg, &one), VS_OK);
    CHECK_STATUS(vs_cache_create(&cfg, &all), VS_OK);
    for (uint32_t t = 0; t < T; t++) {
        CHECK_STATUS(vs_cache_append(one, keys + (size_t)t * G * d, G * d, vals + (size_t)t * G * dv, G * dv), VS_OK);
        if (t == S - 2 || t == S - 1 || t == S || t == 3 * S) check_summaries(one, "after single appends");
    }
    CHECK_STATUS(vs_cache_append(all, keys, (size_t)T * G * d, vals, (size_t)T * G * dv), VS_OK);
    size_t len = 0;
    CHECK_STATUS(vs_cache_length(all, &len), VS_OK);
    CHECK(len == T, "length %zu, expected %u", len, T);
    CHECK(all->npages == (T + S - 1) / S, "pages %u", all->npages);
    check_summaries(all, "after a bulk append");
    dense_of(one, q, a);
    dense_of(all, q, b);
    CHECK(memcmp(a, b, sizeof a) == 0, "token-by-token and bulk appends decode differently");

    /* truncate to every interesting length, check summaries, then re-append
       the rest and get the original cache back bit for bit */
    const uint32_t cuts[] = {T, T - 1, 5 * S + 1, 5 * S, 5 * S - 1, S + 1, S, S - 1, 1, 0};
    for (size_t i = 0; i < sizeof cuts / sizeof cuts[0]; i++) {
        uint32_t n = cuts[i];
        CHECK_STATUS(vs_cache_truncate(all, n), VS_OK);
        CHECK_STATUS(vs_cache_length(all, &len), VS_OK);
        CHECK(len == n, "length after truncate(%u) is %zu", n, len);
        CHECK(all->npages == (n + S - 1) / S, "pages after truncate(%u): %u", n, all->npages);
        check_summaries(all, "after truncate");
        if (n == 0) {
            float o[H * dv];
            CHECK_STATUS(vs_decode_dense(all, q, H * d, 0, o, H * dv), VS_E_EMPTY);
        }
        CHECK_STATUS(vs_cache_append(all, keys + (size_t)n * G * d, (size_t)(T - n) * G * d,
                                     vals + (size_t)n * G * dv, (size_t)(T - n) * G * dv), VS_OK);
        check_summaries(all, "after re-append");
        dense_of(all, q, b);
        CHECK(memcmp(a, b, sizeof a) == 0, "truncate(%u) + re-append changed the output", n);
    }
    CHECK_STATUS(vs_cache_truncate(all, T + 1), VS_E_LENGTH);

    /* info: sizes of what is stored, summaries at about 1/S of the KV bytes */
    vs_cache_info info;
    CHECK_STATUS(vs_cache_get_info(all, &info), VS_OK);
    CHECK(info.length == T && info.pages == (T + S - 1) / S && info.page_size == S, "info shape");
    CHECK(info.kv_bytes == (double)info.pages * S * G * (d + dv) * 4, "kv_bytes %g", info.kv_bytes);
    /* two bfloat16 rows and one float per page and KV head */
    CHECK(info.summary_bytes == (double)info.pages * G * (2 * d * 2 + 4), "summary_bytes %g",
          info.summary_bytes);
    CHECK(info.reserved_bytes >= info.kv_bytes + info.summary_bytes, "reserved_bytes");

    /* default page size */
    vs_cache_config dflt = cfg;
    dflt.page_size = 0;
    vs_cache *c3;
    CHECK_STATUS(vs_cache_create(&dflt, &c3), VS_OK);
    CHECK_STATUS(vs_cache_get_info(c3, &info), VS_OK);
    CHECK(info.page_size == VS_DEFAULT_PAGE_SIZE, "default page size %u", info.page_size);
    vs_cache_free(c3);

    vs_cache_free(one);
    vs_cache_free(all);
    vs_cache_free(NULL);
    free(keys);
    free(vals);
    return vs_test_finish("test_cache");
}
