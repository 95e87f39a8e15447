/*
 * vashista: the command-line tool.
 *
 *   vashista info                      version, ISAs, defaults
 *   vashista bench  [options]          dense vs sparse decode time, bandwidth
 *   vashista eval   [options]          sparse decode quality vs a float64 reference
 *   vashista vectors DIR               write golden vectors (tests/vectors/FORMAT.md)
 *   vashista parity DIR                recompute golden vectors and compare
 *   vashista soak   [options]          long run with truncations: memory bounded, sparse == dense
 *   vashista leakage [options]         EG off-face leakage vs the face theorem's bound (src/cli/leakage.c)
 *
 * Every subcommand takes --json (machine-readable JSON on stdout, nothing
 * else there) and --help. Progress goes to stderr. Exit codes: 0 success,
 * 1 a check failed (parity mismatch, certificate violated) or a run-time
 * error, 2 a usage error.
 */
#define _POSIX_C_SOURCE 200809L

#include <errno.h>
#include <float.h>
#include <math.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "golden.h"
#include "leakage.h"
#include "include/vashista.h"
#include "reference.h"
#include "workloads.h"

/* ======================================================================== */
/* ---- small utilities ----------------------------------------------------- */
/* ======================================================================== */

static const char *g_cmd = "vashista"; /* for messages */
static int g_quiet = 0;

static void die_usage(const char *fmt, ...) __attribute__((format(printf, 1, 2), noreturn));
static void die_usage(const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    fprintf(stderr, "%s: ", g_cmd);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fprintf(stderr, "\nTry '%s --help'.\n", g_cmd);
    exit(2);
}

static void die(const char *fmt, ...) __attribute__((format(printf, 1, 2), noreturn));
static void die(const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    fprintf(stderr, "%s: ", g_cmd);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fputc('\n', stderr);
    exit(1);
}

static void *xmalloc(size_t n) {
    void *p = malloc(n ? n : 1);
    if (!p) die("out of memory (%zu bytes)", n);
    return p;
}

static void *xcalloc(size_t n, size_t size) {
    void *p = calloc(n ? n : 1, size ? size : 1);
    if (!p) die("out of memory (%zu x %zu bytes)", n, size);
    return p;
}

static void check_status(int st, const char *what) {
    if (st != VS_OK) die("%s failed: %s (%d)", what, vs_strerror(st), st);
}

