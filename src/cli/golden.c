/*
 * Golden vectors: a fixed list of cases (shapes, workloads, decode options),
 * written by `vashista vectors DIR` and checked by `vashista parity DIR` and
 * tests/test_parity.c. The format is described in tests/vectors/FORMAT.md.
 *
 * It never prints: results come back in gv_result.
 */
#include <errno.h>
#include <float.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "cli/golden.h"
#include "cli/reference.h"


/* Outputs of one case, as computed by this build. */
typedef struct gv_outputs {
    float *dense, *sparse;  /* [heads][dv] */
    vs_head_diag *diag;     /* [heads] */
    uint32_t *cand_count;   /* [heads] */
    uint32_t *cand;         /* [cand_total] candidates of head 0, then head 1, ... */
    size_t cand_total;
    double *ref;            /* [heads][dv] float64 dense reference */
} gv_outputs;

/* ---- the case list -------------------------------------------------------------- */
/* Short constructors keep the table readable. */
static gv_case gv_make(const char *name, uint32_t kind, uint32_t T, uint32_t heads, uint32_t kvh,
                       uint32_t d, uint32_t dv, uint32_t S, uint32_t seed) {
    gv_case c;
    memset(&c, 0, sizeof c);
    c.name = name;
    vs_workload_default(&c.wl, kind);
    c.wl.T = T;
    c.wl.heads = heads;
    c.wl.kv_heads = kvh;
    c.wl.head_dim = d;
    c.wl.value_dim = dv;
    c.wl.seed_lo = seed;
    c.page_size = S;
    c.chunk = 777;
    vs_decode_options_default(&c.opt);
    c.opt.routing = VS_ROUTING_FLAT; /* tree only where a case says so (and library_defaults) */
    return c;
}

static void gv_opts(gv_case *c, uint32_t P, uint32_t Kc, uint32_t sink, uint32_t recent) {
    c->opt.pages = P;
    c->opt.candidates = Kc;
    c->opt.sink_pages = sink;
    c->opt.recent_pages = recent;
}

