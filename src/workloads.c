/*
 * Seeded synthetic workloads (see workloads.h and DESIGN section 6).
 *
 * Determinism
 *   Every number derives from (seed, kind, stream, token or step, head,
 *   element) through a 64-bit integer mixer (the splitmix64 finalizer):
 *   nothing is sequential, so tokens [a, b) come out the same whether they
 *   are generated in one call or in many. Floating point uses only + - * /
 *   in double (correctly rounded everywhere, no libm, built with
 *   -ffp-contract=off) and one final rounding to float, so native and wasm
 *   builds produce bit-identical workloads.
 *
 *   uniform(h)    = (h >> 11) * 2^-53                        in [0, 1)
 *   normal(h1,h2) = Irwin-Hall of 8 uniforms of 16 bits (the 4 + 4 halves
 *                   of two hashes), centred and scaled to variance 1
 *                   (tails end at +-4.24: a bounded, near-Gaussian law).
 *   sqrt and log  = fixed-count Newton and atanh series (wl_sqrt, wl_log).
 *
 * Scores below are in score units, s = <q, k> / sqrt(d).
 *
 * gap (face m = `face`, margin D = `margin`)
 *   Per KV head g a random unit direction e_g; u_g = float(sqrt(d) e_g) is the
 *   query of every query head of the group. Token t gets a planted score s_t:
 *   face tokens (m distinct random positions) D + U[0,1); the others
 *   -4 U[0,1), so every non-face score is <= 0 and the gap is >= D for every
 *   query head. Key = a u_g + n, a = s_t sqrt(d) / <u_g,u_g>, n Gaussian
 *   (sigma GAP_SIGMA) projected orthogonal to u_g in double, so that
 *   <u_g, k>/sqrt(d) = s_t up to one float rounding of k (relative 2^-24).
 *   Step t > 0 multiplies every query by c_t in [1, 1.5): the scores scale,
 *   the face stays the face and the gap stays >= D.
 *   Default D = 16: with m = 4 the face theorem's bound (T - m)/m e^-D is
 *   1.1e-4 at T = 4K and 3.7e-3 at 128K. GAP_SIGMA = 0.25 keeps the keys
 *   dominated by the planted structure (noise norm ~2.8 at d = 128) without
 *   making pages degenerate.
 *
 * needle (n = `needles`, margin M = `margin`)
 *   Per KV head g: a mean key mu_g (N(0, MU_SIGMA^2) per channel, plus
 *   min(4, d/2) outlier channels of magnitude 4..8 with random signs) and a
 *   unit needle direction w_g. Query head h of group g at step t:
 *     q = float(sqrt(d) (BETA w_g + GAMMA p_{h,t})),  p unit, orthogonal to w_g,
 *   so heads of a group share the needle direction and every step is fresh.
 *   Background key: mu_g + SIGMA z. Its score is a shared constant plus a
 *   nearly Gaussian term of std tau = SIGMA sqrt(BETA^2 + GAMMA^2) (= 1.118),
 *   whose typical maximum over T tokens is M_T = tau sqrt(2 ln T).
 *     - needles (distinct random depths in [1, T - W)) and the sink (token 0):
 *       mu_g + SIGMA z_perp + (x / BETA) w_g with z_perp = z minus its w_g part,
 *       so the w_g part of the score is exactly x: x = M_T + M for needles,
 *       x = M_T + SINK_BOOST for the sink;
 *     - recency: the last W = min(64, T/4) tokens are background keys shifted
 *       by (RECENT_BOOST (W - age) / W / BETA) w_g: their scores rise by up to
 *       RECENT_BOOST, decaying linearly with age.
 *   Default M = 12: a retrieval head. With 4 needles (float64 reference,
 *   seed 1, steps 0-2) the needles hold 99.98% of the dense mass at T = 4K,
 *   99.73-99.85% at 128K and 99.1-99.4% at 1M, each needle 13-48% of it;
 *   the sink and the recent window hold < 0.02%. The background keeps a
 *   real tail: at 128K the best 128 tokens hold only ~99.76%, so no
 *   128-candidate decode can be closer than ~2e-3 relative error there.
 *   (M = 8 gives 88% at 128K, M = 10 98%.)
 *
 * uniform
 *   Keys, values and queries i.i.d. N(0, 1): no gap, no structure.
 *
 * Values are N(0, 1) for every kind.
 */
