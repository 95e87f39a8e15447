/*
 * Hierarchical ("tree") routing, against float64 / brute-force references
 * written here (node n covers pages [16 n, 16 n + 16), F = VS_NODE_PAGES):
 *
 *  a. Node boxes: random sequences of appends (1 token, a partial page, whole
 *     nodes, larger chunks) and truncations (partial pages, node boundaries,
 *     page boundaries, 0 then re-append), with tree, flat and dense decodes in
 *     between, kv_heads 1 and 3, page sizes 1, 4, 64, odd d. After every tree
 *     decode, every node box (read from the decode scratch, internal.h) equals
 *     the elementwise min / max of its pages' boxes (vs_summary) as bfloat16
 *     values and the outward bf16 rounding of its tokens' key min / max
 *     (computed here), so it contains every key; nvnorm is the max of its
 *     pages' vnorm and bounds every value norm; nodes_len = length. The decode
 *     is bit-identical to one on a fresh cache holding the same tokens (no
 *     lazy history) and its bound holds against float64 dense attention.
 *  b. Routing semantics: the routed pages are sink + recent + top-P (by page
 *     bound) of the middle pages of the top-E nodes (by node bound), node and
 *     page bounds recomputed in double from the keys' bf16 boxes (a small
 *     tolerance for ties and float rounding); middle routed pages lie in at
 *     most E nodes; for the last head the expanded nodes (scratch) are checked
 *     exactly. With expand >= nodes (or P >= middle pages) tree == flat bit for
 *     bit: outputs, every diagnostic field, candidates and routed pages.
 *  c. Certificate validity: seeded trials (gap, needle, uniform workloads,
 *     page- and node-clustered keys), several T (partial last pages and
 *     nodes), page sizes 1-16, E = 1-3 (most nodes unexpanded), GQA:
 *     ||out - float64 dense|| <= error_bound, true mass off C <= rho_cert and
 *     <= leakage_bound, true gap >= reported gap. The check has teeth: on
 *     designed trials (node-constant keys, values +v0 on the expanded nodes
 *     and -v0 elsewhere, so the bound is nearly attained) the bound x 0.3 and
 *     rho_cert x 0.3 are violated in most heads; the random trials report how
 *     often that happens on heads with rho_cert < 0.5.
 *  d. Tolerance ladder: a head whose tree bound exceeds the tolerance is
 *     retried flat with widened P and Kc (bit-identical to a flat decode with
 *     those options), then dense (bit-identical to vs_decode_dense); the final
 *     bound is <= tolerance * ||out|| unless dense.
 *  e. Determinism: every ISA gives the same bits with tree routing.
 * Speed is not tested.
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "cli/reference.h"
#include "internal.h"
#include "testutil.h"
#include "workloads.h"

#define NF VS_NODE_PAGES
/* vashista.h: expand 0 means max(AUTO_EXPAND_MIN, ceil(2 P / VS_NODE_PAGES)) */
#define AUTO_EXPAND_MIN VS_EXPAND_MIN
static size_t auto_expand(size_t P) {
    const size_t e = (2 * P + NF - 1) / NF;
    return e > AUTO_EXPAND_MIN ? e : AUTO_EXPAND_MIN;
}


static size_t ceil_div(size_t a, size_t b) { return (a + b - 1) / b; }

/* bfloat16 by arithmetic, independently of the library (as test_cache.c): the
   grid near x has spacing 2^(e-7) for |x| in [2^e, 2^(e+1)) (2^-133 below
   2^-126); rounding down / up is a floor / ceiling on that grid. */
static double bf16_round(double x, int up) {
    if (x == 0.0) return x;
    int e;
    (void)frexp(x, &e);
    const double u = ldexp(1.0, e - 8 > -133 ? e - 8 : -133);
    return (up ? ceil(x / u) : floor(x / u)) * u;
}
static double bf16_widen(uint16_t h) {
    const uint32_t b = (uint32_t)h << 16;
    float f;
    memcpy(&f, &b, sizeof f);
    return f;
}

/* ---- a cache and its tokens ------------------------------------------------------ */

typedef struct model {
    uint32_t H, G, d, dv, S;
    size_t T, cap;
    float *k, *v, *q; /* [T][G][d], [T][G][dv], [H][d] */
    vs_cache *c;
} model;

static model model_new(uint32_t H, uint32_t G, uint32_t d, uint32_t dv, uint32_t S) {
    model m = {H, G, d, dv, S, 0, 0, NULL, NULL, NULL, NULL};
    vs_cache_config cfg = {H, G, d, dv, S, VS_DTYPE_F32};
    CHECK_STATUS(vs_cache_create(&cfg, &m.c), VS_OK);
    m.q = vs_test_xmalloc(sizeof(float) * H * d);
    return m;
}

static void model_free(model *m) {
    vs_cache_free(m->c);
    free(m->k);
    free(m->v);
    free(m->q);
    memset(m, 0, sizeof *m);
}

static void model_reserve(model *m, size_t T) {
    if (T <= m->cap) return;
    m->cap = T + T / 2 + 64;
    m->k = realloc(m->k, sizeof(float) * m->cap * m->G * m->d);
    m->v = realloc(m->v, sizeof(float) * m->cap * m->G * m->dv);
    if (!m->k || !m->v) exit(2);
}

/* Appends n tokens already written at m->k / m->v + T. */
static void model_commit(model *m, size_t n) {
    CHECK_STATUS(vs_cache_append(m->c, m->k + m->T * m->G * m->d, n * m->G * m->d,
                                 m->v + m->T * m->G * m->dv, n * m->G * m->dv),
                 VS_OK);
    m->T += n;
}

static const float *mkey(const model *m, uint32_t g, size_t t) {
    return m->k + (t * m->G + g) * m->d;
}
static const float *mval(const model *m, uint32_t g, size_t t) {
    return m->v + (t * m->G + g) * m->dv;
}
static uint32_t group_of(const model *m, uint32_t h) { return h / (m->H / m->G); }

static double score64(const model *m, uint32_t h, size_t t) {
    const float *k = mkey(m, group_of(m, h), t);
    double s = 0;
    for (uint32_t j = 0; j < m->d; j++) s += (double)m->q[(size_t)h * m->d + j] * k[j];
    return s / sqrt((double)m->d);
}

/* The box bound of tokens [t0, t1) for head h, in double: the keys' min
   rounded down and max rounded up to bfloat16 (what the cache keeps for a page,
   and what a node's min / max of page boxes equals), then max(q lo, q hi). */
static double box_bound64(const model *m, uint32_t h, size_t t0, size_t t1) {
    const uint32_t g = group_of(m, h);
    double u = 0;
    for (uint32_t j = 0; j < m->d; j++) {
        double lo = INFINITY, hi = -INFINITY;
        for (size_t t = t0; t < t1; t++) {
            const double x = mkey(m, g, t)[j];
            lo = x < lo ? x : lo;
            hi = x > hi ? x : hi;
        }
        const double qj = m->q[(size_t)h * m->d + j];
        u += fmax(qj * bf16_round(lo, 0), qj * bf16_round(hi, 1));
    }
    return u / sqrt((double)m->d);
}

/* ---- a. node boxes ------------------------------------------------------------------ */

static int nodes_checked, node_box_checks;