size_t gv_cases(gv_case *out) {
    size_t n = 0;
    gv_case c;
    /* T = 1 */
    c = gv_make("t1_uniform_d1", VS_WL_UNIFORM, 1, 1, 1, 1, 1, 16, 1);
    gv_opts(&c, 1, 1, 0, 0);
    out[n++] = c;
    c = gv_make("t1_gap_d3_dv5_s1", VS_WL_GAP, 1, 1, 1, 3, 5, 1, 2);
    c.wl.face = 1;
    gv_opts(&c, 1, 1, 1, 1);
    out[n++] = c;
    /* page size 1 */
    c = gv_make("s1_uniform_d17_dv9", VS_WL_UNIFORM, 37, 1, 1, 17, 9, 1, 3);
    gv_opts(&c, 4, 8, 1, 1);
    c.chunk = 5;
    out[n++] = c;
    c = gv_make("s1_gap_d3_dv2_nosink", VS_WL_GAP, 50, 1, 1, 3, 2, 1, 4);
    c.wl.face = 3;
    c.wl.margin = 6.0f;
    gv_opts(&c, 2, 4, 0, 0);
    out[n++] = c;
    /* T = page - 1, page + 1 */
    c = gv_make("s16_t15_needle_d64_dv32", VS_WL_NEEDLE, 15, 1, 1, 64, 32, 16, 5);
    c.wl.needles = 2;
    gv_opts(&c, 1, 4, 1, 1);
    out[n++] = c;
    c = gv_make("s16_t17_needle_d100_dv100", VS_WL_NEEDLE, 17, 1, 1, 100, 100, 16, 6);
    c.wl.needles = 2;
    gv_opts(&c, 1, 4, 0, 1);
    c.chunk = 16;
    out[n++] = c;
    c = gv_make("s32_t31_gap_d128_dv64", VS_WL_GAP, 31, 1, 1, 128, 64, 32, 7);
    c.wl.face = 2;
    gv_opts(&c, 1, 3, 1, 1);
    out[n++] = c;
    c = gv_make("s32_t33_uniform_gqa4x2_d128", VS_WL_UNIFORM, 33, 4, 2, 128, 128, 32, 8);
    gv_opts(&c, 1, 8, 0, 0);
    out[n++] = c;
    c = gv_make("s16_t16_uniform_d64_exactpage", VS_WL_UNIFORM, 16, 1, 1, 64, 17, 16, 9);
    gv_opts(&c, 1, 5, 1, 1);
    out[n++] = c;
    /* odd dims, dv != d */
    c = gv_make("s16_needle_d17_dv5", VS_WL_NEEDLE, 700, 1, 1, 17, 5, 16, 10);
    gv_opts(&c, 4, 16, 1, 1);
    out[n++] = c;
    c = gv_make("s32_uniform_d100_dv3", VS_WL_UNIFORM, 200, 2, 2, 100, 3, 32, 11);
    gv_opts(&c, 3, 20, 1, 1);
    out[n++] = c;
    c = gv_make("s16_gap_d1_dv1", VS_WL_GAP, 600, 1, 1, 1, 1, 16, 12);
    c.wl.face = 5;
    gv_opts(&c, 4, 16, 1, 1);
    out[n++] = c;
    c = gv_make("s1_needle_d3_dv7", VS_WL_NEEDLE, 120, 1, 1, 3, 7, 1, 13);
    c.wl.needles = 3;
    gv_opts(&c, 16, 8, 1, 4);
    out[n++] = c;
    c = gv_make("s32_uniform_d512_dv1", VS_WL_UNIFORM, 70, 1, 1, 512, 1, 32, 14);
    gv_opts(&c, 1, 10, 1, 1);
    out[n++] = c;
    /* grouped-query attention */
    c = gv_make("s32_needle_gqa4x2_d20_dv12", VS_WL_NEEDLE, 1500, 4, 2, 20, 12, 32, 15);
    gv_opts(&c, 8, 64, 1, 1);
    out[n++] = c;
    c = gv_make("s16_gap_gqa4x2_d17", VS_WL_GAP, 800, 4, 2, 17, 17, 16, 16);
    c.wl.face = 6;
    c.wl.margin = 8.0f;
    gv_opts(&c, 8, 32, 1, 1);
    out[n++] = c;
    c = gv_make("s16_uniform_mqa8x1_d3_dv4", VS_WL_UNIFORM, 300, 8, 1, 3, 4, 16, 17);
    gv_opts(&c, 4, 12, 1, 1);
    out[n++] = c;
    /* a few thousand tokens */
    c = gv_make("s16_needle_t2048_d128_seedcfg", VS_WL_NEEDLE, 2048, 1, 1, 128, 8, 16, 18);
    gv_opts(&c, 64, 128, 1, 1);
    out[n++] = c;
    c = gv_make("s32_needle_t4096_d16_dv4_defaultopts", VS_WL_NEEDLE, 4096, 1, 1, 16, 4, 32, 19);
    out[n++] = c;
    c = gv_make("s32_gap_t2500_d12_dv3", VS_WL_GAP, 2500, 1, 1, 12, 3, 32, 20);
    gv_opts(&c, 4, 16, 1, 1);
    out[n++] = c;
    c = gv_make("s16_uniform_t3000_d17_dv5", VS_WL_UNIFORM, 3000, 2, 1, 17, 5, 16, 21);
    gv_opts(&c, 16, 64, 1, 1);
    out[n++] = c;
    /* options: tolerance (widened and dense fallbacks), scale, steps, Kc > T */
    c = gv_make("tol_uniform_widen_dense", VS_WL_UNIFORM, 1200, 4, 2, 16, 16, 32, 22);
    gv_opts(&c, 2, 16, 1, 1);
    c.opt.tolerance = 1e-3f;
    c.opt.widen = 4;
    out[n++] = c;
    c = gv_make("tol_needle_loose", VS_WL_NEEDLE, 1500, 2, 1, 24, 8, 16, 23);
    gv_opts(&c, 4, 32, 1, 1);
    c.opt.tolerance = 0.5f;
    c.opt.widen = 2;
    out[n++] = c;
    c = gv_make("tol_gap_tight", VS_WL_GAP, 1024, 1, 1, 24, 8, 16, 24);
    c.wl.margin = 20.0f;
    gv_opts(&c, 2, 8, 1, 1);
    c.opt.tolerance = 1e-6f;
    c.opt.widen = 3;
    out[n++] = c;
    c = gv_make("tol_gap_widen", VS_WL_GAP, 512, 1, 1, 8, 8, 16, 31);
    gv_opts(&c, 2, 8, 1, 1);
    c.opt.tolerance = 1e-2f;
    c.opt.widen = 16;
    out[n++] = c;
    c = gv_make("scale_custom_needle", VS_WL_NEEDLE, 900, 2, 1, 40, 8, 32, 25);
    gv_opts(&c, 4, 32, 1, 1);
    c.opt.scale = 0.05f;
    out[n++] = c;
    c = gv_make("step7_needle", VS_WL_NEEDLE, 1000, 2, 1, 16, 16, 16, 26);
    c.step = 7;
    gv_opts(&c, 6, 24, 1, 1);
    out[n++] = c;
    c = gv_make("step3_gap", VS_WL_GAP, 800, 1, 1, 24, 8, 16, 27);
    c.step = 3;
    gv_opts(&c, 3, 12, 1, 1);
    out[n++] = c;
    c = gv_make("kc_above_T", VS_WL_UNIFORM, 100, 1, 1, 16, 16, 16, 28);
    gv_opts(&c, 64, 512, 1, 1);
    out[n++] = c;
    c = gv_make("pages_above_P", VS_WL_NEEDLE, 500, 1, 1, 16, 8, 4, 29);
    gv_opts(&c, 1000, 40, 2, 3);
    out[n++] = c;
    c = gv_make("library_defaults", VS_WL_NEEDLE, 2100, 1, 1, 64, 4, 0, 30);
    c.page_size = 0; /* VS_DEFAULT_PAGE_SIZE */
    vs_decode_options_default(&c.opt);
    out[n++] = c;
    /* tree routing: partial last node, expand below and above the node count, GQA,
       a projection solver, and the tolerance ladder (its retry routes flat) */
    c = gv_make("tree_needle_s4_partial", VS_WL_NEEDLE, 1500, 1, 1, 12, 4, 4, 38);
    gv_opts(&c, 6, 32, 1, 1);
    c.opt.routing = VS_ROUTING_TREE;
    c.opt.expand = 3;
    out[n++] = c;
    c = gv_make("tree_gap_gqa4x2_auto", VS_WL_GAP, 1800, 4, 2, 8, 4, 4, 39);
    gv_opts(&c, 4, 24, 2, 1);
    c.opt.routing = VS_ROUTING_TREE;
    out[n++] = c;
    c = gv_make("tree_uniform_expand_all", VS_WL_UNIFORM, 1100, 1, 1, 8, 8, 4, 40);
    gv_opts(&c, 5, 16, 1, 1);
    c.opt.routing = VS_ROUTING_TREE;
    c.opt.expand = 1000;
    out[n++] = c;
    c = gv_make("tree_tol_eg_needle", VS_WL_NEEDLE, 1400, 2, 1, 12, 4, 4, 41);
    gv_opts(&c, 4, 16, 1, 1);
    c.opt.routing = VS_ROUTING_TREE;
    c.opt.expand = 2;
    c.opt.solver = VS_SOLVER_EG;
    c.opt.tolerance = 1e-2f;
    out[n++] = c;
    /* GQA heads sharing one routing per KV head (tree and flat, softmax and eg, the ladder) */
    c = gv_make("share_tree_needle_gqa6x2", VS_WL_NEEDLE, 1600, 6, 2, 12, 4, 4, 42);
    gv_opts(&c, 4, 24, 1, 1);
    c.opt.routing = VS_ROUTING_TREE;
    c.opt.expand = 3;
    c.opt.share_routing = 1;
    out[n++] = c;
    c = gv_make("share_flat_gap_gqa4x1_eg", VS_WL_GAP, 900, 4, 1, 8, 4, 8, 43);
    gv_opts(&c, 3, 16, 1, 1);
    c.opt.share_routing = 1;
    c.opt.solver = VS_SOLVER_EG;
    c.opt.tolerance = 0.5f;
    out[n++] = c;
    /* projection solvers: planted faces, needles, GQA, and their tolerance ladder */
    c = gv_make("eg_gap_d16", VS_WL_GAP, 900, 1, 1, 16, 8, 16, 32);
    c.wl.face = 4;
    gv_opts(&c, 4, 24, 1, 1);
    c.opt.solver = VS_SOLVER_EG;
    out[n++] = c;
    c = gv_make("fw_gap_d16", VS_WL_GAP, 900, 1, 1, 16, 8, 16, 33);
    c.wl.face = 4;
    gv_opts(&c, 4, 24, 1, 1);
    c.opt.solver = VS_SOLVER_FW;
    out[n++] = c;
    c = gv_make("eg_needle_gqa4x2_d32_eps", VS_WL_NEEDLE, 1300, 4, 2, 32, 16, 32, 34);
    gv_opts(&c, 4, 48, 1, 1);
    c.opt.solver = VS_SOLVER_EG;
    c.opt.eps = 0.2f;
    c.opt.max_iter = 50;
    c.opt.solver_tol = 1e-5f;
    out[n++] = c;
    c = gv_make("fw_uniform_d8_cap", VS_WL_UNIFORM, 400, 1, 1, 8, 8, 16, 35);
    gv_opts(&c, 2, 64, 1, 1);
    c.opt.solver = VS_SOLVER_FW;
    c.opt.max_iter = 7;
    out[n++] = c;
    c = gv_make("tol_eg_uniform_dense", VS_WL_UNIFORM, 500, 2, 1, 8, 8, 16, 36);
    gv_opts(&c, 2, 8, 1, 1);
    c.opt.solver = VS_SOLVER_EG;
    c.opt.eps = 0.5f;
    c.opt.tolerance = 1e-3f;
    out[n++] = c;
    c = gv_make("tol_fw_gap", VS_WL_GAP, 700, 1, 1, 12, 8, 16, 37);
    gv_opts(&c, 2, 8, 1, 1);
    c.opt.solver = VS_SOLVER_FW;
    c.opt.tolerance = 1e-3f;
    out[n++] = c;
    return n;
}

