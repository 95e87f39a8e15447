/*
 * Dense and sparse decode, and the certificate.
 *
 *   dense:  per KV head, one pass over the pages with an online softmax for
 *           every query head of the group (keys and values read once).
 *   sparse: per query head
 *     route   page bounds u_p (kernels->page_bounds), sink + recent + top-P
 *     select  exact scores in the routed pages, top-Kc candidates
 *     solve   softmax over the candidates, out = sum alpha_i v_i
 *     certify R = sum_{unrouted} n_p e^{u_p} + sum_{routed, not C} e^{s_j},
 *             rho <= R / (Z_C + R), ||out - dense|| <= rho (||out|| + vmax_off)
 *             + the float32 rounding of the whole computation (below).
 *
 * Rounding model (every term of the bound is an upper bound, so the bound
 * holds for the float32 output against exact attention on the same inputs):
 *   u = 2^-24, gamma(n) = n u / (1 - n u) (Higham).
 *   Scores and page bounds: canonical 8-lane sums of d products, then * scale,
 *   so |computed - exact| <= ds = scale * gamma(ceil(d/8) + 5) * sum_j |q_j| kabs_j,
 *   the +5 also covering the float rounding of scale = 1/sqrt(d).
 *   A weight vs_exp(fl(s - m)) is within a factor kappa = e^(ds + 100u) (1 + VS_EXP_REL_ERR)
 *   of e^(s_true - m) (|fl(s - m) - (s - m)| <= 88u where the term is kept);
 *   terms with fl(s - m) <= VS_EXP_LO are dropped and each is < e^(-87 + ds + 1e-5).
 *   A canonical sum of n positive terms is within gamma(ceil(n/8) + 3).
 * Certificate combination runs in double, in the log domain, so nothing
 * overflows even when an unrouted bound exceeds every candidate score.
 */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "internal.h"
#include "kernels/vexp.h"
#include "solvers.h"

#define U24 (1.0 / 16777216.0)


static double gamma_n(double n) { return n * U24 / (1.0 - n * U24); }

/* Rounds a non-negative double up to a float that is >= it. */
static float round_up(double x) {
    if (!(x < 3.0e38)) return INFINITY;
    float f = (float)x;
    return (double)f < x ? nextafterf(f, INFINITY) : f;
}

static double log_add(double a, double b) { /* log(e^a + e^b) */
    if (a == -INFINITY) return b;
    if (b == -INFINITY) return a;
    double m = a > b ? a : b;
    return m + log1p(exp(-fabs(a - b)));
}

/* ---- scratch ----------------------------------------------------------------- */

void vs_scratch_free(vs_scratch *w) {
    void *all[] = {w->bound, w->page_list, w->tok_score, w->tok_index,
                   w->cand,  w->w,         w->cs,        (void *)w->rows, w->topk,
                   w->acc,   w->hm,        w->hl,        (void *)w->krows, w->alpha,
                   w->mu,    w->adj,       w->point,     w->resid,     w->qmean,  w->btmp,
                   w->solve_work,
                   w->nsumm, w->nvnorm,    w->nbound,    w->node_list, w->xbound,  w->xpage,
                   w->sel_tokens, w->sel_pages, w->sel_ntok, w->sel_npage, w->sel_dense};
    for (size_t i = 0; i < sizeof all / sizeof all[0]; i++) vs_dealloc(all[i]);
    memset(w, 0, sizeof *w);
}

typedef struct scratch_need {
    size_t pages, tokens, cand; /* cand: candidates of any pass, dense projection included */
    size_t sel, routed;         /* candidates and pages of a sparse selection */
    size_t nodes, xpages;       /* tree routing: nodes, middle pages of the expanded ones */
    size_t topk;                /* largest k of a top-k */
} scratch_need;

/* Grows the scratch to `need`; all or nothing (contents are not kept). */
static int ensure_scratch(vs_cache *c, scratch_need need) {
    vs_scratch *w = &c->ws;
    const size_t heads = c->cfg.heads, dv = c->cfg.value_dim;
    if (w->acc && need.pages <= w->cap_pages && need.tokens <= w->cap_tokens &&
        need.cand <= w->cap_cand && need.sel <= w->sel_cap_tokens &&
        need.routed <= w->sel_cap_pages && need.nodes <= w->cap_nodes &&
        need.xpages <= w->cap_xpages && need.topk <= w->cap_topk)
        return VS_OK;
    vs_scratch n = {0};
    /* Grow geometrically so a slowly growing cache does not reallocate per call. */
    n.cap_pages = need.pages > w->cap_pages ? need.pages + need.pages / 2 + 16 : w->cap_pages;
    n.cap_tokens = need.tokens > w->cap_tokens ? need.tokens + need.tokens / 2 + 64 : w->cap_tokens;
    n.cap_cand = need.cand > w->cap_cand ? need.cand : w->cap_cand;
    n.sel_cap_tokens = need.sel > w->sel_cap_tokens ? need.sel : w->sel_cap_tokens;
    if (n.sel_cap_tokens > n.cap_cand) n.sel_cap_tokens = n.cap_cand;
    n.sel_cap_pages = need.routed > w->sel_cap_pages ? need.routed : w->sel_cap_pages;
    if (n.sel_cap_pages > n.cap_pages) n.sel_cap_pages = n.cap_pages;
    const size_t block = vs_chunk_tokens(c);
    const size_t small = n.cap_cand > block ? n.cap_cand : block;
    /* top-k selects at most max(Kc, routed pages, expanded nodes) items (a dense pass
       selects nothing) */
    n.cap_topk = n.sel_cap_tokens > n.sel_cap_pages ? n.sel_cap_tokens : n.sel_cap_pages;
    if (need.topk > n.cap_topk) n.cap_topk = need.topk;
    if (w->cap_topk > n.cap_topk) n.cap_topk = w->cap_topk;
    const size_t topk = VS_TOPK_SCRATCH(n.cap_topk);
    n.cap_nodes = need.nodes > w->cap_nodes ? need.nodes + need.nodes / 2 + 4 : w->cap_nodes;
    n.cap_xpages = need.xpages > w->cap_xpages ? need.xpages : w->cap_xpages;
    const size_t d = c->cfg.head_dim, G = c->cfg.kv_heads;
    struct {
        void **slot;
        size_t bytes;
    } plan[] = {
        {(void **)&n.bound, vs_mul_sat(n.cap_pages, sizeof(float))},
        {(void **)&n.page_list, vs_mul_sat(n.cap_pages, sizeof(uint32_t))},
        {(void **)&n.tok_score, vs_mul_sat(n.cap_tokens, sizeof(float))},
        {(void **)&n.tok_index, vs_mul_sat(n.cap_tokens, sizeof(uint32_t))},
        {(void **)&n.cand, vs_mul_sat(n.cap_cand, sizeof(uint32_t))},
        {(void **)&n.w, vs_mul_sat(small, sizeof(float))},
        {(void **)&n.cs, vs_mul_sat(small, sizeof(float))},
        {(void **)&n.rows, vs_mul_sat(small, sizeof(float *))},
        {(void **)&n.topk, vs_mul_sat(topk, sizeof(vs_topk_item))},
        {(void **)&n.acc, (heads + 1) * dv * sizeof(float)}, /* + dense block accumulator */
        {(void **)&n.hm, heads * sizeof(float)},
        {(void **)&n.hl, heads * sizeof(float)},
        {(void **)&n.krows, vs_mul_sat(n.cap_cand, sizeof(float *))},
        {(void **)&n.alpha, vs_mul_sat(n.cap_cand, sizeof(float))},
        {(void **)&n.mu, vs_mul_sat(n.cap_cand, sizeof(float))},
        {(void **)&n.adj, vs_mul_sat(n.cap_cand, sizeof(double))},
        {(void **)&n.point, d * sizeof(double)},
        {(void **)&n.resid, d * sizeof(float)},
        {(void **)&n.qmean, d * sizeof(float)},
        {(void **)&n.btmp, vs_mul_sat(n.cap_pages, sizeof(float))},
        {&n.solve_work, vs_solve_work_bytes(n.cap_cand, d)},
        {(void **)&n.nsumm, vs_mul_sat(vs_mul_sat(G * 2 * d, n.cap_nodes), sizeof(uint16_t))},
        {(void **)&n.nvnorm, vs_mul_sat(vs_mul_sat(G, n.cap_nodes), sizeof(float))},
        {(void **)&n.nbound, vs_mul_sat(n.cap_nodes, sizeof(float))},
        {(void **)&n.node_list, vs_mul_sat(n.cap_nodes, sizeof(uint32_t))},
        {(void **)&n.xbound, vs_mul_sat(n.cap_xpages, sizeof(float))},
        {(void **)&n.xpage, vs_mul_sat(n.cap_xpages, sizeof(uint32_t))},
        {(void **)&n.sel_tokens, vs_mul_sat(vs_mul_sat(heads, n.sel_cap_tokens), sizeof(uint32_t))},
        {(void **)&n.sel_pages, vs_mul_sat(vs_mul_sat(heads, n.sel_cap_pages), sizeof(uint32_t))},
        {(void **)&n.sel_ntok, heads * sizeof(uint32_t)},
        {(void **)&n.sel_npage, heads * sizeof(uint32_t)},
        {(void **)&n.sel_dense, heads * sizeof(uint32_t)},
    };
    const size_t count = sizeof plan / sizeof plan[0];
    for (size_t i = 0; i < count; i++) {
        if (!(*plan[i].slot = vs_alloc(plan[i].bytes))) {
            for (size_t j = 0; j < i; j++) vs_dealloc(*plan[j].slot);
            return VS_E_NOMEM;
        }
        n.bytes += plan[i].bytes;
    }
    vs_scratch_free(w);
    *w = n;
    return VS_OK;
}