/* Every node box against its pages' boxes and its tokens (see the top). */
static void check_nodes(const model *m, const char *when) {
    const vs_cache *c = m->c;
    const vs_scratch *w = &c->ws;
    const uint32_t S = m->S, d = m->d;
    const size_t T = m->T, np = ceil_div(T, S), nn = ceil_div(np, NF);
    CHECK(w->nodes_len == T, "%s: nodes_len %u after a tree decode of %zu tokens", when,
          w->nodes_len, T);
    CHECK(w->cap_nodes >= nn && w->nsumm && w->nvnorm, "%s: %zu nodes, capacity %zu", when, nn,
          w->cap_nodes);
    if (w->cap_nodes < nn || !w->nsumm) return;
    int ok_pages = 1, ok_keys = 1, ok_contain = 1, ok_vn = 1, ok_vbound = 1;
    for (uint32_t g = 0; g < m->G; g++)
        for (size_t n = 0; n < nn; n++) {
            const uint16_t *nb = w->nsumm + ((size_t)g * w->cap_nodes + n) * 2 * d;
            const size_t p0 = n * NF, p1 = p0 + NF < np ? p0 + NF : np;
            const size_t t0 = p0 * S, t1 = p1 * S < T ? p1 * S : T;
            for (uint32_t j = 0; j < d; j++) {
                const double lo = bf16_widen(nb[2 * j]), hi = bf16_widen(nb[2 * j + 1]);
                double plo = INFINITY, phi = -INFINITY, kmin = INFINITY, kmax = -INFINITY;
                for (size_t p = p0; p < p1; p++) {
                    const uint16_t *pb = vs_summary(c, g, (uint32_t)p);
                    plo = fmin(plo, bf16_widen(pb[2 * j]));
                    phi = fmax(phi, bf16_widen(pb[2 * j + 1]));
                }
                for (size_t t = t0; t < t1; t++) {
                    kmin = fmin(kmin, mkey(m, g, t)[j]);
                    kmax = fmax(kmax, mkey(m, g, t)[j]);
                }
                if (lo != plo || hi != phi) {
                    if (ok_pages)
                        CHECK(0, "%s: g%u node %zu ch %u: box [%.9g, %.9g], pages' [%.9g, %.9g]",
                              when, g, n, j, lo, hi, plo, phi);
                    ok_pages = 0;
                }
                if (lo != bf16_round(kmin, 0) || hi != bf16_round(kmax, 1)) {
                    if (ok_keys)
                        CHECK(0, "%s: g%u node %zu ch %u: box [%.9g, %.9g], keys' [%.9g, %.9g]",
                              when, g, n, j, lo, hi, kmin, kmax);
                    ok_keys = 0;
                }
                if (!(lo <= kmin && kmax <= hi)) ok_contain = 0;
                node_box_checks++;
            }
            const double nv = w->nvnorm[(size_t)g * w->cap_nodes + n];
            double pv = 0;
            for (size_t p = p0; p < p1; p++) pv = fmax(pv, c->vnorm[(size_t)g * c->page_cap + p]);
            if (nv != pv) ok_vn = 0;
            for (size_t t = t0; t < t1; t++) {
                double s = 0;
                for (uint32_t j = 0; j < m->dv; j++) s += (double)mval(m, g, t)[j] * mval(m, g, t)[j];
                if (!(sqrt(s) <= nv)) ok_vbound = 0;
            }
        }
    CHECK(ok_contain, "%s: a node box does not contain one of its keys", when);
    CHECK(ok_vn, "%s: a node's nvnorm is not the max of its pages' vnorm", when);
    CHECK(ok_vbound, "%s: a node's nvnorm is below one of its value norms", when);
    nodes_checked += (int)(nn * m->G);
}

/* A tree decode: nodes checked, then the same decode on a fresh cache holding
   the same tokens (no lazy history) must give the same bits, and the bound
   must hold against float64 dense attention. */
static int lazy_compared, lazy_partial, lazy_cut;
static void tree_decode_check(model *m, vs_test_rng *r, const char *when) {
    /* was the fold lazy (the scratch kept, nodes_len > 0 from an earlier decode)? */
    const uint16_t *nsumm0 = m->c->ws.nsumm;
    const uint32_t len0 = m->c->ws.nodes_len;
    const size_t span = (size_t)NF * m->S;
    const uint32_t H = m->H, dv = m->dv;
    vs_test_fill_normal(r, m->q, (size_t)H * m->d, 1.0);
    vs_decode_options o;
    vs_decode_options_default(&o);
    o.routing = VS_ROUTING_TREE;
    o.expand = (uint32_t)(vs_test_next(r) % 4); /* 0: auto */
    o.pages = 1 + (uint32_t)(vs_test_next(r) % 6);
    o.candidates = 1 + (uint32_t)(vs_test_next(r) % 40);
    o.sink_pages = (uint32_t)(vs_test_next(r) % 2);
    o.recent_pages = (uint32_t)(vs_test_next(r) % 2);
    float *out = vs_test_xmalloc(sizeof(float) * H * dv), *out2 = vs_test_xmalloc(sizeof(float) * H * dv);
    vs_head_diag *dg = vs_test_xmalloc(sizeof *dg * H), *dg2 = vs_test_xmalloc(sizeof *dg2 * H);
    CHECK_STATUS(vs_decode(m->c, m->q, (size_t)H * m->d, &o, out, (size_t)H * dv, dg, H), VS_OK);
    check_nodes(m, when);
    if (m->c->ws.nsumm == nsumm0 && len0 > 0 && len0 < m->T) {
        lazy_partial++; /* folded from token len0 on */
        if (len0 % span == 0) lazy_cut++; /* (a node boundary: after a truncation, or exact) */
    }
    /* a fresh cache, same tokens appended at once */
    vs_cache_config cfg = {H, m->G, m->d, dv, m->S, VS_DTYPE_F32};
    vs_cache *f;
    CHECK_STATUS(vs_cache_create(&cfg, &f), VS_OK);
    CHECK_STATUS(vs_cache_append(f, m->k, m->T * m->G * m->d, m->v, m->T * m->G * dv), VS_OK);
    CHECK_STATUS(vs_decode(f, m->q, (size_t)H * m->d, &o, out2, (size_t)H * dv, dg2, H), VS_OK);
    CHECK(memcmp(out, out2, sizeof(float) * H * dv) == 0 && memcmp(dg, dg2, sizeof *dg * H) == 0,
          "%s: tree decode differs from a fresh cache with the same tokens (T %zu, E %u)", when,
          m->T, o.expand);
    lazy_compared++;
    vs_cache_free(f);
    double *ref = vs_test_xmalloc(sizeof(double) * H * dv);
    vs_ref_attention(m->k, m->v, m->T, H, m->G, m->d, dv, m->q, 0, ref, NULL);
    for (uint32_t h = 0; h < H; h++) {
        const double err = vs_ref_l2_diff(out + (size_t)h * dv, ref + (size_t)h * dv, dv);
        CHECK(err <= dg[h].error_bound, "%s: h%u error %.6g > bound %.6g", when, h, err,
              (double)dg[h].error_bound);
    }
    free(ref);
    free(out), free(out2), free(dg), free(dg2);
}

/* n tokens at key magnitude mag. */
static void add_tokens(model *m, vs_test_rng *r, size_t n, double mag) {
    if (n == 0) return;
    model_reserve(m, m->T + n);
    vs_test_fill_normal(r, m->k + m->T * m->G * m->d, n * m->G * m->d, mag);
    vs_test_fill_normal(r, m->v + m->T * m->G * m->dv, n * m->G * m->dv, 1.0);
    model_commit(m, n);
}

static void cut(model *m, size_t len) {
    CHECK_STATUS(vs_cache_truncate(m->c, len), VS_OK);
    m->T = len;
}