/* ---- little-endian files ----------------------------------------------------- */
static int gv_little_endian(void) {
    uint32_t x = 1;
    unsigned char b;
    memcpy(&b, &x, 1);
    return b == 1;
}

static void gv_path(char *buf, size_t n, const char *dir, const char *file) {
    snprintf(buf, n, "%s/%s", dir, file);
}

static uint32_t gv_fbits(float f) {
    uint32_t u;
    memcpy(&u, &f, 4);
    return u;
}

static float gv_bitsf(uint32_t u) {
    float f;
    memcpy(&f, &u, 4);
    return f;
}

/* Array sizes of a case, in elements. */
typedef struct gv_sizes {
    size_t keys, values, queries, out, diag_words, heads;
} gv_sizes;

static gv_sizes gv_sizes_of(const vs_workload *w) {
    gv_sizes s;
    s.keys = (size_t)w->T * w->kv_heads * w->head_dim;
    s.values = (size_t)w->T * w->kv_heads * w->value_dim;
    s.queries = (size_t)w->heads * w->head_dim;
    s.out = (size_t)w->heads * w->value_dim;
    s.diag_words = (size_t)w->heads * GV_DIAG_WORDS;
    s.heads = w->heads;
    return s;
}

static void gv_outputs_free(gv_outputs *o) {
    free(o->dense);
    free(o->sparse);
    free(o->diag);
    free(o->cand_count);
    free(o->cand);
    free(o->ref);
    memset(o, 0, sizeof *o);
}

/* Runs a case on given inputs with the current build and ISA. Returns a
   vs_status (VS_E_NOMEM for the harness's own allocations too). */