/* ---- shared checks -------------------------------------------------------------- */

static int resolve_scale(const vs_cache *c, float scale, float *out) {
    if (scale == 0.0f) {
        *out = (float)(1.0 / sqrt((double)c->cfg.head_dim));
        return VS_OK;
    }
    if (!(scale > 0.0f) || !isfinite(scale)) return VS_E_OPTION;
    *out = scale;
    return VS_OK;
}

/* sum_j |q_j| kabs_j: bounds every |score| / scale, and sets the rounding scale. */
static double query_key_abs(const vs_cache *c, const float *qh, uint32_t g) {
    const float *kabs = c->kabs + (size_t)g * c->cfg.head_dim;
    double a = 0;
    for (uint32_t j = 0; j < c->cfg.head_dim; j++) a += fabs((double)qh[j]) * kabs[j];
    return a * (1.0 + 1e-12);
}

static int check_query(const vs_cache *c, const float *q, size_t q_count, float *out,
                       size_t out_count, float scale) {
    if (!q || !out) return VS_E_NULL;
    if (q_count != (size_t)c->cfg.heads * c->cfg.head_dim ||
        out_count != (size_t)c->cfg.heads * c->cfg.value_dim)
        return VS_E_LENGTH;
    if (c->length == 0) return VS_E_EMPTY;
    int st = vs_check_finite(q, q_count);
    if (st) return st;
    /* |score| <= scale * sum |q_j| kabs_j: refuse what could overflow float. */
    const uint32_t group = c->cfg.heads / c->cfg.kv_heads;
    for (uint32_t h = 0; h < c->cfg.heads; h++) {
        /* the float dot product itself, before the scale, must not overflow either */
        const double a = query_key_abs(c, q + (size_t)h * c->cfg.head_dim, h / group);
        if (a > 1.0e30 || scale * a > 1.0e30) return VS_E_RANGE;
    }
    return VS_OK;
}

/* Score rounding bound ds (see the rounding model above). */
static double score_error(const vs_cache *c, float scale, double qk_abs) {
    return scale * gamma_n(ceil(c->cfg.head_dim / 8.0) + 5) * qk_abs;
}

/* Upper bound of the float32 rounding of out = (sum_i w_i v_i) / Z, where every
   weight is within a factor kappa of its exact value, Z is a sum within
   relative gz, the accumulation is a sequential sum of n_acc terms, and
   `dropped` bounds the exact normalized mass of weights that underflowed. */
static double rounding_term(double vmax, double kappa, double gz, double n_acc, double dropped,
                            double n_abs, double dv) {
    const double k2 = kappa * kappa * (1 + gz) / (1 - gz);
    return vmax * ((k2 - 1) + (gamma_n(n_acc + 1) + 2 * U24) * k2 * (1 + gamma_n(n_acc + 1)) +
                   dropped) * (1 + 1e-9) +
           /* subnormal results: each of the n_abs products and sums, and the
              division, may be off by half a subnormal ulp, per coordinate */
           (2 * n_abs + 2) * 0x1p-150 * sqrt(dv);
}

static double norm2(const float *x, size_t n) {
    double s = 0;
    for (size_t i = 0; i < n; i++) s += (double)x[i] * x[i];
    return sqrt(s);
}

/* ---- dense -------------------------------------------------------------------------- */

/* Online-softmax attention of query heads [h0, h1), all reading KV head g,
   one storage chunk at a time (keys and values read once for the group; one
   max / exp / accumulate per chunk, and a fresh accumulator per chunk so that
   rounding grows with CT + T / CT terms instead of T).
   If ent is not NULL it receives exp(entropy) of head h0's weights; *blocks
   receives the number of chunks and *rescales the number of max updates
   (both for the rounding bound). */
static void dense_group(vs_cache *c, const vs_kernels *K, uint32_t g, uint32_t h0, uint32_t h1,
                        const float *q, float scale, float *out, double *ent, uint32_t *blocks,
                        uint32_t *rescales) {
    const uint32_t d = c->cfg.head_dim, dv = c->cfg.value_dim;
    const uint32_t CT = (uint32_t)vs_chunk_tokens(c);
    vs_scratch *w = &c->ws;
    double ent_acc = 0; /* sum p_i (s_i - m) for head h0 */
    uint32_t nres = 0;
    float *block_acc = w->acc + (size_t)c->cfg.heads * dv; /* [dv] */
    for (uint32_t h = h0; h < h1; h++) {
        w->hm[h] = -INFINITY;
        w->hl[h] = 0;
        memset(w->acc + (size_t)h * dv, 0, dv * sizeof(float));
    }
    for (uint32_t ch = 0; ch < c->nchunks; ch++) {
        const uint32_t t0 = ch * CT, n = c->length - t0 < CT ? c->length - t0 : CT;
        const float *kc = vs_chunk_keys(c, ch, g), *vc = vs_chunk_values(c, ch, g);
        for (uint32_t i = 0; i < n; i++) w->rows[i] = vc + (size_t)i * dv;
        for (uint32_t h = h0; h < h1; h++) {
            float *acc = w->acc + (size_t)h * dv, *sc = w->w;
            K->scores(kc, n, d, q + (size_t)h * d, scale, sc);
            const float bm = K->max(sc, n);
            if (bm > w->hm[h]) { /* new running max: rescale what we have */
                if (ch > 0) {
                    const float f = vs_exp(w->hm[h] - bm);
                    /* sum p'(s - m') = f (sum p (s - m) + (m - m') sum p) */
                    if (ent) ent_acc = f * (ent_acc + ((double)w->hm[h] - bm) * w->hl[h]);
                    K->scale(acc, dv, f);
                    w->hl[h] = w->hl[h] * f;
                    nres++;
                }
                w->hm[h] = bm;
            }
            if (ent) memcpy(w->cs, sc, n * sizeof(float));
            w->hl[h] = w->hl[h] + K->exp_sum(sc, n, w->hm[h]);
            if (ent)
                for (uint32_t i = 0; i < n; i++) ent_acc += (double)sc[i] * (w->cs[i] - w->hm[h]);
            memset(block_acc, 0, dv * sizeof(float));
            K->accum(w->rows, sc, n, dv, block_acc);
            const float one = 1.0f;
            const float *block_row = block_acc;
            K->accum(&block_row, &one, 1, dv, acc); /* acc += block_acc, exactly one add */
        }
    }
    for (uint32_t h = h0; h < h1; h++)
        for (uint32_t j = 0; j < dv; j++)
            out[(size_t)h * dv + j] = w->acc[(size_t)h * dv + j] / w->hl[h];
    if (ent) *ent = exp(log(w->hl[h0]) - ent_acc / w->hl[h0]);
    if (blocks) *blocks = c->nchunks;
    if (rescales) *rescales = nres;
}

