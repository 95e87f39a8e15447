/*
 * Seeded synthetic workloads (DESIGN section 6), shared by the tests, the CLI,
 * the wasm package and the demo. Every token is generated from (seed, token
 * index) alone by a counter-based generator, so a workload can be produced in
 * chunks (append 1M tokens without holding them twice) and gives the same
 * floats on every platform (integer hashing and + - * / only: no libm).
 *
 *   gap:     a planted face of `face` tokens at random positions whose scores
 *            sit `margin` or more above every other score (for every query head).
 *   needle:  anisotropic background keys (a few outlier channels), an attention
 *            sink at position 0, a recency bias over the last tokens, and
 *            `needles` tokens at random depths whose keys match the queries
 *            (score about `margin` above the background's typical maximum).
 *   uniform: isotropic Gaussian keys and values; no gap.
 */
#ifndef VS_WORKLOADS_H
#define VS_WORKLOADS_H

#include <stddef.h>
#include <stdint.h>

#include "include/vashista.h"

enum vs_workload_kind { VS_WL_GAP = 0, VS_WL_NEEDLE = 1, VS_WL_UNIFORM = 2 };

typedef struct vs_workload {
    uint32_t kind;       /* enum vs_workload_kind */
    uint32_t T;          /* tokens */
    uint32_t heads, kv_heads, head_dim, value_dim;
    uint32_t face;       /* gap: planted face size m (>= 1) */
    uint32_t needles;    /* needle: number of needles (>= 1) */
    float margin;        /* gap: Delta in score units (scale 1/sqrt(d) applied);
                            needle: needle strength in score units */
    uint32_t seed_lo, seed_hi; /* 64-bit seed as two halves (wasm/JS friendly) */
} vs_workload;

/* Fills w with the defaults for `kind` (T = 4096, heads = kv_heads = 1,
   d = dv = 128, face 4, needles 4, margin per kind, seed 1). */
VS_API void vs_workload_default(vs_workload *w, uint32_t kind);

/* Checks w. VS_OK, or VS_E_OPTION / VS_E_DIM / VS_E_HEADS. */
VS_API int vs_workload_check(const vs_workload *w);

/* Tokens [start, start + n): keys [n][kv_heads][head_dim] and values
   [n][kv_heads][value_dim], ready for vs_cache_append. */
VS_API int vs_workload_tokens(const vs_workload *w, uint32_t start, uint32_t n, float *keys,
                              float *values);

/* Queries [heads][head_dim] for decode step `step` (step 0 is the usual one;
   other steps give fresh queries with the same structure). */
VS_API int vs_workload_queries(const vs_workload *w, uint32_t step, float *q);

/* The planted positions in increasing order (gap: the face; needle: the
   needles; uniform: none). Writes min(count, cap) of them; *count gets the
   total. */
VS_API int vs_workload_marked(const vs_workload *w, uint32_t *out, uint32_t cap,
                              uint32_t *count);

#endif /* VS_WORKLOADS_H */