static int gv_compute(const gv_case *c, const float *keys, const float *values, const float *q,
                      gv_outputs *o) {
    const vs_workload *w = &c->wl;
    gv_sizes sz = gv_sizes_of(w);
    memset(o, 0, sizeof *o);
    o->dense = malloc(sz.out * sizeof(float));
    o->sparse = malloc(sz.out * sizeof(float));
    o->diag = malloc(sz.heads * sizeof(vs_head_diag));
    o->cand_count = malloc(sz.heads * sizeof(uint32_t));
    o->ref = malloc(sz.out * sizeof(double));
    if (!o->dense || !o->sparse || !o->diag || !o->cand_count || !o->ref) {
        gv_outputs_free(o);
        return VS_E_NOMEM;
    }
    vs_cache_config cfg = {w->heads, w->kv_heads, w->head_dim, w->value_dim, c->page_size,
                           VS_DTYPE_F32};
    vs_cache *cache = NULL;
    int st = vs_cache_create(&cfg, &cache);
    size_t krow = (size_t)w->kv_heads * w->head_dim, vrow = (size_t)w->kv_heads * w->value_dim;
    size_t chunk = c->chunk ? c->chunk : w->T;
    for (size_t t = 0; st == VS_OK && t < w->T; t += chunk) {
        size_t n = w->T - t < chunk ? w->T - t : chunk;
        st = vs_cache_append(cache, keys + t * krow, n * krow, values + t * vrow, n * vrow);
    }
    if (st == VS_OK) st = vs_decode_dense(cache, q, sz.queries, c->opt.scale, o->dense, sz.out);
    if (st == VS_OK)
        st = vs_decode(cache, q, sz.queries, &c->opt, o->sparse, sz.out, o->diag, sz.heads);
    for (uint32_t h = 0; st == VS_OK && h < w->heads; h++) {
        size_t cnt = 0;
        st = vs_decode_candidates(cache, h, NULL, 0, &cnt);
        o->cand_count[h] = (uint32_t)cnt;
        o->cand_total += cnt;
    }
    if (st == VS_OK) {
        o->cand = malloc((o->cand_total ? o->cand_total : 1) * sizeof(uint32_t));
        if (!o->cand) st = VS_E_NOMEM;
    }
    size_t at = 0;
    for (uint32_t h = 0; st == VS_OK && h < w->heads; h++) {
        size_t cnt = 0;
        st = vs_decode_candidates(cache, h, o->cand + at, o->cand_count[h], &cnt);
        if (st == VS_OK && cnt != o->cand_count[h]) st = VS_E_LENGTH;
        at += cnt;
    }
    vs_cache_free(cache);
    if (st != VS_OK) {
        gv_outputs_free(o);
        return st;
    }
    vs_ref_attention(keys, values, w->T, w->heads, w->kv_heads, w->head_dim, w->value_dim, q,
                     c->opt.scale, o->ref, NULL);
    return VS_OK;
}

static int gv_write_all(FILE *f, const void *p, size_t bytes) {
    return bytes == 0 || fwrite(p, 1, bytes, f) == bytes;
}

static void gv_header(const gv_case *c, size_t cand_total, uint32_t *h) {
    const vs_workload *w = &c->wl;
    memset(h, 0, GV_HEADER_WORDS * sizeof *h);
    h[GV_W_MAGIC] = GV_MAGIC;
    h[GV_W_VERSION] = GV_VERSION;
    h[GV_W_HEADER_BYTES] = GV_HEADER_WORDS * 4;
    h[GV_W_KIND] = w->kind;
    h[GV_W_T] = w->T;
    h[GV_W_HEADS] = w->heads;
    h[GV_W_KV_HEADS] = w->kv_heads;
    h[GV_W_HEAD_DIM] = w->head_dim;
    h[GV_W_VALUE_DIM] = w->value_dim;
    h[GV_W_PAGE_SIZE] = c->page_size;
    h[GV_W_FACE] = w->face;
    h[GV_W_NEEDLES] = w->needles;
    h[GV_W_MARGIN] = gv_fbits(w->margin);
    h[GV_W_SEED_LO] = w->seed_lo;
    h[GV_W_SEED_HI] = w->seed_hi;
    h[GV_W_STEP] = c->step;
    h[GV_W_PAGES] = c->opt.pages;
    h[GV_W_CANDIDATES] = c->opt.candidates;
    h[GV_W_SINK_PAGES] = c->opt.sink_pages;
    h[GV_W_RECENT_PAGES] = c->opt.recent_pages;
    h[GV_W_SOLVER] = c->opt.solver;
    h[GV_W_WIDEN] = c->opt.widen;
    h[GV_W_SCALE] = gv_fbits(c->opt.scale);
    h[GV_W_TOLERANCE] = gv_fbits(c->opt.tolerance);
    h[GV_W_EPS] = gv_fbits(c->opt.eps);
    h[GV_W_MAX_ITER] = c->opt.max_iter;
    h[GV_W_SOLVER_TOL] = gv_fbits(c->opt.solver_tol);
    h[GV_W_ROUTING] = c->opt.routing;
    h[GV_W_EXPAND] = c->opt.expand;
    h[GV_W_SHARE_ROUTING] = c->opt.share_routing;
    h[GV_W_CAND_TOTAL] = (uint32_t)cand_total;
    h[GV_W_DIAG_WORDS] = GV_DIAG_WORDS;
    h[GV_W_CHUNK] = c->chunk;
}

