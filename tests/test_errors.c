/* Bad inputs: each gets its own status and leaves the cache as it was;
   allocation failure at every allocation of a call leaves it intact too. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "internal.h"
#include "testutil.h"

enum { H = 4, G = 2, D = 6, DV = 5, S = 4, T0 = 10 };

static float keys[64 * G * D], vals[64 * G * DV], q[H * D];

/* A fingerprint of the cache's observable state: length and dense output. */
typedef struct { size_t len; float out[H * DV]; } snap;

static snap take(vs_cache *c) {
    snap s;
    memset(&s, 0, sizeof s);
    vs_cache_length(c, &s.len);
    if (s.len) CHECK_STATUS(vs_decode_dense(c, q, H * D, 0, s.out, H * DV), VS_OK);
    return s;
}

static void same(vs_cache *c, snap before, const char *what) {
    snap after = take(c);
    CHECK(after.len == before.len && memcmp(after.out, before.out, sizeof after.out) == 0,
          "%s changed the cache", what);
}

static vs_cache *fresh(void) {
    vs_cache_config cfg = {H, G, D, DV, S, VS_DTYPE_F32};
    vs_cache *c = NULL;
    CHECK_STATUS(vs_cache_create(&cfg, &c), VS_OK);
    CHECK_STATUS(vs_cache_append(c, keys, T0 * G * D, vals, T0 * G * DV), VS_OK);
    return c;
}

static void bad_configs(void) {
    const struct { vs_cache_config cfg; int want; } cases[] = {
        {{0, 1, 8, 8, 16, 0}, VS_E_HEADS},
        {{4, 0, 8, 8, 16, 0}, VS_E_HEADS},
        {{6, 4, 8, 8, 16, 0}, VS_E_HEADS},
        {{VS_MAX_HEADS + 1, 1, 8, 8, 16, 0}, VS_E_HEADS},
        {{1, 1, 0, 8, 16, 0}, VS_E_DIM},
        {{1, 1, 8, 0, 16, 0}, VS_E_DIM},
        {{1, 1, VS_MAX_DIM + 1, 8, 16, 0}, VS_E_DIM},
        {{1, 1, 8, VS_MAX_DIM + 1, 16, 0}, VS_E_DIM},
        {{1, 1, 8, 8, VS_MAX_PAGE_SIZE + 1, 0}, VS_E_PAGE},
        {{1, 1, 8, 8, 16, 7}, VS_E_DTYPE},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        vs_cache *c = (vs_cache *)&c; /* must be reset to NULL on error */
        CHECK_STATUS(vs_cache_create(&cases[i].cfg, &c), cases[i].want);
        CHECK(c == NULL, "create case %zu left *out set", i);
    }
    vs_cache *c;
    CHECK_STATUS(vs_cache_create(NULL, &c), VS_E_NULL);
    CHECK_STATUS(vs_cache_create(&cases[0].cfg, NULL), VS_E_NULL);
}

/* A sparse decode's observable result (output and diagnostics), for
   "the cache is unchanged": the same decode before and after must agree. */
typedef struct dsnap { float out[H * DV]; vs_head_diag diag[H]; } dsnap;

static dsnap take_sparse(vs_cache *c, const vs_decode_options *o) {
    dsnap s;
    memset(&s, 0, sizeof s);
    CHECK_STATUS(vs_decode(c, q, H * D, o, s.out, H * DV, s.diag, H), VS_OK);
    return s;
}

/* eg / fw options: each invalid value is VS_E_OPTION (eps is checked for fw
   too, although fw does not use it), a query or keys whose squared norm the
   solvers cannot take is VS_E_RANGE, and none of it changes the cache. */
