/*
 * vashista leakage: the EG solver's off-face mass on planted-gap problems,
 * against the face theorem's bound (DESIGN section 2).
 *
 * The planted geometry (as in tests/test_solvers.c): coordinate 0 is the
 * normal of the face's plane. Face keys k_i = (0, v_i), i < m, v_i ~ N(0, I);
 * q = (h, sum_i a*_i v_i); off-face keys k_j = (-Delta / h, u_j). At a* the
 * residual U a* - q is (-h, 0, ...), so the gradient g = U^T (U a* - q) is 0
 * on the face and exactly Delta off it: a* solves the unregularized projection
 * and every off-face KKT multiplier equals Delta.
 *
 * The entropic solution alpha_eps (EG, tight tolerance) puts the mass
 *   rho = sum_{j >= m} alpha_j
 * off the face. The face theorem bounds it by
 *   (n - m)/m exp(-Delta / (2 eps))
 * while the fixed point alpha_j / alpha_i = exp(-(g_j - g_i) / eps) predicts
 * log(rho) ~ const - Delta / eps: a slope of -1 in Delta/eps, twice as steep
 * as the bound's -1/2. Two sweeps of x = Delta/eps (eps varied at fixed Delta,
 * Delta varied at fixed eps) measure it, and a least-squares fit of log(rho)
 * against x over x >= --fit-from reports the slope.
 *
 * Optionally (on by default) the on-face bias: ||alpha_eps - alpha_FW||_1 on
 * the face at a large gap, which the theory says grows linearly in eps
 * (log-log slope 1).
 */
#define _POSIX_C_SOURCE 200809L

#include "leakage.h"

#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "include/vashista.h"
#include "kernels/kernels.h"
#include "solvers.h"

static const char *help_leakage =
    "usage: vashista leakage [options]\n"
    "\n"
    "Measures the EG solver's off-face leakage on planted-gap problems and compares\n"
    "it with the face theorem's bound (DESIGN section 2). Each problem has m face\n"
    "keys with known optimal weights alpha* and n - m off-face keys whose KKT\n"
    "multiplier is exactly Delta (tests/test_solvers.c's construction). For each\n"
    "x = Delta/eps, vs_solve (EG, tight --tol) gives alpha_eps; the command reports\n"
    "the off-face mass sum_{j not in I} alpha_j, the bound (n-m)/m exp(-Delta/(2 eps)),\n"
    "the solver's own leakage_bound, gap and face, and the least-squares slope of\n"
    "log(mass) against Delta/eps over x >= --fit-from (the fixed point predicts -1;\n"
    "the bound's exponent is -1/2). Two sweeps: eps varied at Delta = --delta, and\n"
    "Delta varied at eps = --eps. Then the on-face bias ||alpha_eps - alpha_FW||_1\n"
    "for eps in --bias-eps at Delta = --bias-delta (theory: linear in eps).\n"
    "Exit status 1 if a measured mass exceeds the bound.\n"
    "\n"
    "options:\n"
    "  --x LIST            Delta/eps values  [1,2,4,6,8,12,16,20,25,30,40,50,60,70]\n"
    "  --delta X           Delta of the eps sweep  [1]\n"
    "  --eps X             eps of the Delta sweep  [0.05]\n"
    "  --m N --n N --d N   face keys, keys, dimension (d > m)  [3 8 8]\n"
    "  --seed N            geometry seed (the same geometry for every point)  [1]\n"
    "  --tol X --max-iter N   EG stopping: duality gap, iteration cap  [1e-12 200000]\n"
    "                      (the bias solves use twice the cap)\n"
    "  --fit-from X        fit the slope over Delta/eps >= X  [8]\n"
    "  --bias-eps LIST     eps values of the on-face bias; 'none' to skip\n"
    "                      [0.0025,0.005,0.01,0.02,0.04]\n"
    "  --bias-delta X      Delta of the bias problems  [3]\n"
    "  --isa auto|scalar|avx2   instruction set  [auto]\n"
    "  --json              JSON on stdout\n"
    "  --quiet             no progress on stderr\n";

#define LK_CMD "vashista leakage"
#define LK_MAX_X 256