static void gv_case_of_header(const uint32_t *h, gv_case *c) {
    memset(c, 0, sizeof *c);
    c->wl.kind = h[GV_W_KIND];
    c->wl.T = h[GV_W_T];
    c->wl.heads = h[GV_W_HEADS];
    c->wl.kv_heads = h[GV_W_KV_HEADS];
    c->wl.head_dim = h[GV_W_HEAD_DIM];
    c->wl.value_dim = h[GV_W_VALUE_DIM];
    c->page_size = h[GV_W_PAGE_SIZE];
    c->wl.face = h[GV_W_FACE];
    c->wl.needles = h[GV_W_NEEDLES];
    c->wl.margin = gv_bitsf(h[GV_W_MARGIN]);
    c->wl.seed_lo = h[GV_W_SEED_LO];
    c->wl.seed_hi = h[GV_W_SEED_HI];
    c->step = h[GV_W_STEP];
    c->opt.pages = h[GV_W_PAGES];
    c->opt.candidates = h[GV_W_CANDIDATES];
    c->opt.sink_pages = h[GV_W_SINK_PAGES];
    c->opt.recent_pages = h[GV_W_RECENT_PAGES];
    c->opt.solver = h[GV_W_SOLVER];
    c->opt.widen = h[GV_W_WIDEN];
    c->opt.scale = gv_bitsf(h[GV_W_SCALE]);
    c->opt.tolerance = gv_bitsf(h[GV_W_TOLERANCE]);
    c->opt.eps = gv_bitsf(h[GV_W_EPS]);
    c->opt.max_iter = h[GV_W_MAX_ITER];
    c->opt.solver_tol = gv_bitsf(h[GV_W_SOLVER_TOL]);
    c->opt.routing = h[GV_W_ROUTING];
    c->opt.expand = h[GV_W_EXPAND];
    c->opt.share_routing = h[GV_W_SHARE_ROUTING];
    c->chunk = h[GV_W_CHUNK];
}

/* Byte offsets of the arrays, in file order (see FORMAT.md). */
typedef struct gv_layout {
    size_t keys, values, queries, dense, sparse, diag, cand_count, cand, ref, total;
} gv_layout;

static gv_layout gv_layout_of(const vs_workload *w, size_t cand_total) {
    gv_sizes s = gv_sizes_of(w);
    gv_layout L;
    L.keys = GV_HEADER_WORDS * 4;
    L.values = L.keys + 4 * s.keys;
    L.queries = L.values + 4 * s.values;
    L.dense = L.queries + 4 * s.queries;
    L.sparse = L.dense + 4 * s.out;
    L.diag = L.sparse + 4 * s.out;
    L.cand_count = L.diag + 4 * s.diag_words;
    L.cand = L.cand_count + 4 * s.heads;
    L.ref = (L.cand + 4 * cand_total + 7) / 8 * 8; /* float64 array: 8-byte aligned */
    L.total = L.ref + 8 * s.out;
    return L;
}

static const char *gv_kind_name(uint32_t kind) {
    return kind == VS_WL_GAP ? "gap" : kind == VS_WL_NEEDLE ? "needle" : kind == VS_WL_UNIFORM ? "uniform" : "?";
}

/* Writes DIR/<name>.bin for one case and its entry of index.json to `index`.
   Returns 0, or -1 with a message in err. */