static double now_s(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

/* Progress on stderr: rewritten in place on a terminal, one line per call
   (rate-limited) otherwise. progress_done() ends the line. */
static double g_progress_last = 0;
static int g_progress_open = 0;
static void progress(int force, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void progress(int force, const char *fmt, ...) {
    if (g_quiet) return;
    int tty = isatty(2);
    double t = now_s();
    /* a terminal gets every forced update; a log one line per 2 s at most */
    if (tty ? (!force && t - g_progress_last < 0.2) : t - g_progress_last < 2.0) return;
    g_progress_last = t;
    va_list ap;
    va_start(ap, fmt);
    if (tty) fputs("\r\033[K", stderr);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    if (tty) g_progress_open = 1;
    else fputc('\n', stderr);
    fflush(stderr);
}

static void progress_done(void) {
    if (g_progress_open) fputs("\r\033[K", stderr);
    g_progress_open = 0;
}

static int cmp_double(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

static int cmp_double_desc(const void *a, const void *b) { return cmp_double(b, a); }

/* Percentile p in [0, 1] of n values (sorted in place), linear interpolation. */
static double percentile(double *x, size_t n, double p) {
    if (n == 0) return NAN;
    qsort(x, n, sizeof *x, cmp_double);
    double pos = p * (double)(n - 1);
    size_t i = (size_t)pos;
    if (i + 1 >= n) return x[n - 1];
    double f = pos - (double)i;
    return x[i] * (1 - f) + x[i + 1] * f;
}

/* ======================================================================== */
/* ---- JSON output ---------------------------------------------------------- */
/* ======================================================================== */

/* A minimal streaming writer: objects and arrays nest, commas are automatic.
   Non-finite numbers are written as null (JSON has no inf or nan). */
typedef struct jw {
    FILE *f;
    int depth;
    int count[32]; /* items written at each depth */
} jw;

static void jw_sep(jw *j, const char *key) {
    if (j->depth > 0 && j->count[j->depth]++) fputc(',', j->f);
    if (j->depth > 0) {
        fputc('\n', j->f);
        for (int i = 0; i < j->depth; i++) fputs("  ", j->f);
    }
    if (key) fprintf(j->f, "\"%s\": ", key);
}

static void jw_open(jw *j, const char *key, char c) {
    jw_sep(j, key);
    fputc(c, j->f);
    j->depth++;
    j->count[j->depth] = 0;
}

static void jw_close(jw *j, char c) {
    int had = j->count[j->depth];
    j->depth--;
    if (had) {
        fputc('\n', j->f);
        for (int i = 0; i < j->depth; i++) fputs("  ", j->f);
    }
    fputc(c, j->f);
    if (j->depth == 0) fputc('\n', j->f);
}

static void jw_obj(jw *j, const char *key) { jw_open(j, key, '{'); }
static void jw_end(jw *j) { jw_close(j, '}'); }
static void jw_arr(jw *j, const char *key) { jw_open(j, key, '['); }
static void jw_arr_end(jw *j) { jw_close(j, ']'); }

static void jw_num(jw *j, const char *key, double v) {
    jw_sep(j, key);
    if (v == v && v - v == 0) fprintf(j->f, "%.9g", v);
    else fputs("null", j->f);
}

static void jw_int(jw *j, const char *key, long long v) {
    jw_sep(j, key);
    fprintf(j->f, "%lld", v);
}

static void jw_bool(jw *j, const char *key, int v) {
    jw_sep(j, key);
    fputs(v ? "true" : "false", j->f);
}

static void jw_str(jw *j, const char *key, const char *s) {
    jw_sep(j, key);
    fputc('"', j->f);
    for (; s && *s; s++) {
        unsigned char c = (unsigned char)*s;
        if (c == '"' || c == '\\') fprintf(j->f, "\\%c", c);
        else if (c < 0x20) fprintf(j->f, "\\u%04x", c);
        else fputc(c, j->f);
    }
    fputc('"', j->f);
}

/* ======================================================================== */
/* ---- argument parsing ----------------------------------------------------- */
/* ======================================================================== */

#define MAX_ARGS 64
typedef struct args {
    char name[MAX_ARGS][32];
    const char *value[MAX_ARGS];
    int used[MAX_ARGS], n;
    const char *pos[8];
    int npos;
    int json, help;
} args;

/* Flags that take no value. */
static int is_switch(const char *name) {
    return strcmp(name, "json") == 0 || strcmp(name, "help") == 0 || strcmp(name, "quiet") == 0 ||
           strcmp(name, "per-trial") == 0 || strcmp(name, "share-routing") == 0;
}

static void parse_args(int argc, char **argv, args *a) {
    memset(a, 0, sizeof *a);
    for (int i = 0; i < argc; i++) {
        const char *s = argv[i];
        if (strcmp(s, "-h") == 0) s = "--help";
        if (strncmp(s, "--", 2) != 0 || s[2] == 0) {
            if (a->npos == 8) die_usage("too many arguments");
            a->pos[a->npos++] = s;
            continue;
        }
        if (a->n == MAX_ARGS) die_usage("too many options");
        s += 2;
        const char *eq = strchr(s, '=');
        size_t len = eq ? (size_t)(eq - s) : strlen(s);
        char *name = a->name[a->n];
        if (len >= sizeof a->name[0]) die_usage("unknown option --%.*s", (int)len, s);
        memcpy(name, s, len);
        name[len] = 0;
        const char *value;
        if (eq) {
            value = eq + 1;
        } else {
            if (is_switch(name)) value = "1";
            else if (i + 1 < argc) value = argv[++i];
            else die_usage("option --%s needs a value", name);
        }
        for (int k = 0; k < a->n; k++)
            if (strcmp(a->name[k], name) == 0) die_usage("option --%s given twice", name);
        a->value[a->n] = value;
        a->n++;
    }
}

static const char *arg_get(args *a, const char *name) {
    for (int k = 0; k < a->n; k++)
        if (strcmp(a->name[k], name) == 0) {
            a->used[k] = 1;
            return a->value[k];
        }
    return NULL;
}

static int arg_flag(args *a, const char *name) {
    const char *v = arg_get(a, name);
    if (!v) return 0;
    if (strcmp(v, "1") != 0) die_usage("--%s takes no value", name);
    return 1;
}

/* Call after every arg_get: reports options the command does not know. */
static void arg_finish(args *a, int max_pos) {
    for (int k = 0; k < a->n; k++)
        if (!a->used[k]) die_usage("unknown option --%s", a->name[k]);
    if (a->npos > max_pos) die_usage("unexpected argument '%s'", a->pos[max_pos]);
}

/* Unsigned integer with an optional binary suffix K, M or G (4K = 4096). */
static int parse_u64(const char *s, uint64_t *out) {
    if (!s || !*s || *s == '-' || *s == '+') return 0;
    errno = 0;
    char *end;
    unsigned long long v = strtoull(s, &end, 10);
    if (errno || end == s) return 0;
    uint64_t mul = 1;
    if (*end == 'K' || *end == 'k') mul = 1024, end++;
    else if (*end == 'M' || *end == 'm') mul = 1024 * 1024, end++;
    else if (*end == 'G' || *end == 'g') mul = 1024 * 1024 * 1024, end++;
    if (*end) return 0;
    if (v > UINT64_MAX / mul) return 0;
    *out = v * mul;
    return 1;
}

static uint32_t arg_u32(args *a, const char *name, uint32_t def, uint32_t lo, uint32_t hi) {
    const char *s = arg_get(a, name);
    if (!s) return def;
    uint64_t v;
    if (!parse_u64(s, &v) || v < lo || v > hi)
        die_usage("--%s: '%s' is not an integer in [%u, %u]", name, s, lo, hi);
    return (uint32_t)v;
}

static double arg_double(args *a, const char *name, double def, double lo, double hi) {
    const char *s = arg_get(a, name);
    if (!s) return def;
    char *end;
    errno = 0;
    double v = strtod(s, &end);
    if (errno || end == s || *end || !(v >= lo && v <= hi))
        die_usage("--%s: '%s' is not a number in [%g, %g]", name, s, lo, hi);
    return v;
}

/* Comma-separated list of unsigned integers (with K/M/G suffixes). */
static size_t arg_u32_list(args *a, const char *name, const char *def, uint32_t lo, uint32_t hi,
                           uint32_t *out, size_t cap) {
    const char *s = arg_get(a, name);
    if (!s) s = def;
    size_t n = 0;
    char buf[64];
    while (*s) {
        const char *c = strchr(s, ',');
        size_t len = c ? (size_t)(c - s) : strlen(s);
        if (len == 0 || len >= sizeof buf) die_usage("--%s: bad list '%s'", name, s);
        memcpy(buf, s, len);
        buf[len] = 0;
        uint64_t v;
        if (!parse_u64(buf, &v) || v < lo || v > hi)
            die_usage("--%s: '%s' is not an integer in [%u, %u]", name, buf, lo, hi);
        if (n == cap) die_usage("--%s: more than %zu values", name, cap);
        out[n++] = (uint32_t)v;
        s += len;
        if (*s == ',') s++;
    }
    if (n == 0) die_usage("--%s: empty list", name);
    return n;
}

/* ======================================================================== */
/* ---- shared setup: ISA, workload, decode configurations ------------------ */
/* ======================================================================== */

static const char *all_isas[] = {"scalar", "avx2", "wasmsimd"};

/* Names of the ISAs this build and CPU can run, comma-separated. Leaves the
   ISA selection as it was. */
static void available_isas(char *buf, size_t n, const char **list, int *count) {
    char cur[32];
    snprintf(cur, sizeof cur, "%s", vs_isa_name());
    buf[0] = 0;
    int c = 0;
    for (size_t i = 0; i < sizeof all_isas / sizeof all_isas[0]; i++) {
        if (vs_set_isa(all_isas[i]) != VS_OK) continue;
        if (list) list[c] = all_isas[i];
        c++;
        if (buf[0]) strncat(buf, ",", n - strlen(buf) - 1);
        strncat(buf, all_isas[i], n - strlen(buf) - 1);
    }
    vs_set_isa(cur);
    if (count) *count = c;
}

static void apply_isa(args *a) {
    const char *isa = arg_get(a, "isa");
    if (!isa) return;
    int st = vs_set_isa(isa);
    if (st != VS_OK) {
        char avail[64];
        available_isas(avail, sizeof avail, NULL, NULL);
        die_usage("--isa %s: %s (available: auto,%s)", isa, vs_strerror(st), avail);
    }
}

static const char *kind_name(uint32_t kind) {
    return kind == VS_WL_GAP ? "gap" : kind == VS_WL_NEEDLE ? "needle" : "uniform";
}

/* The workload flags: --workload --d --dv --heads --kv-heads --seed --margin
   --face --needles (T is set by the caller). */
static void workload_from_args(args *a, const char *def_kind, vs_workload *w) {
    const char *k = arg_get(a, "workload");
    if (!k) k = def_kind;
    uint32_t kind;
    if (strcmp(k, "gap") == 0) kind = VS_WL_GAP;
    else if (strcmp(k, "needle") == 0) kind = VS_WL_NEEDLE;
    else if (strcmp(k, "uniform") == 0) kind = VS_WL_UNIFORM;
    else die_usage("--workload: '%s' is not gap, needle or uniform", k);
    vs_workload_default(w, kind);
    w->head_dim = arg_u32(a, "d", 128, 1, VS_MAX_DIM);
    w->value_dim = arg_u32(a, "dv", w->head_dim, 1, VS_MAX_DIM);
    w->heads = arg_u32(a, "heads", 1, 1, VS_MAX_HEADS);
    w->kv_heads = arg_u32(a, "kv-heads", w->heads, 1, VS_MAX_HEADS);
    if (w->heads % w->kv_heads) die_usage("--heads %u is not a multiple of --kv-heads %u", w->heads, w->kv_heads);
    const char *seed = arg_get(a, "seed");
    if (seed) {
        uint64_t v;
        if (!parse_u64(seed, &v)) die_usage("--seed: '%s' is not an unsigned integer", seed);
        w->seed_lo = (uint32_t)v;
        w->seed_hi = (uint32_t)(v >> 32);
    }
    w->margin = (float)arg_double(a, "margin", w->margin, -1000, 1000);
    w->face = arg_u32(a, "face", w->face, 1, VS_MAX_TOKENS);
    w->needles = arg_u32(a, "needles", w->needles, 1, VS_MAX_TOKENS);
}

static uint64_t workload_seed(const vs_workload *w) { return ((uint64_t)w->seed_hi << 32) | w->seed_lo; }

static void set_workload_seed(vs_workload *w, uint64_t s) {
    w->seed_lo = (uint32_t)s;
    w->seed_hi = (uint32_t)(s >> 32);
}

static void check_workload(const vs_workload *w) {
    int st = vs_workload_check(w);
    if (st == VS_OK) return;
    if (w->kind == VS_WL_NEEDLE && st == VS_E_OPTION)
        die_usage("needle workload: %u needles do not fit in T = %u (they avoid token 0 and the "
                  "last min(64, T/4) tokens), or the margin is out of range",
                  w->needles, w->T);
    if (w->kind == VS_WL_GAP && st == VS_E_OPTION)
        die_usage("gap workload: need 1 <= face <= T (face %u, T %u) and 0 <= margin <= 1000",
                  w->face, w->T);
    die_usage("invalid workload: %s", vs_strerror(st));
}

/* One decode configuration: page size, routed pages, candidates. */
typedef struct dconfig {
    uint32_t S, P, Kc;
    uint32_t routing, expand; /* ROUTING_FROM_OPTIONS: --routing / --expand */
    uint32_t share;           /* ROUTING_FROM_OPTIONS: --share-routing */
} dconfig;

#define ROUTING_FROM_OPTIONS UINT32_MAX

#define MAX_CONFIGS 16

/* --config S:P:Kc[,S:P:Kc...], or --page/--pages/--candidates. */
static size_t configs_from_args(args *a, dconfig *out) {
    vs_decode_options def;
    vs_decode_options_default(&def);
    const char *c = arg_get(a, "config");
    if (c) {
        if (arg_get(a, "page") || arg_get(a, "pages") || arg_get(a, "candidates"))
            die_usage("give either --config or --page/--pages/--candidates, not both");
        size_t n = 0;
        const char *s = c;
        while (*s) {
            unsigned long S, P, K, E = 0;
            int used = 0;
            if (sscanf(s, "%lu:%lu:%lu%n", &S, &P, &K, &used) != 3 || S < 1 ||
                S > VS_MAX_PAGE_SIZE || P < 1 || P > UINT32_MAX || K < 1 || K > UINT32_MAX)
                die_usage("--config: expected page:pages:candidates[:flat|:tree[E]][,...], e.g. "
                          "16:64:128,64:16:128:tree; got '%s'", s);
            if (n == MAX_CONFIGS) die_usage("--config: at most %d configurations", MAX_CONFIGS);
            dconfig cf = {(uint32_t)S, (uint32_t)P, (uint32_t)K, ROUTING_FROM_OPTIONS, 0,
                          ROUTING_FROM_OPTIONS};
            s += used;
            if (strncmp(s, ":flat", 5) == 0) {
                cf.routing = VS_ROUTING_FLAT;
                s += 5;
            } else if (strncmp(s, ":tree", 5) == 0) {
                cf.routing = VS_ROUTING_TREE;
                s += 5;
                if (*s >= '0' && *s <= '9') {
                    char *end;
                    E = strtoul(s, &end, 10);
                    if (E < 1 || E > UINT32_MAX) die_usage("--config: bad node count in '%s'", s);
                    s = end;
                }
                cf.expand = (uint32_t)E;
            }
            if (strncmp(s, ":share", 6) == 0) {
                cf.share = 1;
                s += 6;
            }
            out[n++] = cf;
            if (*s == ',') s++;
            else if (*s) die_usage("--config: unexpected '%s'", s);
        }
        if (n == 0) die_usage("--config: empty");
        return n;
    }
    out[0].S = arg_u32(a, "page", VS_DEFAULT_PAGE_SIZE, 1, VS_MAX_PAGE_SIZE);
    out[0].P = arg_u32(a, "pages", def.pages, 1, UINT32_MAX);
    out[0].Kc = arg_u32(a, "candidates", def.candidates, 1, UINT32_MAX);
    out[0].routing = ROUTING_FROM_OPTIONS;
    out[0].expand = 0;
    out[0].share = ROUTING_FROM_OPTIONS;
    return 1;
}

static const char *solver_name(uint32_t s) {
    return s == VS_SOLVER_EG ? "eg" : s == VS_SOLVER_FW ? "fw" : "softmax";
}

/* A configuration's sizes and routing, over the options. */
static void apply_config(vs_decode_options *o, const dconfig *cf) {
    o->pages = cf->P;
    o->candidates = cf->Kc;
    if (cf->routing != ROUTING_FROM_OPTIONS) {
        o->routing = cf->routing;
        o->expand = cf->expand;
    }
    if (cf->share != ROUTING_FROM_OPTIONS) o->share_routing = cf->share;
}

static const char *routing_name(uint32_t r) { return r == VS_ROUTING_TREE ? "tree" : "flat"; }

/* The remaining decode options: --sink --recent --widen --tolerance --scale
   --solver --eps --max-iter --solver-tol. */
static void options_from_args(args *a, vs_decode_options *o) {
    vs_decode_options_default(o);
    const char *sv = arg_get(a, "solver");
    if (sv) {
        if (strcmp(sv, "softmax") == 0) o->solver = VS_SOLVER_SOFTMAX;
        else if (strcmp(sv, "eg") == 0) o->solver = VS_SOLVER_EG;
        else if (strcmp(sv, "fw") == 0) o->solver = VS_SOLVER_FW;
        else die_usage("--solver: '%s' is not softmax, eg or fw", sv);
    }
    o->eps = (float)arg_double(a, "eps", o->eps, 1e-9, 1e9);
    o->max_iter = arg_u32(a, "max-iter", o->max_iter, 1, UINT32_MAX);
    o->solver_tol = (float)arg_double(a, "solver-tol", o->solver_tol, 1e-30, 1e30);
    const char *rt = arg_get(a, "routing");
    if (rt) {
        if (strcmp(rt, "flat") == 0) o->routing = VS_ROUTING_FLAT;
        else if (strcmp(rt, "tree") == 0) o->routing = VS_ROUTING_TREE;
        else die_usage("--routing: '%s' is not flat or tree", rt);
    }
    o->expand = arg_u32(a, "expand", o->expand, 0, UINT32_MAX);
    o->share_routing = (uint32_t)arg_flag(a, "share-routing");
    o->sink_pages = arg_u32(a, "sink", o->sink_pages, 0, UINT32_MAX);
    o->recent_pages = arg_u32(a, "recent", o->recent_pages, 0, UINT32_MAX);
    o->widen = arg_u32(a, "widen", o->widen, 2, 1u << 20);
    o->tolerance = (float)arg_double(a, "tolerance", o->tolerance, 0, 1e30);
    o->scale = (float)arg_double(a, "scale", o->scale, 0, 1e30);
}

/* Creates a cache for w with page size S and appends w's tokens in chunks.
   If keys/values are given, the tokens are also kept there ([T][kvh][d]). */
static vs_cache *build_cache(const vs_workload *w, uint32_t S, float *keys, float *values,
                             const char *label) {
    vs_cache_config cfg = {w->heads, w->kv_heads, w->head_dim, w->value_dim, S, VS_DTYPE_F32};
    vs_cache *c = NULL;
    check_status(vs_cache_create(&cfg, &c), "vs_cache_create");
    const uint32_t chunk = 16384;
    size_t krow = (size_t)w->kv_heads * w->head_dim, vrow = (size_t)w->kv_heads * w->value_dim;
    float *kb = keys ? NULL : xmalloc((size_t)chunk * krow * sizeof(float));
    float *vb = values ? NULL : xmalloc((size_t)chunk * vrow * sizeof(float));
    for (uint32_t t = 0; t < w->T; t += chunk) {
        uint32_t n = w->T - t < chunk ? w->T - t : chunk;
        float *k = keys ? keys + (size_t)t * krow : kb;
        float *v = values ? values + (size_t)t * vrow : vb;
        check_status(vs_workload_tokens(w, t, n, k, v), "vs_workload_tokens");
        check_status(vs_cache_append(c, k, (size_t)n * krow, v, (size_t)n * vrow), "vs_cache_append");
        progress(t + n == w->T, "%s: building cache, %u / %u tokens", label, t + n, w->T);
    }
    free(kb);
    free(vb);
    return c;
}

/* Sorted membership (both arrays increasing): how many of marked[] are in cand[]. */
static uint32_t count_found(const uint32_t *marked, uint32_t nm, const uint32_t *cand, size_t nc) {
    uint32_t found = 0;
    size_t j = 0;
    for (uint32_t i = 0; i < nm; i++) {
        while (j < nc && cand[j] < marked[i]) j++;
        if (j < nc && cand[j] == marked[i]) found++;
    }
    return found;
}

/* The decode options' fields, into an open JSON object (pages and candidates
   only when the caller has a single configuration). */
static void json_options(jw *j, const vs_decode_options *o, int with_sizes) {
    if (with_sizes) {
        jw_int(j, "pages", o->pages);
        jw_int(j, "candidates", o->candidates);
    }
    jw_int(j, "sink_pages", o->sink_pages);
    jw_int(j, "recent_pages", o->recent_pages);
    jw_str(j, "solver", solver_name(o->solver));
    jw_int(j, "widen", o->widen);
    jw_num(j, "scale", o->scale);
    jw_num(j, "tolerance", o->tolerance);
    jw_str(j, "routing", routing_name(o->routing));
    jw_int(j, "expand", o->expand);
    jw_int(j, "share_routing", o->share_routing);
    jw_num(j, "eps", o->eps); /* eg, fw */
    jw_int(j, "max_iter", o->max_iter);
    jw_num(j, "solver_tol", o->solver_tol);
}

/* ======================================================================== */
/* ---- info ----------------------------------------------------------------- */
/* ======================================================================== */

static const char *help_info =
    "usage: vashista info [--json]\n"
    "\n"
    "Prints the library version, the instruction set in use (VASHISTA_ISA or the\n"
    "best available), the instruction sets this build and CPU can run, the default\n"
    "decode options and page size, the limits, and the workload defaults.\n";

static int cmd_info(args *a) {
    if (a->help) return fputs(help_info, stdout), 0;
    arg_finish(a, 0);
    char avail[64];
    available_isas(avail, sizeof avail, NULL, NULL);
    vs_decode_options o;
    vs_decode_options_default(&o);
    vs_workload wg, wn;
    vs_workload_default(&wg, VS_WL_GAP);
    vs_workload_default(&wn, VS_WL_NEEDLE);
    const char *env = getenv("VASHISTA_ISA");
    if (a->json) {
        jw j = {stdout, 0, {0}};
        jw_obj(&j, NULL);
        jw_str(&j, "command", "info");
        jw_str(&j, "version", vs_version_string());
        jw_int(&j, "version_number", vs_version_number());
        jw_int(&j, "header_version_number", VS_VERSION_NUMBER);
        jw_str(&j, "isa", vs_isa_name());
        jw_str(&j, "isa_env", env ? env : "");
        jw_arr(&j, "isas_available");
        for (char *s = avail, *e; *s; s = e + (*e != 0)) {
            e = strchr(s, ',');
            if (!e) e = s + strlen(s);
            char name[16];
            snprintf(name, sizeof name, "%.*s", (int)(e - s), s);
            jw_str(&j, NULL, name);
        }
        jw_arr_end(&j);
        jw_obj(&j, "defaults");
        jw_int(&j, "page_size", VS_DEFAULT_PAGE_SIZE);
        json_options(&j, &o, 1);
        jw_end(&j);
        jw_obj(&j, "limits");
        jw_int(&j, "max_dim", VS_MAX_DIM);
        jw_int(&j, "max_heads", VS_MAX_HEADS);
        jw_int(&j, "max_page_size", VS_MAX_PAGE_SIZE);
        jw_int(&j, "max_tokens", VS_MAX_TOKENS);
        jw_num(&j, "max_abs", VS_MAX_ABS);
        jw_end(&j);
        jw_obj(&j, "workloads");
        jw_num(&j, "gap_margin", wg.margin);
        jw_int(&j, "gap_face", wg.face);
        jw_num(&j, "needle_margin", wn.margin);
        jw_int(&j, "needle_needles", wn.needles);
        jw_end(&j);
        jw_end(&j);
        return 0;
    }
    printf("vashista %s (header %d.%d.%d)\n", vs_version_string(), VS_VERSION_MAJOR,
           VS_VERSION_MINOR, VS_VERSION_PATCH);
    printf("isa in use:      %s%s%s%s\n", vs_isa_name(), env ? " (VASHISTA_ISA=" : "", env ? env : "",
           env ? ")" : "");
    printf("isas available:  %s\n", avail);
    printf("defaults:        page size %u, pages %u, candidates %u, sink pages %u, recent pages %u,\n"
           "                 solver softmax, widen %u, scale %s, tolerance %g (off);\n"
           "                 eg/fw: eps %g, max iterations %u, solver tolerance %g;\n"
           "                 routing %s (nodes of %u pages, expand %s)\n",
           VS_DEFAULT_PAGE_SIZE, o.pages, o.candidates, o.sink_pages, o.recent_pages, o.widen,
           o.scale == 0 ? "1/sqrt(d)" : "custom", (double)o.tolerance, (double)o.eps, o.max_iter,
           (double)o.solver_tol, routing_name(o.routing), VS_NODE_PAGES,
           o.expand ? "custom" : "max(32, ceil(2P/16))");
    printf("limits:          dim <= %u, heads <= %u, page size <= %u, tokens <= %u\n", VS_MAX_DIM,
           VS_MAX_HEADS, VS_MAX_PAGE_SIZE, VS_MAX_TOKENS);
    printf("workloads:       gap margin %g (face %u), needle margin %g (%u needles), uniform\n",
           (double)wg.margin, wg.face, (double)wn.margin, wn.needles);
    return 0;
}

/* ======================================================================== */
/* ---- bench ---------------------------------------------------------------- */
/* ======================================================================== */

static const char *help_bench =
    "usage: vashista bench [options]\n"
    "\n"
    "Times dense decode (vs_decode_dense) and sparse decode (vs_decode) on the same\n"
    "cache, per context length T and decode configuration. Each time is the median\n"
    "of repeated decodes (at least --reps and at least 0.3 s; at most ~5 s), with\n"
    "fresh queries per repetition (workload steps 0..15). Also measures the\n"
    "machine's single-thread read bandwidth (sum over a buffer much larger than the\n"
    "last-level cache, best of 5) and reports the certificate of the timed sparse\n"
    "decodes (mean error bound, rho_cert) and their recall of the planted tokens\n"
    "(needles, or the gap workload's face), so speed never hides quality.\n"
    "\n"
    "options:\n"
    "  --T LIST            context lengths, e.g. 4096,131072 or 4K,128K,1M  [4K,32K,128K]\n"
    "  --config LIST       page:pages:candidates[:flat|:tree[E]][:share] configurations, e.g.\n"
    "                      16:64:128,64:16:128:flat,64:16:128:tree8 (tree rows also report,\n"
    "                      untimed, how often tree routing picks flat routing's pages)\n"
    "  --page S --pages P --candidates Kc   one configuration   [library defaults]\n"
    "  --sink N --recent N --widen N --tolerance X --scale X    decode options\n"
    "  --solver softmax|eg|fw --eps X --max-iter N --solver-tol X  solver  [softmax]\n"
    "  --routing flat|tree --expand E   routing of configurations without a suffix  [tree]\n"
    "  --share-routing     one routing per KV head (or the config suffix :share)\n"
    "  --d N --dv N --heads N --kv-heads N   shape   [128 128 1 heads]\n"
    "  --workload needle|gap|uniform [--margin X --face N --needles N --seed N]\n"
    "  --reps N            minimum timed repetitions  [15]\n"
    "  --isa auto|scalar|avx2   instruction set  [auto]\n"
    "  --bw-mib N          bandwidth buffer size in MiB, 0 to skip  [512]\n"
    "  --json              JSON on stdout\n"
    "  --quiet             no progress on stderr\n";

typedef struct timing {
    double median_ms, min_ms;
    int reps;
} timing;

typedef int (*run_fn)(void *ctx, int rep);
typedef void (*after_fn)(void *ctx, int rep);

static void time_reps(run_fn run, after_fn after, void *ctx, int min_reps, timing *out) {
    const double min_s = 0.3, max_s = 5.0;
    size_t cap = 64, n = 0;
    double *t = xmalloc(cap * sizeof *t), total = 0;
    check_status(run(ctx, 0), "warm-up decode");
    for (;;) {
        double t0 = now_s();
        int st = run(ctx, (int)n);
        double dt = now_s() - t0;
        check_status(st, "timed decode");
        if (after) after(ctx, (int)n);
        if (n == cap) {
            cap *= 2;
            double *nt = realloc(t, cap * sizeof *t);
            if (!nt) die("out of memory");
            t = nt;
        }
        t[n++] = dt;
        total += dt;
        if ((n >= (size_t)min_reps && total >= min_s) || (n >= 5 && total >= max_s) || n >= 100000)
            break;
    }
    out->reps = (int)n;
    out->median_ms = 1e3 * percentile(t, n, 0.5);
    out->min_ms = 1e3 * t[0]; /* sorted by percentile() */
    free(t);
}

/* Single-thread read bandwidth in bytes/s: a sum over `bytes` of memory, best of `tries`. */
static double measure_read_bandwidth(size_t bytes, int tries) {
    size_t n = bytes / sizeof(uint64_t) / 8 * 8;
    uint64_t *buf = malloc(n * sizeof *buf);
    if (!buf) return 0;
    for (size_t i = 0; i < n; i++) buf[i] = i; /* fault every page in */
    double best = 0;
    volatile uint64_t sink = 0;
    for (int r = 0; r < tries; r++) {
        double t0 = now_s();
        uint64_t s0 = 0, s1 = 0, s2 = 0, s3 = 0, s4 = 0, s5 = 0, s6 = 0, s7 = 0;
        for (size_t i = 0; i < n; i += 8) {
            s0 += buf[i];
            s1 += buf[i + 1];
            s2 += buf[i + 2];
            s3 += buf[i + 3];
            s4 += buf[i + 4];
            s5 += buf[i + 5];
            s6 += buf[i + 6];
            s7 += buf[i + 7];
        }
        double dt = now_s() - t0;
        sink += s0 + s1 + s2 + s3 + s4 + s5 + s6 + s7;
        double bw = (double)(n * sizeof *buf) / dt;
        if (bw > best) best = bw;
    }
    (void)sink;
    free(buf);
    return best;
}

/* Opens the JSON document of a command and its "workload" object (left open
   for the caller's seed fields). */
static void json_header(jw *j, const char *command, const vs_workload *w, int with_T) {
    jw_obj(j, NULL);
    jw_str(j, "command", command);
    jw_str(j, "version", vs_version_string());
    jw_str(j, "isa", vs_isa_name());
    jw_obj(j, "workload");
    jw_str(j, "kind", kind_name(w->kind));
    if (with_T) jw_int(j, "T", w->T);
    jw_int(j, "heads", w->heads);
    jw_int(j, "kv_heads", w->kv_heads);
    jw_int(j, "head_dim", w->head_dim);
    jw_int(j, "value_dim", w->value_dim);
    jw_num(j, "margin", w->margin);
    if (w->kind == VS_WL_GAP) jw_int(j, "face", w->face);
    if (w->kind == VS_WL_NEEDLE) jw_int(j, "needles", w->needles);
}

#define BENCH_STEPS 16

typedef struct bench_ctx {
    vs_cache *cache;
    const vs_workload *w;
    const float *q;         /* [BENCH_STEPS][heads][d] */
    float *out;             /* [heads][dv] */
    const float *dense_ref; /* [BENCH_STEPS][heads][dv]: the engine's dense outputs */
    vs_decode_options opt;
    vs_head_diag *diag;     /* [heads] */
    const uint32_t *marked;
    uint32_t nmarked;
    uint32_t *cand;         /* [T] */
    /* accumulated over timed sparse decodes, per head */
    double sum_bound, sum_rel_bound, sum_rho, sum_cand, sum_routed, max_err_vs_dense;
    uint64_t found, wanted, heads_all_found, decodes;
    uint64_t fallback[3];
    uint64_t same_as_flat, flat_checked; /* tree routing: heads that routed exactly flat
                                            routing's pages, of those compared */
    double flat_overlap;    /* sum over those of the share of flat's pages tree also routed */
} bench_ctx;

static int run_dense(void *p, int rep) {
    bench_ctx *b = p;
    size_t qn = (size_t)b->w->heads * b->w->head_dim, on = (size_t)b->w->heads * b->w->value_dim;
    return vs_decode_dense(b->cache, b->q + (size_t)(rep % BENCH_STEPS) * qn, qn, b->opt.scale,
                           b->out, on);
}

static int run_sparse(void *p, int rep) {
    bench_ctx *b = p;
    size_t qn = (size_t)b->w->heads * b->w->head_dim, on = (size_t)b->w->heads * b->w->value_dim;
    return vs_decode(b->cache, b->q + (size_t)(rep % BENCH_STEPS) * qn, qn, &b->opt, b->out, on,
                     b->diag, b->w->heads);
}

/* After each timed sparse decode (not timed): certificate and recall stats. */
static void after_sparse(void *p, int rep) {
    bench_ctx *b = p;
    const size_t dv = b->w->value_dim;
    const float *ref = b->dense_ref + (size_t)(rep % BENCH_STEPS) * b->w->heads * dv;
    for (uint32_t h = 0; h < b->w->heads; h++) {
        const vs_head_diag *g = &b->diag[h];
        b->decodes++;
        b->sum_bound += g->error_bound;
        b->sum_rel_bound += g->output_norm > 0 ? g->error_bound / g->output_norm : INFINITY;
        b->sum_rho += g->rho_cert;
        b->sum_cand += g->candidates;
        b->sum_routed += g->routed_pages;
        if (g->fallback < 3) b->fallback[g->fallback]++;
        double e = 0, r = 0;
        for (size_t j = 0; j < dv; j++) {
            double x = (double)b->out[h * dv + j] - (double)ref[h * dv + j];
            e += x * x;
            r += (double)ref[h * dv + j] * (double)ref[h * dv + j];
        }
        double rel = r > 0 ? sqrt(e / r) : sqrt(e);
        if (rel > b->max_err_vs_dense) b->max_err_vs_dense = rel;
        if (b->nmarked) {
            size_t cnt = 0;
            check_status(vs_decode_candidates(b->cache, h, b->cand, b->w->T, &cnt),
                         "vs_decode_candidates");
            uint32_t f = count_found(b->marked, b->nmarked, b->cand, cnt);
            b->found += f;
            b->wanted += b->nmarked;
            b->heads_all_found += f == b->nmarked;
        }
    }
}

/* Tree routing, untimed, after the timing (a flat decode between timed ones
   would evict the caches the timed decodes use): for each of the query steps,
   how many heads routed exactly the pages flat routing routes. */
static void compare_with_flat(bench_ctx *b) {
    const size_t qn = (size_t)b->w->heads * b->w->head_dim, on = (size_t)b->w->heads * b->w->value_dim;
    const size_t cap = (size_t)b->w->T; /* >= pages */
    size_t *na = xmalloc(b->w->heads * sizeof *na);
    uint32_t *tree_pages = xmalloc((size_t)b->w->heads * cap * sizeof *tree_pages);
    vs_decode_options flat = b->opt;
    flat.routing = VS_ROUTING_FLAT;
    flat.share_routing = 0; /* the reference: every head routed by its own query */
    for (uint32_t step = 0; step < BENCH_STEPS; step++) {
        const float *q = b->q + (size_t)step * qn;
        check_status(vs_decode(b->cache, q, qn, &b->opt, b->out, on, b->diag, b->w->heads), "tree decode");
        for (uint32_t h = 0; h < b->w->heads; h++)
            check_status(vs_decode_routed_pages(b->cache, h, tree_pages + h * cap, cap, &na[h]),
                         "vs_decode_routed_pages");
        check_status(vs_decode(b->cache, q, qn, &flat, b->out, on, b->diag, b->w->heads), "flat decode");
        for (uint32_t h = 0; h < b->w->heads; h++) {
            size_t nb = 0;
            check_status(vs_decode_routed_pages(b->cache, h, b->cand, cap, &nb),
                         "vs_decode_routed_pages");
            b->same_as_flat += nb == na[h] && memcmp(b->cand, tree_pages + h * cap, nb * 4) == 0;
            b->flat_checked++;
            /* overlap: flat's pages that tree routed too (both lists increase) */
            size_t both = 0;
            for (size_t i = 0, j = 0; i < nb && j < na[h];) {
                const uint32_t x = b->cand[i], y = tree_pages[h * cap + j];
                both += x == y;
                i += x <= y;
                j += y <= x;
            }
            b->flat_overlap += nb ? (double)both / (double)nb : 1.0;
        }
    }
    free(na);
    free(tree_pages);
}

typedef struct bench_row {
    uint32_t T;
    dconfig cfg;
    timing dense, sparse;
    double dense_bytes;
    bench_ctx stats;
} bench_row;

static int cmd_bench(args *a) {
    if (a->help) return fputs(help_bench, stdout), 0;
    apply_isa(a);
    uint32_t Ts[32];
    size_t nT = arg_u32_list(a, "T", "4K,32K,128K", 1, VS_MAX_TOKENS, Ts, 32);
    dconfig cfgs[MAX_CONFIGS];
    size_t ncfg = configs_from_args(a, cfgs);
    vs_decode_options base;
    options_from_args(a, &base);
    vs_workload w;
    workload_from_args(a, "needle", &w);
    int min_reps = (int)arg_u32(a, "reps", 15, 1, 1000000);
    uint32_t bw_mib = arg_u32(a, "bw-mib", 512, 0, 1 << 20);
    arg_finish(a, 0);
    for (size_t i = 0; i < nT; i++) {
        w.T = Ts[i];
        check_workload(&w);
    }

    double bw = 0;
    if (bw_mib) {
        progress(1, "measuring read bandwidth (%u MiB buffer)", bw_mib);
        bw = measure_read_bandwidth((size_t)bw_mib << 20, 5);
    }

    bench_row *rows = xcalloc(nT * ncfg, sizeof *rows);
    size_t nrows = 0;
    const size_t qn = (size_t)w.heads * w.head_dim, on = (size_t)w.heads * w.value_dim;
    float *q = xmalloc(BENCH_STEPS * qn * sizeof *q);
    float *dense_out = xmalloc(BENCH_STEPS * on * sizeof *dense_out);
    float *out = xmalloc(on * sizeof *out);
    vs_head_diag *diag = xmalloc(w.heads * sizeof *diag);

    for (size_t ti = 0; ti < nT; ti++) {
        w.T = Ts[ti];
        uint32_t nmarked = 0;
        check_status(vs_workload_marked(&w, NULL, 0, &nmarked), "vs_workload_marked");
        uint32_t *marked = xmalloc((nmarked + 1) * sizeof *marked);
        check_status(vs_workload_marked(&w, marked, nmarked, &nmarked), "vs_workload_marked");
        uint32_t *cand = xmalloc((size_t)w.T * sizeof *cand);
        for (uint32_t s = 0; s < BENCH_STEPS; s++)
            check_status(vs_workload_queries(&w, s, q + s * qn), "vs_workload_queries");
        /* one cache per distinct page size */
        for (size_t ci = 0; ci < ncfg; ci++) {
            int seen = 0;
            for (size_t cj = 0; cj < ci; cj++) seen |= cfgs[cj].S == cfgs[ci].S;
            if (seen) continue;
            char label[96];
            snprintf(label, sizeof label, "T=%u S=%u", w.T, cfgs[ci].S);
            vs_cache *cache = build_cache(&w, cfgs[ci].S, NULL, NULL, label);
            bench_ctx ctx;
            memset(&ctx, 0, sizeof ctx);
            ctx.cache = cache;
            ctx.w = &w;
            ctx.q = q;
            ctx.out = out;
            ctx.dense_ref = dense_out;
            ctx.opt = base;
            ctx.diag = diag;
            ctx.marked = marked;
            ctx.nmarked = nmarked;
            ctx.cand = cand;
            for (uint32_t s = 0; s < BENCH_STEPS; s++)
                check_status(vs_decode_dense(cache, q + s * qn, qn, base.scale, dense_out + s * on, on),
                             "vs_decode_dense");
            progress(1, "%s: timing dense decode", label);
            timing dense;
            time_reps(run_dense, NULL, &ctx, min_reps, &dense);
            for (size_t cj = ci; cj < ncfg; cj++) {
                if (cfgs[cj].S != cfgs[ci].S) continue;
                bench_row *r = &rows[ti * ncfg + cj];
                nrows++;
                progress(1, "%s: timing sparse decode %u:%u:%u", label, cfgs[cj].S, cfgs[cj].P,
                         cfgs[cj].Kc);
                bench_ctx sc = ctx;
                apply_config(&sc.opt, &cfgs[cj]);
                r->T = w.T;
                r->cfg = cfgs[cj];
                r->dense = dense;
                r->dense_bytes = (double)w.T * w.kv_heads * (w.head_dim + w.value_dim) * sizeof(float);
                time_reps(run_sparse, after_sparse, &sc, min_reps, &r->sparse);
                if (sc.opt.routing == VS_ROUTING_TREE) compare_with_flat(&sc);
                r->stats = sc;
            }
            vs_cache_free(cache);
        }
        free(cand);
        free(marked);
    }
    progress_done();

    const char *recall_name = w.kind == VS_WL_GAP ? "face recall" : "needle recall";
    if (a->json) {
        jw j = {stdout, 0, {0}};
        json_header(&j, "bench", &w, 0);
        jw_int(&j, "seed", (long long)workload_seed(&w));
        jw_end(&j);
        jw_obj(&j, "options");
        json_options(&j, &base, 0);
        jw_end(&j);
        jw_num(&j, "read_bandwidth_gbs", bw / 1e9);
        jw_int(&j, "bandwidth_buffer_mib", bw_mib);
        jw_int(&j, "min_reps", min_reps);
        jw_arr(&j, "results");
        for (size_t i = 0; i < nT * ncfg; i++) {
            const bench_row *r = &rows[i];
            const bench_ctx *s = &r->stats;
            double nd = s->decodes ? (double)s->decodes : NAN;
            jw_obj(&j, NULL);
            jw_int(&j, "T", r->T);
            jw_int(&j, "page_size", r->cfg.S);
            jw_int(&j, "pages", r->cfg.P);
            jw_int(&j, "candidates", r->cfg.Kc);
            jw_num(&j, "dense_ms", r->dense.median_ms);
            jw_num(&j, "sparse_ms", r->sparse.median_ms);
            jw_num(&j, "speedup", r->dense.median_ms / r->sparse.median_ms);
            jw_num(&j, "dense_min_ms", r->dense.min_ms);
            jw_num(&j, "sparse_min_ms", r->sparse.min_ms);
            jw_int(&j, "dense_reps", r->dense.reps);
            jw_int(&j, "sparse_reps", r->sparse.reps);
            jw_num(&j, "dense_bytes", r->dense_bytes);
            jw_num(&j, "dense_gbs", r->dense_bytes / (r->dense.median_ms * 1e-3) / 1e9);
            jw_num(&j, "dense_bandwidth_fraction",
                   bw > 0 ? r->dense_bytes / (r->dense.median_ms * 1e-3) / bw : NAN);
            jw_num(&j, "mean_error_bound", s->sum_bound / nd);
            jw_num(&j, "mean_rel_error_bound", s->sum_rel_bound / nd);
            jw_num(&j, "mean_rho_cert", s->sum_rho / nd);
            jw_num(&j, "max_rel_err_vs_dense", s->max_err_vs_dense);
            jw_num(&j, "mean_candidates", s->sum_cand / nd);
            jw_num(&j, "mean_routed_pages", s->sum_routed / nd);
            const uint32_t rt = r->cfg.routing == ROUTING_FROM_OPTIONS ? base.routing : r->cfg.routing;
            jw_str(&j, "routing", routing_name(rt));
            jw_int(&j, "expand", r->cfg.routing == ROUTING_FROM_OPTIONS ? base.expand : r->cfg.expand);
            jw_int(&j, "share_routing",
                   r->cfg.share == ROUTING_FROM_OPTIONS ? base.share_routing : r->cfg.share);
            jw_num(&j, "same_pages_as_flat",
                   rt == VS_ROUTING_TREE ? (double)s->same_as_flat / (double)s->flat_checked : NAN);
            jw_num(&j, "flat_pages_overlap",
                   rt == VS_ROUTING_TREE ? s->flat_overlap / (double)s->flat_checked : NAN);
            if (s->wanted) {
                jw_num(&j, "recall", (double)s->found / (double)s->wanted);
                jw_num(&j, "heads_all_recalled", (double)s->heads_all_found / nd);
            } else {
                jw_num(&j, "recall", NAN);
                jw_num(&j, "heads_all_recalled", NAN);
            }
            jw_obj(&j, "fallbacks");
            jw_int(&j, "none", (long long)s->fallback[0]);
            jw_int(&j, "widened", (long long)s->fallback[1]);
            jw_int(&j, "dense", (long long)s->fallback[2]);
            jw_end(&j);
            jw_end(&j);
        }
        jw_arr_end(&j);
        jw_end(&j);
    } else {
        char planted_desc[48] = "";
        if (w.kind != VS_WL_UNIFORM)
            snprintf(planted_desc, sizeof planted_desc, " (margin %g, %u %s)", (double)w.margin,
                     w.kind == VS_WL_GAP ? w.face : w.needles,
                     w.kind == VS_WL_GAP ? "face tokens" : "needles");
        printf("vashista bench: isa %s, workload %s%s, d %u, dv %u, heads %u/%u, seed %llu\n",
               vs_isa_name(), kind_name(w.kind), planted_desc, w.head_dim, w.value_dim, w.heads,
               w.kv_heads, (unsigned long long)workload_seed(&w));
        printf("options: sink pages %u, recent pages %u, tolerance %g; times are medians (ms)\n",
               base.sink_pages, base.recent_pages, (double)base.tolerance);
        if (bw > 0) printf("machine read bandwidth: %.1f GB/s (1 thread, %u MiB buffer, best of 5)\n", bw / 1e9, bw_mib);
        printf("\n%9s %18s %10s %10s %9s %8s %6s %11s %10s %8s %9s %9s\n", "T", "S:P:Kc", "dense ms",
               "sparse ms", "speedup", "dense", "of bw", "err bound", "vs dense", "recall",
               "fallback", "= flat");
        printf("%9s %18s %10s %10s %9s %8s %6s %11s %10s %8s %9s %9s\n", "", "", "", "", "", "GB/s", "",
               "(rel, mean)", "(rel,max)", "", "w/d", "pages");
        for (size_t i = 0; i < nT * ncfg; i++) {
            const bench_row *r = &rows[i];
            const bench_ctx *s = &r->stats;
            char cfg[40], rec[16], fb[24], same[24];
            const uint32_t rt = r->cfg.routing == ROUTING_FROM_OPTIONS ? base.routing : r->cfg.routing;
            const uint32_t ex = r->cfg.routing == ROUTING_FROM_OPTIONS ? base.expand : r->cfg.expand;
            const uint32_t sh = r->cfg.share == ROUTING_FROM_OPTIONS ? base.share_routing : r->cfg.share;
            if (rt == VS_ROUTING_TREE && ex)
                snprintf(cfg, sizeof cfg, "%u:%u:%u:tree%u%s", r->cfg.S, r->cfg.P, r->cfg.Kc, ex,
                         sh ? ":share" : "");
            else
                snprintf(cfg, sizeof cfg, "%u:%u:%u%s%s", r->cfg.S, r->cfg.P, r->cfg.Kc,
                         rt == VS_ROUTING_TREE ? ":tree" : "", sh ? ":share" : "");
            if (s->wanted) snprintf(rec, sizeof rec, "%.1f%%", 100.0 * s->found / s->wanted);
            else snprintf(rec, sizeof rec, "-");
            snprintf(fb, sizeof fb, "%llu/%llu", (unsigned long long)s->fallback[1],
                     (unsigned long long)s->fallback[2]);
            double gbs = r->dense_bytes / (r->dense.median_ms * 1e-3) / 1e9;
            char frac[16];
            if (bw > 0) snprintf(frac, sizeof frac, "%.0f%%", 100 * gbs * 1e9 / bw);
            else snprintf(frac, sizeof frac, "-");
            if (rt == VS_ROUTING_TREE)
                snprintf(same, sizeof same, "%.0f/%.0f%%", 100.0 * s->same_as_flat / (double)s->flat_checked,
                         100.0 * s->flat_overlap / (double)s->flat_checked);
            else
                snprintf(same, sizeof same, "-");
            printf("%9u %18s %10.4f %10.4f %8.1fx %8.2f %6s %11.3g %10.3g %8s %9s %9s\n", r->T, cfg,
                   r->dense.median_ms, r->sparse.median_ms, r->dense.median_ms / r->sparse.median_ms,
                   gbs, frac, s->sum_rel_bound / (double)s->decodes, s->max_err_vs_dense, rec, fb,
                   same);
        }
        printf("\n= flat pages: tree routing's head decodes that routed exactly flat routing's pages / the\n"
               "share of flat's routed pages that tree routed too (16 query steps, untimed).");
        printf("\nerr bound: error_bound / ||out|| of the timed sparse decodes; vs dense: "
               "||sparse - dense|| / ||dense||\nagainst this build's dense decode; recall: %s "
               "(planted tokens among the candidates).\n", recall_name);
        if (base.solver != VS_SOLVER_SOFTMAX)
            printf("solver %s: vs dense is its distance from dense softmax; its error bound is\n"
                   "against the same solver over every token (fw: on the projected point).\n",
                   solver_name(base.solver));
    }
    (void)nrows;
    free(rows);
    free(q);
    free(dense_out);
    free(out);
    free(diag);
    return 0;
}

/* ======================================================================== */
/* ---- eval ----------------------------------------------------------------- */
/* ======================================================================== */

static const char *help_eval =
    "usage: vashista eval [options]\n"
    "\n"
    "Measures sparse decode quality against the float64 dense reference\n"
    "(src/cli/reference.c) of the same inputs. Trial i uses workload seed\n"
    "--seed + i / --queries-per-seed and query step i % --queries-per-seed, so\n"
    "trials vary both the cache and the query. Per query head and trial:\n"
    "  rel err       ||out_sparse - out_ref||_2 / ||out_ref||_2\n"
    "  mass recall   reference attention mass on the candidate set C\n"
    "                (C from vs_decode_candidates); rho_true = 1 - mass recall\n"
    "  oracle mass   reference mass on the |C| highest-weight tokens (the best any\n"
    "                candidate set of that size could do)\n"
    "  recall        planted tokens (needles; the face for gap) found in C\n"
    "  certificate   violated when ||out_sparse - out_ref|| > error_bound, or\n"
    "                rho_true > rho_cert, or rho_true > leakage_bound\n"
    "Exit status 1 if any certificate is violated.\n"
    "\n"
    "options:\n"
    "  --workload needle|gap|uniform  [needle]  --T N  [128K]  --trials N  [200]\n"
    "  --queries-per-seed N  [10]  --seed N  [1]  --margin X --face N --needles N\n"
    "  --config S:P:Kc  or  --page S --pages P --candidates Kc   [library defaults]\n"
    "  --sink N --recent N --widen N --tolerance X --scale X       decode options\n"
    "  --routing flat|tree --expand E --share-routing              routing  [tree]\n"
    "  --d N --dv N --heads N --kv-heads N  [128 128 1 heads]\n"
    "  --isa auto|scalar|avx2   --per-trial (JSON: one record per head and trial)\n"
    "  --json   --quiet\n";

typedef struct head_rec {
    uint32_t trial, head, step;
    uint64_t seed;
    double err, rel_err, ref_norm, bound, rel_bound, rho_true, rho_cert, leakage, mass_recall,
        oracle_mass, dense_rel, gap, eff_support;
    uint32_t cand, routed, fallback, found, planted;
    int viol_err, viol_rho, viol_leak;
} head_rec;

static int cmd_eval(args *a) {
    if (a->help) return fputs(help_eval, stdout), 0;
    apply_isa(a);
    vs_workload w;
    workload_from_args(a, "needle", &w);
    w.T = arg_u32(a, "T", 131072, 1, VS_MAX_TOKENS);
    uint32_t trials = arg_u32(a, "trials", 200, 1, 1000000);
    uint32_t qps = arg_u32(a, "queries-per-seed", 10, 1, 1000000);
    dconfig cfgs[MAX_CONFIGS];
    size_t ncfg = configs_from_args(a, cfgs);
    if (ncfg != 1) die_usage("eval takes one configuration");
    vs_decode_options opt;
    options_from_args(a, &opt);
    if (opt.solver != VS_SOLVER_SOFTMAX)
        die_usage("eval measures against float64 dense softmax; the projection solvers are "
                  "checked against float64 projections in tests/test_decode_solvers.c");
    opt.pages = cfgs[0].P;
    opt.candidates = cfgs[0].Kc;
    int per_trial = arg_flag(a, "per-trial");
    arg_finish(a, 0);
    check_workload(&w);
    const uint64_t seed0 = workload_seed(&w);

    const size_t T = w.T, d = w.head_dim, dv = w.value_dim, H = w.heads, G = w.kv_heads;
    float *keys = xmalloc(T * G * d * sizeof *keys), *values = xmalloc(T * G * dv * sizeof *values);
    float *q = xmalloc(H * d * sizeof *q), *out = xmalloc(H * dv * sizeof *out);
    float *dense = xmalloc(H * dv * sizeof *dense);
    double *ref = xmalloc(H * dv * sizeof *ref), *wts = xmalloc(H * T * sizeof *wts);
    double *sorted = xmalloc(T * sizeof *sorted);
    uint32_t *cand = xmalloc(T * sizeof *cand);
    unsigned char *mask = xmalloc(H * T); /* [heads][T]: 1 for candidates */
    vs_head_diag *diag = xmalloc(H * sizeof *diag);
    head_rec *rec = xcalloc((size_t)trials * H, sizeof *rec);
    vs_cache *cache = NULL;
    uint32_t nmarked = 0, *marked = NULL;
    uint64_t cur_seed = 0;
    double t_start = now_s();

    for (uint32_t tr = 0; tr < trials; tr++) {
        uint64_t seed = seed0 + tr / qps;
        uint32_t step = tr % qps;
        if (!cache || seed != cur_seed) {
            vs_cache_free(cache);
            set_workload_seed(&w, seed);
            char label[64];
            snprintf(label, sizeof label, "trial %u/%u (seed %llu)", tr + 1, trials,
                     (unsigned long long)seed);
            cache = build_cache(&w, cfgs[0].S, keys, values, label);
            free(marked);
            check_status(vs_workload_marked(&w, NULL, 0, &nmarked), "vs_workload_marked");
            marked = xmalloc((nmarked + 1) * sizeof *marked);
            check_status(vs_workload_marked(&w, marked, nmarked, &nmarked), "vs_workload_marked");
            cur_seed = seed;
        }
        check_status(vs_workload_queries(&w, step, q), "vs_workload_queries");
        check_status(vs_decode(cache, q, H * d, &opt, out, H * dv, diag, H), "vs_decode");
        /* the candidates now: the next decode replaces the selection */
        head_rec *rr = rec + (size_t)tr * H;
        memset(mask, 0, H * T);
        for (uint32_t h = 0; h < H; h++) {
            size_t cnt = 0;
            check_status(vs_decode_candidates(cache, h, cand, T, &cnt), "vs_decode_candidates");
            rr[h].cand = (uint32_t)cnt;
            rr[h].found = count_found(marked, nmarked, cand, cnt);
            rr[h].planted = nmarked;
            for (size_t i = 0; i < cnt; i++) mask[(size_t)h * T + cand[i]] = 1;
        }
        check_status(vs_decode_dense(cache, q, H * d, opt.scale, dense, H * dv), "vs_decode_dense");
        vs_ref_attention(keys, values, T, H, G, d, dv, q, opt.scale, ref, wts);
        for (uint32_t h = 0; h < H; h++) {
            head_rec *r = &rr[h];
            const vs_head_diag *g = &diag[h];
            const double *wrow = wts + (size_t)h * T;
            const unsigned char *m = mask + (size_t)h * T;
            r->trial = tr;
            r->head = h;
            r->seed = seed;
            r->step = step;
            r->err = vs_ref_l2_diff(out + h * dv, ref + h * dv, dv);
            r->ref_norm = vs_ref_l2(ref + h * dv, dv);
            r->rel_err = r->ref_norm > 0 ? r->err / r->ref_norm : r->err;
            r->dense_rel = vs_ref_l2_diff(dense + h * dv, ref + h * dv, dv) /
                           (r->ref_norm > 0 ? r->ref_norm : 1);
            double in = 0, off = 0;
            for (size_t t = 0; t < T; t++) {
                if (m[t]) in += wrow[t];
                else off += wrow[t];
            }
            r->mass_recall = in;
            r->rho_true = off;
            memcpy(sorted, wrow, T * sizeof *sorted);
            qsort(sorted, T, sizeof *sorted, cmp_double_desc);
            double top = 0;
            for (size_t i = 0; i < r->cand && i < T; i++) top += sorted[i];
            r->oracle_mass = top;
            r->bound = g->error_bound;
            r->rel_bound = r->ref_norm > 0 ? g->error_bound / r->ref_norm : INFINITY;
            r->rho_cert = g->rho_cert;
            r->leakage = g->leakage_bound;
            r->gap = g->gap;
            r->eff_support = g->effective_support;
            r->routed = g->routed_pages;
            r->fallback = g->fallback;
            r->viol_err = !(r->err <= (double)g->error_bound);
            r->viol_rho = !(r->rho_true <= (double)g->rho_cert);
            r->viol_leak = !(r->rho_true <= (double)g->leakage_bound);
        }
        double el = now_s() - t_start;
        progress(tr + 1 == trials, "eval: trial %u/%u, %.1f s elapsed, ~%.0f s left", tr + 1, trials,
                 el, el / (tr + 1) * (trials - tr - 1));
    }
    progress_done();
    vs_cache_free(cache);

    /* ---- summary ---- */
    const size_t n = (size_t)trials * H;
    double *x = xmalloc(n * sizeof *x);
    struct {
        double mean, p50, p90, p99, max, min;
    } err, bound, mass, oracle, rho, rhoc, dense_err;
#define SUMMARY(dst, field)                                             \
    do {                                                                \
        double s_ = 0;                                                  \
        for (size_t i = 0; i < n; i++) s_ += (x[i] = rec[i].field);     \
        dst.mean = s_ / (double)n;                                      \
        dst.p50 = percentile(x, n, 0.5);                                \
        dst.p90 = percentile(x, n, 0.9);                                \
        dst.p99 = percentile(x, n, 0.99);                               \
        dst.max = x[n - 1];                                             \
        dst.min = x[0];                                                 \
    } while (0)
    SUMMARY(err, rel_err);
    SUMMARY(bound, rel_bound);
    SUMMARY(mass, mass_recall);
    SUMMARY(oracle, oracle_mass);
    SUMMARY(rho, rho_true);
    SUMMARY(rhoc, rho_cert);
    SUMMARY(dense_err, dense_rel);
#undef SUMMARY
    uint64_t viol_err = 0, viol_rho = 0, viol_leak = 0, found = 0, planted = 0, all_found = 0;
    uint64_t fb[3] = {0, 0, 0}, cert_small = 0;
    double cand_sum = 0, routed_sum = 0, cert_small_max_err = 0, eff_sum = 0;
    for (size_t i = 0; i < n; i++) {
        viol_err += rec[i].viol_err;
        viol_rho += rec[i].viol_rho;
        viol_leak += rec[i].viol_leak;
        found += rec[i].found;
        planted += rec[i].planted;
        all_found += rec[i].found == rec[i].planted;
        if (rec[i].fallback < 3) fb[rec[i].fallback]++;
        cand_sum += rec[i].cand;
        routed_sum += rec[i].routed;
        eff_sum += rec[i].eff_support;
        if (rec[i].rel_bound <= 1e-3) {
            cert_small++;
            if (rec[i].rel_err > cert_small_max_err) cert_small_max_err = rec[i].rel_err;
        }
    }
    int failed = viol_err || viol_rho || viol_leak;
    const char *planted_name = w.kind == VS_WL_GAP ? "face" : "needles";

    if (a->json) {
        jw j = {stdout, 0, {0}};
        json_header(&j, "eval", &w, 1);
        jw_int(&j, "seed", (long long)seed0);
        jw_int(&j, "queries_per_seed", qps);
        jw_end(&j);
        jw_obj(&j, "options");
        jw_int(&j, "page_size", cfgs[0].S);
        json_options(&j, &opt, 1);
        jw_end(&j);
        jw_int(&j, "trials", trials);
        jw_int(&j, "head_decodes", (long long)n);
#define JSUM(name, s)                \
    do {                             \
        jw_obj(&j, name);            \
        jw_num(&j, "mean", s.mean);  \
        jw_num(&j, "min", s.min);    \
        jw_num(&j, "p50", s.p50);    \
        jw_num(&j, "p90", s.p90);    \
        jw_num(&j, "p99", s.p99);    \
        jw_num(&j, "max", s.max);    \
        jw_end(&j);                  \
    } while (0)
        JSUM("rel_err", err);
        JSUM("rel_error_bound", bound);
        JSUM("mass_recall", mass);
        JSUM("oracle_mass", oracle);
        JSUM("rho_true", rho);
        JSUM("rho_cert", rhoc);
        JSUM("dense_rel_err", dense_err);
#undef JSUM
        jw_obj(&j, "recall");
        jw_str(&j, "of", planted_name);
        jw_int(&j, "found", (long long)found);
        jw_int(&j, "planted", (long long)planted);
        jw_num(&j, "fraction", planted ? (double)found / (double)planted : NAN);
        jw_num(&j, "heads_all_found", (double)all_found / (double)n);
        jw_end(&j);
        jw_obj(&j, "certificate");
        jw_int(&j, "error_violations", (long long)viol_err);
        jw_int(&j, "rho_violations", (long long)viol_rho);
        jw_int(&j, "leakage_violations", (long long)viol_leak);
        jw_int(&j, "certified_1e-3", (long long)cert_small);
        jw_num(&j, "certified_1e-3_max_rel_err", cert_small ? cert_small_max_err : NAN);
        jw_end(&j);
        jw_obj(&j, "fallbacks");
        jw_int(&j, "none", (long long)fb[0]);
        jw_int(&j, "widened", (long long)fb[1]);
        jw_int(&j, "dense", (long long)fb[2]);
        jw_end(&j);
        jw_num(&j, "mean_candidates", cand_sum / (double)n);
        jw_num(&j, "mean_routed_pages", routed_sum / (double)n);
        jw_num(&j, "mean_effective_support", eff_sum / (double)n);
        jw_bool(&j, "ok", !failed);
        if (per_trial) {
            jw_arr(&j, "per_trial");
            for (size_t i = 0; i < n; i++) {
                const head_rec *r = &rec[i];
                jw_obj(&j, NULL);
                jw_int(&j, "trial", r->trial);
                jw_int(&j, "head", r->head);
                jw_int(&j, "seed", (long long)r->seed);
                jw_int(&j, "step", r->step);
                jw_num(&j, "rel_err", r->rel_err);
                jw_num(&j, "error_bound", r->bound);
                jw_num(&j, "rel_error_bound", r->rel_bound);
                jw_num(&j, "mass_recall", r->mass_recall);
                jw_num(&j, "oracle_mass", r->oracle_mass);
                jw_num(&j, "rho_true", r->rho_true);
                jw_num(&j, "rho_cert", r->rho_cert);
                jw_num(&j, "leakage_bound", r->leakage);
                jw_num(&j, "gap", r->gap);
                jw_num(&j, "effective_support", r->eff_support);
                jw_num(&j, "dense_rel_err", r->dense_rel);
                jw_int(&j, "candidates", r->cand);
                jw_int(&j, "routed_pages", r->routed);
                jw_int(&j, "fallback", r->fallback);
                jw_int(&j, "found", r->found);
                jw_int(&j, "planted", r->planted);
                jw_end(&j);
            }
            jw_arr_end(&j);
        }
        jw_end(&j);
    } else {
        char planted_desc[48] = "";
        if (w.kind != VS_WL_UNIFORM)
            snprintf(planted_desc, sizeof planted_desc, ", margin %g, %u %s", (double)w.margin,
                     nmarked, w.kind == VS_WL_GAP ? "face tokens" : "needles");
        printf("vashista eval: isa %s, workload %s (T %u%s), d %u, dv %u, heads %u/%u\n",
               vs_isa_name(), kind_name(w.kind), w.T, planted_desc, w.head_dim, w.value_dim,
               w.heads, w.kv_heads);
        printf("config %u:%u:%u, sink %u, recent %u, tolerance %g; %u trials (%u queries per seed), %zu head decodes\n\n",
               cfgs[0].S, opt.pages, opt.candidates, opt.sink_pages, opt.recent_pages,
               (double)opt.tolerance, trials, qps, n);
        printf("%-26s %11s %11s %11s %11s %11s %11s\n", "", "mean", "min", "p50", "p90", "p99", "max");
#define ROW(label, s)                                                                           \
    printf("%-26s %11.4g %11.4g %11.4g %11.4g %11.4g %11.4g\n", label, s.mean, s.min, s.p50, s.p90, \
           s.p99, s.max)
        ROW("rel err (sparse vs ref)", err);
        ROW("rel error bound", bound);
        ROW("mass recall", mass);
        ROW("oracle mass at |C|", oracle);
        ROW("rho true", rho);
        ROW("rho_cert", rhoc);
        ROW("rel err (dense vs ref)", dense_err);
#undef ROW
        printf("\n");
        if (planted)
            printf("recall of %s:        %llu / %llu (%.2f%%), all found in %.2f%% of head decodes\n",
                   planted_name, (unsigned long long)found, (unsigned long long)planted,
                   100.0 * found / planted, 100.0 * all_found / n);
        printf("certificate violations:    error %llu, rho %llu, leakage %llu (of %zu)\n",
               (unsigned long long)viol_err, (unsigned long long)viol_rho,
               (unsigned long long)viol_leak, n);
        printf("certified rel error <= 1e-3: %llu head decodes", (unsigned long long)cert_small);
        if (cert_small) printf(", max true rel err among them %.3g", cert_small_max_err);
        printf("\nfallbacks:                 none %llu, widened %llu, dense %llu\n",
               (unsigned long long)fb[0], (unsigned long long)fb[1], (unsigned long long)fb[2]);
        printf("mean candidates %.1f, mean routed pages %.1f, mean effective support %.2f\n",
               cand_sum / n, routed_sum / n, eff_sum / n);
        printf("%s\n", failed ? "FAILED: a certificate was violated" : "ok: every certificate held");
    }
    free(x);
    free(keys), free(values), free(q), free(out), free(dense), free(ref), free(wts), free(sorted);
    free(cand), free(mask), free(diag), free(rec), free(marked);
    return failed ? 1 : 0;
}

/* ======================================================================== */
/* ---- vectors and parity ---------------------------------------------------- */
/* ======================================================================== */

static const char *help_vectors =
    "usage: vashista vectors DIR [--isa NAME] [--json] [--quiet]\n"
    "\n"
    "Writes the golden vectors (a fixed list of cases: awkward dims, page sizes,\n"
    "GQA, T = 1, page - 1, page + 1, a few thousand; the three workloads; decode\n"
    "options with tolerance, scale, steps) to DIR, as produced by this build:\n"
    "DIR/index.json and one DIR/<case>.bin per case. Format: tests/vectors/FORMAT.md.\n";

static void vectors_progress(size_t i, size_t n, const char *name) {
    progress(1, "vectors: %zu/%zu %s", i + 1, n, name);
}

static int cmd_vectors(args *a) {
    if (a->help) return fputs(help_vectors, stdout), 0;
    apply_isa(a);
    arg_finish(a, 1);
    if (a->npos != 1) die_usage("expected one directory");
    const char *dir = a->pos[0];
    size_t n = 0;
    uint64_t bytes = 0;
    char err[512];
    if (gv_write_dir(dir, vectors_progress, &n, &bytes, err, sizeof err) != 0) die("%s", err);
    progress_done();
    if (a->json) {
        jw j = {stdout, 0, {0}};
        jw_obj(&j, NULL);
        jw_str(&j, "command", "vectors");
        jw_str(&j, "dir", dir);
        jw_str(&j, "version", vs_version_string());
        jw_str(&j, "isa", vs_isa_name());
        jw_int(&j, "cases", (long long)n);
        jw_int(&j, "bytes", (long long)bytes);
        jw_end(&j);
    } else {
        printf("wrote %zu cases (%.2f MB) to %s with isa %s\n", n, bytes / 1e6, dir, vs_isa_name());
    }
    return 0;
}

static const char *help_parity =
    "usage: vashista parity DIR [--isa auto|scalar|avx2|all] [--json] [--quiet]\n"
    "\n"
    "Recomputes every golden-vector case of DIR (written by 'vashista vectors')\n"
    "with this build and ISA (--isa all: every ISA this CPU runs) and compares:\n"
    "  inputs             the workload generator must reproduce them bit for bit\n"
    "  dense and sparse   per head ||x - golden||_2 <= 1e-6 ||golden||_2\n"
    "  outputs            (bit-identical is the aim and is reported)\n"
    "  diagnostics        integer fields and candidate sets exactly; float fields\n"
    "                     within 1e-4 relative\n"
    "Exit status 1 if any case fails.\n";

static int cmd_parity(args *a) {
    if (a->help) return fputs(help_parity, stdout), 0;
    const char *isa = arg_get(a, "isa");
    const char *isas[4];
    int nisa = 0;
    if (isa && strcmp(isa, "all") == 0) {
        char avail[64];
        available_isas(avail, sizeof avail, isas, &nisa);
    } else {
        if (isa) {
            int st = vs_set_isa(isa);
            if (st != VS_OK) {
                char avail[64];
                available_isas(avail, sizeof avail, NULL, NULL);
                die_usage("--isa %s: %s (available: auto,all,%s)", isa, vs_strerror(st), avail);
            }
        }
        isas[0] = NULL; /* the current one */
        nisa = 1;
    }
    arg_finish(a, 1);
    if (a->npos != 1) die_usage("expected one directory");
    const char *dir = a->pos[0];
    char err[512];
    char *files = NULL;
    long nfiles = gv_list(dir, &files, err, sizeof err);
    if (nfiles < 0) die("%s", err);

    jw j = {stdout, 0, {0}};
    if (a->json) {
        jw_obj(&j, NULL);
        jw_str(&j, "command", "parity");
        jw_str(&j, "dir", dir);
        jw_str(&j, "version", vs_version_string());
        jw_num(&j, "output_tolerance", GV_TOL_OUTPUT);
        jw_num(&j, "diag_tolerance", GV_TOL_DIAG);
        jw_arr(&j, "runs");
    }
    int all_ok = 1;
    for (int k = 0; k < nisa; k++) {
        if (isas[k]) vs_set_isa(isas[k]);
        long pass = 0, identical = 0;
        double max_dense = 0, max_sparse = 0, max_diag = 0;
        if (a->json) {
            jw_obj(&j, NULL);
            jw_str(&j, "isa", vs_isa_name());
            jw_arr(&j, "cases");
        } else {
            printf("parity of %s with isa %s (tolerance: outputs %g rel L2, float diagnostics %g rel)\n",
                   dir, vs_isa_name(), GV_TOL_OUTPUT, GV_TOL_DIAG);
            printf("%-34s %6s %11s %11s %11s %9s  %s\n", "case", "inputs", "dense rel", "sparse rel",
                   "diag rel", "bitwise", "result");
        }
        const char *f = files;
        for (long i = 0; i < nfiles; i++, f += strlen(f) + 1) {
            progress(0, "parity: %ld/%ld %s", i + 1, nfiles, f);
            gv_result r;
            gv_check(dir, f, &r);
            int bits = r.dense_identical && r.sparse_identical && r.diag_identical && r.cand_identical;
            pass += r.ok;
            identical += r.ok && bits;
            max_dense = fmax(max_dense, r.dense_rel);
            max_sparse = fmax(max_sparse, r.sparse_rel);
            max_diag = fmax(max_diag, r.diag_rel);
            if (a->json) {
                jw_obj(&j, NULL);
                jw_str(&j, "name", r.name);
                jw_bool(&j, "ok", r.ok);
                jw_str(&j, "error", r.error);
                jw_bool(&j, "inputs_identical", r.inputs_identical);
                jw_bool(&j, "bit_identical", bits);
                jw_num(&j, "dense_rel", r.dense_rel);
                jw_num(&j, "sparse_rel", r.sparse_rel);
                jw_num(&j, "diag_rel", r.diag_rel);
                jw_int(&j, "int_mismatch", r.int_mismatch);
                jw_bool(&j, "candidates_identical", r.cand_identical);
                jw_num(&j, "golden_dense_vs_ref", r.ref_rel);
                jw_end(&j);
            } else {
                progress_done();
                printf("%-34s %6s %11.3g %11.3g %11.3g %9s  %s\n", r.name,
                       r.inputs_identical ? "same" : "DIFF", r.dense_rel, r.sparse_rel, r.diag_rel,
                       bits ? "yes" : "no", r.ok ? "ok" : r.error);
            }
        }
        progress_done();
        all_ok &= pass == nfiles;
        if (a->json) {
            jw_arr_end(&j);
            jw_int(&j, "cases", nfiles);
            jw_int(&j, "passed", pass);
            jw_int(&j, "bit_identical", identical);
            jw_num(&j, "max_dense_rel", max_dense);
            jw_num(&j, "max_sparse_rel", max_sparse);
            jw_num(&j, "max_diag_rel", max_diag);
            jw_end(&j);
        } else {
            printf("isa %s: %ld/%ld cases pass, %ld bit-identical; max rel diff dense %.3g, sparse "
                   "%.3g, diagnostics %.3g\n\n",
                   vs_isa_name(), pass, nfiles, identical, max_dense, max_sparse, max_diag);
        }
    }
    if (a->json) {
        jw_arr_end(&j);
        jw_bool(&j, "ok", all_ok);
        jw_end(&j);
    } else {
        printf("%s\n", all_ok ? "parity: ok" : "parity: FAILED");
    }
    free(files);
    return all_ok ? 0 : 1;
}

/* ======================================================================== */
/* ---- soak ----------------------------------------------------------------- */
/* ======================================================================== */

static const char *help_soak =
    "usage: vashista soak [options]\n"
    "\n"
    "A long run on one cache, checking that nothing drifts or leaks. The cache is\n"
    "filled from the needle workload up to --tokens (appended in chunks of 16K\n"
    "tokens), then --decodes sparse decodes run with the default options and fresh\n"
    "queries (decode i uses workload query step i). Every --truncate-every decodes\n"
    "the cache is truncated by a random 1..--max-truncate tokens (seeded PRNG,\n"
    "mulberry32 of the seed) and the same tokens are re-appended from the\n"
    "workload, so it returns to full length. Checks:\n"
    "  - every decode's output is finite, and every head's rho_cert is in [0, 1]\n"
    "    and its error bound >= 0;\n"
    "  - full coverage: after the fill, every --check-every decodes, around the\n"
    "    first 4 truncations (truncated and re-appended) and at the end, a sparse\n"
    "    decode with pages >= the cache's pages and candidates >= its length must\n"
    "    match the dense decode within --tol (relative L2, per head) and within\n"
    "    its error bound, with rho_cert = 0, fallback none, every token a\n"
    "    candidate; at full length, query step 0 must also give bit for bit the\n"
    "    sparse and dense outputs it gave after the fill (same tokens, same cache);\n"
    "  - memory: the baseline is taken after the fill and the first full-coverage\n"
    "    check (which sizes the decode scratch). Every --sample-every decodes the\n"
    "    process RSS (/proc/self/statm) must stay below baseline + max(5%, 16 MiB)\n"
    "    and vs_cache_get_info().reserved_bytes below baseline + 1% + 64 KiB.\n"
    "Stops at the first failure. Exit status 1 if any check failed.\n"
    "\n"
    "options:\n"
    "  --tokens N          cache length  [1M]\n"
    "  --decodes N         sparse decodes  [100K]\n"
    "  --heads N --kv-heads N --d N --dv N   shape  [2 1 64 64]\n"
    "  --page S            page size  [library default]\n"
    "  --seed N            workload and truncation seed  [1]\n"
    "  --truncate-every N  decodes between truncations, 0 for none  [100]\n"
    "  --max-truncate N    largest truncation in tokens  [4096]\n"
    "  --check-every N     decodes between full-coverage checks  [2000]\n"
    "  --sample-every N    decodes between memory samples  [1000]\n"
    "  --tol X             relative tolerance of full coverage vs dense  [1e-5]\n"
    "  --isa auto|scalar|avx2   instruction set  [auto]\n"
    "  --json              JSON on stdout\n"
    "  --quiet             no progress on stderr\n";

/* mulberry32: the truncation sizes (web/bench/soak.mjs uses the same). */
static uint32_t soak_rand(uint32_t *s) {
    uint32_t t = (*s += 0x6d2b79f5u);
    t = (t ^ (t >> 15)) * (t | 1u);
    t ^= t + (t ^ (t >> 7)) * (t | 61u);
    return t ^ (t >> 14);
}

/* Resident set size in bytes, or 0 where /proc/self/statm is unavailable. */
static double soak_rss(void) {
    FILE *f = fopen("/proc/self/statm", "r");
    if (!f) return 0;
    unsigned long long size = 0, res = 0;
    int ok = fscanf(f, "%llu %llu", &size, &res) == 2;
    fclose(f);
    return ok ? (double)res * (double)sysconf(_SC_PAGESIZE) : 0;
}

typedef struct soak_state {
    vs_cache *cache;
    const vs_workload *w;
    float *kbuf, *vbuf;   /* one append chunk */
    float *q, *out, *dense;
    float *ref_out, *ref_dense; /* step 0 at full length, after the fill */
    int have_ref;
    vs_head_diag *diag;
    double tol, max_rel, max_rel_bound, max_tol;
    uint64_t checks, repro_checks;
    char fail[256];
} soak_state;

#define SOAK_CHUNK 16384u

/* Appends workload tokens [start, end) in chunks. */
static void soak_append(soak_state *s, uint32_t start, uint32_t end) {
    const vs_workload *w = s->w;
    size_t krow = (size_t)w->kv_heads * w->head_dim, vrow = (size_t)w->kv_heads * w->value_dim;
    for (uint32_t t = start; t < end; t += SOAK_CHUNK) {
        uint32_t n = end - t < SOAK_CHUNK ? end - t : SOAK_CHUNK;
        check_status(vs_workload_tokens(w, t, n, s->kbuf, s->vbuf), "vs_workload_tokens");
        check_status(vs_cache_append(s->cache, s->kbuf, (size_t)n * krow, s->vbuf, (size_t)n * vrow),
                     "vs_cache_append");
    }
}

/* Full-coverage sparse decode and dense decode of query step `step` into s->out, s->dense. */
static void soak_full_decode(soak_state *s, uint32_t step, vs_cache_info *info) {
    const vs_workload *w = s->w;
    const size_t qn = (size_t)w->heads * w->head_dim, on = (size_t)w->heads * w->value_dim;
    check_status(vs_cache_get_info(s->cache, info), "vs_cache_get_info");
    check_status(vs_workload_queries(w, step, s->q), "vs_workload_queries");
    vs_decode_options o;
    vs_decode_options_default(&o);
    o.pages = info->pages;
    o.candidates = info->length;
    check_status(vs_decode(s->cache, s->q, qn, &o, s->out, on, s->diag, w->heads), "full-coverage vs_decode");
    check_status(vs_decode_dense(s->cache, s->q, qn, o.scale, s->dense, on), "vs_decode_dense");
}

/* Full-coverage sparse decode vs dense with query step `step`; at full length
   also step 0 again, which must reproduce the outputs after the fill bit for
   bit (the same tokens are back in the cache). 0 ok, 1 failed (s->fail set). */
static int soak_full_check(soak_state *s, uint32_t step, const char *when) {
    const vs_workload *w = s->w;
    const size_t on = (size_t)w->heads * w->value_dim;
    vs_cache_info info;
    soak_full_decode(s, step, &info);
    s->checks++;
    for (uint32_t h = 0; h < w->heads; h++) {
        const vs_head_diag *g = &s->diag[h];
        double e = 0, r = 0;
        int finite = 1;
        for (size_t j = 0; j < w->value_dim; j++) {
            double a = s->out[h * w->value_dim + j], b = s->dense[h * w->value_dim + j];
            finite &= isfinite(a) && isfinite(b);
            e += (a - b) * (a - b);
            r += b * b;
        }
        double rel = r > 0 ? sqrt(e / r) : sqrt(e);
        double rb = g->error_bound / fmax(sqrt(r), 1e-30);
        if (finite && rel > s->max_rel) s->max_rel = rel;
        if (finite && rb > s->max_rel_bound) s->max_rel_bound = rb;
        const double tol = s->tol;
        if (tol > s->max_tol) s->max_tol = tol;
        const char *why = !finite                          ? "non-finite output"
                          : !(rel <= tol)                  ? "sparse differs from dense"
                          : !(sqrt(e) <= g->error_bound + 1e-6 * sqrt(r))
                              ? "||sparse - dense|| above the error bound"
                          : g->rho_cert != 0.0f            ? "rho_cert != 0"
                          : g->fallback != VS_FALLBACK_NONE ? "fallback is not none"
                          : g->candidates != info.length   ? "not every token is a candidate"
                          : !(g->error_bound >= 0)         ? "error bound < 0 or NaN"
                                                           : NULL;
        if (why) {
            snprintf(s->fail, sizeof s->fail,
                     "full-coverage check (%s, length %u, step %u), head %u: %s (rel diff %.3g, "
                     "tol %.3g, rho_cert %g, fallback %u, candidates %u)",
                     when, info.length, step, h, why, rel, tol, (double)g->rho_cert, g->fallback,
                     g->candidates);
            return 1;
        }
    }
    if (info.length != w->T) return 0;
    if (!s->have_ref) {
        if (step != 0) soak_full_decode(s, 0, &info);
        memcpy(s->ref_out, s->out, on * sizeof(float));
        memcpy(s->ref_dense, s->dense, on * sizeof(float));
        s->have_ref = 1;
        return 0;
    }
    soak_full_decode(s, 0, &info);
    s->repro_checks++;
    if (memcmp(s->out, s->ref_out, on * sizeof(float)) || memcmp(s->dense, s->ref_dense, on * sizeof(float))) {
        snprintf(s->fail, sizeof s->fail,
                 "reproduction check (%s): step 0 at full length no longer gives the %s output it gave "
                 "after the fill",
                 when, memcmp(s->out, s->ref_out, on * sizeof(float)) ? "sparse" : "dense");
        return 1;
    }
    return 0;
}

static int cmd_soak(args *a) {
    if (a->help) return fputs(help_soak, stdout), 0;
    apply_isa(a);
    vs_workload w;
    vs_workload_default(&w, VS_WL_NEEDLE);
    w.T = arg_u32(a, "tokens", 1u << 20, 2, VS_MAX_TOKENS);
    uint32_t decodes = arg_u32(a, "decodes", 100u * 1024, 1, UINT32_MAX);
    w.heads = arg_u32(a, "heads", 2, 1, VS_MAX_HEADS);
    w.kv_heads = arg_u32(a, "kv-heads", 1, 1, VS_MAX_HEADS);
    w.head_dim = arg_u32(a, "d", 64, 1, VS_MAX_DIM);
    w.value_dim = arg_u32(a, "dv", w.head_dim, 1, VS_MAX_DIM);
    if (w.heads % w.kv_heads) die_usage("--heads %u is not a multiple of --kv-heads %u", w.heads, w.kv_heads);
    uint32_t page = arg_u32(a, "page", VS_DEFAULT_PAGE_SIZE, 1, VS_MAX_PAGE_SIZE);
    const char *seed_s = arg_get(a, "seed");
    if (seed_s) {
        uint64_t v;
        if (!parse_u64(seed_s, &v)) die_usage("--seed: '%s' is not an unsigned integer", seed_s);
        set_workload_seed(&w, v);
    }
    uint32_t trunc_every = arg_u32(a, "truncate-every", 100, 0, UINT32_MAX);
    uint32_t max_trunc = arg_u32(a, "max-truncate", 4096, 1, VS_MAX_TOKENS);
    uint32_t check_every = arg_u32(a, "check-every", 2000, 1, UINT32_MAX);
    uint32_t sample_every = arg_u32(a, "sample-every", 1000, 1, UINT32_MAX);
    const double tol = arg_double(a, "tol", 1e-5, 0, 1);
    arg_finish(a, 0);
    check_workload(&w);
    if (max_trunc > w.T - 1) max_trunc = w.T - 1;

    const size_t qn = (size_t)w.heads * w.head_dim, on = (size_t)w.heads * w.value_dim;
    soak_state s;
    memset(&s, 0, sizeof s);
    s.w = &w;
    s.tol = tol;
    s.kbuf = xmalloc((size_t)SOAK_CHUNK * w.kv_heads * w.head_dim * sizeof(float));
    s.vbuf = xmalloc((size_t)SOAK_CHUNK * w.kv_heads * w.value_dim * sizeof(float));
    s.q = xmalloc(qn * sizeof(float));
    s.out = xmalloc(on * sizeof(float));
    s.dense = xmalloc(on * sizeof(float));
    s.ref_out = xmalloc(on * sizeof(float));
    s.ref_dense = xmalloc(on * sizeof(float));
    s.diag = xmalloc(w.heads * sizeof *s.diag);
    uint32_t rng = (uint32_t)(workload_seed(&w) ^ (workload_seed(&w) >> 32)) ^ 0x50a4c0deu;

    /* ---- fill ---- */
    const double t_start = now_s();
    vs_cache_config cfg = {w.heads, w.kv_heads, w.head_dim, w.value_dim, page, VS_DTYPE_F32};
    check_status(vs_cache_create(&cfg, &s.cache), "vs_cache_create");
    for (uint32_t t = 0; t < w.T; t += 8 * SOAK_CHUNK) {
        uint32_t end = w.T - t < 8 * SOAK_CHUNK ? w.T : t + 8 * SOAK_CHUNK;
        soak_append(&s, t, end);
        progress(end == w.T, "soak: filling the cache, %u / %u tokens", end, w.T);
    }
    const double fill_s = now_s() - t_start;
    vs_cache_info info;
    int failed = soak_full_check(&s, 0, "after the fill");
    check_status(vs_cache_get_info(s.cache, &info), "vs_cache_get_info");
    const double rss_base = soak_rss(), res_base = info.reserved_bytes;
    const double rss_limit = rss_base + fmax(0.05 * rss_base, 16.0 * 1048576);
    const double res_limit = floor(res_base * 1.01) + 65536;
    double rss_peak = rss_base, res_peak = res_base, rss_now = rss_base, res_now = res_base;
    uint64_t samples = 1, truncations = 0, retokens = 0;
    double decode_s = 0;
    uint32_t done = 0;

    /* ---- decodes ---- */
    const double t_loop = now_s();
    vs_decode_options o;
    vs_decode_options_default(&o);
    for (uint32_t i = 0; i < decodes && !failed; i++) {
        if (trunc_every && i > 0 && i % trunc_every == 0) {
            uint32_t n = 1 + soak_rand(&rng) % max_trunc;
            check_status(vs_cache_truncate(s.cache, w.T - n), "vs_cache_truncate");
            truncations++;
            retokens += n;
            if (truncations <= 4 && (failed = soak_full_check(&s, i, "truncated"))) break;
            soak_append(&s, w.T - n, w.T);
            if (truncations <= 4 && (failed = soak_full_check(&s, i, "re-appended"))) break;
        }
        check_status(vs_workload_queries(&w, i, s.q), "vs_workload_queries");
        double t0 = now_s();
        check_status(vs_decode(s.cache, s.q, qn, &o, s.out, on, s.diag, w.heads), "vs_decode");
        decode_s += now_s() - t0;
        done = i + 1;
        for (size_t j = 0; j < on && !failed; j++)
            if (!isfinite(s.out[j])) {
                snprintf(s.fail, sizeof s.fail, "decode %u: non-finite output element %zu", i, j);
                failed = 1;
            }
        for (uint32_t h = 0; h < w.heads && !failed; h++) {
            const vs_head_diag *g = &s.diag[h];
            if (!(g->rho_cert >= 0 && g->rho_cert <= 1 && g->error_bound >= 0)) {
                snprintf(s.fail, sizeof s.fail, "decode %u, head %u: rho_cert %g, error bound %g", i, h,
                         (double)g->rho_cert, (double)g->error_bound);
                failed = 1;
            }
        }
        if (failed) break;
        if (done % check_every == 0 && (failed = soak_full_check(&s, done, "periodic"))) break;
        if (done % sample_every == 0 || done == decodes) {
            rss_now = soak_rss();
            check_status(vs_cache_get_info(s.cache, &info), "vs_cache_get_info");
            res_now = info.reserved_bytes;
            samples++;
            rss_peak = fmax(rss_peak, rss_now);
            res_peak = fmax(res_peak, res_now);
            if (rss_now > rss_limit) {
                snprintf(s.fail, sizeof s.fail, "decode %u: RSS %.1f MiB above the limit %.1f MiB", done,
                         rss_now / 1048576, rss_limit / 1048576);
                failed = 1;
            } else if (res_now > res_limit) {
                snprintf(s.fail, sizeof s.fail, "decode %u: reserved bytes %.0f above the limit %.0f",
                         done, res_now, res_limit);
                failed = 1;
            }
            progress(0, "soak: %u / %u decodes, %llu truncations, RSS %.1f MiB, max rel diff %.3g",
                     done, decodes, (unsigned long long)truncations, rss_now / 1048576, s.max_rel);
        }
    }
    if (!failed && done % check_every != 0) failed = soak_full_check(&s, done, "at the end");
    const double loop_s = now_s() - t_loop, total_s = now_s() - t_start;
    progress_done();
    if (!failed && w.T > 0) {
        size_t len;
        check_status(vs_cache_length(s.cache, &len), "vs_cache_length");
        if (len != w.T) {
            snprintf(s.fail, sizeof s.fail, "final length %zu != %u", len, w.T);
            failed = 1;
        }
    }
    const int pass = !failed;

    if (a->json) {
        jw j = {stdout, 0, {0}};
        jw_obj(&j, NULL);
        jw_str(&j, "command", "soak");
        jw_str(&j, "runtime", "native");
        jw_str(&j, "version", vs_version_string());
        jw_str(&j, "isa", vs_isa_name());
        jw_obj(&j, "shape");
        jw_str(&j, "workload", "needle");
        jw_int(&j, "tokens", w.T);
        jw_int(&j, "heads", w.heads);
        jw_int(&j, "kv_heads", w.kv_heads);
        jw_int(&j, "head_dim", w.head_dim);
        jw_int(&j, "value_dim", w.value_dim);
        jw_int(&j, "page_size", page);
        jw_int(&j, "seed", (long long)workload_seed(&w));
        jw_end(&j);
        jw_obj(&j, "options");
        json_options(&j, &o, 1);
        jw_int(&j, "truncate_every", trunc_every);
        jw_int(&j, "max_truncate", max_trunc);
        jw_int(&j, "check_every", check_every);
        jw_int(&j, "sample_every", sample_every);
        jw_num(&j, "tol", tol);
        jw_end(&j);
        jw_int(&j, "decodes", done);
        jw_int(&j, "truncations", (long long)truncations);
        jw_int(&j, "reappended_tokens", (long long)retokens);
        jw_num(&j, "fill_s", fill_s);
        jw_num(&j, "loop_s", loop_s);
        jw_num(&j, "time_s", total_s);
        jw_num(&j, "decodes_per_s", done / loop_s);
        jw_num(&j, "mean_decode_ms", done ? 1e3 * decode_s / done : NAN);
        jw_obj(&j, "memory");
        jw_str(&j, "kind", "rss");
        jw_num(&j, "baseline_bytes", rss_base);
        jw_num(&j, "limit_bytes", rss_limit);
        jw_num(&j, "peak_bytes", rss_peak);
        jw_num(&j, "final_bytes", rss_now);
        jw_int(&j, "samples", (long long)samples);
        jw_end(&j);
        jw_obj(&j, "reserved");
        jw_num(&j, "baseline_bytes", res_base);
        jw_num(&j, "limit_bytes", res_limit);
        jw_num(&j, "peak_bytes", res_peak);
        jw_num(&j, "final_bytes", res_now);
        jw_end(&j);
        jw_int(&j, "full_checks", (long long)s.checks);
        jw_int(&j, "reproduction_checks", (long long)s.repro_checks);
        jw_num(&j, "max_rel_diff", s.max_rel);
        jw_num(&j, "max_tol", s.max_tol);
        jw_num(&j, "max_rel_error_bound", s.max_rel_bound);
        jw_bool(&j, "pass", pass);
        if (!pass) jw_str(&j, "failure", s.fail);
        jw_end(&j);
    } else {
        const double MiB = 1048576;
        printf("vashista soak: native, isa %s, needle workload, %u tokens, heads %u/%u, d %u, dv %u, "
               "page %u, seed %llu\n",
               vs_isa_name(), w.T, w.heads, w.kv_heads, w.head_dim, w.value_dim, page,
               (unsigned long long)workload_seed(&w));
        printf("decode options: library defaults (pages %u, candidates %u, sink %u, recent %u)\n", o.pages,
               o.candidates, o.sink_pages, o.recent_pages);
        printf("fill:           %u tokens in %.2f s\n", w.T, fill_s);
        printf("decodes:        %u in %.2f s (%.0f/s including checks and truncations; sparse decode "
               "%.3f ms mean)\n",
               done, loop_s, done / loop_s, done ? 1e3 * decode_s / done : 0.0);
        printf("truncations:    %llu of 1..%u tokens every %u decodes, %llu tokens re-appended\n",
               (unsigned long long)truncations, max_trunc, trunc_every, (unsigned long long)retokens);
        printf("RSS:            baseline %.1f MiB, peak %.1f MiB, final %.1f MiB (limit %.1f MiB, %llu "
               "samples)\n",
               rss_base / MiB, rss_peak / MiB, rss_now / MiB, rss_limit / MiB, (unsigned long long)samples);
        printf("reserved bytes: baseline %.0f, peak %.0f, final %.0f (limit %.0f)\n", res_base, res_peak,
               res_now, res_limit);
        printf("full coverage:  %llu checks vs dense: max rel diff %.3g (tol %.3g), max error bound "
               "%.3g (rel)\n",
               (unsigned long long)s.checks, s.max_rel, s.max_tol, s.max_rel_bound);
        printf("reproduction:   %llu checks: step 0 at full length bit-identical to after the fill\n",
               (unsigned long long)s.repro_checks);
        printf("total time:     %.2f s\n", total_s);
        if (pass) printf("PASS\n");
        else printf("FAIL: %s\n", s.fail);
    }
    vs_cache_free(s.cache);
    free(s.kbuf);
    free(s.vbuf);
    free(s.q);
    free(s.out);
    free(s.dense);
    free(s.ref_out);
    free(s.ref_dense);
    free(s.diag);
    return pass ? 0 : 1;
}

/* ======================================================================== */
/* ---- main ------------------------------------------------------------------ */
/* ======================================================================== */

static const char *help_main =
    "usage: vashista <command> [options]\n"
    "\n"
    "commands:\n"
    "  info              version, instruction sets, defaults\n"
    "  bench             dense vs sparse decode time and the machine's bandwidth\n"
    "  eval              sparse decode quality against a float64 reference\n"
    "  vectors DIR       write golden vectors\n"
    "  parity DIR        recompute golden vectors and compare\n"
    "  soak              long run: 1M tokens, 100K decodes, truncations; memory and correctness\n"
    "  leakage           EG off-face leakage on planted-gap problems vs the face theorem's bound\n"
    "\n"
    "Every command takes --help and --json. Exit status: 0 ok, 1 failure, 2 usage error.\n"
    "The environment variable VASHISTA_ISA (scalar, avx2) forces an instruction set.\n";

int main(int argc, char **argv) {
    if (argc < 2) {
        fputs(help_main, stderr);
        return 2;
    }
    const char *cmd = argv[1];
    if (strcmp(cmd, "--help") == 0 || strcmp(cmd, "-h") == 0 || strcmp(cmd, "help") == 0) {
        fputs(help_main, stdout);
        return 0;
    }
    if (strcmp(cmd, "--version") == 0) {
        printf("vashista %s\n", vs_version_string());
        return 0;
    }
    static char name[64];
    snprintf(name, sizeof name, "vashista %s", cmd);
    g_cmd = name;
    if (strcmp(cmd, "leakage") == 0) return vs_cli_leakage(argc - 2, argv + 2);
    args a;
    parse_args(argc - 2, argv + 2, &a);
    a.help = arg_flag(&a, "help");
    a.json = arg_flag(&a, "json");
    g_quiet = arg_flag(&a, "quiet");
    if (strcmp(cmd, "info") == 0) return cmd_info(&a);
    if (strcmp(cmd, "bench") == 0) return cmd_bench(&a);
    if (strcmp(cmd, "eval") == 0) return cmd_eval(&a);
    if (strcmp(cmd, "vectors") == 0) return cmd_vectors(&a);
    if (strcmp(cmd, "parity") == 0) return cmd_parity(&a);
    if (strcmp(cmd, "soak") == 0) return cmd_soak(&a);
    g_cmd = "vashista";
    die_usage("unknown command '%s' (info, bench, eval, vectors, parity, soak, leakage)", cmd);
}