static void projection_options(vs_cache *c) {
    float out[H * DV];
    vs_head_diag diag[H];
    snap s0 = take(c);
    for (uint32_t solver = VS_SOLVER_EG; solver <= VS_SOLVER_FW; solver++) {
        vs_decode_options o;
        vs_decode_options_default(&o);
        o.solver = solver;
        o.tolerance = 1e-3f;
        const dsnap before = take_sparse(c, &o);
        const struct { float eps, scale, tol; uint32_t max_iter; const char *what; } bad[] = {
            {0.0f, 0, 1e-6f, 100, "eps 0"},
            {-0.05f, 0, 1e-6f, 100, "eps < 0"},
            {NAN, 0, 1e-6f, 100, "eps NaN"},
            {INFINITY, 0, 1e-6f, 100, "eps Inf"},
            {2e9f, 0, 1e-6f, 100, "eps > 1e9"},
            {5e-10f, 0, 1e-6f, 100, "eps < 1e-9"},
            {1e-9f, 100.0f, 1e-6f, 100, "eps / scale < 1e-9"},
            {1e9f, 0.5f, 1e-6f, 100, "eps / scale > 1e9"},
            {0.05f, 0, 1e-6f, 0, "max_iter 0"},
            {0.05f, 0, 0.0f, 100, "solver_tol 0"},
            {0.05f, 0, -1e-6f, 100, "solver_tol < 0"},
            {0.05f, 0, NAN, 100, "solver_tol NaN"},
            {0.05f, 0, INFINITY, 100, "solver_tol Inf"},
            {0.05f, 1e-3f, 1e38f, 100, "solver_tol / scale overflows float"},
            {0.05f, 100.0f, 1e-44f, 100, "solver_tol / scale underflows to 0"},
        };
        for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
            vs_decode_options b = o;
            b.eps = bad[i].eps;
            b.scale = bad[i].scale;
            b.solver_tol = bad[i].tol;
            b.max_iter = bad[i].max_iter;
            const int st = vs_decode(c, q, H * D, &b, out, H * DV, diag, H);
            CHECK(st == VS_E_OPTION, "solver %u, %s: status %d (%s), expected VS_E_OPTION", solver,
                  bad[i].what, st, vs_strerror(st));
        }
        /* the edges of the ranges are accepted */
        vs_decode_options e = o;
        e.eps = 1e-9f * 1.001f;
        e.scale = 1.0f;
        e.max_iter = 1;
        CHECK_STATUS(vs_decode(c, q, H * D, &e, out, H * DV, diag, H), VS_OK);
        e.eps = 1e9f;
        e.solver_tol = 1e30f;
        CHECK_STATUS(vs_decode(c, q, H * D, &e, out, H * DV, diag, H), VS_OK);
        /* query: finite and far inside VS_MAX_ABS (check_query accepts it for
           softmax), but ||q_h||^2 = D * 1e16 > 1e15 */
        float qb[H * D];
        memcpy(qb, q, sizeof qb);
        for (int j = 0; j < D; j++) qb[D + j] = 1e8f; /* head 1 only */
        CHECK_STATUS(vs_decode(c, qb, H * D, &o, out, H * DV, diag, H), VS_E_RANGE);
        vs_decode_options sm;
        vs_decode_options_default(&sm);
        CHECK_STATUS(vs_decode(c, qb, H * D, &sm, out, H * DV, diag, H), VS_OK);
        /* keys: one key with elements 1e8 makes sum_j kabs_j^2 > 1e15 */
        vs_cache *cb = fresh();
        float kb[G * D], vb[G * DV];
        memcpy(kb, keys, sizeof kb);
        memcpy(vb, vals, sizeof vb);
        for (int j = 0; j < D; j++) kb[j] = 1e8f; /* KV head 0 */
        CHECK_STATUS(vs_cache_append(cb, kb, G * D, vb, G * DV), VS_OK);
        CHECK_STATUS(vs_decode(cb, q, H * D, &o, out, H * DV, diag, H), VS_E_RANGE);
        CHECK_STATUS(vs_decode(cb, q, H * D, &sm, out, H * DV, diag, H), VS_OK);
        vs_cache_free(cb);
        const dsnap after = take_sparse(c, &o);
        CHECK(memcmp(&before, &after, sizeof before) == 0,
              "solver %u: rejected decodes changed a later decode", solver);
    }
    /* softmax does not use eps, max_iter or solver_tol */
    vs_decode_options sm;
    vs_decode_options_default(&sm);
    sm.eps = 0.0f;
    sm.max_iter = 0;
    sm.solver_tol = NAN;
    CHECK_STATUS(vs_decode(c, q, H * D, &sm, out, H * DV, diag, H), VS_OK);
    same(c, s0, "rejected eg / fw decodes");
}

