/*
 * vashista: sparse-attention decode over a paged KV cache, with a certified
 * error bound.
 *
 * Introduction
 *   A cache (vs_cache) holds, for each of `kv_heads` key/value heads, the keys
 *   K[T][head_dim] and values V[T][value_dim] of every token decoded so far, in
 *   pages of `page_size` tokens. Each page keeps a summary: the per-channel
 *   minimum and maximum of its keys and the largest value norm. A query q per
 *   query head is answered either
 *     - densely:  out = softmax(scale * K q) V over every token, or
 *     - sparsely: the page summaries bound every key's score, the best pages
 *       (plus sink and recent pages) are scored exactly, the top candidates
 *       are attended, and a certificate bounds what was skipped:
 *       ||out_sparse - out_dense||_2 <= error_bound, always.
 *   Grouped-query attention: `heads` query heads share `kv_heads` KV heads;
 *   query head h reads KV head h / (heads / kv_heads).
 *
 * Conventions
 *   - Every function that can fail returns an int status: VS_OK (0) or a
 *     negative VS_E_* code; vs_strerror() turns it into text. Results come back
 *     through out-parameters.
 *   - A call that fails leaves the cache exactly as it was.
 *   - Array lengths are passed as element counts so mismatches are reported
 *     (VS_E_LENGTH) instead of read past.
 *   - Create/free pairs; free functions accept NULL.
 *   - The library never aborts, exits or prints. A cache is not thread-safe;
 *     distinct caches may be used from distinct threads.
 *   - Inputs must be finite with |x| <= VS_MAX_ABS (NaN/Inf: VS_E_NONFINITE,
 *     larger: VS_E_RANGE), so no score or sum can overflow.
 */
#ifndef VASHISTA_H
#define VASHISTA_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#if defined(__EMSCRIPTEN__)
#  include <emscripten/emscripten.h>
#  define VS_API EMSCRIPTEN_KEEPALIVE
#elif defined(__GNUC__)
#  define VS_API __attribute__((visibility("default")))
#else
#  define VS_API
#endif

/* ---- version ------------------------------------------------------------ */
#define VS_VERSION_MAJOR 0
#define VS_VERSION_MINOR 1
#define VS_VERSION_PATCH 0
#define VS_VERSION_NUMBER (VS_VERSION_MAJOR * 10000 + VS_VERSION_MINOR * 100 + VS_VERSION_PATCH)

/* Returns VS_VERSION_NUMBER of the library that was linked (compare with the header's). */
VS_API int vs_version_number(void);
/* Returns "MAJOR.MINOR.PATCH". Static storage. */
VS_API const char *vs_version_string(void);

/* ---- status codes (values are stable; never renumbered) ------------------ */
enum vs_status {
    VS_OK = 0,
    VS_E_NULL = -1,       /* a required pointer argument is NULL */
    VS_E_DIM = -2,        /* head_dim or value_dim is 0 or > VS_MAX_DIM */
    VS_E_HEADS = -3,      /* heads or kv_heads is 0, too large, or heads % kv_heads != 0 */
    VS_E_PAGE = -4,       /* page_size is out of range */
    VS_E_LENGTH = -5,     /* an element count does not match the shape, or truncate past the end */
    VS_E_NONFINITE = -6,  /* NaN or Inf in keys, values or query */
    VS_E_RANGE = -7,      /* a finite input is too large in magnitude (> VS_MAX_ABS) */
    VS_E_NOMEM = -8,      /* an allocation failed; nothing was changed */
    VS_E_OPTION = -9,     /* a decode option is invalid (solver, scale, tolerance...) */
    VS_E_EMPTY = -10,     /* decode on a cache that holds no tokens */
    VS_E_ISA = -11,       /* unknown or unsupported instruction set requested */
    VS_E_DTYPE = -12,     /* unsupported storage dtype */
    VS_E_CAPACITY = -13   /* the cache would exceed VS_MAX_TOKENS tokens */
};

/* Returns a static, human-readable description of `status` (never NULL). */
VS_API const char *vs_strerror(int status);