int vs_decode_dense(vs_cache *c, const float *q, size_t q_count, float scale, float *out,
                    size_t out_count) {
    if (!c) return VS_E_NULL;
    float sc;
    int st = resolve_scale(c, scale, &sc);
    if (!st) st = check_query(c, q, q_count, out, out_count, sc);
    if (!st) st = ensure_scratch(c, (scratch_need){c->npages, 0, 0, 0, 0, 0, 0, 0});
    if (st) return st;
    const vs_kernels *K = vs_kernels_active();
    const uint32_t group = c->cfg.heads / c->cfg.kv_heads;
    for (uint32_t g = 0; g < c->cfg.kv_heads; g++)
        dense_group(c, K, g, g * group, (g + 1) * group, q, sc, out, NULL, NULL, NULL);
    return VS_OK;
}

/* ---- sparse ---------------------------------------------------------------------------- */

static int check_options(const vs_decode_options *o) {
    if (o->pages == 0 || o->candidates == 0 || o->widen < 2) return VS_E_OPTION;
    if (o->solver > VS_SOLVER_FW || o->routing > VS_ROUTING_TREE || o->share_routing > 1)
        return VS_E_OPTION;
    if (!(o->tolerance >= 0.0f) || !isfinite(o->tolerance)) return VS_E_OPTION;
    if (!(o->scale >= 0.0f) || !isfinite(o->scale)) return VS_E_OPTION;
    if (o->solver != VS_SOLVER_SOFTMAX) { /* checked even for fw, which ignores eps */
        if (!(o->eps >= VS_SOLVE_EPS_MIN && o->eps <= VS_SOLVE_EPS_MAX)) return VS_E_OPTION;
        if (o->max_iter == 0) return VS_E_OPTION;
        if (!(o->solver_tol > 0.0f) || !isfinite(o->solver_tol)) return VS_E_OPTION;
    }
    return VS_OK;
}

/* The projection solvers work in the key space's units: eps / scale and
   solver_tol / scale there (solvers.h). Refuses what would leave their ranges,
   before anything is computed, so that no head fails halfway through a call. */
static int check_projection(const vs_cache *c, const vs_decode_options *o, float scale,
                            const float *q, float *eps_k, float *tol_k) {
    const double e = (double)o->eps / scale, t = (double)o->solver_tol / scale;
    if (!(e >= VS_SOLVE_EPS_MIN && e <= VS_SOLVE_EPS_MAX) || !(t > 0 && t < 3.0e38))
        return VS_E_OPTION;
    *eps_k = (float)e;
    *tol_k = (float)t;
    if (!(*tol_k > 0.0f)) return VS_E_OPTION;
    const uint32_t d = c->cfg.head_dim;
    for (uint32_t g = 0; g < c->cfg.kv_heads; g++) { /* ||k||^2 <= sum_j kabs_j^2 */
        double kk = 0;
        for (uint32_t j = 0; j < d; j++) kk += (double)c->kabs[(size_t)g * d + j] * c->kabs[(size_t)g * d + j];
        if (kk > VS_SOLVE_MAX_SQNORM * 0.999) return VS_E_RANGE;
    }
    for (uint32_t h = 0; h < c->cfg.heads; h++) {
        double qq = 0;
        for (uint32_t j = 0; j < d; j++) qq += (double)q[(size_t)h * d + j] * q[(size_t)h * d + j];
        if (qq > VS_SOLVE_MAX_SQNORM * 0.999) return VS_E_RANGE;
    }
    return VS_OK;
}

void vs_decode_options_default(vs_decode_options *o) {
    if (!o) return;
    /* Chosen by `vashista bench --T 4K,32K,128K --config ...` (README): with
       S = 64, P = 16, Kc = 128 every needle is found at every T and sparse
       decode at 128K costs about 1% of dense. */
    o->pages = 16;
    o->candidates = 128;
    o->sink_pages = 1;
    o->recent_pages = 1;
    o->solver = VS_SOLVER_SOFTMAX;
    o->widen = 4;
    o->scale = 0.0f;
    o->tolerance = 0.0f;
    o->eps = 0.05f;
    o->max_iter = 200;
    o->solver_tol = 1e-6f;
    /* tree: at 1M tokens sparse decode costs 1.4x what it costs at 8K (flat:
       6x), with the same candidates found (README); flat bounds are tighter */
    o->routing = VS_ROUTING_TREE;
    o->expand = 0;
    o->share_routing = 0;
}

/* Nodes expanded by tree routing: `expand`, or by default enough for 2P
   pages and never fewer than VS_EXPAND_MIN (32) nodes: with 8, `vashista
   eval --T 128K --routing tree --expand 8` missed 10 of 400 needles; with
   16, `vashista bench --T 1M --heads 32 --kv-heads 8` missed 2 of 2048; with
   32, none (README). */
static size_t tree_expand(const vs_decode_options *o, size_t P) {
    if (o->expand) return o->expand;
    const size_t half = VS_NODE_PAGES / 2;
    const size_t e = P / half + (P % half ? 1 : 0); /* ceil(2P / VS_NODE_PAGES), without wrapping */
    return e > VS_EXPAND_MIN ? e : VS_EXPAND_MIN;
}

static float bf16f(uint16_t h) {
    const uint32_t u = (uint32_t)h << 16;
    float f;
    memcpy(&f, &u, sizeof f);
    return f;
}

/* Brings the node boxes up to date: appends only grow page boxes, so folding
   the pages from token nodes_len on (min of lo, max of hi, as bf16 values)
   gives the box of every page of the node; a node whose first page is new is
   started from it. */
static void update_nodes(vs_cache *c) {
    vs_scratch *w = &c->ws;
    if (w->nodes_len == c->length) return;
    const uint32_t S = c->cfg.page_size, F = VS_NODE_PAGES, d = c->cfg.head_dim;
    const uint32_t np = c->npages;
    for (uint32_t g = 0; g < c->cfg.kv_heads; g++) {
        const float *vnorm = c->vnorm + (size_t)g * c->page_cap;
        for (uint32_t p = w->nodes_len / S; p < np; p++) {
            const uint32_t n = p / F;
            uint16_t *nb = w->nsumm + ((size_t)g * w->cap_nodes + n) * 2 * d;
            const uint16_t *pb = vs_summary(c, g, p);
            float *nv = w->nvnorm + (size_t)g * w->cap_nodes + n;
            if (p % F == 0 && (size_t)p * S >= w->nodes_len) {
                memcpy(nb, pb, 2 * d * sizeof *nb);
                *nv = vnorm[p];
                continue;
            }
            for (uint32_t j = 0; j < d; j++) {
                if (bf16f(pb[2 * j]) < bf16f(nb[2 * j])) nb[2 * j] = pb[2 * j];
                if (bf16f(pb[2 * j + 1]) > bf16f(nb[2 * j + 1])) nb[2 * j + 1] = pb[2 * j + 1];
            }
            if (vnorm[p] > *nv) *nv = vnorm[p];
        }
    }
    w->nodes_len = c->length;
}