#include "workloads.h"

#include <stdlib.h>
#include <string.h>

/* ---- constants of the generators ----------------------------------------- */
#define GAP_SIGMA 0.25     /* gap: orthogonal key noise per channel */
#define GAP_LOW 4.0        /* gap: non-face scores in [-GAP_LOW, 0] */
#define GAP_DEFAULT_MARGIN 16.0f
#define NEEDLE_SIGMA 0.5   /* needle: background key noise per channel */
#define NEEDLE_MU_SIGMA 0.5 /* needle: spread of the mean key's ordinary channels */
#define NEEDLE_OUTLIERS 4  /* needle: outlier channels (at most d/2) */
#define NEEDLE_BETA 2.0    /* needle: query weight on the needle direction */
#define NEEDLE_GAMMA 1.0   /* needle: query weight on the per-head, per-step direction */
#define NEEDLE_SINK_BOOST 4.0
#define NEEDLE_RECENT_BOOST 3.0
#define NEEDLE_RECENT_MAX 64u
#define NEEDLE_DEFAULT_MARGIN 12.0f
#define MARGIN_LIMIT 1000.0f /* |margin| above this is rejected */

#define LN2 0.69314718055994530942
#define NORMAL_SCALE (1.22474487139158904909 / 131072.0) /* sqrt(12/8) / 2^17 */

/* Streams: independent families of numbers. */
enum {
    ST_KEY = 1,
    ST_VALUE,
    ST_SCORE,
    ST_QUERY,
    ST_QSCALE,
    ST_DIR,
    ST_MEAN,
    ST_OUTLIER,
    ST_MARK
};

/* ---- integer hashing ------------------------------------------------------ */
#define GOLDEN 0x9E3779B97F4A7C15ull

static uint64_t mix64(uint64_t z) {
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
}

/* The key of one row of numbers: (workload seed and kind, stream, index, head). */
static uint64_t row_key(const vs_workload *w, uint32_t stream, uint32_t index, uint32_t head) {
    uint64_t seed = ((uint64_t)w->seed_hi << 32) | w->seed_lo;
    uint64_t base = mix64(seed + GOLDEN * (uint64_t)(w->kind + 1));
    uint64_t id = ((uint64_t)stream << 56) ^ ((uint64_t)head << 32) ^ (uint64_t)index;
    return mix64(base ^ mix64(id + GOLDEN));
}

/* Element j of a row: the j-th output of a splitmix64 sequence keyed by row. */
static uint64_t row_at(uint64_t row, uint64_t j) { return mix64(row + GOLDEN * (j + 1)); }

static double uniform_of(uint64_t h) { return (double)(h >> 11) * (1.0 / 9007199254740992.0); }

static double normal_of(uint64_t h1, uint64_t h2) {
    int64_t s = 0;
    for (int i = 0; i < 4; i++) {
        s += (int64_t)((h1 >> (16 * i)) & 0xFFFF);
        s += (int64_t)((h2 >> (16 * i)) & 0xFFFF);
    }
    return (double)(2 * s - 8 * 65535) * NORMAL_SCALE;
}

/* Normal number j of a row (uses row elements 2j and 2j + 1). */
static double row_normal(uint64_t row, uint32_t j) {
    return normal_of(row_at(row, 2 * (uint64_t)j), row_at(row, 2 * (uint64_t)j + 1));
}

/* Uniform integer in [0, n), n <= 2^32. */
static uint32_t below(uint64_t h, uint32_t n) { return (uint32_t)(((h >> 32) * (uint64_t)n) >> 32); }