static void lk_usage(const char *fmt, ...) __attribute__((format(printf, 1, 2), noreturn));
static void lk_usage(const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    fprintf(stderr, "%s: ", LK_CMD);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fprintf(stderr, "\nTry '%s --help'.\n", LK_CMD);
    exit(2);
}

static void lk_die(const char *fmt, ...) __attribute__((format(printf, 1, 2), noreturn));
static void lk_die(const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    fprintf(stderr, "%s: ", LK_CMD);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fputc('\n', stderr);
    exit(1);
}

static void *lk_malloc(size_t n) {
    void *p = malloc(n ? n : 1);
    if (!p) lk_die("out of memory (%zu bytes)", n);
    return p;
}

/* ---- arguments ------------------------------------------------------------------ */

typedef struct lk_opts {
    double x[LK_MAX_X];
    size_t nx;
    double delta, eps, tol, fit_from, bias_delta;
    double bias_eps[LK_MAX_X];
    size_t nbias;
    uint32_t m, n, d, max_iter;
    uint64_t seed;
    const char *isa;
    int json, quiet, help;
} lk_opts;

static double lk_double(const char *name, const char *s, double lo, double hi) {
    char *end;
    errno = 0;
    double v = strtod(s, &end);
    if (errno || end == s || *end || !(v >= lo && v <= hi))
        lk_usage("--%s: '%s' is not a number in [%g, %g]", name, s, lo, hi);
    return v;
}

static uint64_t lk_u64(const char *name, const char *s, uint64_t lo, uint64_t hi) {
    char *end;
    errno = 0;
    if (!*s || *s == '-' || *s == '+') lk_usage("--%s: '%s' is not an unsigned integer", name, s);
    unsigned long long v = strtoull(s, &end, 10);
    if (errno || end == s || *end || v < lo || v > hi)
        lk_usage("--%s: '%s' is not an integer in [%llu, %llu]", name, s, (unsigned long long)lo,
                 (unsigned long long)hi);
    return v;
}

static size_t lk_double_list(const char *name, const char *s, double lo, double hi, double *out) {
    size_t n = 0;
    char buf[64];
    while (*s) {
        const char *c = strchr(s, ',');
        size_t len = c ? (size_t)(c - s) : strlen(s);
        if (len == 0 || len >= sizeof buf) lk_usage("--%s: bad list '%s'", name, s);
        memcpy(buf, s, len);
        buf[len] = 0;
        if (n == LK_MAX_X) lk_usage("--%s: more than %d values", name, LK_MAX_X);
        out[n++] = lk_double(name, buf, lo, hi);
        s += len;
        if (*s == ',') s++;
    }
    if (n == 0) lk_usage("--%s: empty list", name);
    return n;
}