/* Tokens held by node n. */
static uint32_t node_count(const vs_cache *c, uint32_t n) {
    const uint32_t span = VS_NODE_PAGES * c->cfg.page_size, start = n * span;
    return c->length - start < span ? c->length - start : span;
}

/* sum_i wt_i rows_i over the nc candidate value rows (ws.rows) into head h's
   accumulator, returned: in blocks of VS_CHUNK_TOKENS candidates, each block
   summed on its own as in dense decode, so that with a large candidate set a
   running sum near the largest terms does not swallow the small ones (the
   rounding grows with B + nc / B terms). */
static const float *blocked_accum(vs_cache *c, const vs_kernels *K, uint32_t h, const float *wt,
                                  size_t nc) {
    vs_scratch *w = &c->ws;
    const uint32_t dv = c->cfg.value_dim;
    const size_t B = VS_CHUNK_TOKENS;
    float *acc = w->acc + (size_t)h * dv, *block_acc = w->acc + (size_t)c->cfg.heads * dv;
    const float one = 1.0f, *block_row = block_acc;
    memset(acc, 0, dv * sizeof(float));
    K->accum(w->rows, wt, nc < B ? nc : B, dv, acc);
    for (size_t i = B; i < nc; i += B) {
        memset(block_acc, 0, dv * sizeof(float));
        K->accum(w->rows + i, wt + i, nc - i < B ? nc - i : B, dv, block_acc);
        K->accum(&block_row, &one, 1, dv, acc); /* acc += block_acc */
    }
    return acc;
}

/* A bound array over unrouted tokens: each finite entry of b[0..n) stands for
   wt tokens, except b[last] (when last < n) for last_n; nu entries are finite. */
typedef struct off_group {
    float *b;
    size_t n, nu, last;
    double wt, last_n;
} off_group;

/* The groups of the last routing of KV head g (nr pages routed, `forced` of
   them sink or recent), over the bound arrays given: flat, `pages` (every
   page, routed ones -inf); tree, `nodes` (every node: the expanded ones are
   set to -inf here) and `xpages` (the expanded nodes' middle pages, routed
   ones -inf). Returns how many groups. Tokens of sink or recent pages inside
   an unexpanded node are counted twice: the bound only grows. */
static int off_groups(vs_cache *c, uint32_t g, uint32_t nr, uint32_t forced, float *pages,
                      float *nodes, float *xpages, off_group *out) {
    const vs_scratch *w = &c->ws;
    const uint32_t S = c->cfg.page_size, np = c->npages, F = VS_NODE_PAGES;
    const uint32_t last_p = vs_page_count(c, np - 1);
    (void)g;
    if (!w->r_tree) {
        out[0] = (off_group){pages, np, np - nr, last_p < S ? np - 1 : np, S, last_p};
        return 1;
    }
    const uint32_t nn = (np + F - 1) / F, last_n = node_count(c, nn - 1);
    for (uint32_t k = 0; k < w->r_ne; k++) nodes[w->node_list[k]] = -INFINITY;
    out[0] = (off_group){nodes, nn, nn - w->r_ne, last_n < F * S ? nn - 1 : nn, (double)F * S,
                         last_n};
    const size_t nx = w->r_nx, lastx = nx && w->xpage[nx - 1] == np - 1 && last_p < S ? nx - 1 : nx;
    out[1] = (off_group){xpages, nx, nx - (nr - forced), lastx, S, last_p};
    return 2;
}

static int cmp_float(const void *a, const void *b) {
    const float x = *(const float *)a, y = *(const float *)b;
    return (x > y) - (x < y);
}

/* Projection solver (eg, fw) over the nc candidates selected by sparse_head,
 * then its certificate. With p = U_C alpha (alpha normalized in double) and
 * the adjusted scores a_j = scale <k_j, q - p> of every token (gradient -a):
 *   eg: F(alpha) - F*_T <= G = eps sum alpha log alpha - <alpha, a> + eps log sum_{all j} e^{a_j/eps}
 *       (the entropic duality gap over all T tokens; eps-strong convexity of F
 *       in l1 then gives ||alpha - alpha*||_1 <= sqrt(2 G / eps), so the exact
 *       output moves by at most vmax sqrt(2 G / eps) and the mass alpha* puts
 *       outside C is at most sqrt(G / (2 eps)));
 *   fw: f(alpha) - f*_T <= G = max_{all j} a_j - <alpha, a> (the Frank-Wolfe gap
 *       over all tokens), so ||p - p*|| <= sqrt(2 G / scale) (projection onto a
 *       convex set). 
 * a is exact (double) on C; outside C it is bounded above by exact float scores
 * of the routed tokens and by page bounds of the rest, each plus delta, their
 * float rounding (the rounding model at the top, for the query q - p). */