static void bad_calls(void) {
    vs_cache *c = fresh();
    snap s0 = take(c);
    float out[H * DV], big[G * D];
    vs_head_diag diag[H];
    vs_decode_options o;
    vs_decode_options_default(&o);

    /* append */
    CHECK_STATUS(vs_cache_append(NULL, keys, G * D, vals, G * DV), VS_E_NULL);
    CHECK_STATUS(vs_cache_append(c, NULL, G * D, vals, G * DV), VS_E_NULL);
    CHECK_STATUS(vs_cache_append(c, keys, G * D, NULL, G * DV), VS_E_NULL);
    CHECK_STATUS(vs_cache_append(c, keys, G * D - 1, vals, G * DV), VS_E_LENGTH);
    CHECK_STATUS(vs_cache_append(c, keys, 2 * G * D, vals, G * DV), VS_E_LENGTH);
    CHECK_STATUS(vs_cache_append(c, keys, G * D, vals, G * DV + 1), VS_E_LENGTH);
    CHECK_STATUS(vs_cache_append(c, keys, 0, vals, 0), VS_OK);
    same(c, s0, "rejected appends");
    const float poison[] = {NAN, INFINITY, -INFINITY, 2e30f, -3e38f};
    const int want[] = {VS_E_NONFINITE, VS_E_NONFINITE, VS_E_NONFINITE, VS_E_RANGE, VS_E_RANGE};
    for (int i = 0; i < 5; i++) {
        /* poison the last element of the second token: nothing may be stored */
        float kk[2 * G * D], vv[2 * G * DV];
        memcpy(kk, keys, sizeof kk);
        memcpy(vv, vals, sizeof vv);
        kk[2 * G * D - 1] = poison[i];
        CHECK_STATUS(vs_cache_append(c, kk, 2 * G * D, vv, 2 * G * DV), want[i]);
        kk[2 * G * D - 1] = 0;
        vv[G * DV] = poison[i];
        CHECK_STATUS(vs_cache_append(c, kk, 2 * G * D, vv, 2 * G * DV), want[i]);
    }
    same(c, s0, "appends with NaN, Inf or huge values");

    /* truncate */
    CHECK_STATUS(vs_cache_truncate(NULL, 0), VS_E_NULL);
    CHECK_STATUS(vs_cache_truncate(c, T0 + 1), VS_E_LENGTH);
    same(c, s0, "a rejected truncate");

    /* decode (dense and sparse share the checks; test both) */
    for (int sparse = 0; sparse < 2; sparse++) {
#define DEC(cc, qq, nq, oo, no) \
    (sparse ? vs_decode(cc, qq, nq, &o, oo, no, diag, H) : vs_decode_dense(cc, qq, nq, 0, oo, no))
        CHECK_STATUS(DEC(NULL, q, H * D, out, H * DV), VS_E_NULL);
        CHECK_STATUS(DEC(c, NULL, H * D, out, H * DV), VS_E_NULL);
        CHECK_STATUS(DEC(c, q, H * D, NULL, H * DV), VS_E_NULL);
        CHECK_STATUS(DEC(c, q, H * D - 1, out, H * DV), VS_E_LENGTH);
        CHECK_STATUS(DEC(c, q, H * D, out, H * DV + 1), VS_E_LENGTH);
        float qb[H * D];
        for (int i = 0; i < 5; i++) {
            memcpy(qb, q, sizeof qb);
            qb[H * D - 1] = poison[i];
            CHECK_STATUS(DEC(c, qb, H * D, out, H * DV), want[i]);
        }
        /* finite query and keys whose scores could overflow float */
        memcpy(qb, q, sizeof qb);
        for (int j = 0; j < H * D; j++) qb[j] = 1e29f;
        for (int j = 0; j < G * D; j++) big[j] = 1e29f;
        vs_cache *cb = fresh();
        CHECK_STATUS(vs_cache_append(cb, big, G * D, vals, G * DV), VS_OK);
        CHECK_STATUS(DEC(cb, qb, H * D, out, H * DV), VS_E_RANGE);
        vs_cache_free(cb);
#undef DEC
    }
    CHECK_STATUS(vs_decode_dense(c, q, H * D, -1.0f, out, H * DV), VS_E_OPTION);
    CHECK_STATUS(vs_decode_dense(c, q, H * D, NAN, out, H * DV), VS_E_OPTION);
    CHECK_STATUS(vs_decode(c, q, H * D, &o, out, H * DV, diag, H - 1), VS_E_LENGTH);
    const struct { int field; float value; } bad_opt[] = {
        {0, 0}, {1, 0}, {2, 7}, {3, 1}, {4, -1}, {4, NAN}, {5, -1e-3f}, {5, INFINITY}, {6, NAN},
    };
    for (size_t i = 0; i < sizeof bad_opt / sizeof bad_opt[0]; i++) {
        vs_decode_options b = o;
        switch (bad_opt[i].field) {
        case 0: b.pages = 0; break;
        case 1: b.candidates = 0; break;
        case 2: b.solver = 7; break;
        case 3: b.widen = 1; break;
        case 4: b.scale = bad_opt[i].value; break;
        case 5: b.tolerance = bad_opt[i].value; break;
        case 6: b.tolerance = bad_opt[i].value; break;
        }
        CHECK_STATUS(vs_decode(c, q, H * D, &b, out, H * DV, diag, H), VS_E_OPTION);
    }
    same(c, s0, "rejected decodes");

    /* routing: 0 (flat) and 1 (tree) only; expand is any value (0 = automatic) */
    const uint32_t bad_routing[] = {2, 3, 255, UINT32_MAX};
    for (size_t i = 0; i < sizeof bad_routing / sizeof bad_routing[0]; i++) {
        vs_decode_options b = o;
        b.routing = bad_routing[i];
        CHECK_STATUS(vs_decode(c, q, H * D, &b, out, H * DV, diag, H), VS_E_OPTION);
        b.expand = 1; /* whatever expand is */
        CHECK_STATUS(vs_decode(c, q, H * D, &b, out, H * DV, diag, H), VS_E_OPTION);
    }
    same(c, s0, "decodes with an invalid routing");
    /* share_routing: 0 or 1 */
    for (size_t i = 0; i < sizeof bad_routing / sizeof bad_routing[0]; i++) {
        vs_decode_options b = o;
        b.share_routing = bad_routing[i];
        CHECK_STATUS(vs_decode(c, q, H * D, &b, out, H * DV, diag, H), VS_E_OPTION);
    }
    same(c, s0, "decodes with an invalid share_routing");
    const uint32_t expands[] = {0, 1, 2, 1000, UINT32_MAX - 1, UINT32_MAX};
    for (uint32_t routing = VS_ROUTING_FLAT; routing <= VS_ROUTING_TREE; routing++)
        for (size_t i = 0; i < sizeof expands / sizeof expands[0]; i++) {
            vs_decode_options b = o;
            b.routing = routing;
            b.expand = expands[i];
            b.pages = 1;
            CHECK_STATUS(vs_decode(c, q, H * D, &b, out, H * DV, diag, H), VS_OK);
            b.tolerance = 1e-3f;
            b.widen = UINT32_MAX; /* P x widen saturates */
            CHECK_STATUS(vs_decode(c, q, H * D, &b, out, H * DV, diag, H), VS_OK);
        }
    same(c, s0, "decodes with every expand");

    projection_options(c);

    /* empty cache */
    vs_cache_config cfg = {H, G, D, DV, S, VS_DTYPE_F32};
    vs_cache *e;
    CHECK_STATUS(vs_cache_create(&cfg, &e), VS_OK);
    CHECK_STATUS(vs_decode_dense(e, q, H * D, 0, out, H * DV), VS_E_EMPTY);
    CHECK_STATUS(vs_decode(e, q, H * D, NULL, out, H * DV, NULL, 0), VS_E_EMPTY);
    vs_cache_free(e);

    /* info / length / selection */
    size_t n;
    vs_cache_info info;
    CHECK_STATUS(vs_cache_length(NULL, &n), VS_E_NULL);
    CHECK_STATUS(vs_cache_length(c, NULL), VS_E_NULL);
    CHECK_STATUS(vs_cache_get_info(c, NULL), VS_E_NULL);
    CHECK_STATUS(vs_cache_get_info(NULL, &info), VS_E_NULL);
    CHECK_STATUS(vs_decode_candidates(c, H, NULL, 0, &n), VS_E_HEADS);
    CHECK_STATUS(vs_decode_candidates(c, 0, NULL, 0, NULL), VS_E_NULL);
    CHECK_STATUS(vs_decode_routed_pages(c, 0, NULL, 4, &n), VS_E_NULL);

    /* ISA names */
    CHECK_STATUS(vs_set_isa("no-such-isa"), VS_E_ISA);
    CHECK_STATUS(vs_set_isa(NULL), VS_E_NULL);
    CHECK_STATUS(vs_set_isa("scalar"), VS_OK);
    CHECK(strcmp(vs_isa_name(), "scalar") == 0, "isa name after forcing scalar");
    CHECK_STATUS(vs_set_isa("auto"), VS_OK);

    /* every status has its own message */
    for (int a = 0; a >= VS_E_CAPACITY; a--)
        for (int b = a - 1; b >= VS_E_CAPACITY; b--)
            CHECK(strcmp(vs_strerror(a), vs_strerror(b)) != 0, "statuses %d and %d share a message", a, b);
    CHECK(strcmp(vs_strerror(12345), "unknown status code") == 0, "unknown status text");
    vs_cache_free(c);
}