static void lk_parse(int argc, char **argv, lk_opts *o) {
    memset(o, 0, sizeof *o);
    o->nx = lk_double_list("x", "1,2,4,6,8,12,16,20,25,30,40,50,60,70", 1e-3, 1e4, o->x);
    o->nbias = lk_double_list("bias-eps", "0.0025,0.005,0.01,0.02,0.04", 1e-9, 1e9, o->bias_eps);
    o->delta = 1.0;
    o->eps = 0.05;
    o->m = 3;
    o->n = 8;
    o->d = 8;
    o->seed = 1;
    o->tol = 1e-12;
    o->max_iter = 200000;
    o->fit_from = 8;
    o->bias_delta = 3.0;
    char seen[32][32];
    int nseen = 0;
    for (int i = 0; i < argc; i++) {
        const char *s = argv[i];
        if (strcmp(s, "-h") == 0) s = "--help";
        if (strncmp(s, "--", 2) != 0 || s[2] == 0) lk_usage("unexpected argument '%s'", s);
        s += 2;
        const char *eq = strchr(s, '=');
        size_t len = eq ? (size_t)(eq - s) : strlen(s);
        char name[32];
        if (len >= sizeof name) lk_usage("unknown option --%.*s", (int)len, s);
        memcpy(name, s, len);
        name[len] = 0;
        for (int k = 0; k < nseen; k++)
            if (strcmp(seen[k], name) == 0) lk_usage("option --%s given twice", name);
        if (nseen < 32) memcpy(seen[nseen++], name, sizeof name);
        static const char *const known[] = {"json", "help", "quiet", "x", "delta", "eps", "m", "n", "d",
                                            "seed", "tol", "max-iter", "fit-from", "bias-eps",
                                            "bias-delta", "isa"};
        int ok = 0;
        for (size_t k = 0; k < sizeof known / sizeof known[0]; k++) ok |= strcmp(known[k], name) == 0;
        if (!ok) lk_usage("unknown option --%s", name);
        int sw = strcmp(name, "json") == 0 || strcmp(name, "help") == 0 || strcmp(name, "quiet") == 0;
        const char *v = NULL;
        if (sw) {
            if (eq && strcmp(eq + 1, "1") != 0) lk_usage("--%s takes no value", name);
        } else if (eq) {
            v = eq + 1;
        } else if (i + 1 < argc) {
            v = argv[++i];
        } else {
            lk_usage("option --%s needs a value", name);
        }
        if (strcmp(name, "json") == 0) o->json = 1;
        else if (strcmp(name, "help") == 0) o->help = 1;
        else if (strcmp(name, "quiet") == 0) o->quiet = 1;
        else if (strcmp(name, "x") == 0) o->nx = lk_double_list(name, v, 1e-3, 1e4, o->x);
        else if (strcmp(name, "delta") == 0) o->delta = lk_double(name, v, 1e-6, 1e6);
        else if (strcmp(name, "eps") == 0) o->eps = lk_double(name, v, 1e-6, 1e6);
        else if (strcmp(name, "m") == 0) o->m = (uint32_t)lk_u64(name, v, 1, 4096);
        else if (strcmp(name, "n") == 0) o->n = (uint32_t)lk_u64(name, v, 2, 65536);
        else if (strcmp(name, "d") == 0) o->d = (uint32_t)lk_u64(name, v, 2, 4096);
        else if (strcmp(name, "seed") == 0) o->seed = lk_u64(name, v, 0, UINT64_MAX);
        else if (strcmp(name, "tol") == 0) o->tol = lk_double(name, v, 1e-30, 1e30);
        else if (strcmp(name, "max-iter") == 0) o->max_iter = (uint32_t)lk_u64(name, v, 1, UINT32_MAX);
        else if (strcmp(name, "fit-from") == 0) o->fit_from = lk_double(name, v, -1e9, 1e9);
        else if (strcmp(name, "bias-eps") == 0)
            o->nbias = strcmp(v, "none") == 0 ? 0 : lk_double_list(name, v, 1e-9, 1e9, o->bias_eps);
        else if (strcmp(name, "bias-delta") == 0) o->bias_delta = lk_double(name, v, 1e-6, 1e6);
        else if (strcmp(name, "isa") == 0) o->isa = v;
        else lk_usage("unknown option --%s", name);
    }
    if (o->help) return;
    if (o->m >= o->n) lk_usage("--m %u must be smaller than --n %u", o->m, o->n);
    if (o->d <= o->m) lk_usage("--d %u must exceed --m %u (affinely independent face keys)", o->d, o->m);
}

/* ---- the planted problems ------------------------------------------------------- */

typedef struct lk_rng {
    uint64_t s;
} lk_rng;