static int project_head(vs_cache *c, const vs_kernels *K, uint32_t h, const float *qh,
                        float scale, const vs_decode_options *o, float eps_k, float tol_k,
                        uint32_t nr, size_t nt, size_t nc, float *out, vs_head_diag *dg,
                        double *ref_norm) {
    vs_scratch *w = &c->ws;
    const uint32_t d = c->cfg.head_dim, dv = c->cfg.value_dim, S = c->cfg.page_size;
    const uint32_t g = h / (c->cfg.heads / c->cfg.kv_heads), np = c->npages, T = c->length;
    const float *vnorm = c->vnorm + (size_t)g * c->page_cap;
    const int fw = o->solver == VS_SOLVER_FW;
    const double eps = o->eps;

    for (size_t i = 0; i < nc; i++) {
        const uint32_t t = w->tok_index[w->cand[i]];
        w->krows[i] = vs_page_keys(c, t / S, g) + (size_t)(t % S) * d;
        w->rows[i] = vs_page_values(c, t / S, g) + (size_t)(t % S) * dv;
    }
    vs_solve_info si;
    int st = vs_solve(K, o->solver, w->krows, nc, d, qh, eps_k, o->max_iter, tol_k, w->alpha,
                      w->mu, w->solve_work, &si);
    if (st) return st;

    /* out = sum alpha_i v_i */
    const size_t B = VS_CHUNK_TOKENS, nb0 = nc < B ? nc : B;
    memcpy(out, blocked_accum(c, K, h, w->alpha, nc), dv * sizeof(float));

    /* p = U alpha / sum alpha, q - p, and the candidates' adjusted scores, in double */
    double A = 0, pn = 0, kp = 0;
    for (size_t i = 0; i < nc; i++) A += w->alpha[i];
    double *p = w->point;
    for (uint32_t j = 0; j < d; j++) p[j] = 0;
    for (size_t i = 0; i < nc; i++) {
        if (w->alpha[i] == 0.0f) continue;
        const double ai = w->alpha[i] / A;
        for (uint32_t j = 0; j < d; j++) p[j] += ai * w->krows[i][j];
    }
    const float *kabs = c->kabs + (size_t)g * d;
    for (uint32_t j = 0; j < d; j++) {
        w->resid[j] = (float)((double)qh[j] - p[j]);
        pn += p[j] * p[j];
        kp += kabs[j] * (fabs((double)qh[j]) + fabs(p[j]));
    }
    /* double rounding of p (nc terms per coordinate) and of any a_j (d terms) */
    double kk = 0;
    for (uint32_t j = 0; j < d; j++) kk += (double)kabs[j] * kabs[j];
    const double dslack = scale * ((double)(nc + d + 16) * 0x1p-50 * (kp + kk));
    double amax = -INFINITY;
    for (size_t i = 0; i < nc; i++) {
        double t = 0;
        for (uint32_t j = 0; j < d; j++) t += (double)w->krows[i][j] * ((double)qh[j] - p[j]);
        w->adj[i] = scale * t;
        amax = w->adj[i] > amax ? w->adj[i] : amax;
    }

    /* tokens outside C: routed ones exactly (float), the rest by page bounds */
    const double qe = query_key_abs(c, w->resid, g);
    const double delta = score_error(c, scale, qe) + scale * 2 * U24 * qe + dslack;
    size_t nrn = 0;
    double mo = -INFINITY; /* upper bound of every a_j outside C */
    off_group grp[2];
    int ngrp = 0;
    if (nc < T) {
        size_t at = 0;
        for (uint32_t r = 0; r < nr; r++) {
            const uint32_t pg = w->page_list[r], n = vs_page_count(c, pg);
            K->scores(vs_page_keys(c, pg, g), n, d, w->resid, scale, w->tok_score + at);
            at += n;
        }
        for (size_t i = 0, j = 0; i < nt; i++) { /* compact the non-candidates */
            if (j < nc && w->cand[j] == i) {
                j++;
                continue;
            }
            const double s = (double)w->tok_score[i] + delta;
            mo = s > mo ? s : mo;
            w->tok_score[nrn++] = w->tok_score[i];
        }
        /* the same unrouted groups as the softmax certificate, bounded for q - p */
        if (!w->r_tree) {
            K->page_bounds(vs_summary(c, g, 0), np, d, w->resid, scale, w->bound);
            for (uint32_t r = 0; r < nr; r++) w->bound[w->page_list[r]] = -INFINITY;
        } else {
            const uint32_t F = VS_NODE_PAGES, nn = (np + F - 1) / F;
            K->page_bounds(w->nsumm + (size_t)g * w->cap_nodes * 2 * d, nn, d, w->resid, scale,
                           w->nbound);
            size_t x = 0, r = 0;
            for (uint32_t k = 0; k < w->r_ne; k++) { /* the expanded nodes' middle pages */
                const uint32_t n = w->node_list[k];
                if (x == w->r_nx || w->xpage[x] / F != n) continue;
                size_t x1 = x;
                while (x1 < w->r_nx && w->xpage[x1] / F == n) x1++;
                K->page_bounds(vs_summary(c, g, w->xpage[x]), x1 - x, d, w->resid, scale,
                               w->xbound + x);
                x = x1;
            }
            for (x = 0; x < w->r_nx; x++) { /* routed ones out (both lists increase) */
                while (r < nr && w->page_list[r] < w->xpage[x]) r++;
                if (r < nr && w->page_list[r] == w->xpage[x]) w->xbound[x] = -INFINITY;
            }
        }
        /* (the groups' nu is not used here: entries are tested one by one) */
        ngrp = off_groups(c, g, nr, 0, w->bound, w->nbound, w->xbound, grp);
        for (int i = 0; i < ngrp; i++)
            for (size_t k = 0; k < grp[i].n; k++)
                if (grp[i].b[k] != -INFINITY && (double)grp[i].b[k] + delta > mo)
                    mo = (double)grp[i].b[k] + delta;
    }

    /* the duality gap over all T tokens (score units) */
    double lin = 0, ent = 0, G, mag;
    double nsum = (double)(nc + nrn + 16); /* terms in any double sum below */
    for (int i = 0; i < ngrp; i++) nsum += (double)grp[i].n;
    for (size_t i = 0; i < nc; i++) {
        if (w->alpha[i] == 0.0f) continue;
        const double ai = w->alpha[i] / A;
        lin += ai * (w->adj[i] - amax);
        ent += ai * log(ai);
    }
    if (fw) {
        G = (mo > amax ? mo - amax : 0.0) - lin;
        mag = fabs(lin) + fabs(mo > amax ? mo - amax : 0.0);
    } else {
        double zc = 0;
        for (size_t i = 0; i < nc; i++) zc += exp((w->adj[i] - amax) / eps);
        double lZ = log(zc);
        if (mo > -INFINITY) { /* log sum over outside C of n_j e^{(a_j - amax)/eps}, from mo */
            double sr = 0;
            for (size_t i = 0; i < nrn; i++) sr += exp(((double)w->tok_score[i] + delta - mo) / eps);
            for (int i = 0; i < ngrp; i++)
                for (size_t k = 0; k < grp[i].n; k++)
                    if (grp[i].b[k] != -INFINITY)
                        sr += (k == grp[i].last ? grp[i].last_n : grp[i].wt) *
                              exp(((double)grp[i].b[k] + delta - mo) / eps);
            lZ = log_add(lZ, log(sr * (1 + nsum * 0x1p-50)) + (mo - amax) / eps);
        }
        G = eps * ent - lin + eps * lZ;
        mag = eps * fabs(ent) + fabs(lin) + eps * fabs(lZ);
    }
    G = (G > 0 ? G : 0.0) + nsum * 0x1p-50 * mag + 2 * dslack;

    /* the face I and the gap between it and everything else */
    double gap = si.face_size == nc ? INFINITY : (double)si.gap * scale;
    float mk = INFINITY; /* eg: I = the face_size smallest multipliers */
    if (!fw && si.face_size < nc) {
        memcpy(w->cs, w->mu, nc * sizeof(float));
        qsort(w->cs, nc, sizeof(float), cmp_float);
        mk = w->cs[si.face_size - 1];
    }
    double amin_I = INFINITY;
    for (size_t i = 0; i < nc; i++) {
        const int in = fw ? w->alpha[i] > 0.0f : w->mu[i] <= mk;
        if (in && w->adj[i] < amin_I) amin_I = w->adj[i];
    }
    if (mo > -INFINITY && amin_I - mo - dslack < gap) gap = amin_I - mo - dslack;
    const uint32_t face = si.face_size;

    const double onorm = norm2(out, dv);
    float vmax_r = 0;
    for (uint32_t r = 0; r < nr; r++) vmax_r = vnorm[w->page_list[r]] > vmax_r ? vnorm[w->page_list[r]] : vmax_r;
    const double vmax_all = w->r_tree ? K->max(w->nvnorm + (size_t)g * w->cap_nodes,
                                               (np + VS_NODE_PAGES - 1) / VS_NODE_PAGES)
                                      : K->max(vnorm, np);
    const double nblocks = ceil((double)nc / VS_CHUNK_TOKENS);
    double err, rho;
    if (fw) {
        err = sqrt(2 * G / scale) * (1 + 1e-9);
        rho = nc == T ? 0.0 : 1.0;
        *ref_norm = sqrt(pn);
    } else {
        const double fterm = rounding_term(vmax_r, 1.0, fabs(A - 1) + 1e-12, (double)nb0 + nblocks,
                                           0.0, (double)nc + nblocks, dv);
        err = vmax_all * sqrt(2 * G / eps) * (1 + 1e-9) + fterm;
        rho = nc == T ? 0.0 : fmin(1.0, sqrt(G / (2 * eps)) * (1 + 1e-9));
        *ref_norm = onorm;
    }
    dg->routed_pages = nr;
    dg->candidates = (uint32_t)nc;
    dg->fallback = VS_FALLBACK_NONE;
    dg->iterations = si.iterations;
    dg->effective_support = si.effective_support;
    dg->gap = (float)gap;
    /* eg: a face read off an unconverged iterate's multipliers proves nothing */
    dg->leakage_bound = fw || gap == INFINITY ? 0.0f
                        : gap <= 0 || !si.converged ? 1.0f
                                              : round_up(fmin(1.0, (double)(T - face) / face *
                                                                       exp(-gap / (2 * eps))));
    dg->rho_cert = fminf(1.0f, round_up(rho));
    dg->error_bound = round_up(err);
    dg->output_norm = (float)onorm;
    dg->residual = round_up((double)si.residual * scale);
    dg->face_size = face;
    return VS_OK;
}