static void node_boxes(vs_test_rng *r) {
    static const struct { uint32_t H, G, d, dv, S; size_t Tmax; } cfgs[] = {
        {1, 1, 3, 2, 1, 700},   {3, 3, 5, 4, 4, 2600}, {6, 3, 7, 3, 64, 5000},
        {2, 1, 9, 5, 4, 2600},  {3, 3, 1, 1, 1, 900},  {1, 1, 7, 6, 64, 4500},
    };
    int ops = 0, tree_decodes = 0, truncs = 0, appends = 0;
    for (size_t ci = 0; ci < sizeof cfgs / sizeof cfgs[0]; ci++) {
        model m = model_new(cfgs[ci].H, cfgs[ci].G, cfgs[ci].d, cfgs[ci].dv, cfgs[ci].S);
        const size_t S = cfgs[ci].S, span = NF * S, Tmax = cfgs[ci].Tmax;
        char when[160];
#define WHEN(...) snprintf(when, sizeof when, __VA_ARGS__)
        /* scripted: the lazy fold within a page, across pages, across nodes */
        add_tokens(&m, r, 2 * span + S + 1, 1.0);
        WHEN("cfg %zu first decode", ci);
        tree_decode_check(&m, r, when);
        add_tokens(&m, r, 1, 3.0); /* one token, larger: grows boxes */
        WHEN("cfg %zu +1 token", ci);
        tree_decode_check(&m, r, when);
        add_tokens(&m, r, span + 3, 2.0);
        WHEN("cfg %zu +node", ci);
        tree_decode_check(&m, r, when);
        /* truncate between two tree decodes: partial page (keeps most of the last node) */
        cut(&m, m.T - (S > 1 ? S / 2 : 1));
        WHEN("cfg %zu truncate partial page", ci);
        tree_decode_check(&m, r, when);
        /* to a node boundary, then smaller keys (stale boxes would stay larger) */
        cut(&m, (m.T / span - 1) * span);
        add_tokens(&m, r, S * 3 + 1, 0.05);
        WHEN("cfg %zu node boundary + small keys", ci);
        tree_decode_check(&m, r, when);
        /* truncate without a decode in between, twice */
        cut(&m, m.T - 1);
        cut(&m, span + 1);
        add_tokens(&m, r, 2, 0.01);
        WHEN("cfg %zu two truncates + append", ci);
        tree_decode_check(&m, r, when);
        /* to 0 then re-append */
        cut(&m, 0);
        add_tokens(&m, r, 1, 0.5);
        WHEN("cfg %zu truncate 0 + 1 token", ci);
        tree_decode_check(&m, r, when);
        add_tokens(&m, r, span * 2 + 5, 0.5);
        WHEN("cfg %zu truncate 0 + re-append", ci);
        tree_decode_check(&m, r, when);
        /* random walk */
        for (int step = 0; step < 60; step++, ops++) {
            const uint64_t k = vs_test_next(r) % 16;
            if (k < 6 && m.T < Tmax) { /* append */
                size_t n;
                switch (vs_test_next(r) % 6) {
                case 0: n = 1; break;
                case 1: n = 1 + vs_test_next(r) % S; break;
                case 2: n = span; break;
                case 3: n = span * (1 + vs_test_next(r) % 2) + vs_test_next(r) % 3; break;
                case 4: n = S; break;
                default: n = 1 + vs_test_next(r) % (Tmax / 4); break;
                }
                if (m.T + n > Tmax) n = Tmax - m.T;
                static const double mags[] = {0.01, 0.3, 1.0, 4.0};
                add_tokens(&m, r, n, mags[vs_test_next(r) % 4]);
                appends++;
            } else if (k < 10 && m.T > 0) { /* truncate */
                size_t len;
                switch (vs_test_next(r) % 6) {
                case 0: len = m.T - 1 - vs_test_next(r) % (m.T < S ? m.T : S); break; /* partial */
                case 1: len = m.T / span * span; break;                              /* node */
                case 2: len = m.T / span ? (m.T / span - 1) * span : 0; break;
                case 3: len = m.T / S * S; break;                                    /* page */
                case 4: len = vs_test_next(r) % 20 == 0 ? 0 : vs_test_next(r) % (m.T + 1); break;
                default: len = m.T - vs_test_next(r) % (span + 1 < m.T ? span + 1 : m.T); break;
                }
                cut(&m, len);
                truncs++;
            } else if (k < 14 && m.T > 0) { /* tree decode */
                WHEN("cfg %zu step %d (T %zu)", ci, step, m.T);
                tree_decode_check(&m, r, when);
                tree_decodes++;
            } else if (m.T > 0) { /* flat or dense: the nodes are left as they were */
                float *out = vs_test_xmalloc(sizeof(float) * m.H * m.dv);
                vs_test_fill_normal(r, m.q, (size_t)m.H * m.d, 1.0);
                if (k == 14) {
                    vs_decode_options o;
                    vs_decode_options_default(&o);
                    o.routing = VS_ROUTING_FLAT;
                    o.pages = 2;
                    CHECK_STATUS(vs_decode(m.c, m.q, (size_t)m.H * m.d, &o, out,
                                           (size_t)m.H * m.dv, NULL, 0),
                                 VS_OK);
                } else {
                    CHECK_STATUS(vs_decode_dense(m.c, m.q, (size_t)m.H * m.d, 0, out,
                                                 (size_t)m.H * m.dv),
                                 VS_OK);
                }
                free(out);
            }
        }
#undef WHEN
        model_free(&m);
    }
    printf("  node boxes: %d random ops (%d appends, %d truncations, %d tree decodes) + scripted "
           "on 6 shapes; %d node boxes checked (%d channel boxes); %d decodes bit-identical to "
           "a fresh cache; %d lazy folds on a kept scratch (%d from a node boundary)\n",
           ops, appends, truncs, tree_decodes, nodes_checked, node_box_checks, lazy_compared,
           lazy_partial, lazy_cut);
    CHECK(lazy_partial >= 20 && lazy_cut >= 5, "only %d lazy folds (%d from a node boundary)",
          lazy_partial, lazy_cut);
}

/* ---- b. routing semantics ----------------------------------------------------------- */

/* Clustered pages (a drifting center plus noise) so that routing matters. */
static model make_clustered(uint32_t H, uint32_t G, uint32_t d, uint32_t dv, uint32_t S, size_t T,
                            vs_test_rng *r) {
    model m = model_new(H, G, d, dv, S);
    model_reserve(&m, T);
    double *center = calloc(d, sizeof(double));
    const double drift = vs_test_uniform(r) < 0.5 ? 0.7 : 0.95;
    for (size_t t = 0; t < T; t++) {
        if (t % S == 0)
            for (uint32_t j = 0; j < d; j++) center[j] = drift * center[j] + vs_test_normal(r);
        for (uint32_t g = 0; g < G; g++)
            for (uint32_t j = 0; j < d; j++)
                m.k[(t * G + g) * d + j] = (float)(center[j] + 0.3 * vs_test_normal(r));
    }
    free(center);
    vs_test_fill_normal(r, m.v, T * G * dv, 1.0);
    vs_test_fill_normal(r, m.q, (size_t)H * d, 1.0);
    model_commit(&m, T);
    return m;
}

static int cmp_desc(const void *a, const void *b) {
    const double x = *(const double *)a, y = *(const double *)b;
    return (x < y) - (x > y);
}

static double tie_tol(double b) { return 1e-4 * (1 + fabs(b)); }

static int routing_heads, routing_exact;

/* One tree decode, every head's routed pages against the definition. */
static void check_tree_routing(model *m, const vs_decode_options *o, const char *what) {
    const uint32_t H = m->H, S = m->S;
    const size_t T = m->T, np = ceil_div(T, S), nn = ceil_div(np, NF);
    const size_t sink = o->sink_pages < np ? o->sink_pages : np;
    const size_t recent = o->recent_pages < np - sink ? o->recent_pages : np - sink;
    const size_t mid = np - sink - recent, P = o->pages;
    const size_t E = o->expand ? o->expand : auto_expand(P);
    float *out = vs_test_xmalloc(sizeof(float) * H * m->dv);
    vs_head_diag *dg = vs_test_xmalloc(sizeof *dg * H);
    uint32_t *pages = vs_test_xmalloc(sizeof(uint32_t) * np);
    double *nb = vs_test_xmalloc(sizeof(double) * nn), *srt = vs_test_xmalloc(sizeof(double) * nn);
    double *pb = vs_test_xmalloc(sizeof(double) * np);
    char *routed = vs_test_xmalloc(np), *inX = vs_test_xmalloc(nn);
    CHECK_STATUS(vs_decode(m->c, m->q, (size_t)H * m->d, o, out, (size_t)H * m->dv, dg, H), VS_OK);
    const int tree = mid > P && E < nn;
    for (uint32_t h = 0; h < H; h++) {
        size_t nr;
        CHECK_STATUS(vs_decode_routed_pages(m->c, h, pages, np, &nr), VS_OK);
        memset(routed, 0, np);
        for (size_t i = 0; i < nr; i++) routed[pages[i]] = 1;
        for (size_t p = 0; p < sink; p++) CHECK(routed[p], "%s h%u: sink page %zu not routed", what, h, p);
        for (size_t p = np - recent; p < np; p++)
            CHECK(routed[p], "%s h%u: recent page %zu not routed", what, h, p);
        size_t nm = 0; /* middle routed */
        for (size_t p = sink; p < np - recent; p++) nm += routed[p];
        CHECK(nr == sink + recent + nm, "%s h%u: %zu routed, %zu sink + %zu recent + %zu middle",
              what, h, nr, sink, recent, nm);
        if (!tree) { /* flat semantics: test_sparse.c; here only the count */
            CHECK(nm == (P < mid ? P : mid), "%s h%u: %zu middle pages routed", what, h, nm);
            continue;
        }
        routing_heads++;
        for (size_t n = 0; n < nn; n++) {
            const size_t t0 = n * NF * S, t1 = (n + 1) * NF * S < T ? (n + 1) * NF * S : T;
            srt[n] = nb[n] = box_bound64(m, h, t0, t1);
        }
        for (size_t p = sink; p < np - recent; p++)
            pb[p] = box_bound64(m, h, p * S, (p + 1) * S < T ? (p + 1) * S : T);
        qsort(srt, nn, sizeof(double), cmp_desc);
        const double bE = srt[E - 1], bE1 = srt[E]; /* E < nn */
        /* nodes of the middle routed pages: at most E, each possibly in the top E */
        size_t nodes_used = 0;
        for (size_t n = 0; n < nn; n++) {
            int used = 0;
            for (size_t p = n * NF; p < (n + 1) * NF && p < np; p++)
                used |= routed[p] && p >= sink && p < np - recent;
            nodes_used += used;
            if (used)
                CHECK(nb[n] >= bE - tie_tol(bE),
                      "%s h%u: node %zu (bound %.6f) expanded, E-th best node bound %.6f", what, h,
                      n, nb[n], bE);
        }
        CHECK(nodes_used <= E, "%s h%u: middle routed pages in %zu nodes, E = %zu", what, h,
              nodes_used, E);
        CHECK(nm <= P, "%s h%u: %zu middle pages routed, P = %zu", what, h, nm, P);
        /* nodes certainly in the top E: their unrouted middle pages bound no higher
           than the routed ones, and if fewer than P pages were routed, none is left */
        double min_routed = INFINITY;
        for (size_t p = sink; p < np - recent; p++)
            if (routed[p]) min_routed = fmin(min_routed, pb[p]);
        size_t mid_certain = 0;
        for (size_t n = 0; n < nn; n++) {
            if (!(nb[n] > bE1 + tie_tol(bE1))) continue;
            for (size_t p = n * NF; p < (n + 1) * NF && p < np; p++) {
                if (p < sink || p >= np - recent) continue;
                mid_certain++;
                if (routed[p]) continue;
                CHECK(nm == P, "%s h%u: page %zu of a top-E node unrouted with %zu < P routed",
                      what, h, p, nm);
                CHECK(pb[p] <= min_routed + tie_tol(min_routed),
                      "%s h%u: unrouted page %zu of a top-E node bounds %.6f > routed min %.6f",
                      what, h, p, pb[p], min_routed);
            }
        }
        CHECK(nm >= (P < mid_certain ? P : mid_certain), "%s h%u: %zu middle routed, %zu certain",
              what, h, nm, mid_certain);
        /* the last head's expanded nodes are still in the scratch: exactly */
        if (h == H - 1 && o->tolerance == 0) {
            const vs_scratch *w = &m->c->ws;
            CHECK(w->r_tree == 1 && w->r_ne == E, "%s: last routing tree %u, %u nodes expanded, E %zu",
                  what, w->r_tree, w->r_ne, E);
            if (w->r_tree != 1 || w->r_ne != E) continue;
            memset(inX, 0, nn);
            for (size_t i = 0; i < E; i++) {
                CHECK(w->node_list[i] < nn && (i == 0 || w->node_list[i] > w->node_list[i - 1]),
                      "%s: expanded nodes increasing", what);
                inX[w->node_list[i] % nn] = 1;
            }
            double minX = INFINITY, maxO = -INFINITY;
            for (size_t n = 0; n < nn; n++) {
                if (inX[n]) minX = fmin(minX, nb[n]);
                else maxO = fmax(maxO, nb[n]);
            }
            CHECK(minX >= maxO - tie_tol(maxO), "%s: expanded min bound %.6f < other node %.6f",
                  what, minX, maxO);
            size_t midX = 0;
            double maxU = -INFINITY;
            for (size_t p = sink; p < np - recent; p++) {
                if (!inX[p / NF]) {
                    CHECK(!routed[p], "%s: routed page %zu of an unexpanded node", what, p);
                    continue;
                }
                midX++;
                if (!routed[p]) maxU = fmax(maxU, pb[p]);
            }
            CHECK(nm == (P < midX ? P : midX), "%s: %zu middle routed, min(P, %zu)", what, nm, midX);
            CHECK(min_routed >= maxU - tie_tol(maxU),
                  "%s: routed page bound %.6f < unrouted page of an expanded node %.6f", what,
                  min_routed, maxU);
            routing_exact++;
        }
    }
    free(out), free(dg), free(pages), free(nb), free(srt), free(pb), free(routed), free(inX);
}