static int gv_write_case(const char *dir, const gv_case *c, FILE *index, int first,
                            uint64_t *bytes, char *err, size_t errlen) {
    const vs_workload *w = &c->wl;
    gv_sizes sz = gv_sizes_of(w);
    float *k = malloc((sz.keys ? sz.keys : 1) * 4), *v = malloc((sz.values ? sz.values : 1) * 4);
    float *q = malloc(sz.queries * 4);
    gv_outputs o;
    memset(&o, 0, sizeof o);
    int st = (!k || !v || !q) ? VS_E_NOMEM : VS_OK;
    if (st == VS_OK) st = vs_workload_tokens(w, 0, w->T, k, v);
    if (st == VS_OK) st = vs_workload_queries(w, c->step, q);
    if (st == VS_OK) st = gv_compute(c, k, v, q, &o);
    if (st != VS_OK) {
        snprintf(err, errlen, "case %s: %s", c->name, vs_strerror(st));
        free(k), free(v), free(q);
        return -1;
    }
    uint32_t hdr[GV_HEADER_WORDS];
    gv_header(c, o.cand_total, hdr);
    gv_layout L = gv_layout_of(w, o.cand_total);
    char file[128], path[4096];
    snprintf(file, sizeof file, "%s.bin", c->name);
    gv_path(path, sizeof path, dir, file);
    FILE *f = fopen(path, "wb");
    int ok = f != NULL;
    static const unsigned char zero[8] = {0};
    ok = ok && gv_write_all(f, hdr, sizeof hdr) && gv_write_all(f, k, 4 * sz.keys) &&
         gv_write_all(f, v, 4 * sz.values) && gv_write_all(f, q, 4 * sz.queries) &&
         gv_write_all(f, o.dense, 4 * sz.out) && gv_write_all(f, o.sparse, 4 * sz.out) &&
         gv_write_all(f, o.diag, 4 * sz.diag_words) && gv_write_all(f, o.cand_count, 4 * sz.heads) &&
         gv_write_all(f, o.cand, 4 * o.cand_total) &&
         gv_write_all(f, zero, L.ref - (L.cand + 4 * o.cand_total)) &&
         gv_write_all(f, o.ref, 8 * sz.out);
    if (f && fclose(f) != 0) ok = 0;
    if (!ok) snprintf(err, errlen, "cannot write %.200s: %s", path, strerror(errno));
    if (ok) *bytes += L.total;
    if (ok) {
        fprintf(index,
                "%s\n    {\"name\": \"%s\", \"file\": \"%s\", \"bytes\": %zu,\n"
                "     \"workload\": {\"kind\": \"%s\", \"T\": %u, \"heads\": %u, \"kv_heads\": %u, "
                "\"head_dim\": %u, \"value_dim\": %u, \"face\": %u, \"needles\": %u, "
                "\"margin\": %.9g, \"seed_lo\": %u, \"seed_hi\": %u, \"step\": %u},\n"
                "     \"cache\": {\"page_size\": %u, \"append_chunk\": %u},\n"
                "     \"options\": {\"pages\": %u, \"candidates\": %u, \"sink_pages\": %u, "
                "\"recent_pages\": %u, \"solver\": %u, \"widen\": %u, \"scale\": %.9g, "
                "\"tolerance\": %.9g, \"eps\": %.9g, \"max_iter\": %u, \"solver_tol\": %.9g, "
                "\"routing\": %u, \"expand\": %u, \"share_routing\": %u},\n"
                "     \"arrays\": {\"keys\": [%zu, %zu], \"values\": [%zu, %zu], \"queries\": [%zu, %zu], "
                "\"dense\": [%zu, %zu], \"sparse\": [%zu, %zu], \"diag\": [%zu, %zu], "
                "\"cand_count\": [%zu, %zu], \"cand\": [%zu, %zu], \"ref\": [%zu, %zu]}}",
                first ? "" : ",", c->name, file, L.total, gv_kind_name(w->kind), w->T, w->heads,
                w->kv_heads, w->head_dim, w->value_dim, w->face, w->needles, (double)w->margin,
                w->seed_lo, w->seed_hi, c->step, c->page_size, c->chunk, c->opt.pages,
                c->opt.candidates, c->opt.sink_pages, c->opt.recent_pages, c->opt.solver,
                c->opt.widen, (double)c->opt.scale, (double)c->opt.tolerance, (double)c->opt.eps,
                c->opt.max_iter, (double)c->opt.solver_tol, c->opt.routing, c->opt.expand,
                c->opt.share_routing, L.keys, sz.keys,
                L.values, sz.values, L.queries, sz.queries, L.dense, sz.out, L.sparse, sz.out,
                L.diag, sz.diag_words, L.cand_count, sz.heads, L.cand, o.cand_total, L.ref, sz.out);
    }
    free(k), free(v), free(q);
    gv_outputs_free(&o);
    return ok ? 0 : -1;
}

/* Writes every case and DIR/index.json (DIR is created if missing).
   progress(i, n, name) is called before each case (may be NULL). */
int gv_write_dir(const char *dir, void (*progress)(size_t, size_t, const char *),
                        size_t *ncases, uint64_t *total_bytes, char *err, size_t errlen) {
    if (!gv_little_endian()) {
        snprintf(err, errlen, "golden vectors are little-endian; this host is not");
        return -1;
    }
    if (mkdir(dir, 0777) != 0 && errno != EEXIST) {
        snprintf(err, errlen, "cannot create %.200s: %s", dir, strerror(errno));
        return -1;
    }
    gv_case cases[GV_MAX_CASES];
    size_t n = gv_cases(cases);
    char path[4096];
    gv_path(path, sizeof path, dir, "index.json");
    FILE *index = fopen(path, "w");
    if (!index) {
        snprintf(err, errlen, "cannot write %.200s: %s", path, strerror(errno));
        return -1;
    }
    fprintf(index,
            "{\"format\": \"vashista-golden\", \"version\": %u, \"library_version\": \"%s\", "
            "\"isa\": \"%s\",\n \"header_bytes\": %u, \"diag_words\": %u,\n"
            " \"tolerance\": {\"output_rel_l2\": %g, \"diag_rel\": %g},\n \"cases\": [",
            GV_VERSION, vs_version_string(), vs_isa_name(), GV_HEADER_WORDS * 4, GV_DIAG_WORDS,
            GV_TOL_OUTPUT, GV_TOL_DIAG);
    uint64_t bytes = 0;
    for (size_t i = 0; i < n; i++) {
        if (progress) progress(i, n, cases[i].name);
        if (gv_write_case(dir, &cases[i], index, i == 0, &bytes, err, errlen) != 0) {
            fclose(index);
            return -1;
        }
    }
    fprintf(index, "\n ]}\n");
    if (fclose(index) != 0) {
        snprintf(err, errlen, "cannot write %.200s", path);
        return -1;
    }
    if (ncases) *ncases = n;
    if (total_bytes) *total_bytes = bytes;
    return 0;
}

/* ---- reading and checking ------------------------------------------------------ */
/* The "file" entries of DIR/index.json, in order. *files is one allocation
   of NUL-separated names; returns the count, or -1 with err set. */