/* Sparse attention for query head h with P routed pages and Kc candidates.
   Leaves the routed pages in ws.page_list[0..*nroute) and the candidates'
   token positions in ws.cand[0..diag->candidates) (indices into tok_index).
   *ref_norm: the norm the tolerance compares error_bound with. */
/* Routes query qh (of KV head g) to sink + top-P middle pages by bound +
   recent pages: ws.page_list[0..return), increasing; leaves the bound arrays
   the certificate reads (flat: ws.bound; tree: ws.nbound, ws.xbound). */
static uint32_t route(vs_cache *c, const vs_kernels *K, uint32_t g, const float *qh, float scale,
                      size_t P, const vs_decode_options *o) {
    vs_scratch *w = &c->ws;
    const uint32_t d = c->cfg.head_dim, np = c->npages;
    const uint32_t sink = o->sink_pages < np ? o->sink_pages : np;
    const uint32_t recent = o->recent_pages < np - sink ? o->recent_pages : np - sink;
    const uint32_t mid = np - sink - recent, F = VS_NODE_PAGES, nn = (np + F - 1) / F;
    const size_t E = o->routing == VS_ROUTING_TREE ? tree_expand(o, P) : nn;
    uint32_t nr = 0;
    w->r_tree = 0;
    for (uint32_t p = 0; p < sink; p++) w->page_list[nr++] = p;
    if (mid > 0 && P >= mid) { /* every page: nothing to select */
        for (uint32_t p = 0; p < mid; p++) w->page_list[nr++] = sink + p;
    } else if (mid > 0 && E >= nn) { /* flat: a bound for every page */
        K->page_bounds(vs_summary(c, g, 0), np, d, qh, scale, w->bound);
        size_t got = K->topk(w->bound + sink, mid, P, w->topk, w->page_list + nr);
        for (size_t i = 0; i < got; i++) w->page_list[nr + i] += sink;
        nr += (uint32_t)got;
    } else if (mid > 0) { /* tree: node bounds, top-E nodes, their middle pages' bounds */
        K->page_bounds(w->nsumm + (size_t)g * w->cap_nodes * 2 * d, nn, d, qh, scale, w->nbound);
        const size_t ne = K->topk(w->nbound, nn, E, w->topk, w->node_list);
        size_t nx = 0;
        for (size_t k = 0; k < ne; k++) {
            const uint32_t n = w->node_list[k];
            const uint32_t p0 = n * F > sink ? n * F : sink;
            const uint32_t p1 = (n + 1) * F < np - recent ? (n + 1) * F : np - recent;
            if (p0 >= p1) continue;
            K->page_bounds(vs_summary(c, g, p0), p1 - p0, d, qh, scale, w->xbound + nx);
            for (uint32_t p = p0; p < p1; p++) w->xpage[nx++] = p;
        }
        size_t got;
        if (P >= nx) {
            for (size_t i = 0; i < nx; i++) w->page_list[nr + i] = (uint32_t)i;
            got = nx;
        } else {
            got = K->topk(w->xbound, nx, P, w->topk, w->page_list + nr);
        }
        for (size_t i = 0; i < got; i++) { /* routed: out of the certificate's page terms */
            w->xbound[w->page_list[nr + i]] = -INFINITY;
            w->page_list[nr + i] = w->xpage[w->page_list[nr + i]];
        }
        nr += (uint32_t)got;
        w->r_tree = 1;
        w->r_ne = (uint32_t)ne;
        w->r_nx = nx;
    }
    for (uint32_t p = np - recent; p < np; p++) w->page_list[nr++] = p;
    return nr;
}

/* Attention of query head h over the nr pages routed in ws (by its own query,
   or by its group's shared one): exact scores, top-Kc candidates, the solver,
   and the certificate. `ds_route` bounds the rounding of the routing bounds
   and `shift` how far they may lie below head h's own (0 when h routed
   itself; ds_route 0 then, as h's own rounding is counted anyway); `keep`:
   leave the routing's bound arrays as they are (shared). Leaves the candidates' positions in ws.cand[0..diag->candidates)
   (indices into tok_index). *ref_norm: the norm the tolerance compares
   error_bound with. */