/* Two decodes of the same cache agree bit for bit: outputs, diagnostics, selections. */
static int same_decode(model *m, const vs_decode_options *a, const vs_decode_options *b,
                       const char *what) {
    const uint32_t H = m->H, dv = m->dv;
    const size_t np = ceil_div(m->T, m->S);
    float *o1 = vs_test_xmalloc(sizeof(float) * H * dv), *o2 = vs_test_xmalloc(sizeof(float) * H * dv);
    vs_head_diag *d1 = vs_test_xmalloc(sizeof *d1 * H), *d2 = vs_test_xmalloc(sizeof *d2 * H);
    uint32_t *s1 = vs_test_xmalloc(sizeof(uint32_t) * (H * (m->T + np) + 1));
    uint32_t *s2 = vs_test_xmalloc(sizeof(uint32_t) * (H * (m->T + np) + 1));
    size_t n1 = 0, n2 = 0;
    CHECK_STATUS(vs_decode(m->c, m->q, (size_t)H * m->d, a, o1, (size_t)H * dv, d1, H), VS_OK);
    for (uint32_t h = 0; h < H; h++) {
        size_t n;
        CHECK_STATUS(vs_decode_candidates(m->c, h, s1 + n1, m->T, &n), VS_OK);
        n1 += n;
        CHECK_STATUS(vs_decode_routed_pages(m->c, h, s1 + n1, np, &n), VS_OK);
        n1 += n;
    }
    CHECK_STATUS(vs_decode(m->c, m->q, (size_t)H * m->d, b, o2, (size_t)H * dv, d2, H), VS_OK);
    for (uint32_t h = 0; h < H; h++) {
        size_t n;
        CHECK_STATUS(vs_decode_candidates(m->c, h, s2 + n2, m->T, &n), VS_OK);
        n2 += n;
        CHECK_STATUS(vs_decode_routed_pages(m->c, h, s2 + n2, np, &n), VS_OK);
        n2 += n;
    }
    const int same = memcmp(o1, o2, sizeof(float) * H * dv) == 0 &&
                     memcmp(d1, d2, sizeof *d1 * H) == 0 && n1 == n2 &&
                     memcmp(s1, s2, sizeof(uint32_t) * n1) == 0;
    CHECK(same, "%s: decodes differ (outputs %d, diagnostics %d, selections %d)", what,
          memcmp(o1, o2, sizeof(float) * H * dv) == 0, memcmp(d1, d2, sizeof *d1 * H) == 0,
          n1 == n2 && memcmp(s1, s2, sizeof(uint32_t) * n1) == 0);
    free(o1), free(o2), free(d1), free(d2), free(s1), free(s2);
    return same;
}

static void routing_semantics(vs_test_rng *r) {
    static const struct { uint32_t H, G, d, dv, S; size_t T; } cases[] = {
        {1, 1, 16, 8, 1, 700},  {2, 1, 33, 9, 4, 3000}, {4, 2, 17, 5, 2, 2500},
        {3, 3, 7, 3, 8, 5000},  {1, 1, 5, 4, 1, 16 * 16 + 7}, {2, 2, 64, 16, 16, 9000},
        {1, 1, 3, 3, 3, 1000},
    };
    /* E 0: automatic, max(VS_EXPAND_MIN, ceil(2 P / 16)) */
    static const uint32_t Es[] = {1, 2, 3, 5, 0}, Ps[] = {1, 4, 17, 40, 150};
    static const uint32_t sr[][2] = {{0, 0}, {1, 1}, {2, 3}};
    int identical = 0, decodes = 0;
    for (size_t ci = 0; ci < sizeof cases / sizeof cases[0]; ci++) {
        model m = make_clustered(cases[ci].H, cases[ci].G, cases[ci].d, cases[ci].dv, cases[ci].S,
                                 cases[ci].T, r);
        const size_t np = ceil_div(m.T, m.S), nn = ceil_div(np, NF);
        for (int e = 0; e < 5; e++)
            for (int p = 0; p < 5; p++) {
                vs_decode_options o;
                vs_decode_options_default(&o);
                o.routing = VS_ROUTING_TREE;
                o.expand = Es[e];
                o.pages = Ps[p];
                o.candidates = 32;
                o.sink_pages = sr[(e + p) % 3][0];
                o.recent_pages = sr[(e + p) % 3][1];
                char what[128];
                snprintf(what, sizeof what, "case %zu (T %zu S %u, %zu nodes) E %u P %u", ci, m.T,
                         m.S, nn, o.expand, o.pages);
                check_tree_routing(&m, &o, what);
                decodes++;
                vs_test_fill_normal(r, m.q, (size_t)m.H * m.d, 1.0); /* a fresh query */
            }
        /* expand >= nodes (and P >= middle pages): exactly flat */
        vs_decode_options t, f;
        vs_decode_options_default(&t);
        t.routing = VS_ROUTING_TREE;
        t.pages = 3;
        t.candidates = 24;
        f = t;
        f.routing = VS_ROUTING_FLAT;
        const uint32_t Ebig[] = {(uint32_t)nn, (uint32_t)nn + 7, UINT32_MAX};
        for (int i = 0; i < 3; i++) {
            t.expand = Ebig[i];
            t.tolerance = f.tolerance = i == 2 ? 1e-3f : 0.0f;
            char what[96];
            snprintf(what, sizeof what, "case %zu: tree E=%u vs flat", ci, t.expand);
            identical += same_decode(&m, &t, &f, what);
        }
        t.expand = 0; /* automatic */
        t.tolerance = f.tolerance = 0;
        if (nn <= auto_expand(t.pages)) identical += same_decode(&m, &t, &f, "auto expand >= nodes vs flat");
        t.expand = 1;
        t.pages = f.pages = (uint32_t)np; /* P >= middle pages: every page, whatever E */
        identical += same_decode(&m, &t, &f, "P >= pages: tree vs flat");
        /* tree with E < nodes differs from flat somewhere (the test can tell them apart) */
        model_free(&m);
    }
    printf("  routing: %d tree decodes, %d heads checked against top-E nodes / top-P pages "
           "(%d with the expanded nodes exactly); %d tree decodes bit-identical to flat\n",
           decodes, routing_heads, routing_exact, identical);
}