/* ---- libm-free sqrt and log (fixed operation sequences) ------------------- */
static double wl_sqrt(double x) {
    if (!(x > 0)) return 0;
    double s = 1;
    while (x >= 4) { /* bring x into [1, 4) by exact powers of 4 */
        x *= 0.25;
        s *= 2;
    }
    while (x < 1) {
        x *= 4;
        s *= 0.5;
    }
    double y = 0.5 * (x + 1); /* >= sqrt(x) */
    for (int i = 0; i < 8; i++) y = 0.5 * (y + x / y);
    return y * s;
}

/* Natural log for x >= 1. */
static double wl_log(double x) {
    if (!(x > 1)) return 0;
    int k = 0;
    while (x >= 2) {
        x *= 0.5;
        k++;
    }
    double y = (x - 1) / (x + 1), y2 = y * y, term = y, sum = 0;
    for (int i = 1; i <= 41; i += 2) { /* 2 atanh(y), y < 1/3 */
        sum += term / i;
        term *= y2;
    }
    return 2 * sum + k * LN2;
}

/* ---- defaults and validation ---------------------------------------------- */
void vs_workload_default(vs_workload *w, uint32_t kind) {
    if (!w) return;
    memset(w, 0, sizeof *w);
    w->kind = kind;
    w->T = 4096;
    w->heads = w->kv_heads = 1;
    w->head_dim = w->value_dim = 128;
    w->face = 4;
    w->needles = 4;
    w->margin = kind == VS_WL_GAP ? GAP_DEFAULT_MARGIN
                : kind == VS_WL_NEEDLE ? NEEDLE_DEFAULT_MARGIN
                                       : 0.0f;
    w->seed_lo = 1;
    w->seed_hi = 0;
}

/* The needle workload's recent window W. */
static uint32_t recent_window(uint32_t T) {
    uint32_t W = T / 4;
    return W < NEEDLE_RECENT_MAX ? W : NEEDLE_RECENT_MAX;
}

int vs_workload_check(const vs_workload *w) {
    if (!w) return VS_E_NULL;
    if (w->kind > VS_WL_UNIFORM) return VS_E_OPTION;
    if (w->T < 1 || w->T > VS_MAX_TOKENS) return VS_E_OPTION;
    if (w->head_dim < 1 || w->head_dim > VS_MAX_DIM || w->value_dim < 1 ||
        w->value_dim > VS_MAX_DIM)
        return VS_E_DIM;
    if (w->heads < 1 || w->heads > VS_MAX_HEADS || w->kv_heads < 1 || w->kv_heads > w->heads ||
        w->heads % w->kv_heads != 0)
        return VS_E_HEADS;
    float m = w->margin;
    int finite = m == m && m - m == 0.0f;
    if (w->kind == VS_WL_GAP) {
        if (w->face < 1 || w->face > w->T) return VS_E_OPTION;
        if (!finite || m < 0.0f || m > MARGIN_LIMIT) return VS_E_OPTION;
    } else if (w->kind == VS_WL_NEEDLE) {
        /* needles sit in [1, T - W): outside the sink and the recent window */
        uint32_t W = recent_window(w->T);
        if (w->T < 2 || w->needles < 1 || w->needles > w->T - 1 - W) return VS_E_OPTION;
        if (!finite || m < -MARGIN_LIMIT || m > MARGIN_LIMIT) return VS_E_OPTION;
    }
    return VS_OK;
}

/* ---- marked positions ------------------------------------------------------ */
static int cmp_u32(const void *a, const void *b) {
    uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;
    return x < y ? -1 : x > y;
}

/* m distinct positions in [lo, lo + n), sorted, by Floyd's algorithm with an
   open-addressing set (O(m) time and memory). Returns NULL on allocation
   failure; m == 0 returns a valid 1-element allocation. */