static int attend(vs_cache *c, const vs_kernels *K, uint32_t h, const float *qh, float scale,
                  size_t Kc, const vs_decode_options *o, float eps_k, float tol_k, uint32_t nr,
                  double ds_route, double shift, int keep, float *out, vs_head_diag *dg,
                  double *ref_norm) {
    vs_scratch *w = &c->ws;
    const uint32_t d = c->cfg.head_dim, dv = c->cfg.value_dim, S = c->cfg.page_size;
    const uint32_t g = h / (c->cfg.heads / c->cfg.kv_heads), np = c->npages, T = c->length;
    const double qk_abs = query_key_abs(c, qh, g), ds = score_error(c, scale, qk_abs);
    const float *vnorm = c->vnorm + (size_t)g * c->page_cap;
    const uint32_t sink = o->sink_pages < np ? o->sink_pages : np;
    const uint32_t recent = o->recent_pages < np - sink ? o->recent_pages : np - sink;
    /* routing bounds, raised to bound head h's own: their rounding beyond h's, and the shift */
    const double extra = shift + (ds_route > ds ? ds_route - ds : 0.0);

    /* select: exact scores of the routed tokens, then the top Kc */
    size_t nt = 0;
    for (uint32_t r = 0; r < nr; r++) {
        const uint32_t p = w->page_list[r], n = vs_page_count(c, p);
        K->scores(vs_page_keys(c, p, g), n, d, qh, scale, w->tok_score + nt);
        for (uint32_t i = 0; i < n; i++) w->tok_index[nt + i] = p * S + i;
        nt += n;
    }
    size_t nc;
    if (Kc >= nt) {
        nc = nt;
        for (size_t i = 0; i < nt; i++) w->cand[i] = (uint32_t)i;
    } else {
        nc = K->topk(w->tok_score, nt, Kc, w->topk, w->cand);
    }
    if (o->solver != VS_SOLVER_SOFTMAX) /* (it bounds the unrouted tokens for its own query) */
        return project_head(c, K, h, qh, scale, o, eps_k, tol_k, nr, nt, nc, out, dg, ref_norm);

    /* solve: softmax over the candidates */
    float cmin = INFINITY;
    for (size_t i = 0; i < nc; i++) {
        const uint32_t t = w->tok_index[w->cand[i]];
        w->cs[i] = w->w[i] = w->tok_score[w->cand[i]];
        cmin = w->cs[i] < cmin ? w->cs[i] : cmin;
        w->rows[i] = vs_page_values(c, t / S, g) + (size_t)(t % S) * dv;
    }
    /* Z and sum_i w_i v_i, both in blocks of B = VS_CHUNK_TOKENS candidates
       (blocked_accum says why) */
    const float m = K->max(w->cs, nc);
    const size_t B = VS_CHUNK_TOKENS, nb0 = nc < B ? nc : B;
    float Z = K->exp_sum(w->w, nb0, m); /* >= 1 when it holds the max term (exactly 1) */
    for (size_t i = B; i < nc; i += B) Z = Z + K->exp_sum(w->w + i, nc - i < B ? nc - i : B, m);
    const float *acc = blocked_accum(c, K, h, w->w, nc);
    for (uint32_t j = 0; j < dv; j++) out[j] = acc[j] / Z;

    /* certify: what the candidates left out */
    size_t nrn = 0; /* routed, not candidates: compacted in place */
    float max_off = -INFINITY;
    for (size_t i = 0, j = 0; i < nt; i++) {
        if (j < nc && w->cand[j] == i) {
            j++;
            continue;
        }
        const float s = w->tok_score[i];
        max_off = s > max_off ? s : max_off;
        w->tok_score[nrn++] = s;
    }
    const double s_rn = nrn ? K->exp_sum(w->tok_score, nrn, m) : 0.0;
    /* Unrouted tokens, by bound arrays whose routed entries are -inf, so one
       max and one exp_sum see exactly the rest: flat, every page; tree, the
       unexpanded nodes and the expanded nodes' unrouted middle pages. */
    float vmax_r = 0;
    for (uint32_t r = 0; r < nr; r++) {
        const uint32_t p = w->page_list[r];
        vmax_r = vnorm[p] > vmax_r ? vnorm[p] : vmax_r;
        if (!w->r_tree) w->bound[p] = -INFINITY;
    }
    off_group grp[2];
    const int ng = off_groups(c, g, nr, sink + recent, w->bound, w->nbound, w->xbound, grp);
    size_t nmax = nc > nrn ? nc : nrn;
    for (int i = 0; i < ng; i++) nmax = grp[i].n > nmax ? grp[i].n : nmax;
    /* any page's value norm bounds the off-candidate values (a cheap, looser vmax_off) */
    const float vmax_u = nr == np ? 0.0f
                         : w->r_tree ? K->max(w->nvnorm + (size_t)g * w->cap_nodes, (np + VS_NODE_PAGES - 1) / VS_NODE_PAGES)
                                     : K->max(vnorm, np);

    /* sums: canonical ones of up to nmax terms; Z: canonical within blocks, then sequential */
    const double z_depth = ceil((double)nb0 / 8.0) + 3 + ceil((double)nc / VS_CHUNK_TOKENS);
    const double gz = gamma_n(fmax(ceil(nmax / 8.0) + 3, z_depth));
    const double kappa = exp(ds + 100 * U24) * (1 + VS_EXP_REL_ERR);
    const double drop = exp(VS_EXP_LO + ds + 1e-5);
    /* everything in the log domain relative to e^m */
    const double lZ = log(Z / (kappa * (1 + gz)));
    double lR = -INFINITY;
    if (nrn) lR = log_add(lR, log(s_rn * kappa / (1 - gz) + nrn * drop));
    /* the routed-but-not-candidate scores are head h's own; the unrouted
       groups' bounds are the routing's, raised by `extra` (0 unless shared) */
    double max_off_u = -INFINITY;
    for (int i = 0; i < ng; i++) {
        off_group *o2 = &grp[i];
        float *b = o2->b; /* exp_sum overwrites it: a shared routing's serves later heads too */
        if (keep) b = memcpy(w->btmp, o2->b, o2->n * sizeof(float));
        if (o2->last < o2->n && b[o2->last] != -INFINITY) { /* a partial page or node */
            const float lb = b[o2->last];
            b[o2->last] = -INFINITY;
            o2->nu--;
            lR = log_add(lR, log(o2->last_n) + ((double)lb - m) + ds + extra + 1e-9);
            max_off_u = fmax(max_off_u, (double)lb + extra);
        }
        if (o2->nu) {
            const float M_u = K->max(b, o2->n);
            const double s_u = K->exp_sum(b, o2->n, M_u);
            lR = log_add(lR, log(o2->wt * (s_u * kappa / (1 - gz) + o2->nu * drop)) +
                                 ((double)M_u - m) + extra);
            max_off_u = fmax(max_off_u, (double)M_u + extra);
        }
    }
    const double rho = lR == -INFINITY ? 0.0 : 1.0 / (1.0 + exp(lZ - lR));

    const double onorm = norm2(out, dv);
    const double vmax_off = nrn ? (vmax_u > vmax_r ? vmax_u : vmax_r) : vmax_u;
    const double nblocks = ceil((double)nc / VS_CHUNK_TOKENS);
    const double fterm = rounding_term(vmax_r, kappa, gz, (double)nb0 + nblocks, nc * drop,
                                       (double)nc + nblocks, dv);
    double ent = 0;
    for (size_t i = 0; i < nc; i++) ent += (double)w->w[i] * ((double)w->cs[i] - m);
    const double H = log((double)Z) - ent / Z;
    const double gap = nc == T ? INFINITY : (double)cmin - fmax((double)max_off, max_off_u) - 2 * ds;

    dg->routed_pages = nr;
    dg->candidates = (uint32_t)nc;
    dg->fallback = VS_FALLBACK_NONE;
    dg->iterations = 1;
    dg->effective_support = (float)fmin(fmax(exp(H), 1.0), (double)nc);
    dg->gap = (float)gap;
    dg->leakage_bound = nc == T ? 0.0f : (float)fmin(1.0, (double)(T - nc) / nc * exp(-gap));
    dg->rho_cert = fminf(1.0f, round_up(rho * (1 + 1e-12))); /* a mass: never above 1 */
    dg->error_bound = round_up((rho * (onorm * (1 + 1e-12) + fterm + vmax_off) + fterm) * (1 + 1e-12));
    dg->output_norm = (float)onorm;
    dg->residual = 0.0f;
    dg->face_size = (uint32_t)nc;
    *ref_norm = onorm;
    return VS_OK;
}

/* Routing and attention of query head h by its own query. */
static int sparse_head(vs_cache *c, const vs_kernels *K, uint32_t h, const float *qh, float scale,
                       size_t P, size_t Kc, const vs_decode_options *o, float eps_k, float tol_k,
                       float *out, vs_head_diag *dg, uint32_t *nroute, double *ref_norm) {
    const uint32_t g = h / (c->cfg.heads / c->cfg.kv_heads);
    *nroute = route(c, K, g, qh, scale, P, o);
    return attend(c, K, h, qh, scale, Kc, o, eps_k, tol_k, *nroute, 0.0, 0.0, 0, out, dg,
                  ref_norm);
}

/* Dense decode of one head, with the diagnostics of a fallback. */
static void dense_head(vs_cache *c, const vs_kernels *K, uint32_t h, const float *q, float scale,
                       float *out, vs_head_diag *dg) {
    const uint32_t g = h / (c->cfg.heads / c->cfg.kv_heads), dv = c->cfg.value_dim;
    double eff;
    uint32_t nblk, nres;
    /* dense_group writes out[h*dv..]; q is the whole query array */
    dense_group(c, K, g, h, h + 1, q, scale, out, &eff, &nblk, &nres);
    const float *vnorm = c->vnorm + (size_t)g * c->page_cap;
    float vmax = 0;
    for (uint32_t p = 0; p < c->npages; p++) vmax = vnorm[p] > vmax ? vnorm[p] : vmax;
    const double ds = score_error(c, scale, query_key_abs(c, q + (size_t)h * c->cfg.head_dim, g));
    /* each rescale multiplies by one more vs_exp and rounds twice */
    const double kappa = exp(ds + 100 * U24) * pow((1 + VS_EXP_REL_ERR) * exp(300 * U24), nres + 1);
    /* sums: canonical within a block, then sequential over blocks with rescales;
       accumulators: sequential within a block, one add per block */
    const double block = (double)vs_chunk_tokens(c);
    const double gz = gamma_n(ceil(block / 8.0) + 3 + nblk + nres);
    const double drop = exp(VS_EXP_LO + ds + 1e-5);
    const double fterm = rounding_term(vmax, kappa, gz, block + 2.0 * nblk + nres,
                                       (double)c->length * drop,
                                       (double)c->length + 2.0 * nblk + nres, dv);
    dg->routed_pages = c->npages;
    dg->candidates = c->length;
    dg->fallback = VS_FALLBACK_DENSE;
    dg->iterations = 1;
    dg->effective_support = (float)fmin(fmax(eff, 1.0), (double)c->length);
    dg->gap = INFINITY;
    dg->leakage_bound = 0.0f;
    dg->rho_cert = 0.0f;
    dg->error_bound = round_up(fterm);
    dg->output_norm = (float)norm2(out + (size_t)h * dv, dv);
    dg->residual = 0.0f;
    dg->face_size = c->length;
}

