/*
 * libFuzzer harness for the vashista C API.
 *
 * The input is a program: a sequence of operations (create, append, truncate,
 * dense decode, sparse decode, selection queries, info, vs_set_isa, armed
 * allocation failures, free) on two cache slots, with shapes, options and
 * data drawn from the input bytes. Each operation's status is checked against
 * a model of the documented contract (vashista.h), and the harness checks, as
 * it goes:
 *   - every status is one the header documents for that function, and it is
 *     an error exactly when the arguments break a documented rule (or when an
 *     allocation was made to fail);
 *   - a failed call leaves the cache's observable state unchanged: length,
 *     vs_cache_get_info (every field), the bits of a probe dense decode, and
 *     the last decode's selection (vs_decode_candidates / routed pages);
 *   - decodes never change the cache (length and the probe's bits);
 *   - successful decodes give finite outputs inside the convex hull of the
 *     values (per coordinate, up to float rounding), and consistent diagnostics;
 *   - softmax: a full-coverage sparse decode (every token a candidate, or a
 *     dense fallback) matches the dense decode within a float tolerance, and
 *     error_bound >= ||out - reference||_2 against a float64 dense reference
 *     computed here (for small caches); eg and fw: their options and norm
 *     limits, outputs in the hull of the values, consistent diagnostics (their
 *     certificates are checked in tests/test_decode_solvers.c);
 *   - the selection matches the diagnostics and is cleared by append/truncate;
 *   - all ISAs give bit-identical dense and sparse results;
 *   - routing: 0 (flat) and 1 (tree) only, expand any value; every check above
 *     holds for both, and tree routing that expands every node (or whose P
 *     covers every middle page) equals flat routing bit for bit (outputs,
 *     diagnostics, selection).
 * Any violation prints a line to stderr and calls __builtin_trap(), which
 * libFuzzer reports as a crash (with the input saved as crash-*).
 *
 * Build: tests/hardening.sh (clang -fsanitize=fuzzer,address,undefined).
 * Replay one input without libFuzzer's main: build with -DVS_FUZZ_STANDALONE.
 */
#include <float.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "include/vashista.h"

/* The allocation-failure hook lives in the library (src/common.c). */
void vs_test_fail_alloc_after(long n);

/* Hot loops of the harness itself: no coverage instrumentation (its comparison
   tracing would dominate the run time and guide nothing). */
#if defined(__clang__) && __clang_major__ >= 13
#define NOCOV __attribute__((no_sanitize("coverage")))
#else
#define NOCOV
#endif

/* ---- violations --------------------------------------------------------------- */

static int g_op_index;
static const char *g_op_name = "?";