/* ---- c. certificate validity -------------------------------------------------------- */

enum { KIND_PAGE_CLUSTER = 3, KIND_NODE_CLUSTER = 4, NKIND = 5 };
static const char *kind_name[NKIND] = {"gap", "needle", "uniform", "page-clustered",
                                       "node-clustered"};

/* Keys of a workload (as test_certificate.c), or clustered by page or by node
   (a node-clustered cache has tight node boxes, so unexpanded nodes can be
   certified away). */
static model generate(uint32_t kind, uint32_t H, uint32_t G, uint32_t d, uint32_t dv, uint32_t S,
                      uint32_t T, vs_test_rng *r) {
    model m = model_new(H, G, d, dv, S);
    model_reserve(&m, T);
    const size_t nv = (size_t)T * G * dv;
    if (kind == KIND_PAGE_CLUSTER || kind == KIND_NODE_CLUSTER) {
        const double mag = pow(10.0, 3 * vs_test_uniform(r) - 1.5);
        const double tight = pow(10.0, -3 * vs_test_uniform(r));
        const uint32_t span = kind == KIND_PAGE_CLUSTER ? S : S * NF;
        double *center = calloc(d, sizeof(double));
        for (uint32_t t = 0; t < T; t++) {
            if (t % span == 0)
                for (uint32_t j = 0; j < d; j++) center[j] = vs_test_normal(r);
            for (uint32_t g = 0; g < G; g++)
                for (uint32_t j = 0; j < d; j++)
                    m.k[((size_t)t * G + g) * d + j] =
                        (float)(mag * (center[j] + tight * vs_test_normal(r)));
        }
        free(center);
        vs_test_fill_normal(r, m.v, nv, pow(10.0, 2 * vs_test_uniform(r) - 1));
        vs_test_fill_normal(r, m.q, (size_t)H * d, 1.0);
    } else {
        vs_workload w;
        vs_workload_default(&w, kind);
        w.T = T;
        w.heads = H;
        w.kv_heads = G;
        w.head_dim = d;
        w.value_dim = dv;
        w.seed_lo = (uint32_t)vs_test_next(r);
        if (kind == VS_WL_GAP) {
            w.face = 1 + (uint32_t)(vs_test_next(r) % (T < 8 ? T : 8));
            w.margin = (float)(12 * vs_test_uniform(r));
        }
        if (kind == VS_WL_NEEDLE) {
            w.needles = 1 + (uint32_t)(vs_test_next(r) % 4);
            w.margin = (float)(16 * vs_test_uniform(r));
        }
        if (vs_workload_check(&w) != VS_OK) {
            vs_workload_default(&w, VS_WL_UNIFORM);
            w.T = T, w.heads = H, w.kv_heads = G, w.head_dim = d, w.value_dim = dv;
        }
        CHECK_STATUS(vs_workload_tokens(&w, 0, T, m.k, m.v), VS_OK);
        CHECK_STATUS(vs_workload_queries(&w, (uint32_t)(vs_test_next(r) % 3), m.q), VS_OK);
    }
    model_commit(&m, T);
    return m;
}

typedef struct cstats {
    int heads, tree_heads, violations, informative;
    int over03, rho_over03, rho_tested; /* tree heads: error > 0.3 bound, off > 0.3 rho */
    double worst, worst_tree, worst_rho;
} cstats;
static cstats cst[NKIND];

static int shared_heads; /* heads checked to route the pages of their group's shared routing */
static void cert_trial(uint32_t kind, vs_test_rng *r) {
    static const uint32_t dims[] = {2, 8, 16, 33, 64}, dvs[] = {1, 4, 16, 40};
    static const uint32_t pagesz[] = {1, 2, 4, 8, 16};
    static const uint32_t hg[][2] = {{1, 1}, {2, 1}, {4, 2}, {3, 3}};
    const uint32_t *sh = hg[vs_test_next(r) % 4];
    const uint32_t H = sh[0], G = sh[1], d = dims[vs_test_next(r) % 5], dv = dvs[vs_test_next(r) % 4];
    const uint32_t S = pagesz[vs_test_next(r) % 5];
    /* T: mostly with a partial last node (and page), some exactly whole */
    uint32_t T = 1 + (uint32_t)(vs_test_next(r) % 3000);
    if (vs_test_next(r) % 8 == 0) T = (1 + (uint32_t)(vs_test_next(r) % 12)) * NF * S;
    model m = generate(kind, H, G, d, dv, S, T, r);
    vs_decode_options o;
    vs_decode_options_default(&o);
    o.routing = VS_ROUTING_TREE;
    o.expand = 1 + (uint32_t)(vs_test_next(r) % 3);
    if (vs_test_next(r) % 10 == 0) o.expand = 0;
    o.pages = 1 + (uint32_t)(vs_test_next(r) % 8);
    o.candidates = 1 + (uint32_t)(vs_test_next(r) % 64);
    o.sink_pages = (uint32_t)(vs_test_next(r) % 2);
    o.recent_pages = (uint32_t)(vs_test_next(r) % 3);
    if (vs_test_next(r) % 4 == 0) o.tolerance = 1e-3f;
    /* grouped-query heads sharing one routing (by their mean query), tree or flat */
    const int share = H > G && vs_test_next(r) % 2 == 0;
    if (share) {
        o.share_routing = 1;
        if (vs_test_next(r) % 3 == 0) o.routing = VS_ROUTING_FLAT;
    }
    const size_t np = ceil_div(T, S), nn = ceil_div(np, NF);
    const size_t sink = o.sink_pages < np ? o.sink_pages : np;
    const size_t recent = o.recent_pages < np - sink ? o.recent_pages : np - sink;
    const size_t E = o.expand ? o.expand : auto_expand(o.pages);
    const int tree = o.routing == VS_ROUTING_TREE && np - sink - recent > o.pages && E < nn;

    float *out = vs_test_xmalloc(sizeof(float) * H * dv);
    double *ref = vs_test_xmalloc(sizeof(double) * H * dv), *wts = vs_test_xmalloc(sizeof(double) * H * T);
    vs_head_diag dg[4];
    uint32_t *cand = vs_test_xmalloc(sizeof(uint32_t) * T);
    char *in_c = vs_test_xmalloc(T);
    CHECK_STATUS(vs_decode(m.c, m.q, (size_t)H * d, &o, out, (size_t)H * dv, dg, H), VS_OK);
    vs_ref_attention(m.k, m.v, T, H, G, d, dv, m.q, 0, ref, wts);
    cstats *s = &cst[kind];
    if (share) { /* the heads of a KV head that kept the shared routing routed the same pages */
        uint32_t *pa = vs_test_xmalloc(sizeof(uint32_t) * np), *pb = vs_test_xmalloc(sizeof(uint32_t) * np);
        const uint32_t group = H / G;
        for (uint32_t h = 0; h < H; h++) {
            const uint32_t h0 = h / group * group;
            if (h == h0 || dg[h].fallback != VS_FALLBACK_NONE || dg[h0].fallback != VS_FALLBACK_NONE)
                continue;
            size_t na, nb;
            CHECK_STATUS(vs_decode_routed_pages(m.c, h0, pa, np, &na), VS_OK);
            CHECK_STATUS(vs_decode_routed_pages(m.c, h, pb, np, &nb), VS_OK);
            CHECK(na == nb && memcmp(pa, pb, na * sizeof *pa) == 0,
                  "shared routing: head %u routed other pages than head %u", h, h0);
            shared_heads++;
        }
        free(pa), free(pb);
    }
    for (uint32_t h = 0; h < H; h++) {
        size_t nc;
        CHECK_STATUS(vs_decode_candidates(m.c, h, cand, T, &nc), VS_OK);
        memset(in_c, 0, T);
        for (size_t i = 0; i < nc; i++) in_c[cand[i]] = 1;
        double off = 0, min_c = INFINITY, max_off = -INFINITY;
        for (uint32_t t = 0; t < T; t++) {
            const double sc = score64(&m, h, t);
            if (in_c[t]) min_c = fmin(min_c, sc);
            else {
                off += wts[(size_t)h * T + t];
                max_off = fmax(max_off, sc);
            }
        }
        const double err = vs_ref_l2_diff(out + h * dv, ref + h * dv, dv);
        const double bound = dg[h].error_bound, rho = dg[h].rho_cert;
        const int ok = err <= bound;
        CHECK(ok, "%s T=%u d=%u S=%u E=%u P=%u h%u: error %.6g > bound %.6g (rho %.3g)",
              kind_name[kind], T, d, S, o.expand, o.pages, h, err, bound, rho);
        CHECK(off <= rho * (1 + 1e-9) + 1e-300, "%s T=%u S=%u E=%u: off-candidate mass %.6g > rho_cert %.6g",
              kind_name[kind], T, S, o.expand, off, rho);
        CHECK(off <= dg[h].leakage_bound * (1 + 1e-9) + 1e-300,
              "%s T=%u S=%u E=%u: off mass %.6g > leakage bound %.6g", kind_name[kind], T, S,
              o.expand, off, (double)dg[h].leakage_bound);
        if (nc < T)
            CHECK(min_c - max_off >= dg[h].gap - 1e-9 * (1 + fabs(dg[h].gap)),
                  "%s T=%u S=%u E=%u: true gap %.9g < reported %.9g", kind_name[kind], T, S,
                  o.expand, min_c - max_off, (double)dg[h].gap);
        if (o.tolerance > 0)
            CHECK(dg[h].fallback == VS_FALLBACK_DENSE || bound <= o.tolerance * dg[h].output_norm,
                  "tolerance not honoured: bound %.3g, ||out|| %.3g", bound,
                  (double)dg[h].output_norm);
        s->heads++;
        if (!ok) s->violations++;
        if (rho < 1e-2) s->informative++;
        if (bound > 0) s->worst = fmax(s->worst, err / bound);
        if (tree && dg[h].fallback == VS_FALLBACK_NONE) { /* routed by the tree */
            s->tree_heads++;
            if (bound > 0) s->worst_tree = fmax(s->worst_tree, err / bound);
            /* teeth only where the bound says something: rho_cert < 0.5 */
            if (rho < 0.5 && err > 0.3 * bound) s->over03++;
            if (rho > 0 && rho < 0.5) {
                s->rho_tested++;
                s->worst_rho = fmax(s->worst_rho, off / rho);
                if (off > 0.3 * rho) s->rho_over03++;
            }
        }
    }
    free(out), free(ref), free(wts), free(cand), free(in_c);
    model_free(&m);
}