/* Make the Nth allocation of a call fail, for every N until the call
   succeeds: each failure must be VS_E_NOMEM and leave the cache intact. */
static void allocation_failures(void) {
    /* every solver on its own cache, so that each one's first decodes grow the
       scratch (eg / fw with a tolerance: T-sized scratch for the dense projection) */
    for (uint32_t solver = VS_SOLVER_SOFTMAX; solver <= VS_SOLVER_FW; solver++) {
        vs_cache *c = fresh();
        float out[H * DV];
        vs_head_diag diag[H];
        int decode_failures = 0;
        for (int round = 0; round < 3; round++) {
            /* append enough pages to grow the page arrays */
            size_t n = 40 + 8 * round;
            int done = 0;
            for (long fail = 0; fail < 200 && !done; fail++) {
                snap s0 = take(c);
                vs_test_fail_alloc_after(fail);
                int st = vs_cache_append(c, keys, n * G * D, vals, n * G * DV);
                vs_test_fail_alloc_after(-1);
                if (st == VS_OK) done = 1;
                else {
                    CHECK_STATUS(st, VS_E_NOMEM);
                    same(c, s0, "a failed append");
                }
            }
            CHECK(done, "append never succeeded");
            vs_decode_options o;
            vs_decode_options_default(&o);
            o.pages = 3 + round * 5; /* larger scratch each round */
            o.candidates = 7 + round * 9;
            o.tolerance = 1e-3f;
            o.solver = solver;
            done = 0;
            for (long fail = 0; fail < 200 && !done; fail++) {
                snap s0 = take(c);
                vs_test_fail_alloc_after(fail);
                int st = vs_decode(c, q, H * D, &o, out, H * DV, diag, H);
                vs_test_fail_alloc_after(-1);
                if (st == VS_OK) done = 1;
                else {
                    CHECK_STATUS(st, VS_E_NOMEM);
                    same(c, s0, "a failed decode");
                    decode_failures++;
                }
            }
            CHECK(done, "decode never succeeded");
            if (done) { /* the decode that finally succeeded is what an unhindered cache gives */
                float ref[H * DV];
                vs_head_diag rdiag[H];
                vs_cache *r = fresh();
                for (int k = 0; k <= round; k++)
                    CHECK_STATUS(vs_cache_append(r, keys, (40 + 8 * (size_t)k) * G * D, vals,
                                                 (40 + 8 * (size_t)k) * G * DV),
                                 VS_OK);
                CHECK_STATUS(vs_decode(r, q, H * D, &o, ref, H * DV, rdiag, H), VS_OK);
                CHECK(memcmp(ref, out, sizeof ref) == 0 && memcmp(rdiag, diag, sizeof rdiag) == 0,
                      "solver %u round %d: decode after allocation failures differs", solver,
                      round);
                vs_cache_free(r);
            }
        }
        CHECK(decode_failures > 0, "solver %u: no decode allocation was ever failed", solver);
        vs_cache_free(c);
    }
    /* create */
    vs_cache_config cfg = {H, G, D, DV, S, VS_DTYPE_F32};
    for (long fail = 0; fail < 3; fail++) {
        vs_cache *x = NULL;
        vs_test_fail_alloc_after(fail);
        int st = vs_cache_create(&cfg, &x);
        vs_test_fail_alloc_after(-1);
        if (st == VS_OK) vs_cache_free(x);
        else CHECK(st == VS_E_NOMEM && x == NULL, "create failure %ld: status %d", fail, st);
    }
}

