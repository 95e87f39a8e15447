/*
 * Internal state of a cache. Layout (S = page_size, G = kv_heads):
 *   chunk[c]     storage, one block per chunk of CP pages (CT = CP * S tokens,
 *                about VS_CHUNK_TOKENS): keys [G][CT][d] then values [G][CT][dv].
 *                Routing works on pages of S tokens; storage and the dense pass
 *                on chunks, so a small S does not fragment memory streams.
 *   summ         [G][page_cap][d][2] bfloat16: per page and channel, the key minimum
 *                rounded down then the maximum rounded up (the box holds every key);
 *                pairs, so that one load brings both ends and one byte shuffle
 *                picks the end the query's sign needs
 *   vnorm        [G][page_cap]: per page, an upper bound of max ||v||_2
 *   kabs         [G][d]: per channel, an upper bound of max |k| over the cache and
 *                of every (widened) |lo|, |hi| in summ
 * Chunks are separate blocks so that appending never moves stored tokens;
 * the arrays grow by doubling (allocate, copy, then swap).
 */
#ifndef VS_INTERNAL_H
#define VS_INTERNAL_H

#include <stddef.h>
#include <stdint.h>

#include "include/vashista.h"
#include "kernels/kernels.h"

/* Tokens per storage chunk (rounded down to whole pages; at least one page). */
#define VS_CHUNK_TOKENS 256

/* a * b, or SIZE_MAX when that overflows size_t (32 bits in wasm32), so that
   an impossible size becomes a failed allocation instead of a small one. */
static inline size_t vs_mul_sat(size_t a, size_t b) {
    return b && a > SIZE_MAX / b ? SIZE_MAX : a * b;
}

/* Allocation goes through here so tests can make the Nth call fail. */
void *vs_alloc(size_t bytes);
void vs_dealloc(void *p);
/* Test hook: the (n+1)th allocation from now fails (n < 0: never). */
VS_API void vs_test_fail_alloc_after(long n);

/* Scratch for decode, grown on demand (never shrunk) and reused. */
typedef struct vs_scratch {
    size_t cap_pages;      /* bound, page_list */
    float *bound;          /* [cap_pages] page score bounds for one head */
    uint32_t *page_list;   /* [cap_pages] routed pages, increasing */
    size_t cap_tokens;     /* routed tokens */
    float *tok_score;      /* [cap_tokens] exact scores of routed tokens */
    uint32_t *tok_index;   /* [cap_tokens] their token indices */
    size_t cap_cand;
    uint32_t *cand;        /* [cap_cand] positions into tok_* of the candidates */
    float *w;              /* [max(cap_cand, S)] weights */
    float *cs;             /* [max(cap_cand, S)] candidate scores */
    const float **rows;    /* [max(cap_cand, S)] value rows */
    size_t cap_topk;       /* largest k the top-k scratch holds */
    vs_topk_item *topk;    /* [VS_TOPK_SCRATCH(cap_topk)] */
    float *acc;            /* [heads][dv] accumulators */
    float *hm, *hl;        /* [heads] running max and sum of the online softmax */
    /* projection solvers (eg, fw) */
    const float **krows;   /* [cap_cand] candidate key rows */
    float *alpha, *mu;     /* [cap_cand] solution and KKT multipliers */
    double *adj;           /* [cap_cand] adjusted scores a_i in double */
    double *point;         /* [d] U alpha in double */
    float *resid;          /* [d] q - U alpha, rounded to float */
    float *qmean;          /* [d] a KV head's mean query (share_routing) */
    float *btmp;           /* [cap_pages] a copy of a routing bound array (exp_sum works in place) */
    void *solve_work;      /* vs_solve_work_bytes(cap_cand, d) */
    /* hierarchical routing: node n covers pages [n F, (n + 1) F), F = VS_NODE_PAGES */
    size_t cap_nodes;
    uint16_t *nsumm;       /* [G][cap_nodes][d][2] node boxes: min of its pages' lo, max of hi */
    float *nvnorm;         /* [G][cap_nodes] max of its pages' vnorm */
    float *nbound;         /* [cap_nodes] node bounds for one head */
    uint32_t *node_list;   /* [cap_nodes] expanded nodes, increasing */
    uint32_t nodes_len;    /* tokens folded into the node boxes: appends only grow boxes, so
                              the next decode folds the pages from token nodes_len on; a
                              truncation lowers it to the last node it left whole */
    uint32_t r_tree, r_ne; /* the last routing: tree used, nodes expanded */
    size_t r_nx;           /* expanded middle pages in xpage */
    size_t cap_xpages;
    float *xbound;         /* [cap_xpages] bounds of the expanded nodes' middle pages */
    uint32_t *xpage;       /* [cap_xpages] their page indices, increasing */
    size_t bytes;          /* everything above, for vs_cache_get_info */
    /* Last selection per head (see vs_decode_candidates). */
    size_t sel_cap_tokens, sel_cap_pages;
    uint32_t *sel_tokens;  /* [heads][sel_cap_tokens] */
    uint32_t *sel_pages;   /* [heads][sel_cap_pages] */
    uint32_t *sel_ntok, *sel_npage, *sel_dense; /* [heads] */
    int sel_valid;
} vs_scratch;