#define REQUIRE(cond, ...)                                                                         \
    do {                                                                                           \
        if (!(cond)) {                                                                             \
            fprintf(stderr, "fuzz_cache: op %d (%s): violated: %s: ", g_op_index, g_op_name,       \
                    #cond);                                                                        \
            fprintf(stderr, __VA_ARGS__);                                                          \
            fputc('\n', stderr);                                                                   \
            fflush(stderr);                                                                        \
            __builtin_trap();                                                                      \
        }                                                                                          \
    } while (0)

/* VS_FUZZ_TRACE=1 in the environment prints every call (for reproducers). */
static int g_trace;
#define TRACE(...)                                                                                 \
    do {                                                                                           \
        if (g_trace) {                                                                             \
            fprintf(stderr, "  [%d] ", g_op_index);                                                \
            fprintf(stderr, __VA_ARGS__);                                                          \
            fputc('\n', stderr);                                                                   \
        }                                                                                          \
    } while (0)

/* ---- limits of what the harness stores (keeps every input fast and small) ----- */

enum {
    MAX_TOKENS = 4096,         /* tokens per cache */
    MAX_STORED = 1 << 18,      /* T * kv_heads * (d + dv) floats per cache */
    MAX_WORK = 1 << 19,        /* T * heads * (d + dv): one decode's work */
    MAX_PAGE_FLOATS = 1 << 19, /* kv_heads * max(page_size, 256) * (d + dv): one storage block */
    REF_WORK = 1 << 16,        /* float64 reference only below this T * heads * (d + dv) */
    MAX_OPS = 128,
    MAX_APPEND = 1200
};

/* ---- input reader ----------------------------------------------------------------- */

typedef struct reader {
    const uint8_t *p;
    size_t n, i;
} reader;

static uint8_t u8(reader *r) { return r->i < r->n ? r->p[r->i++] : 0; }
/* Little-endian; each byte read in its own statement (operand order is unspecified). */
static uint16_t u16(reader *r) {
    const uint16_t lo = u8(r);
    return (uint16_t)(lo | (u8(r) << 8));
}
static uint32_t u32(reader *r) {
    const uint32_t lo = u16(r);
    return lo | ((uint32_t)u16(r) << 16);
}
static float f32_bits(uint32_t b) {
    float f;
    memcpy(&f, &b, sizeof f);
    return f;
}

/* splitmix64: bulk data comes from a seed in the input, so one append of a
   thousand tokens costs a few input bytes. */
NOCOV static uint64_t mix(uint64_t *s) {
    uint64_t z = (*s += 0x9E3779B97F4A7C15ull);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
}
NOCOV static double unif(uint64_t *s) {
    return (double)(mix(s) >> 11) * (1.0 / 9007199254740992.0);
}

/* ---- status model ------------------------------------------------------------------ */

#define M(code) (1u << (unsigned)(-(code)))

/* Documented statuses per function (vashista.h). */
static const unsigned DOC_CREATE = M(VS_OK) | M(VS_E_NULL) | M(VS_E_HEADS) | M(VS_E_DIM) |
                                   M(VS_E_PAGE) | M(VS_E_DTYPE) | M(VS_E_NOMEM);
static const unsigned DOC_APPEND = M(VS_OK) | M(VS_E_NULL) | M(VS_E_LENGTH) | M(VS_E_NONFINITE) |
                                   M(VS_E_RANGE) | M(VS_E_CAPACITY) | M(VS_E_NOMEM);
static const unsigned DOC_TRUNCATE = M(VS_OK) | M(VS_E_NULL) | M(VS_E_LENGTH);
static const unsigned DOC_INFO = M(VS_OK) | M(VS_E_NULL);
/* vs_decode_dense may allocate scratch for a cache that grew: VS_E_NOMEM. */
static const unsigned DOC_DENSE = M(VS_OK) | M(VS_E_NULL) | M(VS_E_LENGTH) | M(VS_E_NONFINITE) |
                                  M(VS_E_RANGE) | M(VS_E_OPTION) | M(VS_E_EMPTY) | M(VS_E_NOMEM);
static const unsigned DOC_DECODE = DOC_DENSE;
static const unsigned DOC_SELECTION = M(VS_OK) | M(VS_E_NULL) | M(VS_E_HEADS);
static const unsigned DOC_ISA = M(VS_OK) | M(VS_E_NULL) | M(VS_E_ISA);

/* A call's expected outcome: `must` holds the errors whose conditions the
   arguments certainly break (the call must then fail with one of them, in any
   order of checks); `may` holds errors that are allowed but not required
   (an armed allocation failure, a score bound near the overflow limit, a
   solver that is documented but not built). */
typedef struct expect {
    unsigned must, may;
} expect;

static void check_status(int st, expect e, unsigned doc, const char *fn) {
    REQUIRE(st <= 0 && st >= VS_E_CAPACITY, "%s returned %d, not a vs_status", fn, st);
    const unsigned bit = M(st);
    REQUIRE(bit & doc, "%s returned %d (%s), not documented for it", fn, st, vs_strerror(st));
    REQUIRE(vs_strerror(st) && strcmp(vs_strerror(st), "unknown status code") != 0,
            "no message for %d", st);
    if (e.must) {
        REQUIRE(st != VS_OK, "%s succeeded, expected one of mask 0x%x", fn, e.must);
        REQUIRE(bit & (e.must | e.may), "%s returned %d (%s), expected mask 0x%x (or 0x%x)", fn, st,
                vs_strerror(st), e.must, e.may);
    } else {
        REQUIRE(bit & (M(VS_OK) | e.may), "%s returned %d (%s), expected VS_OK (or mask 0x%x)", fn,
                st, vs_strerror(st), e.may);
    }
}

/* ---- allocation failures -------------------------------------------------------------- */

static long g_pending_fail = -1; /* armed for the next library call under test only */

static void arm(void) { vs_test_fail_alloc_after(g_pending_fail); }
static void disarm(void) { vs_test_fail_alloc_after(-1); }
static int armed(void) { return g_pending_fail >= 0; }

/* ---- value generation ----------------------------------------------------------------- */

/* One special value by class (the poison and edge cases). */
static float special_value(uint8_t cls, uint64_t *s) {
    const float sign = (mix(s) & 1) ? -1.0f : 1.0f;
    switch (cls % 16) {
    case 0: return NAN;
    case 1: return f32_bits(0x7F800001u | (uint32_t)(mix(s) & 0x7FFFFF)); /* NaN payloads */
    case 2: return sign * INFINITY;
    case 3: return sign * VS_MAX_ABS;                       /* largest accepted */
    case 4: return sign * nextafterf(VS_MAX_ABS, INFINITY); /* smallest refused */
    case 5: return sign * FLT_MAX;
    case 6: return sign * f32_bits((uint32_t)(1 + mix(s) % 0x7FFFFF)); /* denormal */
    case 7: return sign * FLT_MIN;
    case 8: return -0.0f;
    case 9: return sign * 1e-30f;
    case 10: return sign * 1e20f;
    case 11: return sign * 1e29f;
    case 12: return f32_bits((uint32_t)mix(s)); /* any bits */
    case 13: return sign * f32_bits(1);         /* smallest denormal */
    case 14: return sign * 3.0e38f;
    default: return sign * 65504.0f;
    }
}

/* Fills x[0..n) from a family chosen by the input, then maybe poisons one
   element. Families are all finite and within VS_MAX_ABS; poison may not be. */
NOCOV static void fill(reader *r, float *x, size_t n) {
    const uint8_t fam = u8(r);
    uint64_t s = u32(r);
    const uint8_t poison = u8(r);
    const uint16_t ppos = u16(r);
    const float same = (float)((int)(s % 17) - 8) * 0.25f;
    for (size_t i = 0; i < n; i++) {
        double u = unif(&s) * 2 - 1;
        float v;
        switch (fam % 15) {
        case 0: v = (float)u; break;
        case 1: v = (float)((int)(mix(&s) % 17) - 8); break; /* small integers: ties */
        case 2: v = same; break;                             /* all equal */
        case 3: v = (mix(&s) & 3) ? (float)u : special_value(6, &s); break; /* denormals */
        case 4: v = (float)(u * 1e30); break;                               /* huge */
        case 5: v = (float)(u * 1e-30); break;                              /* tiny */
        case 6: v = (float)ldexp(u, (int)(mix(&s) % 81) - 40); break;       /* wide range */
        case 7: v = (mix(&s) % 8) ? 0.0f : (float)u; break;                 /* mostly zeros */
        case 8: v = (float)(u * 30.0); break;                               /* peaked softmax */
        case 9: { /* finite specials only */
            static const uint8_t fin[] = {3, 6, 7, 8, 9, 10, 11, 13, 15};
            v = special_value(fin[mix(&s) % sizeof fin], &s);
            break;
        }
        case 10: v = (float)(u * 1e4) + (float)(i % 3); break;
        case 12: v = special_value(6, &s); break; /* all denormal */
        case 13: v = (float)(u * 4e-38); break;   /* near FLT_MIN */
        case 14: v = (u < 0 ? -1 : 1) * f32_bits((uint32_t)(mix(&s) % 16)); break; /* a few ulps */
        default: v = (float)(u * 1e15); break;
        }
        x[i] = v;
    }
    if (n && (poison & 0x7) == 0) x[ppos % n] = special_value(poison >> 3, &s);
}

NOCOV static int nonfinite_any(const float *x, size_t n) {
    for (size_t i = 0; i < n; i++)
        if (!isfinite(x[i])) return 1;
    return 0;
}
NOCOV static int toobig_any(const float *x, size_t n) {
    for (size_t i = 0; i < n; i++)
        if (isfinite(x[i]) && fabsf(x[i]) > VS_MAX_ABS) return 1;
    return 0;
}

/* Exactly-sized heap copies, so ASan sees any read or write past a count. */
static void *xmalloc(size_t bytes) {
    void *p = malloc(bytes ? bytes : 1);
    if (!p) abort();
    return p;
}

/* ---- shadow model of a cache ------------------------------------------------------------- */

typedef struct shadow {
    vs_cache *c;
    vs_cache_config cfg; /* resolved page size */
    size_t T;
    float *keys, *vals; /* [T][G][d], [T][G][dv] */
    size_t cap;         /* tokens */
    /* selection: 0 cleared, 1 valid (recorded below), 2 unknown */
    int sel_state;
    uint32_t *sel_tok, *sel_pg; /* [heads][T], [heads][pages] */
    uint32_t *sel_ntok, *sel_npg;
} shadow;

static shadow g_slot[2];

static size_t pages_of(const shadow *s) { return (s->T + s->cfg.page_size - 1) / s->cfg.page_size; }

static void shadow_clear_sel(shadow *s) {
    free(s->sel_tok);
    free(s->sel_pg);
    free(s->sel_ntok);
    free(s->sel_npg);
    s->sel_tok = s->sel_pg = s->sel_ntok = s->sel_npg = NULL;
}

static void shadow_free(shadow *s) {
    vs_cache_free(s->c);
    free(s->keys);
    free(s->vals);
    shadow_clear_sel(s);
    memset(s, 0, sizeof *s);
}

/* ---- snapshots: the observable state ---------------------------------------------------- */

typedef struct snap {
    int len_st, info_st, probe_st, probed;
    size_t len;
    vs_cache_info info;
    float *probe; /* [heads][dv] */
    uint64_t sel_hash;
} snap;

NOCOV static float *probe_query(const shadow *s) {
    const size_t n = (size_t)s->cfg.heads * s->cfg.head_dim;
    float *q = xmalloc(n * sizeof *q);
    for (size_t i = 0; i < n; i++)
        q[i] = 0.03125f * (float)((int)(i % 7) - 3);
    return q;
}

NOCOV static uint64_t fnv(uint64_t h, const void *p, size_t n) {
    const uint8_t *b = p;
    for (size_t i = 0; i < n; i++)
        h = (h ^ b[i]) * 0x100000001B3ull;
    return h;
}

NOCOV static uint64_t selection_hash(const shadow *s) {
    uint64_t h = 0xCBF29CE484222325ull;
    const size_t cap = s->T + 1, pcap = pages_of(s) + 1;
    uint32_t *idx = xmalloc(cap * sizeof *idx);
    for (uint32_t hd = 0; hd < s->cfg.heads; hd++) {
        size_t n = 0;
        int st = vs_decode_candidates(s->c, hd, idx, cap, &n);
        REQUIRE(st == VS_OK, "vs_decode_candidates(head %u) = %d", hd, st);
        h = fnv(h, &n, sizeof n);
        h = fnv(h, idx, (n < cap ? n : cap) * sizeof *idx);
        st = vs_decode_routed_pages(s->c, hd, idx, pcap, &n);
        REQUIRE(st == VS_OK, "vs_decode_routed_pages(head %u) = %d", hd, st);
        h = fnv(h, &n, sizeof n);
        h = fnv(h, idx, (n < pcap ? n : pcap) * sizeof *idx);
    }
    free(idx);
    return h;
}

/* The probe decode runs first: it may grow the scratch, which info reports.
   Without the probe (probe = 0) a decode under test may be the cache's first,
   the one that allocates the scratch. */
NOCOV static snap take_probe(const shadow *s, int probe) {
    snap p;
    memset(&p, 0, sizeof p);
    p.probed = probe;
    const size_t nq = (size_t)s->cfg.heads * s->cfg.head_dim,
                 no = (size_t)s->cfg.heads * s->cfg.value_dim;
    float *q = probe_query(s);
    p.probe = xmalloc(no * sizeof(float));
    memset(p.probe, 0, no * sizeof(float));
    if (probe) p.probe_st = vs_decode_dense(s->c, q, nq, 0.0f, p.probe, no);
    free(q);
    p.len_st = vs_cache_length(s->c, &p.len);
    p.info_st = vs_cache_get_info(s->c, &p.info);
    p.sel_hash = selection_hash(s);
    return p;
}
static snap take(const shadow *s) { return take_probe(s, 1); }

static void snap_free(snap *p) { free(p->probe); }

/* Length and probe always; CMP_INFO: every vs_cache_get_info field (a call that
   may not grow the scratch); CMP_SEL: the last decode's selection. */
enum { CMP_INFO = 1, CMP_SEL = 2, CMP_ALL = 3 };
static void same_state(const shadow *s, const snap *a, const snap *b, int what_cmp,
                       const char *what) {
    const size_t no = (size_t)s->cfg.heads * s->cfg.value_dim;
    REQUIRE(a->len_st == VS_OK && b->len_st == VS_OK && a->len == b->len,
            "%s changed the length (%zu -> %zu)", what, a->len, b->len);
    if (a->probed && b->probed) {
        REQUIRE(a->probe_st == b->probe_st, "%s changed the probe decode's status (%d -> %d)", what,
                a->probe_st, b->probe_st);
        REQUIRE(a->probe_st != VS_OK || memcmp(a->probe, b->probe, no * sizeof(float)) == 0,
                "%s changed the dense decode's output bits", what);
    }
    if (what_cmp & CMP_INFO)
        REQUIRE(
            a->info_st == VS_OK && b->info_st == VS_OK &&
                memcmp(&a->info, &b->info, sizeof a->info) == 0,
            "%s changed vs_cache_get_info (length %u -> %u, pages %u -> %u, reserved %.0f -> %.0f)",
            what, a->info.length, b->info.length, a->info.pages, b->info.pages,
            a->info.reserved_bytes, b->info.reserved_bytes);
    if (what_cmp & CMP_SEL)
        REQUIRE(a->sel_hash == b->sel_hash, "%s changed the last decode's selection", what);
}

static void check_info(const shadow *s) {
    vs_cache_info info;
    int st = vs_cache_get_info(s->c, &info);
    REQUIRE(st == VS_OK, "get_info = %d", st);
    const vs_cache_config *k = &s->cfg;
    REQUIRE(info.heads == k->heads && info.kv_heads == k->kv_heads &&
                info.head_dim == k->head_dim && info.value_dim == k->value_dim &&
                info.page_size == k->page_size && info.dtype == k->dtype,
            "info shape differs from the config");
    REQUIRE(info.length == s->T, "info.length %u, expected %zu", info.length, s->T);
    REQUIRE(info.pages == pages_of(s), "info.pages %u, expected %zu", info.pages, pages_of(s));
    const double kvb = (double)info.pages * k->kv_heads * k->page_size *
                       ((double)k->head_dim + k->value_dim) * sizeof(float);
    REQUIRE(info.kv_bytes == kvb, "info.kv_bytes %.0f, expected %.0f", info.kv_bytes, kvb);
    REQUIRE(isfinite(info.summary_bytes) && info.summary_bytes >= 0 &&
                (info.pages > 0 || info.summary_bytes == 0),
            "info.summary_bytes %.0f", info.summary_bytes);
    REQUIRE(isfinite(info.reserved_bytes) &&
                info.reserved_bytes >= info.kv_bytes + info.summary_bytes,
            "info.reserved_bytes %.0f < kv %.0f + summaries %.0f", info.reserved_bytes,
            info.kv_bytes, info.summary_bytes);
    size_t len = 0;
    REQUIRE(vs_cache_length(s->c, &len) == VS_OK && len == s->T, "vs_cache_length %zu", len);
}

/* ---- float64 reference and output checks ------------------------------------------------- */

static double resolve_scale(const shadow *s, float scale) {
    return scale == 0.0f ? 1.0 / sqrt((double)s->cfg.head_dim) : (double)scale;
}

/* Largest scale * sum_j |q_j| max_t |k_tj| over heads: the library refuses a
   query whose scores could overflow; the harness allows VS_E_RANGE near it. */
/* max_t |k_tgj| per KV head g and channel j: [G][d] (malloc'd). */
NOCOV static double *key_absmax(const shadow *s) {
    const uint32_t G = s->cfg.kv_heads, d = s->cfg.head_dim;
    double *km = xmalloc((size_t)G * d * sizeof *km);
    for (size_t i = 0; i < (size_t)G * d; i++)
        km[i] = 0;
    for (size_t t = 0; t < s->T; t++)
        for (size_t i = 0; i < (size_t)G * d; i++)
            km[i] = fmax(km[i], fabs((double)s->keys[t * G * d + i]));
    return km;
}

/* sum_j |q_hj| max_t |k_tgj|: bounds |<q_h, k>| over the cache. */
NOCOV static double head_qk(const shadow *s, const double *km, const float *q, uint32_t h) {
    const uint32_t d = s->cfg.head_dim, g = h / (s->cfg.heads / s->cfg.kv_heads);
    double a = 0;
    for (uint32_t j = 0; j < d; j++)
        a += fabs((double)q[(size_t)h * d + j]) * km[(size_t)g * d + j];
    return a;
}

static double score_bound(const shadow *s, const float *q, double scale) {
    double *km = key_absmax(s), worst = 0;
    for (uint32_t h = 0; h < s->cfg.heads; h++)
        worst = fmax(worst, scale * head_qk(s, km, q, h));
    free(km);
    return worst;
}

NOCOV static void reference(const shadow *s, const float *q, double scale, double *out) {
    const uint32_t G = s->cfg.kv_heads, d = s->cfg.head_dim, dv = s->cfg.value_dim;
    const uint32_t group = s->cfg.heads / G;
    double *sc = xmalloc(s->T * sizeof *sc);
    for (uint32_t h = 0; h < s->cfg.heads; h++) {
        const uint32_t g = h / group;
        double m = -INFINITY, z = 0;
        for (size_t t = 0; t < s->T; t++) {
            double a = 0;
            for (uint32_t j = 0; j < d; j++)
                a += (double)q[(size_t)h * d + j] * s->keys[(t * G + g) * d + j];
            sc[t] = scale * a;
            m = sc[t] > m ? sc[t] : m;
        }
        for (size_t t = 0; t < s->T; t++)
            z += (sc[t] = exp(sc[t] - m));
        for (uint32_t j = 0; j < dv; j++)
            out[(size_t)h * dv + j] = 0;
        for (size_t t = 0; t < s->T; t++)
            for (uint32_t j = 0; j < dv; j++)
                out[(size_t)h * dv + j] += sc[t] / z * s->vals[(t * G + g) * dv + j];
    }
    free(sc);
}

/* Largest ||v||_2 and per-coordinate value range of KV head g. */
NOCOV static double value_stats(const shadow *s, uint32_t g, double *lo, double *hi) {
    const uint32_t G = s->cfg.kv_heads, dv = s->cfg.value_dim;
    double vmax = 0;
    for (uint32_t j = 0; j < dv; j++)
        lo[j] = INFINITY, hi[j] = -INFINITY;
    for (size_t t = 0; t < s->T; t++) {
        const float *v = s->vals + (t * G + g) * dv;
        double n2 = 0;
        for (uint32_t j = 0; j < dv; j++) {
            lo[j] = v[j] < lo[j] ? v[j] : lo[j];
            hi[j] = v[j] > hi[j] ? v[j] : hi[j];
            n2 += (double)v[j] * v[j];
        }
        vmax = sqrt(n2) > vmax ? sqrt(n2) : vmax;
    }
    return vmax;
}

#define TINY 0x1p-149 /* smallest float denormal: absolute rounding floor */

/* Finite, and per coordinate inside the values' range up to summation rounding:
   softmax attention is a convex combination of the values. */
NOCOV static void check_output(const shadow *s, const float *out, const char *what) {
    const uint32_t G = s->cfg.kv_heads, dv = s->cfg.value_dim, group = s->cfg.heads / G;
    const size_t np = pages_of(s);
    double *lo = xmalloc(dv * sizeof *lo), *hi = xmalloc(dv * sizeof *hi);
    for (uint32_t g = 0; g < G; g++) {
        value_stats(s, g, lo, hi);
        for (uint32_t h = g * group; h < (g + 1) * group; h++)
            for (uint32_t j = 0; j < dv; j++) {
                const double o = out[(size_t)h * dv + j];
                REQUIRE(isfinite(o), "%s: output head %u [%u] = %g is not finite (T %zu)", what, h,
                        j, o, s->T);
                const double mag = fmax(fabs(lo[j]), fabs(hi[j]));
                const double tol = (1e-5 + 5e-7 * (double)(s->T + np)) * mag + (s->T + 8) * TINY;
                REQUIRE(o >= lo[j] - tol && o <= hi[j] + tol,
                        "%s: output head %u [%u] = %.9g outside the values' range [%.9g, %.9g]",
                        what, h, j, o, lo[j], hi[j]);
            }
    }
    free(lo);
    free(hi);
}

/* ---- ISA ------------------------------------------------------------------------------- */

static int g_have_avx2;
static char g_best_isa[32];

/* ---- operations ----------------------------------------------------------------------- */

static uint32_t pick_dim(reader *r) {
    const uint8_t b = u8(r);
    if (b < 224) return 1 + b % 64;
    switch (b % 8) {
    case 0: return 0;
    case 1: return VS_MAX_DIM;
    case 2: return VS_MAX_DIM + 1;
    case 3: return u32(r);
    case 4: return 65 + u16(r) % 448;
    case 5: return UINT32_MAX;
    default: return 1 + b % 8;
    }
}

static void op_create(reader *r, shadow *s) {
    g_op_name = "create";
    shadow_free(s);
    vs_cache_config cfg;
    const uint8_t mode = u8(r);
    if (mode % 8) {
        cfg.kv_heads = 1 + u8(r) % 4;
        cfg.heads = cfg.kv_heads * (1 + u8(r) % 4);
    } else {
        switch (u8(r) % 7) {
        case 0: cfg.heads = u32(r), cfg.kv_heads = u32(r); break;
        case 1: cfg.heads = 0, cfg.kv_heads = 1; break;
        case 2: cfg.heads = 4, cfg.kv_heads = 0; break;
        case 3: cfg.heads = 6, cfg.kv_heads = 4; break;
        case 4: cfg.heads = VS_MAX_HEADS + 1, cfg.kv_heads = 1; break;
        case 5: cfg.heads = VS_MAX_HEADS, cfg.kv_heads = 1u << (u8(r) % 11); break;
        default: cfg.heads = 1 + u8(r) % 64, cfg.kv_heads = 1 + u8(r) % 8; break;
        }
    }
    cfg.head_dim = pick_dim(r);
    cfg.value_dim = pick_dim(r);
    const uint8_t pb = u8(r);
    if (pb < 224)
        cfg.page_size = pb % 65; /* 0: the default */
    else {
        switch (pb % 8) {
        case 0: cfg.page_size = VS_MAX_PAGE_SIZE; break;
        case 1: cfg.page_size = VS_MAX_PAGE_SIZE + 1; break;
        case 2: cfg.page_size = u32(r); break;
        case 3: cfg.page_size = 1; break;
        case 4: cfg.page_size = 128 + u16(r) % 3968; break;
        case 5: cfg.page_size = UINT32_MAX; break;
        default: cfg.page_size = pb % 8 - 4; break; /* 2, 3 */
        }
    }
    const uint8_t db = u8(r);
    cfg.dtype = db < 248 ? VS_DTYPE_F32 : (db == 255 ? u32(r) : db);

    if (mode == 0xFF) { /* NULL arguments */
        vs_cache *c = (vs_cache *)&c;
        REQUIRE(vs_cache_create(NULL, &c) == VS_E_NULL && c == NULL, "create(NULL config)");
        REQUIRE(vs_cache_create(&cfg, NULL) == VS_E_NULL, "create(NULL out)");
        return;
    }

    expect e = {0, 0};
    if (cfg.heads == 0 || cfg.kv_heads == 0 || cfg.heads > VS_MAX_HEADS ||
        cfg.heads % cfg.kv_heads != 0)
        e.must |= M(VS_E_HEADS);
    if (cfg.head_dim == 0 || cfg.head_dim > VS_MAX_DIM || cfg.value_dim == 0 ||
        cfg.value_dim > VS_MAX_DIM)
        e.must |= M(VS_E_DIM);
    if (cfg.page_size > VS_MAX_PAGE_SIZE) e.must |= M(VS_E_PAGE);
    if (cfg.dtype != VS_DTYPE_F32) e.must |= M(VS_E_DTYPE);
    if (armed()) e.may |= M(VS_E_NOMEM);

    vs_cache *c = (vs_cache *)&cfg; /* must be reset to NULL on error */
    arm();
    int st = vs_cache_create(&cfg, &c);
    disarm();
    TRACE("create heads %u kv %u d %u dv %u page %u dtype %u fail %ld -> %d", cfg.heads,
          cfg.kv_heads, cfg.head_dim, cfg.value_dim, cfg.page_size, cfg.dtype, g_pending_fail, st);
    check_status(st, e, DOC_CREATE, "vs_cache_create");
    if (st != VS_OK) {
        REQUIRE(c == NULL, "create failed with %d but left *out set", st);
        return;
    }
    REQUIRE(c != NULL, "create succeeded with *out NULL");
    s->c = c;
    s->cfg = cfg;
    if (s->cfg.page_size == 0) s->cfg.page_size = VS_DEFAULT_PAGE_SIZE;
    s->sel_state = 0;
    check_info(s);
}

/* Floats of one storage block: the library stores pages in chunks of about
   256 tokens (src/internal.h). 64-bit arithmetic: this can exceed 2^32. */
static uint64_t block_floats(const shadow *s) {
    const uint64_t block = s->cfg.page_size > 256 ? s->cfg.page_size : 256;
    return (uint64_t)s->cfg.kv_heads * block * ((uint64_t)s->cfg.head_dim + s->cfg.value_dim);
}

/* Tokens this cache may still take within the harness's budgets. */
static size_t room(const shadow *s) {
    const size_t G = s->cfg.kv_heads, H = s->cfg.heads,
                 w = (size_t)s->cfg.head_dim + s->cfg.value_dim;
    if (block_floats(s) > MAX_PAGE_FLOATS) return 0;
    size_t lim = MAX_TOKENS;
    if (MAX_STORED / (G * w) < lim) lim = MAX_STORED / (G * w);
    if (MAX_WORK / (H * w) < lim) lim = MAX_WORK / (H * w);
    return lim > s->T ? lim - s->T : 0;
}

static void op_append(reader *r, shadow *s, int big) {
    g_op_name = "append";
    if (!s->c) {
        float k = 1, v = 1;
        REQUIRE(vs_cache_append(NULL, &k, 1, &v, 1) == VS_E_NULL, "append(NULL cache)");
        return;
    }
    const size_t G = s->cfg.kv_heads, d = s->cfg.head_dim, dv = s->cfg.value_dim;
    const size_t krow = G * d, vrow = G * dv;
    size_t n = big ? u16(r) % MAX_APPEND : (size_t)(u8(r) % 40);
    const size_t can = room(s);
    if (n > can) n = can;
    const uint8_t cm = u8(r);
    /* With a 32-bit size_t (as in wasm32), one token of a shape whose storage
       block needs >= 4 GiB: the size computation must not wrap around; the
       only possible answer is VS_E_NOMEM. */
    const int huge = sizeof(size_t) < 8 && s->T == 0 && (cm & 0xF0) == 0xF0 && cm % 16 >= 8 &&
                     block_floats(s) * sizeof(float) >= ((uint64_t)1 << 32);
    if (huge) n = 1;
    size_t kc = n * krow, vc = n * vrow;
    int knull = 0, vnull = 0;
    switch (cm % 16) {
    case 0: kc += 1; break;
    case 1: kc = kc ? kc - 1 : 0; break;
    case 2: vc += 1; break;
    case 3: kc += krow; break; /* one key row more than values */
    case 4: knull = 1; break;
    case 5: vnull = 1; break;
    case 6: kc = 0, vc = 0; break;
    case 7: vc = vc ? vc - vrow : vrow; break; /* a value row less (or more) */
    default: break;
    }
    float *k = xmalloc(kc * sizeof *k), *v = xmalloc(vc * sizeof *v);
    fill(r, k, kc);
    fill(r, v, vc);

    expect e = {0, 0};
    const int counts_ok = kc % krow == 0 && vc % vrow == 0 && kc / krow == vc / vrow;
    const size_t nn = counts_ok ? kc / krow : 0;
    if (!counts_ok)
        e.must |= M(VS_E_LENGTH);
    else if (nn > 0) {
        if (knull || vnull) e.must |= M(VS_E_NULL);
        if (!knull && nonfinite_any(k, kc)) e.must |= M(VS_E_NONFINITE);
        if (!vnull && nonfinite_any(v, vc)) e.must |= M(VS_E_NONFINITE);
        if (!knull && toobig_any(k, kc)) e.must |= M(VS_E_RANGE);
        if (!vnull && toobig_any(v, vc)) e.must |= M(VS_E_RANGE);
        if (armed() || huge) e.may |= M(VS_E_NOMEM);
    }
    /* A call with bad counts and NULL data may report either. */
    if (!counts_ok && (knull || vnull)) e.may |= M(VS_E_NULL);

    snap before = take(s);
    arm();
    int st = vs_cache_append(s->c, knull ? NULL : k, kc, vnull ? NULL : v, vc);
    disarm();
    TRACE("append T %zu n %zu kc %zu vc %zu null %d%d k0 %g v0 %g fail %ld%s -> %d", s->T, nn, kc,
          vc, knull, vnull, kc ? k[0] : 0.0, vc ? v[0] : 0.0, g_pending_fail,
          huge ? " (4 GiB block)" : "", st);
    check_status(st, e, DOC_APPEND, "vs_cache_append");
    if (st != VS_OK) {
        snap after = take(s);
        same_state(s, &before, &after, CMP_ALL, "a failed append");
        snap_free(&after);
    } else if (nn > 0) {
        if (s->T + nn > s->cap) {
            size_t cap = s->T + nn + 64;
            s->keys = realloc(s->keys, cap * krow * sizeof(float));
            s->vals = realloc(s->vals, cap * vrow * sizeof(float));
            if (!s->keys || !s->vals) abort();
            s->cap = cap;
        }
        memcpy(s->keys + s->T * krow, k, kc * sizeof(float));
        memcpy(s->vals + s->T * vrow, v, vc * sizeof(float));
        s->T += nn;
        s->sel_state = 0;
        check_info(s);
    } else {
        s->sel_state = s->sel_state ? 2 : 0; /* n = 0 changes nothing: kept or cleared */
    }
    snap_free(&before);
    free(k);
    free(v);
}

static void op_truncate(reader *r, shadow *s) {
    g_op_name = "truncate";
    if (!s->c) {
        REQUIRE(vs_cache_truncate(NULL, 0) == VS_E_NULL, "truncate(NULL)");
        return;
    }
    const uint8_t b = u8(r);
    size_t len;
    switch (b % 10) {
    case 0: len = s->T; break;
    case 1: len = s->T + 1; break;
    case 2: len = SIZE_MAX; break;
    case 3: len = 0; break;
    case 4: len = (size_t)(((uint64_t)1 << 32) + s->T); break; /* wraps to T on 32-bit */
    case 5: len = s->T ? s->T - 1 : 0; break;
    case 6: len = s->T + 1 + u16(r); break;
    default: len = s->T ? u16(r) % (s->T + 1) : 0; break;
    }
    expect e = {len > s->T ? M(VS_E_LENGTH) : 0, 0}; /* never VS_E_NOMEM, even when armed */
    snap before = take(s);
    arm();
    int st = vs_cache_truncate(s->c, len);
    disarm();
    TRACE("truncate T %zu to %zu fail %ld -> %d", s->T, len, g_pending_fail, st);
    check_status(st, e, DOC_TRUNCATE, "vs_cache_truncate");
    if (st != VS_OK) {
        snap after = take(s);
        same_state(s, &before, &after, CMP_ALL, "a failed truncate");
        snap_free(&after);
    } else if (len < s->T) {
        s->T = len;
        s->sel_state = 0;
        check_info(s);
    } else {
        s->sel_state = s->sel_state ? 2 : 0;
    }
    snap_free(&before);
}

static float pick_scale(reader *r) {
    const uint8_t b = u8(r);
    if (b < 128) return 0.0f;
    switch (b % 16) {
    case 0: return 1.0f;
    case 1: return 0.5f;
    case 2: return (float)(1 + u16(r)) / 1000.0f;
    case 3: return 1e-30f;
    case 4: return 1e30f;
    case 5: return -1.0f;
    case 6: return NAN;
    case 7: return INFINITY;
    case 8: return 1e-40f; /* denormal */
    case 9: return -0.0f;  /* equals 0: the default */
    case 10: return FLT_MIN;
    case 11: return f32_bits(u32(r));
    case 12: return 1e-10f;
    case 13: return 1e10f;
    case 14: return 8.0f;
    default: return 0.125f;
    }
}

static int scale_ok(float sc) { return sc == 0.0f || (sc > 0.0f && isfinite(sc)); }

/* Shared query checks of both decodes; fills e. */
typedef struct query_args {
    float *q, *out;
    size_t nq, no; /* counts passed */
    int qnull, onull;
} query_args;

static void make_query(reader *r, const shadow *s, query_args *a) {
    const size_t nq = (size_t)s->cfg.heads * s->cfg.head_dim,
                 no = (size_t)s->cfg.heads * s->cfg.value_dim;
    a->nq = nq;
    a->no = no;
    a->qnull = a->onull = 0;
    const uint8_t cm = u8(r);
    switch (cm % 16) {
    case 0: a->nq = nq + 1; break;
    case 1: a->nq = nq - 1; break;
    case 2: a->no = no + 1; break;
    case 3: a->no = no - 1; break;
    case 4: a->qnull = 1; break;
    case 5: a->onull = 1; break;
    case 6: a->nq = 0; break;
    default: break;
    }
    a->q = xmalloc(a->nq * sizeof(float));
    a->out = xmalloc(a->no * sizeof(float));
    fill(r, a->q, a->nq);
    memset(a->out, 0xA5, a->no * sizeof(float));
}

static void query_expect(const shadow *s, const query_args *a, float scale, expect *e) {
    if (a->qnull || a->onull) e->must |= M(VS_E_NULL);
    const int len_ok = a->nq == (size_t)s->cfg.heads * s->cfg.head_dim &&
                       a->no == (size_t)s->cfg.heads * s->cfg.value_dim;
    if (!len_ok) e->must |= M(VS_E_LENGTH);
    if (s->T == 0) e->must |= M(VS_E_EMPTY);
    if (!a->qnull) {
        if (nonfinite_any(a->q, a->nq)) e->must |= M(VS_E_NONFINITE);
        if (toobig_any(a->q, a->nq)) e->must |= M(VS_E_RANGE);
        if (len_ok && s->T && scale_ok(scale) && !nonfinite_any(a->q, a->nq) &&
            !toobig_any(a->q, a->nq)) {
            const double sc = scale == 0.0f ? (double)(float)(1.0 / sqrt((double)s->cfg.head_dim))
                                            : (double)scale;
            const double b = score_bound(s, a->q, sc);
            if (b > 1.0e30 * (1 + 1e-6))
                e->must |= M(VS_E_RANGE);
            else if (b > 2.0e29)
                e->may |= M(VS_E_RANGE);
            /* the unscaled dot products must fit in float too (tiny scales) */
            if (score_bound(s, a->q, 1.0) > 2.0e29) e->may |= M(VS_E_RANGE);
        }
    }
    /* The query is not read when it is NULL or the counts are wrong. */
    if (a->qnull || !len_ok) e->may |= M(VS_E_NONFINITE) | M(VS_E_RANGE);
}

static void op_dense(reader *r, shadow *s) {
    g_op_name = "dense";
    if (!s->c) {
        float q = 0, o = 0;
        REQUIRE(vs_decode_dense(NULL, &q, 1, 0, &o, 1) == VS_E_NULL, "dense(NULL cache)");
        return;
    }
    query_args a;
    make_query(r, s, &a);
    const float scale = pick_scale(r);
    const int probe = (u8(r) & 3) != 0;
    expect e = {0, 0};
    query_expect(s, &a, scale, &e);
    if (!scale_ok(scale)) e.must |= M(VS_E_OPTION);
    if (armed()) e.may |= M(VS_E_NOMEM); /* undocumented for dense: check_status flags it */

    snap before = take_probe(s, probe);
    arm();
    int st = vs_decode_dense(s->c, a.qnull ? NULL : a.q, a.nq, scale, a.onull ? NULL : a.out, a.no);
    disarm();
    TRACE("dense T %zu nq %zu no %zu null %d%d scale %g q0 %g fail %ld -> %d", s->T, a.nq, a.no,
          a.qnull, a.onull, scale, a.nq ? a.q[0] : 0.0, g_pending_fail, st);
    check_status(st, e, DOC_DENSE, "vs_decode_dense");
    snap after = take_probe(s, before.probed);
    same_state(s, &before, &after, st ? CMP_ALL : CMP_SEL,
               st ? "a failed dense decode" : "a dense decode");
    if (st == VS_OK) {
        check_output(s, a.out, "dense");
        const uint32_t dv = s->cfg.value_dim;
        if ((size_t)s->T * s->cfg.heads * (s->cfg.head_dim + dv) <= REF_WORK) {
            /* dense has no certificate; the output must still be close to exact when
               the scores' rounding is small: |score error| <= ds (decode.c), checked
               loosely as a convex-combination perturbation */
            double *ref = xmalloc((size_t)s->cfg.heads * dv * sizeof *ref);
            const double sc = resolve_scale(s, scale);
            reference(s, a.q, sc, ref);
            const uint32_t G = s->cfg.kv_heads, group = s->cfg.heads / G, d = s->cfg.head_dim;
            double *lo = xmalloc(dv * sizeof *lo), *hi = xmalloc(dv * sizeof *hi);
            double *km = key_absmax(s);
            for (uint32_t h = 0; h < s->cfg.heads; h++) {
                const double vmax = value_stats(s, h / group, lo, hi);
                const double ds = sc * head_qk(s, km, a.q, h) * (d + 16) * 0x1p-24 + 1e-6;
                if (ds > 0.1) continue; /* large scores: only the hull check applies */
                double err = 0;
                for (uint32_t j = 0; j < dv; j++) {
                    const double x = a.out[(size_t)h * dv + j] - ref[(size_t)h * dv + j];
                    err += x * x;
                }
                err = sqrt(err);
                /* weights move by at most a factor e^(+-2 ds): 2 (e^(2 ds) - 1) vmax */
                const double tol = (2 * expm1(2 * ds) + 1e-5 + 5e-7 * (s->T + pages_of(s))) * vmax +
                                   (s->T + 8) * TINY * sqrt((double)dv);
                REQUIRE(err <= tol, "dense head %u: error %.6g vs float64 > tolerance %.6g", h, err,
                        tol);
            }
            free(km);
            free(lo);
            free(hi);
            free(ref);
        }
    }
    snap_free(&before);
    snap_free(&after);
    free(a.q);
    free(a.out);
}

static float pick_tolerance(reader *r) {
    const uint8_t b = u8(r);
    if (b < 150) return 0.0f;
    switch (b % 12) {
    case 0: return 1e-3f;
    case 1: return 1e-6f;
    case 2: return (float)(1 + u16(r)) / 65536.0f;
    case 3: return -1e-3f;
    case 4: return NAN;
    case 5: return INFINITY;
    case 6: return 1e30f;
    case 7: return 1e-40f;
    case 8: return 0.5f;
    case 9: return f32_bits(u32(r));
    case 10: return 1e-9f;
    default: return 0.05f;
    }
}

static void record_selection(shadow *s, const vs_head_diag *diag) {
    const size_t H = s->cfg.heads, T = s->T, np = pages_of(s);
    shadow_clear_sel(s);
    s->sel_tok = xmalloc(H * (T + 1) * sizeof(uint32_t));
    s->sel_pg = xmalloc(H * (np + 1) * sizeof(uint32_t));
    s->sel_ntok = xmalloc(H * sizeof(uint32_t));
    s->sel_npg = xmalloc(H * sizeof(uint32_t));
    const uint32_t S = s->cfg.page_size;
    for (uint32_t h = 0; h < H; h++) {
        uint32_t *tok = s->sel_tok + h * (T + 1), *pg = s->sel_pg + h * (np + 1);
        size_t nt = 0, npg = 0;
        int st = vs_decode_candidates(s->c, h, tok, T + 1, &nt);
        REQUIRE(st == VS_OK, "vs_decode_candidates = %d", st);
        st = vs_decode_routed_pages(s->c, h, pg, np + 1, &npg);
        REQUIRE(st == VS_OK, "vs_decode_routed_pages = %d", st);
        REQUIRE(nt >= 1 && nt <= T, "head %u: %zu candidates of %zu tokens", h, nt, T);
        REQUIRE(npg >= 1 && npg <= np, "head %u: %zu routed pages of %zu", h, npg, np);
        for (size_t i = 0; i < nt; i++)
            REQUIRE(tok[i] < T && (i == 0 || tok[i] > tok[i - 1]),
                    "head %u: candidates not increasing tokens < T at %zu", h, i);
        for (size_t i = 0; i < npg; i++)
            REQUIRE(pg[i] < np && (i == 0 || pg[i] > pg[i - 1]),
                    "head %u: routed pages not increasing pages < %zu at %zu", h, np, i);
        /* every candidate lies in a routed page */
        for (size_t i = 0, p = 0; i < nt; i++) {
            while (p < npg && pg[p] < tok[i] / S)
                p++;
            REQUIRE(p < npg && pg[p] == tok[i] / S, "head %u: candidate %u is in no routed page", h,
                    tok[i]);
        }
        if (diag) {
            if (diag[h].fallback == VS_FALLBACK_DENSE) {
                REQUIRE(nt == T && npg == np, "head %u fell back to dense: selection %zu/%zu", h,
                        nt, npg);
            } else {
                REQUIRE(nt == diag[h].candidates, "head %u: %zu candidates, diag says %u", h, nt,
                        diag[h].candidates);
                REQUIRE(npg == diag[h].routed_pages, "head %u: %zu routed pages, diag says %u", h,
                        npg, diag[h].routed_pages);
            }
        }
        s->sel_ntok[h] = (uint32_t)nt;
        s->sel_npg[h] = (uint32_t)npg;
    }
    s->sel_state = 1;
}

static void op_sparse(reader *r, shadow *s) {
    g_op_name = "sparse";
    if (!s->c) {
        float q = 0, o = 0;
        REQUIRE(vs_decode(NULL, &q, 1, NULL, &o, 1, NULL, 0) == VS_E_NULL, "decode(NULL cache)");
        return;
    }
    const uint32_t H = s->cfg.heads;
    query_args a;
    make_query(r, s, &a);
    vs_decode_options o;
    vs_decode_options_default(&o);
    const uint8_t ob = u8(r);
    const int use_null = ob % 8 == 0;
    if (!use_null) {
        const uint8_t f = u8(r);
        const uint8_t pb = u8(r), cb = u8(r);
        o.pages = pb < 200 ? pb % 9 : (pb < 230 ? UINT32_MAX : u32(r));
        o.candidates = cb < 180 ? cb % 65 : (cb < 230 ? UINT32_MAX : u32(r));
        if (f & 1) o.sink_pages = u8(r) % 4;
        if (f & 2) o.recent_pages = u8(r) % 4;
        if ((f & 12) == 12) o.sink_pages = u32(r), o.recent_pages = u32(r);
        if (f & 16) {
            const uint8_t sb = u8(r);
            o.solver = sb < 128 ? sb % 4 : u32(r);
        }
        if (f & 32) {
            const uint8_t wb = u8(r);
            o.widen = wb < 200 ? wb % 6 : u32(r);
        }
        o.scale = pick_scale(r);
        o.tolerance = pick_tolerance(r);
        if (f & 64) {
            const uint8_t eb = u8(r);
            const float ev[] = {0.0f, -1.0f, NAN, INFINITY, 1e-30f, 1.0f, 0.5f, 1e30f};
            o.eps = ev[eb % 8];
            const uint32_t mi[] = {0, 1, 2, 1000, 3000, 200, 5, 50}; /* no 2^32: a hang */
            o.max_iter = mi[(eb >> 3) % 8];
            const float tv[] = {0.0f, -1.0f, NAN, 1e-3f, 1e-9f, INFINITY, 1e-6f, 0.1f};
            o.solver_tol = tv[(eb >> 5) % 8];
        }
        if (f & 128) { /* routing (valid: 0 flat, 1 tree) and expand (any; 0 = automatic) */
            const uint8_t rb = u8(r);
            switch (rb % 8) {
            case 0: case 1: case 2: o.routing = VS_ROUTING_TREE; break;
            case 3: case 4: o.routing = VS_ROUTING_FLAT; break;
            case 5: o.routing = 2; break;
            case 6: o.routing = UINT32_MAX; break;
            default: o.routing = u32(r); break;
            }
            /* share_routing from the byte's high bits: 0, 1, or invalid */
            o.share_routing = (rb >> 3) % 4 == 2 ? 1u : (rb >> 3) % 4 == 3 ? 2u + (rb >> 5) : 0u;
            const uint8_t xb = u8(r);
            switch (xb % 8) {
            case 5: o.expand = u16(r); break;
            case 6: o.expand = UINT32_MAX; break;
            case 7: o.expand = u32(r); break;
            default: o.expand = xb % 8; break; /* 0 (automatic) .. 4 */
            }
        }
    }
    const uint8_t db = u8(r);
    vs_head_diag *diag = NULL;
    size_t ndiag = 0;
    switch (db % 8) {
    case 0: ndiag = db; break; /* NULL, any count */
    case 1: ndiag = H + 1; break;
    case 2: ndiag = H - 1; break;
    default: ndiag = H; break;
    }
    if (db % 8) diag = xmalloc((ndiag ? ndiag : 1) * sizeof *diag);

    expect e = {0, 0};
    query_expect(s, &a, o.scale, &e);
    if (o.pages == 0 || o.candidates == 0 || o.widen < 2 || o.solver > VS_SOLVER_FW ||
        o.routing > VS_ROUTING_TREE || o.share_routing > 1 || !(o.tolerance >= 0.0f) ||
        !isfinite(o.tolerance) ||
        !scale_ok(o.scale))
        e.must |= M(VS_E_OPTION);
    const int proj = o.solver == VS_SOLVER_EG || o.solver == VS_SOLVER_FW;
    if (proj) {
        /* eps, max_iter, solver_tol; eps / scale and solver_tol / scale near the
           edges of their ranges may go either way after float rounding */
        e.may |= M(VS_E_OPTION);
        if (o.max_iter == 0 || !(o.solver_tol > 0.0f) || !isfinite(o.solver_tol) ||
            !(o.eps >= 1e-9f && o.eps <= 1e9f))
            e.must |= M(VS_E_OPTION);
        if (scale_ok(o.scale)) {
            const double sc = resolve_scale(s, o.scale), ek = o.eps / sc;
            if (ek < 1e-9 / 1.01 || ek > 1e9 * 1.01) e.must |= M(VS_E_OPTION);
        }
        /* ||q||^2 and a key norm bound from per-channel maxima, against 1e15 */
        e.may |= M(VS_E_RANGE);
    } else if (o.max_iter == 0 || !(o.solver_tol > 0.0f) || !isfinite(o.solver_tol) ||
               !(o.eps > 0.0f) || !isfinite(o.eps)) {
        e.may |= M(VS_E_OPTION); /* the solver parameters may be checked for every solver */
    }
    if (diag && ndiag != H) e.must |= M(VS_E_LENGTH);
    if (armed()) e.may |= M(VS_E_NOMEM);

    snap before = take_probe(s, (ob & 0xC0) != 0);
    arm();
    int st = vs_decode(s->c, a.qnull ? NULL : a.q, a.nq, use_null ? NULL : &o,
                       a.onull ? NULL : a.out, a.no, diag, ndiag);
    disarm();
    TRACE("decode T %zu nq %zu no %zu null %d%d opts %s pages %u cand %u sink %u recent %u "
          "solver %u widen %u scale %g tol %g eps %g iter %u stol %g routing %u expand %u "
          "share %u diag %s/%zu q0 %g fail %ld -> %d",
          s->T, a.nq, a.no, a.qnull, a.onull, use_null ? "NULL" : "set", o.pages, o.candidates,
          o.sink_pages, o.recent_pages, o.solver, o.widen, o.scale, o.tolerance, o.eps, o.max_iter,
          o.solver_tol, o.routing, o.expand, o.share_routing, diag ? "set" : "NULL", ndiag,
          a.nq ? a.q[0] : 0.0,
          g_pending_fail, st);
    check_status(st, e, DOC_DECODE, "vs_decode");
    snap after = take_probe(s, before.probed);
    same_state(s, &before, &after, st ? CMP_ALL : 0,
               st ? "a failed sparse decode" : "a sparse decode");
    snap_free(&before);
    snap_free(&after);
    if (st != VS_OK) goto done;

    const uint32_t dv = s->cfg.value_dim;
    const size_t np = pages_of(s);
    check_output(s, a.out, "sparse");
    if (diag) {
        for (uint32_t h = 0; h < H; h++) {
            const vs_head_diag *g = &diag[h];
            double n2 = 0;
            for (uint32_t j = 0; j < dv; j++)
                n2 += (double)a.out[(size_t)h * dv + j] * a.out[(size_t)h * dv + j];
            REQUIRE(g->fallback <= VS_FALLBACK_DENSE, "head %u: fallback %u", h, g->fallback);
            REQUIRE(o.tolerance > 0 || g->fallback == VS_FALLBACK_NONE,
                    "head %u: fallback %u without a tolerance", h, g->fallback);
            REQUIRE(g->candidates >= 1 && g->candidates <= s->T, "head %u: %u candidates", h,
                    g->candidates);
            REQUIRE(g->routed_pages >= 1 && g->routed_pages <= np, "head %u: %u routed pages", h,
                    g->routed_pages);
            REQUIRE(g->error_bound >= 0 && !isnan(g->error_bound), "head %u: error_bound %g", h,
                    g->error_bound);
            REQUIRE(g->rho_cert >= 0 && !isnan(g->rho_cert), "head %u: rho_cert %g", h,
                    g->rho_cert);
            REQUIRE(!isnan(g->leakage_bound) && g->leakage_bound >= 0 && g->leakage_bound <= 1,
                    "head %u: leakage_bound %g", h, g->leakage_bound);
            REQUIRE(!isnan(g->effective_support) && g->effective_support >= 1 &&
                        g->effective_support <= g->candidates,
                    "head %u: effective_support %g of %u", h, g->effective_support, g->candidates);
            REQUIRE(!isnan(g->gap), "head %u: gap is NaN", h);
            REQUIRE(fabs(g->output_norm - sqrt(n2)) <= 1e-6 * sqrt(n2) + 1e-38,
                    "head %u: output_norm %.9g, ||out|| %.9g", h, g->output_norm, sqrt(n2));
            /* (fw compares its bound with ||U alpha||, which is not visible here) */
            if (o.tolerance > 0 && g->fallback != VS_FALLBACK_DENSE && o.solver != VS_SOLVER_FW)
                REQUIRE(
                    !(g->error_bound > (double)o.tolerance * g->output_norm),
                    "head %u: kept sparse (fallback %u) with error_bound %g > tolerance %g * %g", h,
                    g->fallback, g->error_bound, o.tolerance, g->output_norm);
        }
        /* float64 reference: the certificate (softmax; the projection solvers'
           certificates are checked against float64 projections in
           tests/test_decode_solvers.c) */
        if (!proj && (size_t)s->T * H * (s->cfg.head_dim + dv) <= REF_WORK) {
            double *ref = xmalloc((size_t)H * dv * sizeof *ref);
            reference(s, a.q, resolve_scale(s, o.scale), ref);
            double *lo = xmalloc(dv * sizeof *lo), *hi = xmalloc(dv * sizeof *hi);
            const uint32_t group = H / s->cfg.kv_heads;
            for (uint32_t h = 0; h < H; h++) {
                double err = 0;
                for (uint32_t j = 0; j < dv; j++) {
                    const double x = a.out[(size_t)h * dv + j] - ref[(size_t)h * dv + j];
                    err += x * x;
                }
                err = sqrt(err);
                const double vmax = value_stats(s, h / group, lo, hi);
                REQUIRE(err <= diag[h].error_bound + 1e-12 * vmax,
                        "head %u: ||out - float64 dense|| = %.9g > error_bound %.9g "
                        "(T %zu, candidates %u, fallback %u, vmax %.3g)",
                        h, err, diag[h].error_bound, s->T, diag[h].candidates, diag[h].fallback,
                        vmax);
            }
            free(lo);
            free(hi);
            free(ref);
        }
        /* full coverage: the same as dense, up to float rounding */
        int any_full = 0;
        for (uint32_t h = 0; h < H && !proj; h++)
            any_full |= diag[h].candidates == s->T || diag[h].fallback == VS_FALLBACK_DENSE;
        if (any_full) {
            const size_t nq = (size_t)H * s->cfg.head_dim;
            float *dense = xmalloc((size_t)H * dv * sizeof *dense);
            int dst = vs_decode_dense(s->c, a.q, nq, o.scale, dense, (size_t)H * dv);
            REQUIRE(dst == VS_OK, "dense decode after a successful sparse one: %d", dst);
            double *lo = xmalloc(dv * sizeof *lo), *hi = xmalloc(dv * sizeof *hi);
            const uint32_t group = H / s->cfg.kv_heads;
            for (uint32_t h = 0; h < H; h++) {
                if (!(diag[h].candidates == s->T || diag[h].fallback == VS_FALLBACK_DENSE))
                    continue;
                const double vmax = value_stats(s, h / group, lo, hi);
                double err = 0;
                for (uint32_t j = 0; j < dv; j++) {
                    const double x = (double)a.out[(size_t)h * dv + j] - dense[(size_t)h * dv + j];
                    err += x * x;
                }
                err = sqrt(err);
                const double tol = (1e-5 + 5e-7 * (double)(s->T + np)) * vmax +
                                   (s->T + 8) * TINY * sqrt((double)dv);
                REQUIRE(err <= tol,
                        "head %u: full-coverage sparse differs from dense by %.9g > %.9g "
                        "(T %zu, fallback %u)",
                        h, err, tol, s->T, diag[h].fallback);
            }
            free(lo);
            free(hi);
            free(dense);
        }
    }
    record_selection(s, diag);

    /* every ISA: the same bits (out and diagnostics) */
    if ((ob & 0x30) == 0x30 && g_have_avx2) {
        const char *cur = vs_isa_name();
        const char *other = strcmp(cur, "scalar") == 0 ? "avx2" : "scalar";
        float *out2 = xmalloc(a.no * sizeof(float));
        vs_head_diag *diag2 = diag ? xmalloc(ndiag * sizeof *diag2) : NULL;
        char saved[32];
        snprintf(saved, sizeof saved, "%s", cur);
        REQUIRE(vs_set_isa(other) == VS_OK, "set_isa(%s)", other);
        int st2 = vs_decode(s->c, a.q, a.nq, use_null ? NULL : &o, out2, a.no, diag2, ndiag);
        REQUIRE(vs_set_isa(saved) == VS_OK, "set_isa(%s)", saved);
        REQUIRE(st2 == VS_OK, "decode on %s: %d", other, st2);
        REQUIRE(memcmp(out2, a.out, a.no * sizeof(float)) == 0,
                "sparse outputs differ between %s and %s", saved, other);
        REQUIRE(!diag || memcmp(diag2, diag, ndiag * sizeof *diag) == 0,
                "sparse diagnostics differ between %s and %s", saved, other);
        free(out2);
        free(diag2);
        record_selection(s, diag);
    }

    /* tree routing that expands every node (or routes every middle page) is
       flat routing, bit for bit; the first pass expands `expand` nodes, or
       max(VS_EXPAND_MIN, ceil(2 P / 16)) (vashista.h) */
    if (o.routing == VS_ROUTING_TREE) {
        const uint64_t npg = np, nn = (npg + VS_NODE_PAGES - 1) / VS_NODE_PAGES;
        const uint64_t sink = o.sink_pages < npg ? o.sink_pages : npg;
        const uint64_t recent = o.recent_pages < npg - sink ? o.recent_pages : npg - sink;
        const uint64_t autoE = (2 * (uint64_t)o.pages + VS_NODE_PAGES - 1) / VS_NODE_PAGES;
        const uint64_t E = o.expand ? o.expand : autoE > VS_EXPAND_MIN ? autoE : VS_EXPAND_MIN;
        if (E >= nn || o.pages >= npg - sink - recent) {
            vs_decode_options flat = o;
            flat.routing = VS_ROUTING_FLAT;
            float *out2 = xmalloc(a.no * sizeof(float));
            vs_head_diag *diag2 = diag ? xmalloc(ndiag * sizeof *diag2) : NULL;
            const uint64_t sel_tree = selection_hash(s);
            int st2 = vs_decode(s->c, a.q, a.nq, &flat, out2, a.no, diag2, ndiag);
            TRACE("  flat twin of a tree decode (E %llu, %llu nodes) -> %d",
                  (unsigned long long)E, (unsigned long long)nn, st2);
            REQUIRE(st2 == VS_OK, "flat twin of a tree decode: %d", st2);
            REQUIRE(memcmp(out2, a.out, a.no * sizeof(float)) == 0,
                    "tree routing with E %llu >= %llu nodes (or P >= middle pages) differs "
                    "from flat: outputs",
                    (unsigned long long)E, (unsigned long long)nn);
            REQUIRE(!diag || memcmp(diag2, diag, ndiag * sizeof *diag) == 0,
                    "tree routing with E %llu >= %llu nodes (or P >= middle pages) differs "
                    "from flat: diagnostics",
                    (unsigned long long)E, (unsigned long long)nn);
            REQUIRE(selection_hash(s) == sel_tree,
                    "tree routing with E >= nodes (or P >= middle pages): selection differs "
                    "from flat");
            free(out2);
            free(diag2);
        }
    }
done:
    free(diag);
    free(a.q);
    free(a.out);
}

static void op_selection(reader *r, shadow *s) {
    g_op_name = "selection";
    const uint8_t b = u8(r);
    const int pages = b & 1;
    int (*fn)(const vs_cache *, uint32_t, uint32_t *, size_t, size_t *) =
        pages ? vs_decode_routed_pages : vs_decode_candidates;
    size_t count = 12345;
    if (!s->c) {
        REQUIRE(fn(NULL, 0, NULL, 0, &count) == VS_E_NULL, "selection(NULL cache)");
        return;
    }
    const uint32_t H = s->cfg.heads;
    uint32_t head;
    switch ((b >> 1) % 8) {
    case 0: head = H; break;
    case 1: head = UINT32_MAX; break;
    case 2: head = H + u8(r); break;
    default: head = u8(r) % H; break;
    }
    size_t cap;
    const uint8_t cb = u8(r);
    int idx_null = 0, count_null = 0;
    switch (cb % 8) {
    case 0: cap = 0, idx_null = 1; break;
    case 1: cap = 0; break;
    case 2: cap = 1 + cb, idx_null = 1; break;
    case 3: count_null = 1, cap = cb % 5; break;
    default: cap = u16(r) % (s->T + 3); break;
    }
    uint32_t *idx = idx_null ? NULL : xmalloc((cap ? cap : 1) * sizeof *idx);
    expect e = {0, 0};
    if (count_null || (cap && idx_null)) e.must |= M(VS_E_NULL);
    if (head >= H) e.must |= M(VS_E_HEADS);
    arm(); /* a query never allocates; an armed failure must change nothing */
    int st = fn(s->c, head, idx, cap, count_null ? NULL : &count);
    disarm();
    check_status(st, e, DOC_SELECTION, pages ? "vs_decode_routed_pages" : "vs_decode_candidates");
    if (st == VS_OK) {
        if (s->sel_state == 0) {
            REQUIRE(count == 0, "selection not cleared: %zu", count);
        } else if (s->sel_state == 1) {
            const uint32_t want = pages ? s->sel_npg[head] : s->sel_ntok[head];
            REQUIRE(count == want, "selection count %zu, recorded %u", count, want);
            const uint32_t *rec = pages ? s->sel_pg + (size_t)head * (pages_of(s) + 1)
                                        : s->sel_tok + (size_t)head * (s->T + 1);
            const size_t n = cap < count ? cap : count;
            REQUIRE(n == 0 || memcmp(idx, rec, n * sizeof *idx) == 0, "selection entries differ");
        }
    }
    free(idx);
}

static void op_info(reader *r, shadow *s) {
    g_op_name = "info";
    const uint8_t b = u8(r);
    vs_cache_info info;
    size_t len;
    switch (b % 4) {
    case 0: REQUIRE(vs_cache_get_info(s->c, NULL) == VS_E_NULL, "get_info(c, NULL)"); break;
    case 1: REQUIRE(vs_cache_get_info(NULL, &info) == VS_E_NULL, "get_info(NULL, info)"); break;
    case 2:
        REQUIRE(vs_cache_length(s->c, NULL) == VS_E_NULL, "length(c, NULL)");
        REQUIRE(vs_cache_length(NULL, &len) == VS_E_NULL, "length(NULL, len)");
        break;
    default: {
        expect e = {s->c ? 0 : M(VS_E_NULL), 0};
        arm();
        int st = vs_cache_get_info(s->c, &info);
        disarm();
        check_status(st, e, DOC_INFO, "vs_cache_get_info");
        if (s->c) check_info(s);
        break;
    }
    }
}

static void op_isa(reader *r) {
    g_op_name = "set_isa";
    const uint8_t b = u8(r);
    char buf[320];
    const char *name = buf;
    switch (b % 12) {
    case 0: name = "scalar"; break;
    case 1: name = "avx2"; break;
    case 2: name = "auto"; break;
    case 3: name = "wasmsimd"; break;
    case 4: name = ""; break;
    case 5: name = NULL; break;
    case 6: name = "AVX2"; break;
    case 7: name = "scalar "; break;
    case 8: name = "avx512"; break;
    case 9:
        memset(buf, 'a', 300);
        buf[300] = 0;
        break;
    default: {
        size_t n = u8(r) % 16;
        for (size_t i = 0; i < n; i++)
            buf[i] = (char)u8(r);
        buf[n] = 0;
        break;
    }
    }
    expect e = {0, 0};
    if (!name)
        e.must = M(VS_E_NULL);
    else if (!(strcmp(name, "scalar") == 0 || strcmp(name, "auto") == 0 ||
               (g_have_avx2 && strcmp(name, "avx2") == 0)))
        e.must = M(VS_E_ISA);
    char before_name[32];
    snprintf(before_name, sizeof before_name, "%s", vs_isa_name());
    snap before[2];
    for (int i = 0; i < 2; i++)
        if (g_slot[i].c) before[i] = take(&g_slot[i]);
    int st = vs_set_isa(name);
    check_status(st, e, DOC_ISA, "vs_set_isa");
    const char *now = vs_isa_name();
    REQUIRE(now != NULL, "vs_isa_name() is NULL");
    if (st != VS_OK)
        REQUIRE(strcmp(now, before_name) == 0, "failed set_isa changed the ISA");
    else if (strcmp(name, "auto") == 0)
        REQUIRE(strcmp(now, g_best_isa) == 0, "auto gave %s", now);
    else
        REQUIRE(strcmp(now, name) == 0, "set_isa(%s) gave %s", name, now);
    /* ISAs are bit-identical: the probe decodes must not change */
    for (int i = 0; i < 2; i++)
        if (g_slot[i].c) {
            snap after = take(&g_slot[i]);
            same_state(&g_slot[i], &before[i], &after, CMP_ALL, "switching the ISA");
            snap_free(&after);
            snap_free(&before[i]);
        }
}

static void op_misc(reader *r) {
    g_op_name = "misc";
    const int code = (int)(u8(r) % 24) - 18;
    const char *m = vs_strerror(code);
    REQUIRE(m != NULL, "vs_strerror(%d) is NULL", code);
    REQUIRE((code <= 0 && code >= VS_E_CAPACITY) == (strcmp(m, "unknown status code") != 0),
            "vs_strerror(%d) = %s", code, m);
    REQUIRE(vs_version_number() == VS_VERSION_NUMBER, "version number");
    REQUIRE(vs_version_string() != NULL, "version string");
    vs_decode_options_default(NULL);
}

/* ---- driver ------------------------------------------------------------------------- */

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    static int init;
    if (!init) {
        init = 1;
        g_trace = getenv("VS_FUZZ_TRACE") != NULL;
        g_have_avx2 = vs_set_isa("avx2") == VS_OK;
        vs_set_isa("auto");
        snprintf(g_best_isa, sizeof g_best_isa, "%s", vs_isa_name());
    }
    reader rd = {data, size, 0};
    reader *r = &rd;
    disarm();
    g_pending_fail = -1;
    REQUIRE(vs_set_isa("auto") == VS_OK, "reset ISA");
    for (g_op_index = 0; g_op_index < MAX_OPS && rd.i < rd.n; g_op_index++) {
        const uint8_t b = u8(r);
        shadow *s = &g_slot[(b >> 4) & 1];
        const long fail = g_pending_fail; /* armed by the previous op: this one only */
        switch (b & 15) {
        case 0: op_create(r, s); break;
        case 1:
        case 10: op_append(r, s, 0); break;
        case 13: op_append(r, s, 1); break;
        case 2: op_truncate(r, s); break;
        case 3:
        case 14: op_dense(r, s); break;
        case 4:
        case 11:
        case 15: op_sparse(r, s); break;
        case 5: op_selection(r, s); break;
        case 6: op_info(r, s); break;
        case 7: op_isa(r); break;
        case 8: {
            const uint8_t n = u8(r);
            g_pending_fail = n < 192 ? n % 12 : n % 64;
            continue; /* stays armed for the next op */
        }
        case 9:
            g_op_name = "free";
            shadow_free(s);
            vs_cache_free(NULL);
            break;
        default: op_misc(r); break;
        }
        if (fail >= 0) g_pending_fail = -1;
    }
    disarm();
    for (int i = 0; i < 2; i++)
        shadow_free(&g_slot[i]);
    vs_set_isa("auto");
    return 0;
}

#ifdef VS_FUZZ_STANDALONE
/* Replays inputs given as files, without libFuzzer (for valgrind or gcc). */
int main(int argc, char **argv) {
    for (int i = 1; i < argc; i++) {
        FILE *f = fopen(argv[i], "rb");
        if (!f) {
            perror(argv[i]);
            return 2;
        }
        uint8_t *buf = NULL;
        size_t n = 0, cap = 0;
        int ch;
        while ((ch = fgetc(f)) != EOF) {
            if (n == cap) {
                cap = cap ? 2 * cap : 4096;
                buf = realloc(buf, cap);
                if (!buf) abort();
            }
            buf[n++] = (uint8_t)ch;
        }
        fclose(f);
        LLVMFuzzerTestOneInput(buf, n);
        free(buf);
    }
    return 0;
}
#endif