static uint32_t *sample_distinct(const vs_workload *w, uint32_t stream, uint32_t lo, uint32_t n,
                                 uint32_t m) {
    size_t cap = 16;
    while (cap < 2 * (size_t)m) cap *= 2;
    uint32_t *out = malloc(((size_t)m + 1) * sizeof *out);
    uint32_t *set = calloc(cap, sizeof *set); /* stores value + 1; 0 = empty */
    if (!out || !set) {
        free(out);
        free(set);
        return NULL;
    }
    uint64_t row = row_key(w, stream, 0, 0);
    size_t count = 0;
    for (uint32_t j = n - m; j < n; j++) {
        uint32_t r = below(row_at(row, j), j + 1);
        /* insert r, or j if r is already taken */
        for (int pass = 0; pass < 2; pass++) {
            uint32_t v = pass == 0 ? r : j;
            size_t slot = (size_t)(mix64(v) & (cap - 1));
            int taken = 0;
            while (set[slot]) {
                if (set[slot] == v + 1) {
                    taken = 1;
                    break;
                }
                slot = (slot + 1) & (cap - 1);
            }
            if (!taken) {
                set[slot] = v + 1;
                out[count++] = v + lo;
                break;
            }
        }
    }
    free(set);
    qsort(out, count, sizeof *out, cmp_u32);
    return out;
}

/* Marked positions of w (checked), sorted; *count gets their number. */
static uint32_t *marked_positions(const vs_workload *w, uint32_t *count) {
    if (w->kind == VS_WL_GAP) {
        *count = w->face;
        return sample_distinct(w, ST_MARK, 0, w->T, w->face);
    }
    if (w->kind == VS_WL_NEEDLE) {
        *count = w->needles;
        return sample_distinct(w, ST_MARK, 1, w->T - 1 - recent_window(w->T), w->needles);
    }
    *count = 0;
    return malloc(sizeof(uint32_t));
}

int vs_workload_marked(const vs_workload *w, uint32_t *out, uint32_t cap, uint32_t *count) {
    if (!w || !count || (!out && cap > 0)) return VS_E_NULL;
    int st = vs_workload_check(w);
    if (st != VS_OK) return st;
    uint32_t m;
    uint32_t *pos = marked_positions(w, &m);
    if (!pos) return VS_E_NOMEM;
    for (uint32_t i = 0; i < m && i < cap; i++) out[i] = pos[i];
    *count = m;
    free(pos);
    return VS_OK;
}

/* ---- per-KV-head structure ------------------------------------------------- */
/* gap: u_g (float-exact doubles), the query at step 0. */
static void gap_direction(const vs_workload *w, uint32_t g, double *u) {
    uint32_t d = w->head_dim;
    uint64_t row = row_key(w, ST_DIR, 0, g);
    double nn = 0;
    for (uint32_t j = 0; j < d; j++) {
        u[j] = row_normal(row, j);
        nn += u[j] * u[j];
    }
    double f = wl_sqrt((double)d) / wl_sqrt(nn);
    for (uint32_t j = 0; j < d; j++) u[j] = (double)(float)(u[j] * f);
}

/* needle: unit needle direction w_g and mean key mu_g. */
static void needle_structure(const vs_workload *w, uint32_t g, double *dir, double *mu) {
    uint32_t d = w->head_dim;
    uint64_t row = row_key(w, ST_DIR, 0, g);
    double nn = 0;
    for (uint32_t j = 0; j < d; j++) {
        dir[j] = row_normal(row, j);
        nn += dir[j] * dir[j];
    }
    double f = 1.0 / wl_sqrt(nn);
    for (uint32_t j = 0; j < d; j++) dir[j] *= f;

    row = row_key(w, ST_MEAN, 0, g);
    for (uint32_t j = 0; j < d; j++) mu[j] = NEEDLE_MU_SIGMA * row_normal(row, j);
    /* outlier channels: distinct, chosen by a partial Fisher-Yates on the fly */
    uint32_t nout = d / 2 < NEEDLE_OUTLIERS ? d / 2 : NEEDLE_OUTLIERS;
    row = row_key(w, ST_OUTLIER, 0, g);
    uint32_t chosen[NEEDLE_OUTLIERS];
    for (uint32_t i = 0; i < nout; i++) {
        uint32_t c;
        uint64_t k = 3 * (uint64_t)i;
        for (;;) { /* rejection: d >= 2 * nout, so this ends quickly */
            c = below(row_at(row, k), d);
            int dup = 0;
            for (uint32_t e = 0; e < i; e++) dup |= chosen[e] == c;
            if (!dup) break;
            k += 1000003;
        }
        chosen[i] = c;
        double mag = 4.0 + 4.0 * uniform_of(row_at(row, 3 * (uint64_t)i + 1));
        mu[c] = (row_at(row, 3 * (uint64_t)i + 2) >> 63) ? -mag : mag;
    }
}