/* ---- limits --------------------------------------------------------------- */
#define VS_MAX_DIM 512            /* head_dim and value_dim: 1..512, any value */
#define VS_MAX_HEADS 1024
#define VS_MAX_PAGE_SIZE 4096
#define VS_MAX_TOKENS (1u << 26)  /* 64M tokens per cache */
#define VS_MAX_ABS 1.0e30f        /* largest accepted |input element| */

/* ---- instruction set ------------------------------------------------------ */
/* The kernels are chosen once, at first use: the best the CPU supports
 * ("avx2" > "scalar" natively; "wasmsimd" in the WebAssembly build), unless
 * the environment variable VASHISTA_ISA names one. vs_set_isa() forces one
 * ("scalar", "avx2", "wasmsimd", or "auto"); it returns VS_E_ISA for an
 * unknown name or one this CPU/build cannot run, and then changes nothing.
 * All ISAs produce bit-identical results (same reduction order, no FMA). */
VS_API int vs_set_isa(const char *name);
/* Returns the name of the ISA in use (static storage). */
VS_API const char *vs_isa_name(void);

/* ---- cache ----------------------------------------------------------------- */
typedef struct vs_cache vs_cache;

enum vs_dtype { VS_DTYPE_F32 = 0 };

#define VS_DEFAULT_PAGE_SIZE 64

typedef struct vs_cache_config {
    uint32_t heads;      /* query heads, 1..VS_MAX_HEADS, a multiple of kv_heads */
    uint32_t kv_heads;   /* KV heads, >= 1 */
    uint32_t head_dim;   /* d: 1..VS_MAX_DIM */
    uint32_t value_dim;  /* dv: 1..VS_MAX_DIM */
    uint32_t page_size;  /* S: tokens per page, 1..VS_MAX_PAGE_SIZE; 0 means VS_DEFAULT_PAGE_SIZE */
    uint32_t dtype;      /* VS_DTYPE_F32 */
} vs_cache_config;

/* Creates an empty cache. On success *out owns it (release with vs_cache_free).
 * Errors: VS_E_NULL, VS_E_HEADS, VS_E_DIM, VS_E_PAGE, VS_E_DTYPE, VS_E_NOMEM;
 * *out is set to NULL on error. */
VS_API int vs_cache_create(const vs_cache_config *config, vs_cache **out);

/* Frees the cache and everything it owns. NULL is a no-op. */
VS_API void vs_cache_free(vs_cache *cache);

/* Appends n tokens. keys: [n][kv_heads][head_dim], values: [n][kv_heads][value_dim],
 * row-major; key_count and value_count are their element counts, which must
 * describe the same n (n = 0 is allowed and does nothing). The inputs are
 * copied; the caller keeps ownership. Summaries are updated in O(d) per token.
 * Errors: VS_E_NULL, VS_E_LENGTH, VS_E_NONFINITE, VS_E_RANGE, VS_E_CAPACITY,
 * VS_E_NOMEM. On error nothing was appended. */
VS_API int vs_cache_append(vs_cache *cache, const float *keys, size_t key_count,
                           const float *values, size_t value_count);

/* Keeps the first `length` tokens and drops the rest (length <= current length).
 * Frees dropped pages and recomputes the summary of a partial last page.
 * Errors: VS_E_NULL, VS_E_LENGTH. Never allocates, so never VS_E_NOMEM. */
VS_API int vs_cache_truncate(vs_cache *cache, size_t length);

typedef struct vs_cache_info {
    uint32_t heads, kv_heads, head_dim, value_dim, page_size, dtype;
    uint32_t length;          /* tokens stored */
    uint32_t pages;           /* pages in use: ceil(length / page_size) */
    double kv_bytes;          /* bytes of keys and values stored (pages in use, full pages) */
    double summary_bytes;     /* bytes of page summaries in use */
    double reserved_bytes;    /* everything the cache holds, including capacity and scratch */
} vs_cache_info;

/* Fills *info. Errors: VS_E_NULL. */
VS_API int vs_cache_get_info(const vs_cache *cache, vs_cache_info *info);

/* Writes the number of tokens stored to *length. Errors: VS_E_NULL. */
VS_API int vs_cache_length(const vs_cache *cache, size_t *length);