long gv_list(const char *dir, char **files, char *err, size_t errlen) {
    char path[4096];
    gv_path(path, sizeof path, dir, "index.json");
    FILE *f = fopen(path, "rb");
    if (!f) {
        snprintf(err, errlen, "cannot open %.200s: %s", path, strerror(errno));
        return -1;
    }
    size_t cap = 1 << 16, len = 0;
    char *text = malloc(cap + 1);
    size_t got;
    while (text && (got = fread(text + len, 1, cap - len, f)) > 0) {
        len += got;
        if (len == cap) {
            char *t = realloc(text, 2 * cap + 1);
            if (!t) {
                free(text);
                text = NULL;
                break;
            }
            text = t;
            cap *= 2;
        }
    }
    fclose(f);
    if (!text) {
        snprintf(err, errlen, "out of memory reading %.200s", path);
        return -1;
    }
    text[len] = 0;
    char *out = malloc(len + 1), *o = out;
    long n = 0;
    for (char *p = text; out && (p = strstr(p, "\"file\"")) != NULL;) {
        p += 6;
        while (*p == ' ' || *p == '\t' || *p == '\n' || *p == '\r' || *p == ':') p++;
        if (*p != '"') break;
        p++;
        char *e = strchr(p, '"');
        if (!e) break;
        memcpy(o, p, (size_t)(e - p));
        o += e - p;
        *o++ = 0;
        n++;
        p = e + 1;
    }
    free(text);
    if (!out) {
        snprintf(err, errlen, "out of memory reading %.200s", path);
        return -1;
    }
    if (n == 0) {
        snprintf(err, errlen, "%.200s lists no cases", path);
        free(out);
        return -1;
    }
    *files = out;
    return n;
}

static double gv_rel_l2(const float *x, const float *ref, size_t n) {
    double d = 0, r = 0;
    for (size_t i = 0; i < n; i++) {
        double e = (double)x[i] - (double)ref[i];
        d += e * e;
        r += (double)ref[i] * (double)ref[i];
    }
    if (d == 0) return 0;
    if (!(d == d)) return INFINITY;
    return r > 0 ? sqrt(d / r) : INFINITY;
}

static double gv_rel_diff(float a, float b) {
    if (a == b) return 0; /* also equal infinities */
    if (a != a || b != b) return (a != a && b != b) ? 0 : INFINITY;
    double m = fmax(fabs((double)a), fabs((double)b));
    return fabs((double)a - (double)b) / m;
}