static uint64_t lk_next(lk_rng *r) { /* splitmix64 */
    uint64_t z = (r->s += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}

/* Irwin-Hall of 4 uniforms, scaled to unit variance: roughly N(0, 1). */
static double lk_normal(lk_rng *r) {
    double s = 0;
    for (int i = 0; i < 4; i++) s += (double)(lk_next(r) >> 11) * 0x1.0p-53;
    return (s - 2.0) * 1.7320508075688772;
}

typedef struct lk_prob {
    uint32_t n, d;
    float *keys;        /* [n][d] */
    const float **row;  /* [n] */
    float *q;           /* [d] */
    void *work;
    float *alpha, *mu;  /* [n] */
} lk_prob;

static void lk_prob_init(lk_prob *P, uint32_t n, uint32_t d) {
    P->n = n;
    P->d = d;
    P->keys = lk_malloc((size_t)n * d * sizeof(float));
    P->row = lk_malloc(n * sizeof *P->row);
    for (uint32_t i = 0; i < n; i++) P->row[i] = P->keys + (size_t)i * d;
    P->q = lk_malloc(d * sizeof(float));
    P->work = lk_malloc(vs_solve_work_bytes(n, d));
    P->alpha = lk_malloc(n * sizeof(float));
    P->mu = lk_malloc(n * sizeof(float));
}

static void lk_prob_free(lk_prob *P) {
    free(P->keys);
    free(P->row);
    free(P->q);
    free(P->work);
    free(P->alpha);
    free(P->mu);
}

/* The planted geometry (see the top of the file), with every off-face
   multiplier equal to Delta and h = 1. The same seed gives the same face and
   off-face directions whatever Delta. */
static void lk_planted(lk_prob *P, uint32_t m, const double *astar, double Delta, uint64_t seed) {
    const uint32_t n = P->n, d = P->d;
    const double h = 1.0;
    lk_rng r = {seed};
    double *qj = lk_malloc(d * sizeof *qj);
    for (uint32_t j = 0; j < d; j++) qj[j] = 0;
    for (uint32_t i = 0; i < m; i++) {
        float *k = P->keys + (size_t)i * d;
        k[0] = 0.0f;
        for (uint32_t j = 1; j < d; j++) {
            k[j] = (float)lk_normal(&r);
            qj[j] += astar[i] * k[j];
        }
    }
    P->q[0] = (float)h;
    for (uint32_t j = 1; j < d; j++) P->q[j] = (float)qj[j];
    for (uint32_t i = m; i < n; i++) {
        float *k = P->keys + (size_t)i * d;
        k[0] = (float)(-Delta / h);
        for (uint32_t j = 1; j < d; j++) k[j] = (float)(qj[j] + 0.7 * lk_normal(&r));
    }
    free(qj);
}

static int lk_solve(lk_prob *P, uint32_t solver, double eps, uint32_t max_iter, double tol,
                    vs_solve_info *info) {
    return vs_solve(vs_kernels_active(), solver, P->row, P->n, P->d, P->q, (float)eps, max_iter,
                    (float)tol, P->alpha, P->mu, P->work, info);
}

/* ---- the sweeps ------------------------------------------------------------------ */

typedef struct lk_point {
    double x, delta, eps;
    double mass, bound, fixed_point;
    vs_solve_info info;
} lk_point;

typedef struct lk_sweep {
    const char *name, *varied, *fixed_name;
    double fixed;
    lk_point pt[LK_MAX_X];
    size_t n;
    double slope, intercept;
    int fit_points;
    int violations;
} lk_sweep;

/* Least squares of y on x: slope and intercept. */
static void lk_fit(const double *x, const double *y, int m, double *slope, double *intercept) {
    if (m < 2) {
        *slope = *intercept = NAN;
        return;
    }
    double mx = 0, my = 0;
    for (int i = 0; i < m; i++) mx += x[i] / m, my += y[i] / m;
    double sxy = 0, sxx = 0;
    for (int i = 0; i < m; i++) sxy += (x[i] - mx) * (y[i] - my), sxx += (x[i] - mx) * (x[i] - mx);
    *slope = sxx > 0 ? sxy / sxx : NAN;
    *intercept = my - *slope * mx;
}

static void lk_run_sweep(const lk_opts *o, const double *astar, lk_prob *P, lk_sweep *S,
                         int vary_eps) {
    S->name = vary_eps ? "eps" : "delta";
    S->varied = vary_eps ? "eps" : "Delta";
    S->fixed_name = vary_eps ? "delta" : "eps";
    S->fixed = vary_eps ? o->delta : o->eps;
    S->n = o->nx;
    double fx[LK_MAX_X], fy[LK_MAX_X];
    int nf = 0;
    for (size_t k = 0; k < o->nx; k++) {
        lk_point *p = &S->pt[k];
        p->x = o->x[k];
        p->delta = vary_eps ? o->delta : o->eps * p->x;
        p->eps = p->delta / p->x;
        if (!(p->eps >= VS_SOLVE_EPS_MIN && p->eps <= VS_SOLVE_EPS_MAX))
            lk_usage("Delta/eps = %g gives eps = %g, outside [%g, %g]", p->x, p->eps,
                     (double)VS_SOLVE_EPS_MIN, (double)VS_SOLVE_EPS_MAX);
        lk_planted(P, o->m, astar, p->delta, o->seed);
        int st = lk_solve(P, VS_SOLVER_EG, p->eps, o->max_iter, o->tol, &p->info);
        if (st != VS_OK) lk_die("vs_solve (EG, eps %g, Delta %g) failed: %s (%d)", p->eps, p->delta,
                                vs_strerror(st), st);
        double mass = 0;
        for (uint32_t j = o->m; j < P->n; j++) mass += P->alpha[j];
        /* the fixed point alpha_j / alpha_i = exp(-(g_j - g_i)/eps) with the planted
           multipliers, in the bound's form: (n - m)/m exp(-Delta/eps) */
        p->fixed_point = (double)(P->n - o->m) / o->m * exp(-p->x);
        p->mass = mass;
        p->bound = (double)(P->n - o->m) / o->m * exp(-p->x / 2);
        if (mass > p->bound) S->violations++;
        if (p->x >= o->fit_from && mass > 0 && isfinite(mass)) {
            fx[nf] = p->x;
            fy[nf] = log(mass);
            nf++;
        }
    }
    S->fit_points = nf;
    lk_fit(fx, fy, nf, &S->slope, &S->intercept);
}

typedef struct lk_bias_point {
    double eps, bias, bias_star;
    vs_solve_info info;
} lk_bias_point;

/* ---- JSON (a minimal writer: the CLI's conventions, non-finite -> null) -------- */

static void js_num(FILE *f, double v) {
    if (isfinite(v)) fprintf(f, "%.9g", v);
    else fputs("null", f);
}

static void js_info(FILE *f, const vs_solve_info *in) {
    fprintf(f, "\"iterations\": %u, \"converged\": %s, \"residual\": ", in->iterations,
            in->converged ? "true" : "false");
    js_num(f, in->residual);
    fputs(", \"gap\": ", f);
    js_num(f, in->gap);
    fprintf(f, ", \"face_size\": %u, \"leakage_bound\": ", in->face_size);
    js_num(f, in->leakage_bound);
    fputs(", \"effective_support\": ", f);
    js_num(f, in->effective_support);
}

int vs_cli_leakage(int argc, char **argv) {
    lk_opts o;
    lk_parse(argc, argv, &o);
    if (o.help) return fputs(help_leakage, stdout), 0;
    if (o.isa) {
        int st = vs_set_isa(o.isa);
        if (st != VS_OK) lk_usage("--isa %s: %s", o.isa, vs_strerror(st));
    }
    double *astar = lk_malloc(o.m * sizeof *astar);
    {
        double s = 0;
        for (uint32_t i = 0; i < o.m; i++) s += astar[i] = (double)(o.m - i);
        for (uint32_t i = 0; i < o.m; i++) astar[i] /= s;
    }
    lk_prob P;
    lk_prob_init(&P, o.n, o.d);
    lk_sweep *sw = calloc(2, sizeof *sw);
    if (!sw) lk_die("out of memory");
    for (int s = 0; s < 2; s++) {
        if (!o.quiet) fprintf(stderr, "%s: sweep %d/2 (%s varied), %zu points\n", LK_CMD, s + 1,
                              s == 0 ? "eps" : "Delta", o.nx);
        lk_run_sweep(&o, astar, &P, &sw[s], s == 0);
    }

    /* on-face bias: FW's alpha (= alpha* up to its tolerance) vs EG's */
    lk_bias_point *bp = lk_malloc((o.nbias + 1) * sizeof *bp);
    vs_solve_info fw_info;
    memset(&fw_info, 0, sizeof fw_info);
    double fw_dev = NAN, bias_slope = NAN, bias_icept = NAN;
    if (o.nbias) {
        if (!o.quiet) fprintf(stderr, "%s: on-face bias, %zu points\n", LK_CMD, o.nbias);
        lk_planted(&P, o.m, astar, o.bias_delta, o.seed);
        int st = lk_solve(&P, VS_SOLVER_FW, 1.0, 100000, 1e-9, &fw_info);
        if (st != VS_OK) lk_die("vs_solve (FW) failed: %s (%d)", vs_strerror(st), st);
        double *afw = lk_malloc(o.m * sizeof *afw);
        fw_dev = 0;
        for (uint32_t i = 0; i < o.m; i++) {
            afw[i] = P.alpha[i];
            fw_dev = fmax(fw_dev, fabs(afw[i] - astar[i]));
        }
        double lx[LK_MAX_X], ly[LK_MAX_X];
        int nl = 0;
        for (size_t k = 0; k < o.nbias; k++) {
            bp[k].eps = o.bias_eps[k];
            st = lk_solve(&P, VS_SOLVER_EG, bp[k].eps, 2 * o.max_iter, fmax(o.tol, 1e-12), &bp[k].info);
            if (st != VS_OK) lk_die("vs_solve (EG, eps %g) failed: %s (%d)", bp[k].eps, vs_strerror(st), st);
            double b = 0, bs = 0;
            for (uint32_t i = 0; i < o.m; i++) {
                b += fabs((double)P.alpha[i] - afw[i]);
                bs += fabs((double)P.alpha[i] - astar[i]);
            }
            bp[k].bias = b;
            bp[k].bias_star = bs;
            if (b > 0) lx[nl] = log(bp[k].eps), ly[nl] = log(b), nl++;
        }
        lk_fit(lx, ly, nl, &bias_slope, &bias_icept);
        free(afw);
    }

    const int violations = sw[0].violations + sw[1].violations;
    if (o.json) {
        FILE *f = stdout;
        fprintf(f, "{\n  \"command\": \"leakage\",\n  \"version\": \"%s\",\n  \"isa\": \"%s\",\n",
                vs_version_string(), vs_isa_name());
        fprintf(f, "  \"problem\": {\"face_keys\": %u, \"keys\": %u, \"dim\": %u, \"seed\": %llu, "
                   "\"h\": 1, \"alpha_star\": [",
                o.m, o.n, o.d, (unsigned long long)o.seed);
        for (uint32_t i = 0; i < o.m; i++) {
            if (i) fputs(", ", f);
            js_num(f, astar[i]);
        }
        fputs("]},\n", f);
        fprintf(f, "  \"solver\": {\"name\": \"eg\", \"tol\": ");
        js_num(f, o.tol);
        fprintf(f, ", \"max_iter\": %u},\n", o.max_iter);
        fputs("  \"bound_form\": \"(n - m)/m * exp(-Delta / (2 eps))\",\n", f);
        fputs("  \"fixed_point_form\": \"(n - m)/m * exp(-Delta / eps)\",\n", f);
        fputs("  \"fit_from\": ", f);
        js_num(f, o.fit_from);
        fprintf(f, ",\n  \"bound_violations\": %d,\n  \"sweeps\": [\n", violations);
        for (int s = 0; s < 2; s++) {
            const lk_sweep *S = &sw[s];
            fprintf(f, "    {\"varied\": \"%s\", \"%s\": ", S->name, S->fixed_name);
            js_num(f, S->fixed);
            fputs(", \"slope\": ", f);
            js_num(f, S->slope);
            fputs(", \"intercept\": ", f);
            js_num(f, S->intercept);
            fprintf(f, ", \"fit_points\": %d, \"bound_violations\": %d, \"points\": [\n",
                    S->fit_points, S->violations);
            for (size_t k = 0; k < S->n; k++) {
                const lk_point *p = &S->pt[k];
                fputs("      {\"x\": ", f);
                js_num(f, p->x);
                fputs(", \"delta\": ", f);
                js_num(f, p->delta);
                fputs(", \"eps\": ", f);
                js_num(f, p->eps);
                fputs(", \"mass\": ", f);
                js_num(f, p->mass);
                fputs(", \"bound\": ", f);
                js_num(f, p->bound);
                fputs(", \"fixed_point\": ", f);
                js_num(f, p->fixed_point);
                fputs(", ", f);
                js_info(f, &p->info);
                fprintf(f, "}%s\n", k + 1 < S->n ? "," : "");
            }
            fprintf(f, "    ]}%s\n", s == 0 ? "," : "");
        }
        fputs("  ],\n", f);
        if (o.nbias) {
            fputs("  \"bias\": {\"delta\": ", f);
            js_num(f, o.bias_delta);
            fputs(", \"fw_vs_alpha_star\": ", f);
            js_num(f, fw_dev);
            fputs(", \"slope\": ", f);
            js_num(f, bias_slope);
            fputs(", \"intercept\": ", f);
            js_num(f, bias_icept);
            fputs(", \"points\": [\n", f);
            for (size_t k = 0; k < o.nbias; k++) {
                fputs("    {\"eps\": ", f);
                js_num(f, bp[k].eps);
                fputs(", \"bias\": ", f);
                js_num(f, bp[k].bias);
                fputs(", \"bias_vs_alpha_star\": ", f);
                js_num(f, bp[k].bias_star);
                fputs(", ", f);
                js_info(f, &bp[k].info);
                fprintf(f, "}%s\n", k + 1 < o.nbias ? "," : "");
            }
            fputs("  ]}\n", f);
        } else {
            fputs("  \"bias\": null\n", f);
        }
        fputs("}\n", f);
    } else {
        printf("vashista leakage: EG off-face mass on planted-gap problems, isa %s\n", vs_isa_name());
        printf("problem: m = %u face keys, alpha* =", o.m);
        for (uint32_t i = 0; i < o.m && i < 8; i++) printf(" %.4g", astar[i]);
        printf("%s; n = %u keys, d = %u, seed %llu; every off-face multiplier = Delta\n",
               o.m > 8 ? " ..." : "", o.n, o.d, (unsigned long long)o.seed);
        printf("solver: EG, tol %g, max_iter %u; bound: (n-m)/m exp(-Delta/(2 eps)) (DESIGN section 2)\n",
               o.tol, o.max_iter);
        for (int s = 0; s < 2; s++) {
            const lk_sweep *S = &sw[s];
            printf("\nsweep %d: %s varied, %s = %g\n", s + 1, S->varied, s == 0 ? "Delta" : "eps",
                   S->fixed);
            printf("%9s %9s %9s %12s %12s %9s %12s %9s %5s %7s %9s\n", "Delta/eps", "Delta", "eps",
                   "off mass", "bound", "mass/bnd", "own bound", "gap", "face", "iters", "residual");
            for (size_t k = 0; k < S->n; k++) {
                const lk_point *p = &S->pt[k];
                printf("%9g %9.4g %9.4g %12.4g %12.4g %9.3g %12.4g %9.4g %5u %7u %8.2g%s\n", p->x,
                       p->delta, p->eps, p->mass, p->bound, p->mass / p->bound,
                       (double)p->info.leakage_bound, (double)p->info.gap, p->info.face_size,
                       p->info.iterations, (double)p->info.residual, p->info.converged ? "" : "*");
            }
            printf("fit over Delta/eps >= %g (%d points): log(mass) = %.4f %+.4f Delta/eps\n",
                   o.fit_from, S->fit_points, S->intercept, S->slope);
        }
        printf("\nfitted slopes: %.4f (eps sweep), %.4f (Delta sweep); the fixed point predicts -1, "
               "the bound's exponent is -1/2\n",
               sw[0].slope, sw[1].slope);
        int stopped = 0;
        for (int s = 0; s < 2; s++)
            for (size_t k = 0; k < sw[s].n; k++) stopped |= !sw[s].pt[k].info.converged;
        for (size_t k = 0; k < o.nbias; k++) stopped |= !bp[k].info.converged;
        printf("bound violations: %d%s\n", violations,
               stopped ? "; residual*: stopped by --max-iter before reaching --tol" : "");
        if (o.nbias) {
            printf("\non-face bias at Delta = %g (FW vs alpha*: %.3g):\n", o.bias_delta, fw_dev);
            printf("%9s %14s %14s %7s %9s\n", "eps", "|a_eps-a_FW|_1", "|a_eps-a*|_1", "iters",
                   "residual");
            for (size_t k = 0; k < o.nbias; k++)
                printf("%9.4g %14.4g %14.4g %7u %8.2g%s\n", bp[k].eps, bp[k].bias, bp[k].bias_star,
                       bp[k].info.iterations, (double)bp[k].info.residual,
                       bp[k].info.converged ? "" : "*");
            printf("log-log slope of the bias against eps: %.4f (theory: 1)\n", bias_slope);
        }
    }
    free(bp);
    free(sw);
    free(astar);
    lk_prob_free(&P);
    return violations ? 1 : 0;
}