/* Tree routing (a few nodes expanded, so node bounds, expanded pages and the
   lazy node update all run) through appends, truncations and decodes, with
   the Nth allocation of every append and decode made to fail until it
   succeeds: every failure is VS_E_NOMEM and leaves the cache as it was, and
   each decode that finally succeeds gives the bits (outputs and diagnostics)
   of the same decode on a cache that was never disturbed, built from the same
   appends and truncations in one go. */
static void allocation_failures_tree(void) {
    enum { ROUNDS = 12, MAXOPS = 24 };
    /* per round: up to two operations (n > 0: append n tokens; n < 0: truncate
       by -n; 0: nothing), then a tree decode */
    static const int plan[ROUNDS][2] = {
        {60, 64}, {64, 0}, {-37, 0}, {1, 0}, {-5, 0}, {64, 0},
        {1, 0},   {-1000, 64}, {-3, 0}, {2, 0}, {-70, 0}, {-1, 0},
    };
    /* appended tokens come from varied offsets of a larger pool, at varied
       magnitudes, so that a node box that kept a dropped token would differ */
    static float tkeys[256 * G * D], tvals[256 * G * DV];
    vs_test_rng rng = {99};
    for (int t = 0; t < 256; t++) {
        vs_test_fill_normal(&rng, tkeys + t * G * D, G * D, t % 3 == 0 ? 3.0 : 0.5);
        vs_test_fill_normal(&rng, tvals + t * G * DV, G * DV, 1.0);
    }
    int ops[MAXOPS][2], nops = 0; /* {n, offset} */
    vs_cache *c = fresh(); /* T0 tokens, page size S = 4: a node is 64 tokens */
    int append_failures = 0, decode_failures = 0, compared = 0;
    for (int round = 0; round < ROUNDS; round++) {
        for (int k = 0; k < 2; k++) {
            int n = plan[round][k];
            size_t len;
            vs_cache_length(c, &len);
            if (n < 0) { /* truncate: never allocates, even when an allocation would fail */
                /* -1000: to the last node boundary (a node is 16 pages, 64 tokens) */
                const size_t keep = (size_t)-n >= len ? len / 64 * 64 : len - (size_t)-n;
                vs_test_fail_alloc_after(0);
                CHECK_STATUS(vs_cache_truncate(c, keep), VS_OK);
                vs_test_fail_alloc_after(-1);
                ops[nops][0] = -(int)(len - keep);
                ops[nops++][1] = 0;
            } else if (n > 0) {
                const int off = (round * 37 + k * 11) % (256 - n);
                int done = 0;
                for (long fail = 0; fail < 200 && !done; fail++) {
                    snap s0 = take(c);
                    vs_test_fail_alloc_after(fail);
                    const int st = vs_cache_append(c, tkeys + off * G * D, (size_t)n * G * D,
                                                   tvals + off * G * DV, (size_t)n * G * DV);
                    vs_test_fail_alloc_after(-1);
                    if (st == VS_OK) done = 1;
                    else {
                        CHECK_STATUS(st, VS_E_NOMEM);
                        same(c, s0, "a failed append (tree)");
                        append_failures++;
                    }
                }
                CHECK(done, "append never succeeded");
                ops[nops][0] = n;
                ops[nops++][1] = off;
            }
        }
        vs_decode_options o;
        vs_decode_options_default(&o);
        o.routing = VS_ROUTING_TREE;
        o.expand = round % 3 == 2 ? 2 : 1; /* 3 to 7 nodes */
        /* sizes that repeat, so that later rounds reuse the scratch and its node
           boxes (the lazy update after appends and truncations) */
        o.pages = 1 + (uint32_t)(round % 3);
        o.candidates = 5 + 7 * (uint32_t)(round % 3);
        o.sink_pages = (uint32_t)(round % 2);
        o.tolerance = round % 4 == 1 ? 1e-3f : 0.0f; /* the retry is flat: its own scratch */
        o.solver = round % 4 == 3 ? VS_SOLVER_EG : VS_SOLVER_SOFTMAX;
        float out[H * DV];
        vs_head_diag diag[H];
        int done = 0;
        for (long fail = 0; fail < 200 && !done; fail++) {
            snap s0 = take(c);
            vs_test_fail_alloc_after(fail);
            const int st = vs_decode(c, q, H * D, &o, out, H * DV, diag, H);
            vs_test_fail_alloc_after(-1);
            if (st == VS_OK) done = 1;
            else {
                CHECK_STATUS(st, VS_E_NOMEM);
                same(c, s0, "a failed tree decode");
                decode_failures++;
            }
        }
        CHECK(done, "tree decode never succeeded (round %d)", round);
        if (!done) continue;
        /* the undisturbed cache: the same operations, one decode */
        vs_cache *r = fresh();
        for (int i = 0; i < nops; i++) {
            size_t len;
            vs_cache_length(r, &len);
            const int n = ops[i][0], off = ops[i][1];
            if (n > 0)
                CHECK_STATUS(vs_cache_append(r, tkeys + off * G * D, (size_t)n * G * D,
                                             tvals + off * G * DV, (size_t)n * G * DV),
                             VS_OK);
            else CHECK_STATUS(vs_cache_truncate(r, len - (size_t)-n), VS_OK);
        }
        float ref[H * DV];
        vs_head_diag rdiag[H];
        CHECK_STATUS(vs_decode(r, q, H * D, &o, ref, H * DV, rdiag, H), VS_OK);
        CHECK(memcmp(ref, out, sizeof ref) == 0 && memcmp(rdiag, diag, sizeof rdiag) == 0,
              "tree round %d: decode after allocation failures differs from an undisturbed cache",
              round);
        /* and the same selection */
        for (uint32_t h = 0; h < H; h++) {
            uint32_t a[512], b[512];
            size_t na, nb;
            CHECK_STATUS(vs_decode_routed_pages(c, h, a, 512, &na), VS_OK);
            CHECK_STATUS(vs_decode_routed_pages(r, h, b, 512, &nb), VS_OK);
            CHECK(na == nb && memcmp(a, b, (na < 512 ? na : 512) * sizeof *a) == 0,
                  "tree round %d head %u: routed pages differ from an undisturbed cache", round, h);
        }
        compared++;
        vs_cache_free(r);
    }
    CHECK(decode_failures > 0 && append_failures > 0,
          "tree: no allocation was ever failed (appends %d, decodes %d)", append_failures,
          decode_failures);
    CHECK(compared == ROUNDS, "tree: %d of %d rounds compared", compared, ROUNDS);
    vs_cache_free(c);
}

int main(void) {
    vs_test_rng r = {7};
    vs_test_fill_normal(&r, keys, sizeof keys / sizeof keys[0], 1.0);
    vs_test_fill_normal(&r, vals, sizeof vals / sizeof vals[0], 1.0);
    vs_test_fill_normal(&r, q, H * D, 1.0);
    bad_configs();
    bad_calls();
    allocation_failures();
    allocation_failures_tree();
    return vs_test_finish("test_errors");
}