/* Checks DIR/file against this build and ISA. Fills r; returns r->ok. */
int gv_check(const char *dir, const char *file, gv_result *r) {
    memset(r, 0, sizeof *r);
    snprintf(r->name, sizeof r->name, "%.*s", (int)(sizeof r->name - 1), file);
    char *dot = strrchr(r->name, '.');
    if (dot && strcmp(dot, ".bin") == 0) *dot = 0;
    char path[4096];
    gv_path(path, sizeof path, dir, file);
    FILE *f = fopen(path, "rb");
    if (!f) {
        snprintf(r->error, sizeof r->error, "cannot open %.200s: %s", path, strerror(errno));
        return 0;
    }
    unsigned char *buf = NULL;
    long size = -1;
    if (fseek(f, 0, SEEK_END) == 0) size = ftell(f);
    if (size >= (long)(GV_HEADER_WORDS * 4) && fseek(f, 0, SEEK_SET) == 0) {
        buf = malloc((size_t)size);
        if (buf && fread(buf, 1, (size_t)size, f) != (size_t)size) {
            free(buf);
            buf = NULL;
        }
    }
    fclose(f);
    if (!buf) {
        snprintf(r->error, sizeof r->error, "cannot read %.200s (or shorter than a header)", path);
        return 0;
    }
    uint32_t hdr[GV_HEADER_WORDS];
    memcpy(hdr, buf, sizeof hdr);
    gv_case c;
    gv_case_of_header(hdr, &c);
    gv_layout L = gv_layout_of(&c.wl, hdr[GV_W_CAND_TOTAL]);
    gv_outputs o;
    memset(&o, 0, sizeof o);
    float *gk = NULL, *gv = NULL, *gq = NULL;
    int st;
    if (hdr[GV_W_MAGIC] != GV_MAGIC || hdr[GV_W_VERSION] != GV_VERSION ||
        hdr[GV_W_HEADER_BYTES] != GV_HEADER_WORDS * 4 || hdr[GV_W_DIAG_WORDS] != GV_DIAG_WORDS) {
        snprintf(r->error, sizeof r->error, "%s: not a version-%u golden vector file", file,
                 GV_VERSION);
        goto done;
    }
    if ((st = vs_workload_check(&c.wl)) != VS_OK) {
        snprintf(r->error, sizeof r->error, "%s: bad workload in header: %s", file, vs_strerror(st));
        goto done;
    }
    if ((size_t)size != L.total) {
        snprintf(r->error, sizeof r->error, "%s: %ld bytes, the header implies %zu", file, size,
                 L.total);
        goto done;
    }
    gv_sizes sz = gv_sizes_of(&c.wl);
    /* aligned copies of the stored arrays */
    gk = malloc((sz.keys ? sz.keys : 1) * 4);
    gv = malloc((sz.values ? sz.values : 1) * 4);
    gq = malloc(sz.queries * 4);
    float *rk = malloc((sz.keys ? sz.keys : 1) * 4), *rv = malloc((sz.values ? sz.values : 1) * 4);
    float *rq = malloc(sz.queries * 4);
    if (!gk || !gv || !gq || !rk || !rv || !rq) {
        free(rk), free(rv), free(rq);
        snprintf(r->error, sizeof r->error, "%s: out of memory", file);
        goto done;
    }
    memcpy(gk, buf + L.keys, 4 * sz.keys);
    memcpy(gv, buf + L.values, 4 * sz.values);
    memcpy(gq, buf + L.queries, 4 * sz.queries);
    /* the generator must reproduce the stored inputs bit for bit */
    st = vs_workload_tokens(&c.wl, 0, c.wl.T, rk, rv);
    if (st == VS_OK) st = vs_workload_queries(&c.wl, c.step, rq);
    r->inputs_identical = st == VS_OK && memcmp(rk, gk, 4 * sz.keys) == 0 &&
                          memcmp(rv, gv, 4 * sz.values) == 0 && memcmp(rq, gq, 4 * sz.queries) == 0;
    free(rk), free(rv), free(rq);

    st = gv_compute(&c, gk, gv, gq, &o);
    if (st != VS_OK) {
        snprintf(r->error, sizeof r->error, "%s: decode failed: %s", file, vs_strerror(st));
        goto done;
    }
    {
        size_t dv = c.wl.value_dim;
        float *gd = malloc(4 * sz.out), *gs = malloc(4 * sz.out);
        vs_head_diag *gdiag = malloc(sz.heads * sizeof *gdiag);
        uint32_t *gcc = malloc(4 * sz.heads), *gcand = malloc(4 * (hdr[GV_W_CAND_TOTAL] + 1));
        double *gref = malloc(8 * sz.out);
        if (!gd || !gs || !gdiag || !gcc || !gcand || !gref) {
            snprintf(r->error, sizeof r->error, "%s: out of memory", file);
        } else {
            memcpy(gd, buf + L.dense, 4 * sz.out);
            memcpy(gs, buf + L.sparse, 4 * sz.out);
            memcpy(gdiag, buf + L.diag, 4 * sz.diag_words);
            memcpy(gcc, buf + L.cand_count, 4 * sz.heads);
            memcpy(gcand, buf + L.cand, 4 * (size_t)hdr[GV_W_CAND_TOTAL]);
            memcpy(gref, buf + L.ref, 8 * sz.out);
            r->dense_identical = memcmp(gd, o.dense, 4 * sz.out) == 0;
            r->sparse_identical = memcmp(gs, o.sparse, 4 * sz.out) == 0;
            r->diag_identical = memcmp(gdiag, o.diag, 4 * sz.diag_words) == 0;
            r->cand_identical = o.cand_total == hdr[GV_W_CAND_TOTAL] &&
                                memcmp(gcc, o.cand_count, 4 * sz.heads) == 0 &&
                                memcmp(gcand, o.cand, 4 * o.cand_total) == 0;
            for (size_t h = 0; h < sz.heads; h++) {
                r->dense_rel = fmax(r->dense_rel, gv_rel_l2(o.dense + h * dv, gd + h * dv, dv));
                r->sparse_rel = fmax(r->sparse_rel, gv_rel_l2(o.sparse + h * dv, gs + h * dv, dv));
                const vs_head_diag *a = &o.diag[h], *b = &gdiag[h];
                r->int_mismatch += (a->routed_pages != b->routed_pages) +
                                   (a->candidates != b->candidates) + (a->fallback != b->fallback) +
                                   (a->iterations != b->iterations) + (a->face_size != b->face_size);
                const float fa[7] = {a->effective_support, a->gap, a->leakage_bound, a->rho_cert,
                                     a->error_bound, a->output_norm, a->residual};
                const float fb[7] = {b->effective_support, b->gap, b->leakage_bound, b->rho_cert,
                                     b->error_bound, b->output_norm, b->residual};
                for (int i = 0; i < 7; i++) r->diag_rel = fmax(r->diag_rel, gv_rel_diff(fa[i], fb[i]));
                double e = 0, n2 = 0;
                for (size_t j = 0; j < dv; j++) {
                    double x = (double)gd[h * dv + j] - gref[h * dv + j];
                    e += x * x;
                    n2 += gref[h * dv + j] * gref[h * dv + j];
                }
                r->ref_rel = fmax(r->ref_rel, n2 > 0 ? sqrt(e / n2) : sqrt(e));
            }
            if (!r->inputs_identical)
                snprintf(r->error, sizeof r->error, "the workload generator no longer reproduces the stored inputs");
            else if (r->dense_rel > GV_TOL_OUTPUT)
                snprintf(r->error, sizeof r->error, "dense output differs: rel %.3g > %g", r->dense_rel, GV_TOL_OUTPUT);
            else if (r->sparse_rel > GV_TOL_OUTPUT)
                snprintf(r->error, sizeof r->error, "sparse output differs: rel %.3g > %g", r->sparse_rel, GV_TOL_OUTPUT);
            else if (r->int_mismatch)
                snprintf(r->error, sizeof r->error, "%u integer diagnostics differ", r->int_mismatch);
            else if (r->diag_rel > GV_TOL_DIAG)
                snprintf(r->error, sizeof r->error, "float diagnostics differ: rel %.3g > %g", r->diag_rel, GV_TOL_DIAG);
            else if (!r->cand_identical)
                snprintf(r->error, sizeof r->error, "candidate sets differ");
            else
                r->ok = 1;
        }
        free(gd), free(gs), free(gdiag), free(gcc), free(gcand), free(gref);
    }
done:
    free(gk), free(gv), free(gq);
    gv_outputs_free(&o);
    free(buf);
    return r->ok;
}