/* Designed for a tight certificate: every token of a node has the same key
   (node boxes are then the key, up to bf16 rounding), the E best nodes are
   expanded and every one of their tokens is a candidate with value +v0, every
   other token has value -v0. Then out = v0, exact attention (1 - 2 rho) v0,
   ||out - exact|| = 2 rho, and the bound is 2 rho_cert + rounding: a bound
   0.3x as large must be violated. */
static int teeth_heads, teeth_over, teeth_rho_over;
static double teeth_worst, teeth_worst_rho;

/* nn nodes of S-token pages, T in the last node; in each KV group every token
   of a node has the key beta_n u (u the group's query, shared by its heads),
   scores Q - delta_n with delta = 0 on E random nodes (values +v0) and in
   [dlo, dlo + dspan) elsewhere (values -v0). */
static model make_tight(vs_test_rng *r, uint32_t S, uint32_t E, uint32_t nn, uint32_t gqa,
                        uint32_t d, double dlo, double dspan) {
    const uint32_t T = (nn - 1) * NF * S + 1 + (uint32_t)(vs_test_next(r) % (NF * S));
    const uint32_t H = gqa ? 4 : 1, G = gqa ? 2 : 1, dv = 3;
    model m = model_new(H, G, d, dv, S);
    model_reserve(&m, T);
    vs_test_fill_normal(r, m.q, (size_t)H * d, 1.0);
    for (uint32_t g = 0; g < G; g++) {
        double u[64] = {0}, qq = 0;
        for (uint32_t h = g * (H / G); h < (g + 1) * (H / G); h++)
            for (uint32_t j = 0; j < d; j++) {
                if (h > g * (H / G)) m.q[(size_t)h * d + j] = m.q[(size_t)g * (H / G) * d + j];
                u[j] = m.q[(size_t)h * d + j];
            }
        for (uint32_t j = 0; j < d; j++) qq += u[j] * u[j];
        const double Q = qq / sqrt((double)d);
        char *top = calloc(nn, 1); /* E distinct top nodes */
        for (uint32_t e = 0; e < E;) {
            const uint32_t n = (uint32_t)(vs_test_next(r) % nn);
            if (!top[n]) top[n] = 1, e++;
        }
        for (uint32_t n = 0; n < nn; n++) {
            const double delta = top[n] ? 0.0 : dlo + dspan * vs_test_uniform(r);
            const double beta = 1.0 - delta / Q; /* score Q - delta */
            for (uint32_t t = n * NF * S; t < (n + 1) * NF * S && t < T; t++) {
                for (uint32_t j = 0; j < d; j++)
                    m.k[((size_t)t * G + g) * d + j] = (float)(beta * u[j]);
                float *v = m.v + ((size_t)t * G + g) * dv;
                v[0] = top[n] ? 1.0f : -1.0f;
                v[1] = v[2] = 0.0f;
            }
        }
        free(top);
    }
    model_commit(&m, T);
    return m;
}

static void teeth(vs_test_rng *r, int trials) {
    for (int i = 0; i < trials; i++) {
        const uint32_t S = 1u << (vs_test_next(r) % 3), E = 1 + (uint32_t)(vs_test_next(r) % 3);
        const uint32_t gqa = (uint32_t)(vs_test_next(r) % 2), d = 8 + 8 * (uint32_t)(vs_test_next(r) % 3);
        const uint32_t nn = E + 4 + (uint32_t)(vs_test_next(r) % 20);
        model m = make_tight(r, S, E, nn, gqa, d, 3.0, 5.0);
        const uint32_t H = m.H, G = m.G, dv = m.dv, T = (uint32_t)m.T;
        vs_decode_options o;
        vs_decode_options_default(&o);
        o.routing = VS_ROUTING_TREE;
        o.expand = E;
        o.pages = E * NF;
        o.candidates = E * NF * S;
        o.sink_pages = o.recent_pages = 0;
        float *out = vs_test_xmalloc(sizeof(float) * H * dv);
        double *ref = vs_test_xmalloc(sizeof(double) * H * dv), *wts = vs_test_xmalloc(sizeof(double) * H * T);
        vs_head_diag dg[4];
        uint32_t *cand = vs_test_xmalloc(sizeof(uint32_t) * T);
        CHECK_STATUS(vs_decode(m.c, m.q, (size_t)H * d, &o, out, (size_t)H * dv, dg, H), VS_OK);
        vs_ref_attention(m.k, m.v, T, H, G, d, dv, m.q, 0, ref, wts);
        for (uint32_t h = 0; h < H; h++) {
            size_t nc;
            CHECK_STATUS(vs_decode_candidates(m.c, h, cand, T, &nc), VS_OK);
            double off = 1.0;
            for (size_t c = 0; c < nc; c++) off -= wts[(size_t)h * T + cand[c]];
            off = fmax(off, 0.0);
            const double err = vs_ref_l2_diff(out + h * dv, ref + h * dv, dv);
            CHECK(err <= dg[h].error_bound && off <= dg[h].rho_cert * (1 + 1e-9),
                  "teeth T=%u S=%u E=%u h%u: error %.6g (bound %.6g), off mass %.6g (rho %.6g)", T,
                  S, E, h, err, (double)dg[h].error_bound, off, (double)dg[h].rho_cert);
            CHECK(nc <= (size_t)o.candidates, "teeth: %zu candidates", nc);
            teeth_heads++;
            teeth_worst = fmax(teeth_worst, err / dg[h].error_bound);
            teeth_worst_rho = fmax(teeth_worst_rho, off / dg[h].rho_cert);
            teeth_over += err > 0.3 * dg[h].error_bound;
            teeth_rho_over += off > 0.3 * dg[h].rho_cert;
        }
        free(out), free(ref), free(wts), free(cand);
        model_free(&m);
    }
}