/* M_T: typical maximum of T background scores (needle workload). */
static double needle_typical_max(uint32_t T) {
    double tau = NEEDLE_SIGMA * wl_sqrt(NEEDLE_BETA * NEEDLE_BETA + NEEDLE_GAMMA * NEEDLE_GAMMA);
    return tau * wl_sqrt(2.0 * wl_log((double)T));
}

/* ---- tokens ---------------------------------------------------------------- */
int vs_workload_tokens(const vs_workload *w, uint32_t start, uint32_t n, float *keys,
                       float *values) {
    if (!w || (n > 0 && (!keys || !values))) return VS_E_NULL;
    int st = vs_workload_check(w);
    if (st != VS_OK) return st;
    if (start > w->T || n > w->T - start) return VS_E_LENGTH;
    if (n == 0) return VS_OK;

    const uint32_t d = w->head_dim, dv = w->value_dim, kvh = w->kv_heads;
    double *buf = malloc(((size_t)2 * kvh * d + d + kvh) * sizeof *buf);
    uint32_t nmarked = 0;
    uint32_t *marked = marked_positions(w, &nmarked);
    if (!buf || !marked) {
        free(buf);
        free(marked);
        return VS_E_NOMEM;
    }
    /* dir: [kvh][d] (gap: u_g; needle: w_g), mu: [kvh][d] (needle), z: [d], uu: [kvh] */
    double *dir = buf, *mu = buf + (size_t)kvh * d, *z = buf + (size_t)2 * kvh * d;
    double *uu = z + d, mt = 0;
    for (uint32_t g = 0; g < kvh; g++) {
        uu[g] = 0;
        if (w->kind == VS_WL_GAP) {
            const double *e = dir + (size_t)g * d;
            gap_direction(w, g, dir + (size_t)g * d);
            for (uint32_t j = 0; j < d; j++) uu[g] += e[j] * e[j];
        }
        if (w->kind == VS_WL_NEEDLE) needle_structure(w, g, dir + (size_t)g * d, mu + (size_t)g * d);
    }
    if (w->kind == VS_WL_NEEDLE) mt = needle_typical_max(w->T);
    const double sqrt_d = wl_sqrt((double)d);
    const uint32_t W = recent_window(w->T);

    /* first marked position >= start */
    uint32_t mi = 0;
    {
        uint32_t lo = 0, hi = nmarked;
        while (lo < hi) {
            uint32_t mid = lo + (hi - lo) / 2;
            if (marked[mid] < start) lo = mid + 1;
            else hi = mid;
        }
        mi = lo;
    }

    for (uint32_t i = 0; i < n; i++) {
        const uint32_t t = start + i;
        int is_marked = mi < nmarked && marked[mi] == t;
        if (is_marked) mi++;
        for (uint32_t g = 0; g < kvh; g++) {
            float *k = keys + ((size_t)i * kvh + g) * d;
            float *v = values + ((size_t)i * kvh + g) * dv;
            const double *e = dir + (size_t)g * d;
            uint64_t krow = row_key(w, ST_KEY, t, g);
            uint64_t vrow = row_key(w, ST_VALUE, t, g);
            for (uint32_t j = 0; j < dv; j++) v[j] = (float)row_normal(vrow, j);

            if (w->kind == VS_WL_UNIFORM) {
                for (uint32_t j = 0; j < d; j++) k[j] = (float)row_normal(krow, j);
            } else if (w->kind == VS_WL_GAP) {
                double u01 = uniform_of(row_at(row_key(w, ST_SCORE, t, g), 0));
                double s = is_marked ? (double)w->margin + u01 : -GAP_LOW * u01;
                double zu = 0;
                for (uint32_t j = 0; j < d; j++) {
                    z[j] = GAP_SIGMA * row_normal(krow, j);
                    zu += z[j] * e[j];
                }
                double c = zu / uu[g], a = s * sqrt_d / uu[g];
                for (uint32_t j = 0; j < d; j++) k[j] = (float)(a * e[j] + (z[j] - c * e[j]));
            } else { /* needle */
                const double *m = mu + (size_t)g * d;
                double x = 0; /* the score's w_g part to plant, or a shift */
                int planted = 0;
                if (t == 0) {
                    x = mt + NEEDLE_SINK_BOOST;
                    planted = 1;
                } else if (is_marked) {
                    x = mt + (double)w->margin;
                    planted = 1;
                } else if (t >= w->T - W) {
                    uint32_t age = w->T - 1 - t;
                    x = NEEDLE_RECENT_BOOST * (double)(W - age) / (double)W;
                }
                double zw = 0;
                for (uint32_t j = 0; j < d; j++) {
                    z[j] = NEEDLE_SIGMA * row_normal(krow, j);
                    zw += z[j] * e[j];
                }
                if (!planted) zw = 0; /* background and recent keep their noise */
                double a = x / NEEDLE_BETA;
                for (uint32_t j = 0; j < d; j++)
                    k[j] = (float)(m[j] + (z[j] - zw * e[j]) + a * e[j]);
            }
        }
    }
    free(buf);
    free(marked);
    return VS_OK;
}