int vs_decode(vs_cache *c, const float *q, size_t q_count, const vs_decode_options *options,
              float *out, size_t out_count, vs_head_diag *diag, size_t diag_count) {
    if (!c) return VS_E_NULL;
    vs_decode_options o;
    if (options) o = *options;
    else vs_decode_options_default(&o);
    int st = check_options(&o);
    if (st) return st;
    float sc;
    if ((st = resolve_scale(c, o.scale, &sc))) return st;
    if ((st = check_query(c, q, q_count, out, out_count, sc))) return st;
    if (diag && diag_count != c->cfg.heads) return VS_E_LENGTH;

    float eps_k = 0, tol_k = 0;
    const int proj = o.solver != VS_SOLVER_SOFTMAX;
    if (proj && (st = check_projection(c, &o, sc, q, &eps_k, &tol_k))) return st;

    const size_t np = c->npages, S = c->cfg.page_size, T = c->length;
    const size_t widen = o.tolerance > 0 ? o.widen : 1;
    const size_t Pmax = vs_mul_sat(o.pages, widen), Kmax = vs_mul_sat(o.candidates, widen);
    /* clamp first: with a 32-bit size_t (wasm32) the sum can wrap */
    const size_t forced = (o.sink_pages < np ? o.sink_pages : np) +
                          (o.recent_pages < np ? o.recent_pages : np);
    const size_t routed = Pmax >= np || forced >= np - Pmax ? np : Pmax + forced;
    const size_t tokens = routed * S, sel = Kmax < tokens ? Kmax : tokens;
    /* a projection's dense fallback runs its solver over every token */
    const int proj_dense = proj && o.tolerance > 0;
    scratch_need need = {np, proj_dense ? np * S : tokens, proj_dense ? T : sel, sel, routed,
                         0, 0, 0};
    if (o.routing == VS_ROUTING_TREE) { /* only the first pass: the widened retry routes flat */
        const size_t nn = (np + VS_NODE_PAGES - 1) / VS_NODE_PAGES, E = tree_expand(&o, o.pages);
        need.nodes = nn;
        need.xpages = E < nn ? E * VS_NODE_PAGES : np;
        need.topk = E < nn ? E : nn;
    }
    if ((st = ensure_scratch(c, need))) return st;
    if (o.routing == VS_ROUTING_TREE) update_nodes(c);

    const vs_kernels *K = vs_kernels_active();
    vs_scratch *w = &c->ws;
    const uint32_t d = c->cfg.head_dim, dv = c->cfg.value_dim;
    w->sel_valid = 0;
    vs_decode_options wide = o;
    wide.routing = VS_ROUTING_FLAT;
    wide.share_routing = 0;
    const uint32_t group = c->cfg.heads / c->cfg.kv_heads;
    const int share = o.share_routing && group > 1;
    uint32_t shared_nr = 0;
    int shared_valid = 0;
    double shared_ds = 0;
    float *qm = w->qmean;
    for (uint32_t h = 0; h < c->cfg.heads; h++) {
        const float *qh = q + (size_t)h * d;
        float *oh = out + (size_t)h * dv;
        vs_head_diag dg;
        uint32_t nr;
        double ref;
        if (share) {
            const uint32_t g = h / group;
            const float *qg = q + (size_t)g * group * d;
            if (h % group == 0 || !shared_valid) { /* route once per KV head */
                for (uint32_t j = 0; j < d; j++) {
                    float sum = 0.0f;
                    for (uint32_t k = 0; k < group; k++) sum += qg[(size_t)k * d + j];
                    qm[j] = sum / (float)group;
                }
                shared_nr = route(c, K, g, qm, sc, o.pages, &o);
                shared_ds = score_error(c, sc, query_key_abs(c, qm, g));
                shared_valid = 1;
            }
            /* |u_p(q_h) - u_p(q_m)| <= scale sum_j |q_h,j - q_m,j| kabs_j for any box in the cache */
            const float *kabs = c->kabs + (size_t)g * d;
            double shift = 0;
            for (uint32_t j = 0; j < d; j++) shift += fabs((double)qh[j] - qm[j]) * kabs[j];
            shift *= sc * (1 + 1e-12);
            nr = shared_nr;
            st = attend(c, K, h, qh, sc, o.candidates, &o, eps_k, tol_k, nr, shared_ds, shift, 1,
                        oh, &dg, &ref);
        } else {
            st = sparse_head(c, K, h, qh, sc, o.pages, o.candidates, &o, eps_k, tol_k, oh, &dg,
                             &nr, &ref);
        }
        const double tol = o.tolerance;
        if (!st && tol > 0 && dg.error_bound > tol * ref) {
            /* the retry spends more to certify: flat routing, whose page bounds
               are tighter than a node's */
            st = sparse_head(c, K, h, qh, sc, Pmax, Kmax, &wide, eps_k, tol_k, oh, &dg, &nr, &ref);
            dg.fallback = VS_FALLBACK_WIDENED;
            shared_valid = 0; /* the retry routed over the shared routing's arrays */
            if (!st && dg.error_bound > tol * ref) {
                if (proj) {
                    st = sparse_head(c, K, h, qh, sc, np, T, &o, eps_k, tol_k, oh, &dg, &nr, &ref);
                    dg.fallback = VS_FALLBACK_DENSE;
                } else {
                    dense_head(c, K, h, q, sc, out, &dg);
                }
            }
        }
        if (st) return st; /* not expected: every input was checked above */
        /* remember the selection for vs_decode_candidates / vs_decode_routed_pages */
        w->sel_dense[h] = dg.fallback == VS_FALLBACK_DENSE;
        if (!w->sel_dense[h]) {
            w->sel_npage[h] = nr;
            w->sel_ntok[h] = dg.candidates;
            memcpy(w->sel_pages + h * w->sel_cap_pages, w->page_list, nr * sizeof(uint32_t));
            uint32_t *st_tok = w->sel_tokens + h * w->sel_cap_tokens;
            for (uint32_t i = 0; i < dg.candidates; i++) st_tok[i] = w->tok_index[w->cand[i]];
        }
        if (diag) diag[h] = dg;
    }
    w->sel_valid = 1;
    return VS_OK;
}

/* ---- last selection ------------------------------------------------------------------- */

static int selection(const vs_cache *c, uint32_t head, uint32_t *idx, size_t cap, size_t *count,
                     int pages) {
    if (!c || !count || (cap && !idx)) return VS_E_NULL;
    if (head >= c->cfg.heads) return VS_E_HEADS;
    const vs_scratch *w = &c->ws;
    *count = 0;
    if (!w->sel_valid) return VS_OK;
    if (w->sel_dense[head]) {
        *count = pages ? c->npages : c->length;
        for (size_t i = 0; i < cap && i < *count; i++) idx[i] = (uint32_t)i;
        return VS_OK;
    }
    const uint32_t *src = pages ? w->sel_pages + head * w->sel_cap_pages
                                : w->sel_tokens + head * w->sel_cap_tokens;
    *count = pages ? w->sel_npage[head] : w->sel_ntok[head];
    const size_t n = cap < *count ? cap : *count;
    if (n) memcpy(idx, src, n * sizeof(uint32_t));
    return VS_OK;
}

int vs_decode_candidates(const vs_cache *c, uint32_t head, uint32_t *idx, size_t cap,
                         size_t *count) {
    return selection(c, head, idx, cap, count, 0);
}

int vs_decode_routed_pages(const vs_cache *c, uint32_t head, uint32_t *idx, size_t cap,
                           size_t *count) {
    return selection(c, head, idx, cap, count, 1);
}