static void certificate(vs_test_rng *r, int trials_per_kind) {
    for (uint32_t k = 0; k < NKIND; k++)
        for (int i = 0; i < trials_per_kind; i++) cert_trial(k, r);
    int over = 0, rho_over = 0, tree_heads = 0;
    double worst = 0;
    for (uint32_t k = 0; k < NKIND; k++) {
        const cstats *s = &cst[k];
        printf("  certificate %-14s heads %4d (tree-routed %4d)  violations %d  rho_cert < 1e-2 in "
               "%4d  max error/bound %.3g (tree-routed %.3g)  tree-routed with rho_cert < 0.5: "
               "error > 0.3 bound in %d, rho tested %d, max off/rho %.3g, off > 0.3 rho in %d\n",
               kind_name[k], s->heads, s->tree_heads, s->violations, s->informative, s->worst,
               s->worst_tree, s->over03, s->rho_tested, s->worst_rho, s->rho_over03);
        over += s->over03;
        rho_over += s->rho_over03;
        tree_heads += s->tree_heads;
        worst = fmax(worst, s->worst);
    }
    CHECK(tree_heads >= trials_per_kind * NKIND / 2, "only %d tree-routed heads", tree_heads);
    CHECK(shared_heads >= trials_per_kind * NKIND / 8, "only %d heads used a shared routing",
          shared_heads);
    printf("  certificate: %d heads used their group's shared routing (share_routing)\n",
           shared_heads);
    teeth(r, 40);
    /* teeth: a bound 0.3x as large would have been violated */
    CHECK(teeth_over >= teeth_heads / 2 && teeth_rho_over >= teeth_heads / 2,
          "designed tight trials: error_bound x 0.3 violated in only %d, rho_cert x 0.3 in %d "
          "of %d heads", teeth_over, teeth_rho_over, teeth_heads);
    printf("  certificate: %d random trials, worst error/bound %.3g (tree-routed heads with "
           "rho_cert < 0.5: bound x 0.3 violated in %d, rho_cert x 0.3 in %d); designed tight "
           "trials: %d heads, max error/bound %.3g, max off/rho %.3g, bound x 0.3 violated in %d, "
           "rho_cert x 0.3 in %d\n",
           trials_per_kind * NKIND, worst, over, rho_over, teeth_heads, teeth_worst,
           teeth_worst_rho, teeth_over, teeth_rho_over);
}

/* ---- d. tolerance ladder --------------------------------------------------------------- */

/* A decode's outputs, diagnostics and selections, kept for comparisons. */
typedef struct saved {
    float *out;
    vs_head_diag *dg;
    uint32_t **cand, **pages;
    size_t *nc, *np;
} saved;

static saved save_decode(model *m, const vs_decode_options *o) {
    const uint32_t H = m->H;
    const size_t np = ceil_div(m->T, m->S);
    saved s;
    s.out = vs_test_xmalloc(sizeof(float) * H * m->dv);
    s.dg = vs_test_xmalloc(sizeof *s.dg * H);
    s.cand = vs_test_xmalloc(sizeof *s.cand * H);
    s.pages = vs_test_xmalloc(sizeof *s.pages * H);
    s.nc = vs_test_xmalloc(sizeof(size_t) * H);
    s.np = vs_test_xmalloc(sizeof(size_t) * H);
    CHECK_STATUS(vs_decode(m->c, m->q, (size_t)H * m->d, o, s.out, (size_t)H * m->dv, s.dg, H),
                 VS_OK);
    for (uint32_t h = 0; h < H; h++) {
        s.cand[h] = vs_test_xmalloc(sizeof(uint32_t) * m->T);
        s.pages[h] = vs_test_xmalloc(sizeof(uint32_t) * np);
        CHECK_STATUS(vs_decode_candidates(m->c, h, s.cand[h], m->T, &s.nc[h]), VS_OK);
        CHECK_STATUS(vs_decode_routed_pages(m->c, h, s.pages[h], np, &s.np[h]), VS_OK);
    }
    return s;
}

static void free_saved(saved *s, uint32_t H) {
    for (uint32_t h = 0; h < H; h++) free(s->cand[h]), free(s->pages[h]);
    free(s->out), free(s->dg), free(s->cand), free(s->pages), free(s->nc), free(s->np);
}

/* Head h of two decodes: the same bits (output, diagnostics but the fallback,
   candidates, routed pages). */
static int same_head(const model *m, const saved *a, const saved *b, uint32_t h) {
    vs_head_diag x = a->dg[h], y = b->dg[h];
    x.fallback = y.fallback = 0;
    return memcmp(a->out + (size_t)h * m->dv, b->out + (size_t)h * m->dv, sizeof(float) * m->dv) == 0 &&
           memcmp(&x, &y, sizeof x) == 0 && a->nc[h] == b->nc[h] && a->np[h] == b->np[h] &&
           memcmp(a->cand[h], b->cand[h], sizeof(uint32_t) * a->nc[h]) == 0 &&
           memcmp(a->pages[h], b->pages[h], sizeof(uint32_t) * a->np[h]) == 0;
}

static int ladder_count[3];

/* Every head of a tree decode with a tolerance against the three decodes it
   may have ended with. */
static void ladder_check(model *m, const vs_decode_options *o, const char *what) {
    const uint32_t H = m->H, dv = m->dv;
    vs_decode_options plain = *o, wide = *o;
    plain.tolerance = 0;
    wide.tolerance = 0;
    wide.routing = VS_ROUTING_FLAT;
    wide.pages = o->pages * o->widen;
    wide.candidates = o->candidates * o->widen;
    saved s_plain = save_decode(m, &plain), s_wide = save_decode(m, &wide);
    saved s = save_decode(m, o);
    float *dense = vs_test_xmalloc(sizeof(float) * H * dv);
    CHECK_STATUS(vs_decode_dense(m->c, m->q, (size_t)H * m->d, o->scale, dense, (size_t)H * dv),
                 VS_OK);
    const double tol = o->tolerance;
    for (uint32_t h = 0; h < H; h++) {
        const vs_head_diag *g = &s.dg[h];
        const double ref_norm = g->output_norm;
        CHECK(g->fallback <= VS_FALLBACK_DENSE, "%s h%u: fallback %u", what, h, g->fallback);
        if (g->fallback <= VS_FALLBACK_DENSE) ladder_count[g->fallback]++;
        /* the tree pass ended it iff its bound was within tolerance */
        const int tree_ok = !(s_plain.dg[h].error_bound > tol * s_plain.dg[h].output_norm);
        const int wide_ok = !(s_wide.dg[h].error_bound > tol * s_wide.dg[h].output_norm);
        if (g->fallback == VS_FALLBACK_NONE) {
            CHECK(tree_ok && same_head(m, &s, &s_plain, h),
                  "%s h%u: kept the tree decode (bound %.3g, tolerance x ||out|| %.3g), or it "
                  "differs from one without tolerance", what, h, (double)g->error_bound,
                  tol * ref_norm);
        } else if (g->fallback == VS_FALLBACK_WIDENED) {
            CHECK(!tree_ok, "%s h%u: widened although the tree bound %.3g <= %.3g", what, h,
                  (double)s_plain.dg[h].error_bound, tol * s_plain.dg[h].output_norm);
            CHECK(same_head(m, &s, &s_wide, h),
                  "%s h%u: widened decode differs from flat routing with P x %u, Kc x %u", what, h,
                  o->widen, o->widen);
            CHECK(g->error_bound <= tol * ref_norm, "%s h%u: widened bound %.3g > %.3g", what, h,
                  (double)g->error_bound, tol * ref_norm);
        } else {
            CHECK(!tree_ok && !wide_ok, "%s h%u: dense although a sparse pass was within tolerance",
                  what, h);
            CHECK(memcmp(s.out + (size_t)h * dv, dense + (size_t)h * dv, sizeof(float) * dv) == 0,
                  "%s h%u: dense fallback differs from vs_decode_dense", what, h);
            CHECK(s.nc[h] == m->T && s.np[h] == ceil_div(m->T, m->S),
                  "%s h%u: dense fallback selection %zu tokens %zu pages", what, h, s.nc[h], s.np[h]);
        }
        if (g->fallback != VS_FALLBACK_DENSE)
            CHECK(g->error_bound <= tol * ref_norm, "%s h%u: final bound %.3g > %.3g", what, h,
                  (double)g->error_bound, tol * ref_norm);
    }
    free(dense);
    free_saved(&s, H), free_saved(&s_plain, H), free_saved(&s_wide, H);
}