struct vs_cache {
    vs_cache_config cfg;   /* resolved (page_size never 0) */
    uint32_t length;       /* tokens stored */
    uint32_t npages;       /* pages in use: ceil(length / S) */
    uint32_t page_cap;     /* capacity of summ, vnorm */
    uint32_t chunk_pages;  /* CP: pages per chunk */
    uint32_t nchunks;      /* chunks in use: ceil(npages / CP) */
    uint32_t chunk_cap;    /* capacity of chunk */
    float **chunk;         /* [chunk_cap] */
    uint16_t *summ;        /* [G][page_cap][d][2] bfloat16 */
    float *vnorm;          /* [G][page_cap] */
    float *kabs;           /* [G][d] */
    vs_scratch ws;
};

static inline size_t vs_chunk_tokens(const vs_cache *c) {
    return (size_t)c->chunk_pages * c->cfg.page_size;
}
static inline size_t vs_chunk_floats(const vs_cache *c) {
    return (size_t)c->cfg.kv_heads * vs_chunk_tokens(c) * (c->cfg.head_dim + c->cfg.value_dim);
}
/* Keys [CT][d] and values [CT][dv] of chunk ch for KV head g. */
static inline const float *vs_chunk_keys(const vs_cache *c, uint32_t ch, uint32_t g) {
    return c->chunk[ch] + (size_t)g * vs_chunk_tokens(c) * c->cfg.head_dim;
}
static inline const float *vs_chunk_values(const vs_cache *c, uint32_t ch, uint32_t g) {
    const size_t CT = vs_chunk_tokens(c);
    return c->chunk[ch] + (size_t)c->cfg.kv_heads * CT * c->cfg.head_dim +
           (size_t)g * CT * c->cfg.value_dim;
}
/* Keys [S][d] and values [S][dv] of page p for KV head g. */
static inline const float *vs_page_keys(const vs_cache *c, uint32_t p, uint32_t g) {
    return vs_chunk_keys(c, p / c->chunk_pages, g) +
           (size_t)(p % c->chunk_pages) * c->cfg.page_size * c->cfg.head_dim;
}
static inline const float *vs_page_values(const vs_cache *c, uint32_t p, uint32_t g) {
    return vs_chunk_values(c, p / c->chunk_pages, g) +
           (size_t)(p % c->chunk_pages) * c->cfg.page_size * c->cfg.value_dim;
}
static inline uint16_t *vs_summary(const vs_cache *c, uint32_t g, uint32_t p) {
    return c->summ + ((size_t)g * c->page_cap + p) * 2 * c->cfg.head_dim;
}
/* Tokens held by page p. */
static inline uint32_t vs_page_count(const vs_cache *c, uint32_t p) {
    uint32_t start = p * c->cfg.page_size, left = c->length - start;
    return left < c->cfg.page_size ? left : c->cfg.page_size;
}

/* Finite and |x| <= VS_MAX_ABS for all n; VS_OK, VS_E_NONFINITE or VS_E_RANGE. */
int vs_check_finite(const float *x, size_t n);

void vs_scratch_free(vs_scratch *ws);

#endif /* VS_INTERNAL_H */