/* ---- dense decode ----------------------------------------------------------- */
/* out[h] = softmax(scale * K_g q[h]) V_g for every query head h, in one pass
 * per KV head (online softmax). q: [heads][head_dim], out: [heads][value_dim].
 * scale = 0 means 1/sqrt(head_dim); otherwise it must be finite and > 0.
 * Errors: VS_E_NULL, VS_E_LENGTH, VS_E_NONFINITE, VS_E_RANGE, VS_E_OPTION,
 * VS_E_EMPTY, VS_E_NOMEM (scratch for a cache that grew; the cache is unchanged). */
VS_API int vs_decode_dense(vs_cache *cache, const float *q, size_t q_count,
                           float scale, float *out, size_t out_count);

/* ---- sparse decode ------------------------------------------------------------ */
enum vs_solver {
    VS_SOLVER_SOFTMAX = 0, /* exact softmax over the candidates (drop-in for pretrained models) */
    VS_SOLVER_EG = 1,      /* entropic projection onto conv(candidate keys), exponentiated gradient */
    VS_SOLVER_FW = 2       /* unregularized projection, Frank-Wolfe */
};

/* The projection solvers (DESIGN section 2), in score units: with s_i = scale <q, k_i>,
 *   eg: alpha = argmin_{simplex} scale/2 ||U alpha - q||^2 + eps sum alpha_i log alpha_i
 *   fw: alpha = argmin_{simplex} scale/2 ||U alpha - q||^2
 * over the candidate keys U = [k_i], and out = sum alpha_i v_i. Both are
 * deterministic and bit-identical across ISAs. Their objective's gradient is
 * -a_i with a_i = scale <k_i, q - U alpha>, the "adjusted scores": eg's alpha
 * is softmax(a / eps) at its fixed point. */

/* How pages are routed. Both route the same sink, recent and top-P pages by
 * the same page bounds when every node is expanded; tree reads far fewer
 * bounds on long caches. */
enum vs_routing {
    VS_ROUTING_FLAT = 0, /* a bound for every page, then top-P: O(pages d) */
    VS_ROUTING_TREE = 1  /* a bound for every node of VS_NODE_PAGES pages, top-`expand`
                            nodes, then a bound for each of their pages and top-P of those:
                            O((pages / 16 + 16 expand) d). Unexpanded nodes enter the
                            certificate by their own bounds, so it stays a guarantee. */
};
#define VS_NODE_PAGES 16 /* pages per routing node */
#define VS_EXPAND_MIN 32 /* nodes tree routing expands at least, when expand is automatic */

typedef struct vs_decode_options {
    uint32_t pages;        /* P: pages routed by bound, besides sink and recent pages; >= 1 */
    uint32_t candidates;   /* Kc: candidate tokens kept after exact scoring; >= 1 */
    uint32_t sink_pages;   /* first pages always routed (attention sinks) */
    uint32_t recent_pages; /* last pages always routed (recency) */
    uint32_t solver;       /* enum vs_solver */
    uint32_t widen;        /* factor applied to pages and candidates on the widened retry, >= 2 */
    float scale;           /* 0 means 1/sqrt(head_dim); else finite and > 0 */
    float tolerance;       /* 0: off. Else, per head: if error_bound > tolerance * (the
                              reference norm: ||out||, for fw ||U alpha||), retry with
                              widen x pages and candidates and flat routing; if still
                              above, decode that head densely (eg, fw: the same solver
                              over every token). */
    float eps;             /* eg: entropy weight in score units, in [1e-9, 1e9], and
                              eps / scale too */
    uint32_t max_iter;     /* eg, fw: cap on solver iterations, >= 1 */
    float solver_tol;      /* eg: entropic duality gap (KKT residual), fw: Frank-Wolfe
                              duality gap, in score units, at which to stop; finite, > 0 */
    uint32_t routing;      /* enum vs_routing (default tree) */
    uint32_t expand;       /* tree: nodes expanded into pages; 0 means automatic:
                              max(32, ceil(2 P / VS_NODE_PAGES)) (32 = VS_EXPAND_MIN) */
    uint32_t share_routing; /* 0 or 1. 1: the query heads of a KV head share one routing, by
                              their mean query q_m (grouped-query attention: one routing per
                              KV head instead of per query head); each head still picks its
                              own candidates by its own exact scores, and its certificate
                              raises every routing bound by scale sum_j |q_j - q_m,j| kabs_j,
                              so it stays a guarantee (looser the more the heads differ) */
} vs_decode_options;