static void tolerance_ladder(vs_test_rng *r) {
    /* planted: three tokens matching q in three nodes; one node expanded
       misses two, and the unexpanded nodes' bounds are far too loose; the
       flat retry with P = Kc = 4 finds all three */
    model m = model_new(1, 1, 16, 8, 4);
    model_reserve(&m, 2048);
    vs_test_fill_normal(r, m.k, 2048 * 16, 0.5);
    vs_test_fill_normal(r, m.v, 2048 * 8, 1.0);
    vs_test_fill_normal(r, m.q, 16, 1.0);
    double qn = 0;
    for (int j = 0; j < 16; j++) qn += (double)m.q[j] * m.q[j];
    for (int j = 0; j < 16; j++) m.q[j] = (float)(m.q[j] * 4.0 / sqrt(qn)); /* ||q|| = 4 */
    /* planted scores 8 ||q||^2 / 4 = 32, the other keys' page bounds about 2 */
    const uint32_t planted[] = {3 * 64 + 5, 17 * 64 + 33, 29 * 64 + 62};
    for (int i = 0; i < 3; i++)
        for (uint32_t j = 0; j < m.d; j++) m.k[planted[i] * m.d + j] = 8.0f * m.q[j];
    model_commit(&m, 2048);
    vs_decode_options o;
    vs_decode_options_default(&o);
    o.routing = VS_ROUTING_TREE;
    o.expand = 1;
    o.pages = 1;
    o.candidates = 1;
    o.sink_pages = o.recent_pages = 0;
    o.tolerance = 1e-3f;
    saved s = save_decode(&m, &o);
    CHECK(s.dg[0].fallback == VS_FALLBACK_WIDENED, "planted: fallback %u, expected widened",
          s.dg[0].fallback);
    int found = 0;
    for (size_t i = 0; i < s.nc[0]; i++)
        for (int j = 0; j < 3; j++) found += s.cand[0][i] == planted[j];
    CHECK(found == 3 && s.np[0] == 4 && s.nc[0] == 4,
          "planted: widened flat decode holds %d of 3 planted tokens (%zu pages, %zu candidates)",
          found, s.np[0], s.nc[0]);
    free_saved(&s, 1);
    ladder_check(&m, &o, "planted");
    o.tolerance = 1e-9f; /* unreachable sparsely: dense */
    ladder_check(&m, &o, "planted, tolerance 1e-9");
    model_free(&m);
    /* node-constant caches with large margins: the tree's bound is within tolerance */
    for (int i = 0; i < 6; i++) {
        const uint32_t E = 1 + (uint32_t)(i % 3);
        model x = make_tight(r, 1u << (i % 3), E, E + 6 + (uint32_t)(vs_test_next(r) % 10),
                             (uint32_t)(i % 2), 16, 25.0, 5.0);
        vs_decode_options t;
        vs_decode_options_default(&t);
        t.routing = VS_ROUTING_TREE;
        t.expand = E;
        t.pages = E * NF;
        t.candidates = E * NF * x.S;
        t.sink_pages = t.recent_pages = 0;
        t.tolerance = i < 3 ? 1e-3f : 1e-12f; /* 1e-12: the flat retry, or dense */
        char what[64];
        snprintf(what, sizeof what, "ladder tight %d (T %zu, tol %g)", i, x.T, (double)t.tolerance);
        ladder_check(&x, &t, what);
        model_free(&x);
    }
    /* random caches */
    static const float tols[] = {1e-3f, 1e-2f, 0.1f, 0.5f, 1e-6f};
    for (int i = 0; i < 40; i++) {
        const uint32_t kind = (uint32_t)(vs_test_next(r) % NKIND);
        const uint32_t S = 1u << (vs_test_next(r) % 4), gqa = (uint32_t)(vs_test_next(r) % 2);
        const uint32_t T = 200 + (uint32_t)(vs_test_next(r) % 2500);
        model x = generate(kind, gqa ? 4 : 2, gqa ? 2 : 2, 16, 6, S, T, r);
        vs_decode_options t;
        vs_decode_options_default(&t);
        t.routing = VS_ROUTING_TREE;
        t.expand = 1 + (uint32_t)(vs_test_next(r) % 3);
        t.pages = 1 + (uint32_t)(vs_test_next(r) % 8);
        t.candidates = 4 + (uint32_t)(vs_test_next(r) % 64);
        t.widen = 2 + (uint32_t)(vs_test_next(r) % 7);
        t.tolerance = tols[vs_test_next(r) % 5];
        char what[96];
        snprintf(what, sizeof what, "ladder %s T=%u S=%u E=%u P=%u tol %g", kind_name[kind], T, S,
                 t.expand, t.pages, (double)t.tolerance);
        ladder_check(&x, &t, what);
        model_free(&x);
    }
    printf("  tolerance ladder: heads kept tree / widened flat / dense: %d / %d / %d, each "
           "bit-identical to the decode it fell back to\n",
           ladder_count[0], ladder_count[1], ladder_count[2]);
    CHECK(ladder_count[0] > 0 && ladder_count[1] > 0 && ladder_count[2] > 0,
          "the ladder trials did not reach every rung");
}

/* ---- e. determinism across ISAs ------------------------------------------------------- */

static void isa_identity(vs_test_rng *r) {
    const char *isas[4];
    const int n = vs_test_isas(isas, 4);
    int compared = 0;
    for (int i = 0; i < 12; i++) {
        const uint32_t kind = (uint32_t)(i % NKIND), S = 1u << (i % 4);
        const uint32_t gqa = i % 2, T = 300 + (uint32_t)(vs_test_next(r) % 3000);
        model m = generate(kind, gqa ? 4 : 3, gqa ? 2 : 3, 5 + 8 * (uint32_t)(i % 4), 7, S, T, r);
        vs_decode_options o;
        vs_decode_options_default(&o);
        o.routing = VS_ROUTING_TREE;
        o.expand = (uint32_t)(i % 4); /* 0: auto */
        o.pages = 1 + (uint32_t)(i % 5);
        o.candidates = 16;
        o.tolerance = i % 3 == 0 ? 1e-3f : 0.0f;
        o.solver = (uint32_t)(i % 6 == 5 ? VS_SOLVER_EG : i % 6 == 4 ? VS_SOLVER_FW : VS_SOLVER_SOFTMAX);
        saved first;
        memset(&first, 0, sizeof first);
        for (int k = 0; k < n; k++) {
            CHECK_STATUS(vs_set_isa(isas[k]), VS_OK);
            saved s = save_decode(&m, &o);
            if (k == 0) {
                first = s;
                continue;
            }
            for (uint32_t h = 0; h < m.H; h++) {
                CHECK(same_head(&m, &first, &s, h) && first.dg[h].fallback == s.dg[h].fallback,
                      "%s differs from %s: %s T=%u S=%u head %u", isas[k], isas[0],
                      kind_name[kind], T, S, h);
                compared++;
            }
            free_saved(&s, m.H);
        }
        if (n > 0) free_saved(&first, m.H);
        vs_set_isa("auto");
        model_free(&m);
    }
    /* the same history of appends, truncations and tree decodes on each ISA */
    uint64_t hash[4] = {0};
    for (int k = 0; k < n; k++) {
        CHECK_STATUS(vs_set_isa(isas[k]), VS_OK);
        vs_test_rng rr = {77};
        model m = model_new(3, 3, 9, 4, 2);
        uint64_t hsh = 0xCBF29CE484222325ull;
        for (int step = 0; step < 30; step++) {
            if (step % 3 == 0) add_tokens(&m, &rr, 1 + vs_test_next(&rr) % 300, 1.0);
            if (step % 7 == 6) cut(&m, m.T - vs_test_next(&rr) % (m.T / 2 + 1));
            if (!m.T) continue;
            vs_decode_options o;
            vs_decode_options_default(&o);
            o.expand = 1 + (uint32_t)(step % 3);
            o.pages = 2;
            vs_test_fill_normal(&rr, m.q, (size_t)m.H * m.d, 1.0);
            saved s = save_decode(&m, &o);
            const uint8_t *b = (const uint8_t *)s.out;
            for (size_t i = 0; i < sizeof(float) * m.H * m.dv; i++) hsh = (hsh ^ b[i]) * 0x100000001B3ull;
            b = (const uint8_t *)s.dg;
            for (size_t i = 0; i < sizeof *s.dg * m.H; i++) hsh = (hsh ^ b[i]) * 0x100000001B3ull;
            free_saved(&s, m.H);
        }
        hash[k] = hsh;
        CHECK(hash[k] == hash[0], "%s: append/truncate/tree decode history differs from %s",
              isas[k], isas[0]);
        model_free(&m);
    }
    vs_set_isa("auto");
    printf("  ISAs:");
    for (int k = 0; k < n; k++) printf(" %s %016llx", isas[k], (unsigned long long)hash[k]);
    printf("; %d heads compared bit for bit\n", compared);
    CHECK(n >= 1, "no ISA");
}

int main(void) {
    const clock_t t0 = clock();
    vs_test_rng r = {0x7ee5};
    node_boxes(&r);
    routing_semantics(&r);
    certificate(&r, 300);
    tolerance_ladder(&r);
    isa_identity(&r);
    printf("  time %.2f s\n", (double)(clock() - t0) / CLOCKS_PER_SEC);
    return vs_test_finish("test_tree");
}