/* ---- queries ----------------------------------------------------------------- */
int vs_workload_queries(const vs_workload *w, uint32_t step, float *q) {
    if (!w || !q) return VS_E_NULL;
    int st = vs_workload_check(w);
    if (st != VS_OK) return st;
    const uint32_t d = w->head_dim, group = w->heads / w->kv_heads;
    double *buf = malloc((size_t)3 * d * sizeof *buf);
    if (!buf) return VS_E_NOMEM;
    double *e = buf, *mu = buf + d, *p = buf + 2 * (size_t)d;
    const double sqrt_d = wl_sqrt((double)d);

    double c = 1.0; /* gap: the step's query scale */
    if (step > 0) c = 1.0 + 0.5 * uniform_of(row_at(row_key(w, ST_QSCALE, step, 0), 0));

    for (uint32_t h = 0; h < w->heads; h++) {
        uint32_t g = h / group;
        float *qh = q + (size_t)h * d;
        if (w->kind == VS_WL_UNIFORM) {
            uint64_t row = row_key(w, ST_QUERY, step, h);
            for (uint32_t j = 0; j < d; j++) qh[j] = (float)row_normal(row, j);
        } else if (w->kind == VS_WL_GAP) {
            gap_direction(w, g, e);
            for (uint32_t j = 0; j < d; j++) qh[j] = (float)(c * e[j]);
        } else {
            needle_structure(w, g, e, mu);
            uint64_t row = row_key(w, ST_QUERY, step, h);
            double pe = 0, pp = 0;
            for (uint32_t j = 0; j < d; j++) {
                p[j] = row_normal(row, j);
                pe += p[j] * e[j];
            }
            for (uint32_t j = 0; j < d; j++) {
                p[j] -= pe * e[j];
                pp += p[j] * p[j];
            }
            double f = pp > 1e-20 ? NEEDLE_GAMMA / wl_sqrt(pp) : 0.0;
            for (uint32_t j = 0; j < d; j++)
                qh[j] = (float)(sqrt_d * (NEEDLE_BETA * e[j] + f * p[j]));
        }
    }
    free(buf);
    return VS_OK;
}