/* Fills *options with the defaults (chosen by measurement, see README). */
VS_API void vs_decode_options_default(vs_decode_options *options);

enum vs_fallback {
    VS_FALLBACK_NONE = 0,    /* sparse with the requested options */
    VS_FALLBACK_WIDENED = 1, /* sparse, after widening pages and candidates */
    VS_FALLBACK_DENSE = 2    /* dense: the bound stayed above tolerance */
};

/* Per query head. Every field is 4 bytes so the layout is the same in wasm32
 * and native builds (the JS package reads it directly). "Exact attention" is
 * the same solver over every token of the cache: softmax for softmax, the
 * entropic projection onto the hull of all keys for eg, the projection of q
 * onto the hull of all keys for fw. Bounds hold for the float32 output. */
typedef struct vs_head_diag {
    uint32_t routed_pages;     /* pages scored exactly (sink + recent + top-P, distinct) */
    uint32_t candidates;       /* |C|: tokens attended */
    uint32_t fallback;         /* enum vs_fallback */
    uint32_t iterations;       /* solver iterations (softmax: 1) */
    float effective_support;   /* exp(entropy(alpha)) over C */
    float gap;                 /* Delta, in score units, between the face I and every other token
                                  (+inf when I is every token). softmax: I = C and Delta is a
                                  certified lower bound on min_{i in C} s_i - max_{j not in C} s_j.
                                  eg, fw: the KKT multiplier gap at the returned alpha,
                                  min_{i in I} a_i - max_{j not in I} a_j (adjusted scores;
                                  tokens outside C by exact scores and page bounds) */
    float leakage_bound;       /* the face theorem's bound on the mass off I, at most 1:
                                  softmax (T - |C|) / |C| exp(-Delta), eg (T - |I|) / |I|
                                  exp(-Delta / (2 eps)) (1 if it stopped at max_iter), fw 0
                                  (its alpha is exactly 0 off I) */
    float rho_cert;            /* certified bound on the mass exact attention puts outside C
                                  (softmax, eg); fw: 1 (its exact weights need not be unique:
                                  error_bound certifies its point instead); 0 when C is every token */
    float error_bound;         /* certified bound, float rounding included, on
                                  softmax, eg: ||out - exact out||_2;
                                  fw: ||U alpha - p*||_2, p* the projection of q onto the hull of
                                  every key (the output's weights are not unique, its point is) */
    float output_norm;         /* ||out||_2 for this head */
    float residual;            /* solver residual in score units (softmax: 0) */
    uint32_t face_size;        /* |I|: softmax |C|; fw the support of alpha; eg the face read off
                                  its multipliers (every candidate when none is separated) */
} vs_head_diag;

/* Sparse decode for every query head. q: [heads][head_dim], out:
 * [heads][value_dim]; diag: [heads] or NULL (diag_count is then ignored).
 * options NULL means the defaults.
 * Errors: VS_E_NULL, VS_E_LENGTH, VS_E_NONFINITE, VS_E_RANGE, VS_E_OPTION,
 * VS_E_EMPTY, VS_E_NOMEM (scratch for larger options than before; the cache
 * is unchanged). On error the contents of out and diag are unspecified. */
VS_API int vs_decode(vs_cache *cache, const float *q, size_t q_count,
                     const vs_decode_options *options, float *out, size_t out_count,
                     vs_head_diag *diag, size_t diag_count);

/* The selection of the last successful vs_decode for query head `head`: the
 * candidate tokens (vs_decode_candidates) or the routed pages
 * (vs_decode_routed_pages), in increasing order. Writes min(count, cap)
 * entries to idx (idx may be NULL when cap is 0) and the total to *count.
 * A head that fell back to dense reports every token / every page. Any call
 * that changes the cache (append, truncate) clears the selection (count 0).
 * Errors: VS_E_NULL, VS_E_HEADS (head out of range). */
VS_API int vs_decode_candidates(const vs_cache *cache, uint32_t head, uint32_t *idx, size_t cap,
                                size_t *count);
VS_API int vs_decode_routed_pages(const vs_cache *cache, uint32_t head, uint32_t *idx,
                                  size_t cap, size_t *count);

#ifdef __cplusplus
}
#endif
#endif /* VASHISTA_H */
