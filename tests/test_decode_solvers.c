/*
 * vs_decode with the projection solvers (VS_SOLVER_EG, VS_SOLVER_FW), end to
 * end through the public API, against float64 references written here:
 *
 *   - EG reference: the exact entropic projection over ALL T tokens of a KV
 *     head, in key units (the score-unit problem
 *       min_{simplex} scale/2 ||U a - q||^2 + eps sum a log a
 *     is the key-unit one with e = eps / scale), by damped Newton on its dual
 *       Phi(w) = e lse(-U^T w / e) + <w, q> + 1/2 ||w||^2.
 *     Its own accuracy is certified: with a_w = softmax(-U^T w / e) and
 *     z = U a_w, the duality gap F(a_w) - D(w) is exactly 1/2 ||w + q - z||^2
 *     (no cancellation), and F is e-strongly convex in l1 (Pinsker), so
 *     ||a_w - a*||_1 <= ||w + q - z|| / sqrt(e) =: l1_ref.
 *   - FW reference: p*, the Euclidean projection of q onto conv(all T keys),
 *     by Wolfe's minimum-norm-point algorithm on {k_j - q} (finite, exact up
 *     to rounding; corral solves on the difference Gram). Its accuracy is
 *     certified by its own Frank-Wolfe gap: for p in the hull,
 *     ||p - p*||^2 <= gap_ref = max_j <q - p, k_j - p> (plus stated double
 *     rounding terms), so ||p - p*|| <= sqrt(gap_ref) =: r_ref.
 *
 * Values are built as v_j = [k_j ; extra_j] (dv = d + de): the first d output
 * coordinates are then U alpha, so the fw certificate (a statement about the
 * key-space point U alpha, alpha not being exposed) is directly checkable on
 * the output, and the extra coordinates exercise ordinary values.
 *
 * fw output slack (stated): out[0:d] = fl(sum_i alpha_i k_i) with float
 * alpha_i = fl(alpha_i^double); the library certifies the double point
 * U alpha / sum(alpha). Recursive summation (any order, any blocking) of n
 * products is within gamma(n + 1) sum_i alpha_i ||k_i|| (Higham), and the
 * normalization adds at most 2^-24 * max ||k||, so
 *   slack_fw = (gamma(n_acc + 2) + 2^-23) * max_j ||k_j||,
 *   n_acc = min(|C|, 256) + ceil(|C| / 256) (the library's blocking).
 *
 * Sections:
 *  1. Full coverage (P >= pages, Kc >= T), solver_tol 1e-9: eg output vs the
 *     entropic reference within error_bound, rho_cert = 0; fw output vs p*
 *     within error_bound + slack; residual <= solver_tol; and the bound is as
 *     small as a converged solve certifies (converged_bound: eg
 *     vmax sqrt(8 tol / eps), fw sqrt(2 G / scale) with G = 4 tol + the FW gap
 *     that rounding alpha to float adds; the share <= 1e-3 ||out|| is printed).
 *     T <= d (affinely independent keys, unique weights): the whole fw output
 *     vs V alpha*, face_size vs |supp alpha*|, gap vs the float64 gap.
 *  2. Certificate validity on sparse selections: seeded trials over random,
 *     inside-the-hull, scaled-query and planted-needle geometries, P, Kc,
 *     page sizes, sink / recent pages, eps, max_iter and solver_tol varied,
 *     half of them GQA 4x2, a third of the random ones routed by the tree
 *     (pages 1-8, expand 1-3: most nodes unexpanded, certified by their node
 *     bounds): eg ||out - V alpha*_T|| <= error_bound, off-C
 *     mass of alpha*_T <= rho_cert, mass off the face <= leakage_bound; fw
 *     ||out[0:d] - p*|| <= error_bound (+ slack), rho_cert, leakage_bound.
 *     How often the bound is informative (< 0.1 ||ref||) is printed; a
 *     "designed" needle set (every needle routable and a candidate, small
 *     eps, converged) must be informative in >= 90% of heads.
 *  3. Sensitivity: error_bound x 0.1 (and rho_cert x 0.1) would be violated
 *     in a number of heads (beyond the references' radii), so the checks
 *     above have teeth; a full-coverage set stopped after 1-3 iterations
 *     adds heads where the bound is tight.
 *  4. Tolerance ladder: every head ends within tolerance or dense with
 *     candidates = T (and every page routed); the dense fallback matches the
 *     float64 references and, converged, certifies a small bound.
 *  5. Solver stopping: eg residual <= solver_tol when iterations < max_iter,
 *     iterations <= max_iter; max_iter = 1 gives <= 1 iteration, the same
 *     selection and a valid bound, and over every token a bound >= the
 *     converged one.
 *  6. face_size: softmax = candidates; softmax dense fallback = T; eg/fw in
 *     [1, candidates].
 *  7. Determinism: identical bits (outputs, diagnostics, selections) across
 *     two calls and across every ISA.
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "testutil.h"
#include "vashista.h"

#define U24 (1.0 / 16777216.0)
#define CHUNK 256 /* the library's accumulation block (VS_CHUNK_TOKENS) */


static double gamma_n(double n) { return n * U24 / (1.0 - n * U24); }

/* ---- instances -------------------------------------------------------------------- */

enum { GEOM_RANDOM = 0, GEOM_INSIDE = 1, GEOM_SCALED = 2, GEOM_NEEDLE = 3, NGEOM = 4 };
static const char *geom_name[NGEOM] = {"random", "inside", "scaled", "needle"};

typedef struct inst {
    uint32_t H, G, d, de, dv, S, T;
    float *k, *v, *q; /* k [T][G][d], v [T][G][dv] with v = [k ; extra], q [H][d] */
    float scale;      /* the float scale the library uses: (float)(1/sqrt(d)) */
    vs_cache *c;
    /* float64 references per head, computed on demand */
    double **ent_alpha; /* [H][T] (for ent_eps) */
    double *ent_l1;     /* [H] */
    double ent_eps;     /* score units; 0: none computed */
    double **proj_p;    /* [H][d] */
    double **proj_lam;  /* [H][T] */
    double *proj_r;     /* [H] */
} inst;

static const float *key(const inst *x, uint32_t g, uint32_t t) {
    return x->k + ((size_t)t * x->G + g) * x->d;
}
static const float *val(const inst *x, uint32_t g, uint32_t t) {
    return x->v + ((size_t)t * x->G + g) * x->dv;
}
static uint32_t group_of(const inst *x, uint32_t h) { return h / (x->H / x->G); }

static void inst_values_and_cache(inst *x, vs_test_rng *r, double vsig) {
    for (uint32_t t = 0; t < x->T; t++)
        for (uint32_t g = 0; g < x->G; g++) {
            float *v = x->v + ((size_t)t * x->G + g) * x->dv;
            memcpy(v, key(x, g, t), x->d * sizeof(float));
            for (uint32_t j = 0; j < x->de; j++) v[x->d + j] = (float)(vsig * vs_test_normal(r));
        }
    x->scale = (float)(1.0 / sqrt((double)x->d));
    vs_cache_config cfg = {x->H, x->G, x->d, x->dv, x->S, VS_DTYPE_F32};
    CHECK_STATUS(vs_cache_create(&cfg, &x->c), VS_OK);
    CHECK_STATUS(vs_cache_append(x->c, x->k, (size_t)x->T * x->G * x->d, x->v,
                                 (size_t)x->T * x->G * x->dv),
                 VS_OK);
    x->ent_alpha = vs_test_xmalloc(x->H * sizeof(double *));
    x->ent_l1 = vs_test_xmalloc(x->H * sizeof(double));
    x->proj_p = vs_test_xmalloc(x->H * sizeof(double *));
    x->proj_lam = vs_test_xmalloc(x->H * sizeof(double *));
    x->proj_r = vs_test_xmalloc(x->H * sizeof(double));
    for (uint32_t h = 0; h < x->H; h++) x->ent_alpha[h] = x->proj_p[h] = x->proj_lam[h] = NULL;
    x->ent_eps = 0;
}

/* Keys and queries of a geometry; then values and the cache. */
static inst make(uint32_t H, uint32_t G, uint32_t d, uint32_t de, uint32_t S, uint32_t T, int geom,
                 vs_test_rng *r) {
    inst x;
    memset(&x, 0, sizeof x);
    x.H = H, x.G = G, x.d = d, x.de = de, x.dv = d + de, x.S = S, x.T = T;
    x.k = vs_test_xmalloc(sizeof(float) * T * G * d);
    x.v = vs_test_xmalloc(sizeof(float) * T * G * x.dv);
    x.q = vs_test_xmalloc(sizeof(float) * H * d);
    const uint32_t group = H / G;
    if (geom == GEOM_RANDOM) {
        /* page-clustered keys (a drifting center plus noise), q of random magnitude */
        const double mag = pow(10.0, vs_test_uniform(r) - 0.5);
        double *center = vs_test_xmalloc(d * sizeof(double));
        for (uint32_t j = 0; j < d; j++) center[j] = 0;
        for (uint32_t t = 0; t < T; t++) {
            if (t % S == 0)
                for (uint32_t j = 0; j < d; j++) center[j] = 0.7 * center[j] + vs_test_normal(r);
            for (uint32_t g = 0; g < G; g++)
                for (uint32_t j = 0; j < d; j++)
                    x.k[((size_t)t * G + g) * d + j] = (float)(center[j] + 0.4 * vs_test_normal(r));
        }
        free(center);
        vs_test_fill_normal(r, x.q, (size_t)H * d, 2.0 * mag);
    } else if (geom == GEOM_INSIDE) {
        /* q a convex combination of a few keys (plus a little noise): the
           projection is (about) q itself, weights diffuse and not unique */
        vs_test_fill_normal(r, x.k, (size_t)T * G * d, 1.0);
        for (uint32_t h = 0; h < H; h++) {
            const uint32_t g = h / group;
            float *qh = x.q + (size_t)h * d;
            for (uint32_t j = 0; j < d; j++) qh[j] = (float)(0.05 * vs_test_normal(r));
            for (int m = 0; m < 4; m++) {
                const uint32_t t = (uint32_t)(vs_test_next(r) % T);
                for (uint32_t j = 0; j < d; j++) qh[j] += 0.25f * key(&x, g, t)[j];
            }
        }
    } else if (geom == GEOM_SCALED) {
        /* isotropic keys, q far outside the hull: the projection lands on the
           top-scoring keys, but page boxes of isotropic keys are loose */
        vs_test_fill_normal(r, x.k, (size_t)T * G * d, 1.0);
        const double lam = pow(10.0, 0.5 + vs_test_uniform(r));
        vs_test_fill_normal(r, x.q, (size_t)H * d, lam);
    } else { /* GEOM_NEEDLE */
        /* a planted face: per KV head an axis a and sign; 1..4 needle keys at
           random depths with k_a = sgn c, q_h with q_a = sgn lambda, lambda >
           c: the projection of q is on the needle face, far (in adjusted score)
           above every other key, and page boxes see it in channel a */
        vs_test_fill_normal(r, x.k, (size_t)T * G * d, 1.0);
        vs_test_fill_normal(r, x.q, (size_t)H * d, 0.3);
        for (uint32_t g = 0; g < G; g++) {
            const uint32_t a = (uint32_t)(vs_test_next(r) % d);
            const float sgn = vs_test_next(r) % 2 ? 1.0f : -1.0f;
            const double c = 6.0 + 4.0 * vs_test_uniform(r);
            const uint32_t m = 1 + (uint32_t)(vs_test_next(r) % 4);
            for (uint32_t i = 0; i < m; i++) {
                const uint32_t t = (uint32_t)(vs_test_next(r) % T);
                float *k = x.k + ((size_t)t * G + g) * d;
                for (uint32_t j = 0; j < d; j++) k[j] = (float)(0.3 * vs_test_normal(r));
                k[a] = (float)(sgn * (c + 0.2 * vs_test_normal(r)));
            }
            for (uint32_t h = g * group; h < (g + 1) * group; h++)
                x.q[(size_t)h * d + a] = (float)(sgn * c * (1.5 + vs_test_uniform(r)));
        }
    }
    inst_values_and_cache(&x, r, 1.0);
    return x;
}

static void drop(inst *x) {
    vs_cache_free(x->c);
    for (uint32_t h = 0; h < x->H; h++) {
        free(x->ent_alpha[h]);
        free(x->proj_p[h]);
        free(x->proj_lam[h]);
    }
    free(x->ent_alpha), free(x->ent_l1), free(x->proj_p), free(x->proj_lam), free(x->proj_r);
    free(x->k), free(x->v), free(x->q);
}

/* ---- reference 1: entropic projection over all T tokens (dual Newton) ------------------ */

/* Phi(w) and t_i = -<k_i, w> / e, lse = log sum e^t. */
static double dual_phi(const inst *x, uint32_t g, const double *q, const double *w, double e,
                       double *t, double *lse_out) {
    const uint32_t d = x->d;
    double m = -INFINITY;
    for (uint32_t i = 0; i < x->T; i++) {
        const float *k = key(x, g, i);
        double s = 0;
        for (uint32_t j = 0; j < d; j++) s += (double)k[j] * w[j];
        t[i] = -s / e;
        m = fmax(m, t[i]);
    }
    double s = 0;
    for (uint32_t i = 0; i < x->T; i++) s += exp(t[i] - m);
    const double lse = m + log(s);
    if (lse_out) *lse_out = lse;
    double v = e * lse;
    for (uint32_t j = 0; j < d; j++) v += w[j] * q[j] + 0.5 * w[j] * w[j];
    return v;
}

/* pi = softmax(t), z = U pi, grad = w + q - z; returns ||grad||_2. */
static double dual_grad(const inst *x, uint32_t g, const double *q, const double *w,
                        const double *t, double lse, double *pi, double *z, double *grad) {
    const uint32_t d = x->d;
    for (uint32_t j = 0; j < d; j++) z[j] = 0;
    for (uint32_t i = 0; i < x->T; i++) {
        pi[i] = exp(t[i] - lse);
        if (pi[i] == 0) continue;
        const float *k = key(x, g, i);
        for (uint32_t j = 0; j < d; j++) z[j] += pi[i] * k[j];
    }
    double n2 = 0;
    for (uint32_t j = 0; j < d; j++) {
        grad[j] = w[j] + q[j] - z[j];
        n2 += grad[j] * grad[j];
    }
    return sqrt(n2);
}

typedef struct newton_ws {
    double *q, *w, *wn, *best, *t, *tn, *pi, *z, *grad, *gn, *Hm, *step;
    double qn, kmax;
} newton_ws;

/* Damped Newton on Phi for temperature e from W->w; leaves the best w (by
   gradient norm) in W->w. Stops at gnorm <= stop, or at the rounding floor. */
static void newton(const inst *x, uint32_t g, newton_ws *W, double e, double stop) {
    const uint32_t d = x->d, T = x->T;
    double lse, best_gn = INFINITY;
    double phi = dual_phi(x, g, W->q, W->w, e, W->t, &lse);
    int stalled = 0;
    for (int it = 0; it < 500; it++) {
        const double gnorm = dual_grad(x, g, W->q, W->w, W->t, lse, W->pi, W->z, W->grad);
        if (gnorm < best_gn) {
            best_gn = gnorm;
            memcpy(W->best, W->w, d * sizeof(double));
            stalled = 0;
        } else if (best_gn <= 1e-9 * (1 + W->qn + W->kmax) && ++stalled >= 4) {
            break; /* at the rounding floor */
        }
        if (gnorm <= stop) break;
        /* Hessian I + Cov_pi(k) / e (tokens of negligible weight skipped: they
           change the Newton direction, never the fixed point) */
        double *Hm = W->Hm;
        for (uint32_t a = 0; a < d * d; a++) Hm[a] = 0;
        for (uint32_t i = 0; i < T; i++) {
            if (W->pi[i] < 1e-18) continue;
            const float *k = key(x, g, i);
            for (uint32_t a = 0; a < d; a++) {
                const double ka = W->pi[i] * (k[a] - W->z[a]);
                for (uint32_t b = 0; b <= a; b++) Hm[a * d + b] += ka * (k[b] - W->z[b]);
            }
        }
        for (uint32_t a = 0; a < d; a++)
            for (uint32_t b = 0; b <= a; b++) {
                const double v = (a == b) + Hm[a * d + b] / e;
                Hm[a * d + b] = Hm[b * d + a] = v;
            }
        for (uint32_t j = 0; j < d; j++) W->step[j] = -W->grad[j];
        if (!vs_test_gauss(Hm, W->step, (int)d, 1e-14)) break;
        double slope = 0;
        for (uint32_t j = 0; j < d; j++) slope += W->grad[j] * W->step[j];
        /* Armijo on Phi; once Phi no longer resolves the predicted decrease
           (the quadratic phase, at the rounding floor), a step that reduces
           the gradient norm is accepted instead */
        const int unresolved = -slope <= 1e-12 * (1 + fabs(phi));
        int accepted = 0;
        double lse_n = 0, phin = 0;
        for (double sz = 1; sz > 1e-20; sz *= 0.5) {
            for (uint32_t j = 0; j < d; j++) W->wn[j] = W->w[j] + sz * W->step[j];
            phin = dual_phi(x, g, W->q, W->wn, e, W->tn, &lse_n);
            if (unresolved ? dual_grad(x, g, W->q, W->wn, W->tn, lse_n, W->pi, W->z, W->gn) < gnorm
                           : phin <= phi + 1e-4 * sz * slope) {
                accepted = 1;
                break;
            }
        }
        if (!accepted) break;
        memcpy(W->w, W->wn, d * sizeof(double));
        memcpy(W->t, W->tn, T * sizeof(double));
        lse = lse_n;
        phi = phin;
    }
    memcpy(W->w, W->best, d * sizeof(double));
}

/* alpha*_T (T doubles) of head h for eps (score units) and its certified l1
   radius. Continuation in the temperature: from e0 >= the keys' squared
   spread, where Phi is nearly quadratic, down to e by factors of 8, each
   stage warm-started from the last (Newton from a cold start can crawl when
   e is small against the keys' spread: lse is then nearly piecewise linear). */
static double ent_reference(const inst *x, uint32_t h, double eps_score, double *alpha) {
    const uint32_t d = x->d, T = x->T, g = group_of(x, h);
    const double e = eps_score / (double)x->scale;
    newton_ws W;
    double **all[] = {&W.q, &W.w, &W.wn, &W.best, &W.z, &W.grad, &W.gn, &W.step};
    for (size_t i = 0; i < sizeof all / sizeof all[0]; i++) *all[i] = vs_test_xmalloc(d * sizeof(double));
    W.t = vs_test_xmalloc(T * sizeof(double)), W.tn = vs_test_xmalloc(T * sizeof(double));
    W.pi = vs_test_xmalloc(T * sizeof(double)), W.Hm = vs_test_xmalloc(d * d * sizeof(double));
    double qn = 0, kmax = 0, spread = 0;
    for (uint32_t j = 0; j < d; j++) {
        W.q[j] = x->q[(size_t)h * d + j];
        qn += W.q[j] * W.q[j];
    }
    for (uint32_t j = 0; j < d; j++) { /* mean key; w = mean - q */
        double sm = 0;
        for (uint32_t i = 0; i < T; i++) sm += key(x, g, i)[j];
        W.z[j] = sm / T;
        W.w[j] = W.z[j] - W.q[j];
    }
    for (uint32_t i = 0; i < T; i++) {
        double sk = 0, sd = 0;
        for (uint32_t j = 0; j < d; j++) {
            const double kj = key(x, g, i)[j];
            sk += kj * kj;
            sd += (kj - W.z[j]) * (kj - W.z[j]);
        }
        kmax = fmax(kmax, sqrt(sk));
        spread = fmax(spread, sd);
    }
    W.qn = qn = sqrt(qn);
    W.kmax = kmax;
    double ec = fmax(e, spread);
    for (;;) {
        const int last = ec <= e;
        newton(x, g, &W, last ? e : ec, last ? 1e-15 * (1 + qn + kmax) : 1e-8 * (1 + qn + kmax));
        if (last) break;
        ec = fmax(e, ec / 8);
    }
    /* the returned weights are those of the final w; their certified radius */
    double lse;
    (void)dual_phi(x, g, W.q, W.w, e, W.t, &lse);
    const double gnorm = dual_grad(x, g, W.q, W.w, W.t, lse, alpha, W.z, W.grad);
    /* + the double rounding of evaluating the gradient */
    const double l1 = (gnorm + 1e-14 * (kmax + qn + 1.0)) / sqrt(e);
    for (size_t i = 0; i < sizeof all / sizeof all[0]; i++) free(*all[i]);
    free(W.t), free(W.tn), free(W.pi), free(W.Hm);
    return l1;
}

/* ---- reference 2: projection of q onto conv(all T keys) (Wolfe) ------------------------- */

#define MAXCORRAL 72

/* p (d doubles), weights lam (T doubles, on the corral); returns a certified
   radius >= ||p - p*|| (about sqrt(gap_ref), below). */
static double proj_reference(const inst *x, uint32_t h, double *p, double *lam) {
    const uint32_t d = x->d, T = x->T, g = group_of(x, h);
    const float *qf = x->q + (size_t)h * d;
    uint32_t Sx[MAXCORRAL];
    double l[MAXCORRAL], mu[MAXCORRAL], A[MAXCORRAL * MAXCORRAL], b[MAXCORRAL];
    double *rr = vs_test_xmalloc(d * sizeof(double));
    /* start: the key nearest q */
    uint32_t s0 = 0;
    double dmin = INFINITY;
    for (uint32_t i = 0; i < T; i++) {
        double s = 0;
        for (uint32_t j = 0; j < d; j++) {
            const double e = (double)key(x, g, i)[j] - qf[j];
            s += e * e;
        }
        if (s < dmin) dmin = s, s0 = i;
    }
    int m = 1;
    Sx[0] = s0;
    l[0] = 1;
    for (int major = 0; major < 20000; major++) {
        for (uint32_t j = 0; j < d; j++) {
            double s = 0;
            for (int i = 0; i < m; i++) s += l[i] * key(x, g, Sx[i])[j];
            p[j] = s;
            rr[j] = qf[j] - p[j]; /* q - p = -x */
        }
        /* the FW vertex: argmax_j <q - p, k_j - p>, i.e. argmin_j <x, P_j> */
        uint32_t jb = 0;
        double gb = -INFINITY;
        for (uint32_t i = 0; i < T; i++) {
            double s = 0;
            for (uint32_t j = 0; j < d; j++) s += rr[j] * ((double)key(x, g, i)[j] - p[j]);
            if (s > gb) gb = s, jb = i;
        }
        double rn = 0;
        for (uint32_t j = 0; j < d; j++) rn += rr[j] * rr[j];
        if (gb <= 1e-15 * (rn + 1e-300)) break;
        int in = 0;
        for (int i = 0; i < m; i++) in |= Sx[i] == jb;
        if (in || m == MAXCORRAL) break; /* no progress at this precision */
        Sx[m] = jb;
        l[m] = 0;
        m++;
        for (int minor = 0; minor < 200; minor++) {
            /* affine minimizer of ||y - q|| over aff(S): y = k_S0 + sum_i beta_i D_i,
               D_i = k_Si - k_S0, (D^T D) beta = D^T (q - k_S0) */
            const int n1 = m - 1;
            const float *k0 = key(x, g, Sx[0]);
            for (int a = 0; a < n1; a++) {
                const float *ka = key(x, g, Sx[a + 1]);
                for (int c = 0; c <= a; c++) {
                    const float *kc = key(x, g, Sx[c + 1]);
                    double s = 0;
                    for (uint32_t j = 0; j < d; j++)
                        s += ((double)ka[j] - k0[j]) * ((double)kc[j] - k0[j]);
                    A[a * n1 + c] = A[c * n1 + a] = s;
                }
                double s = 0;
                for (uint32_t j = 0; j < d; j++)
                    s += ((double)ka[j] - k0[j]) * ((double)qf[j] - k0[j]);
                b[a] = s;
            }
            if (n1 > 0 && !vs_test_gauss(A, b, n1, 1e-14)) { /* affinely dependent corral: drop the newcomer */
                m--;
                major = 1 << 30;
                break;
            }
            double s = 0;
            for (int a = 0; a < n1; a++) mu[a + 1] = b[a], s += b[a];
            mu[0] = 1 - s;
            int pos = 1;
            for (int i = 0; i < m; i++) pos &= mu[i] > 0;
            if (pos) {
                memcpy(l, mu, m * sizeof *l);
                break;
            }
            double theta = 1;
            int arg = -1;
            for (int i = 0; i < m; i++)
                if (mu[i] <= 0) {
                    const double th = l[i] / (l[i] - mu[i]);
                    if (th < theta || arg < 0) theta = th, arg = i;
                }
            for (int i = 0; i < m; i++) l[i] = theta * mu[i] + (1 - theta) * l[i];
            l[arg] = 0;
            int k = 0; /* drop zero weights, keep the order */
            for (int i = 0; i < m; i++)
                if (l[i] > 0) Sx[k] = Sx[i], l[k] = l[i], k++;
            m = k;
        }
    }
    /* final point from the normalized weights, and its certified radius.
       For p~ in the hull, <q - p*, p~ - p*> <= 0 gives
         ||p~ - p*||^2 <= <q - p~, p* - p~> <= max_j <q - p~, k_j - p~> = gap(p~).
       The computed p is within dp = 4 (m + 2) u max||k|| of the convex
       combination p~ = sum lam_i k_i / sum lam_i (u = 2^-53 rounding), so
         gap(p~) <= gap(p) + dp (||q - p|| + max_j ||k_j - p|| + dp),
       and gap(p) is evaluated within (d + 4) 2u ||q - p|| max_j ||k_j - p||. */
    double ls = 0, kmax = 0;
    for (int i = 0; i < m; i++) ls += l[i];
    for (uint32_t i = 0; i < T; i++) lam[i] = 0;
    for (int i = 0; i < m; i++) lam[Sx[i]] = l[i] / ls;
    for (uint32_t j = 0; j < d; j++) {
        double sm = 0;
        for (int i = 0; i < m; i++) sm += lam[Sx[i]] * key(x, g, Sx[i])[j];
        p[j] = sm;
        rr[j] = qf[j] - p[j];
    }
    double gap = -INFINITY, rn = 0, diam = 0;
    for (uint32_t j = 0; j < d; j++) rn += rr[j] * rr[j];
    rn = sqrt(rn);
    for (uint32_t i = 0; i < T; i++) {
        double sm = 0, dd = 0, kk = 0;
        for (uint32_t j = 0; j < d; j++) {
            const double e = (double)key(x, g, i)[j] - p[j];
            sm += rr[j] * e;
            dd += e * e;
            kk += (double)key(x, g, i)[j] * key(x, g, i)[j];
        }
        gap = fmax(gap, sm);
        diam = fmax(diam, sqrt(dd));
        kmax = fmax(kmax, sqrt(kk));
    }
    free(rr);
    const double u = 0x1p-53, dp = 4.0 * (m + 2) * u * kmax;
    gap += (d + 4) * 2 * u * rn * diam + dp * (rn + diam + dp);
    return dp + sqrt(gap > 0 ? gap : 0);
}

static void need_ent(inst *x, uint32_t h, double eps) {
    if (x->ent_eps != eps) {
        for (uint32_t i = 0; i < x->H; i++) {
            free(x->ent_alpha[i]);
            x->ent_alpha[i] = NULL;
        }
        x->ent_eps = eps;
    }
    if (!x->ent_alpha[h]) {
        x->ent_alpha[h] = vs_test_xmalloc(x->T * sizeof(double));
        x->ent_l1[h] = ent_reference(x, h, eps, x->ent_alpha[h]);
    }
}

static void need_proj(inst *x, uint32_t h) {
    if (!x->proj_p[h]) {
        x->proj_p[h] = vs_test_xmalloc(x->d * sizeof(double));
        x->proj_lam[h] = vs_test_xmalloc(x->T * sizeof(double));
        x->proj_r[h] = proj_reference(x, h, x->proj_p[h], x->proj_lam[h]);
    }
}

/* ---- checking one head ----------------------------------------------------------------- */

typedef struct stats {
    int heads, violations, informative, rho_viol;
    int over10;        /* error > 0.1 bound: would fail with the bound x 0.1 */
    int rho_over10;    /* off-C mass > 0.1 rho_cert */
    int rho_tested;    /* heads with rho_cert < 1 and off mass measurable */
    double worst;      /* max error / bound */
    double worst_rho;  /* max off mass / rho_cert */
    double worst_ref;  /* largest reference radius seen */
} stats;

static double max_norm_keys(const inst *x, uint32_t g) {
    double m = 0;
    for (uint32_t t = 0; t < x->T; t++) {
        double s = 0;
        for (uint32_t j = 0; j < x->d; j++) s += (double)key(x, g, t)[j] * key(x, g, t)[j];
        m = fmax(m, s);
    }
    return sqrt(m);
}

static double max_norm_vals(const inst *x, uint32_t g) {
    double m = 0;
    for (uint32_t t = 0; t < x->T; t++) {
        double s = 0;
        for (uint32_t j = 0; j < x->dv; j++) s += (double)val(x, g, t)[j] * val(x, g, t)[j];
        m = fmax(m, s);
    }
    return sqrt(m);
}

/* The fw float slack of the output's key part (see the top of the file). */
static double fw_slack(const inst *x, uint32_t g, size_t nc) {
    const double nacc = (double)(nc < CHUNK ? nc : CHUNK) + ceil((double)nc / CHUNK);
    return (gamma_n(nacc + 2) + 2 * U24) * max_norm_keys(x, g);
}

/* What a converged solve over every token should certify, from the theory
   of the bounds (an upper estimate, for "the bound is small" checks):
   eg: G ~ the solver's entropic gap <= solver_tol, bound = vmax sqrt(2 G / eps);
   fw: G <= solver_tol + the FW gap added by rounding alpha to float, about
   2^-23 (max|grad| + 2 max||k||^2) in key units (solvers.h), with
   |grad| <= max||k|| ||q - p*||; bound = sqrt(2 G / scale).
   A factor 4 of margin on each term. */
static double converged_bound(const inst *x, uint32_t h, const vs_decode_options *o) {
    const uint32_t g = group_of(x, h);
    if (o->solver == VS_SOLVER_EG) {
        const double vmax = max_norm_vals(x, g);
        return vmax * (sqrt(8.0 * o->solver_tol / o->eps) + 1e-5);
    }
    const double kmax = max_norm_keys(x, g);
    double dist = 0;
    for (uint32_t j = 0; j < x->d; j++) {
        const double e = x->q[(size_t)h * x->d + j] - x->proj_p[h][j];
        dist += e * e;
    }
    dist = sqrt(dist);
    const double sc = x->scale;
    const double G = 4.0 * o->solver_tol + 4.0 * sc * 2 * U24 * (kmax * dist + 2 * kmax * kmax);
    return sqrt(2 * G / sc) + 1e-6 * kmax;
}

static int leak_tested, n_decodes;
static double leak_worst;

static int cmp_desc(const void *a, const void *b) {
    const double x = *(const double *)a, y = *(const double *)b;
    return (x < y) - (x > y);
}

/* One head against the float64 references. err: the true error the bound is
   about; the check is err <= bound + radius (the reference's certified
   accuracy) + slack (fw: the stated float accumulation); ratios use err
   alone, and "a 10x smaller bound would be violated" needs
   err - radius - slack > 0.1 bound. off: the mass alpha*_T puts outside C. */
typedef struct head_result {
    double err, bound, radius, slack, off, ref_norm;
    int ok;
} head_result;

static head_result check_head(inst *x, uint32_t h, const vs_decode_options *o, const float *out,
                              const vs_head_diag *dg, const char *what) {
    head_result R = {0};
    const uint32_t g = group_of(x, h), d = x->d, dv = x->dv, T = x->T;
    const float *oh = out + (size_t)h * dv;
    uint32_t *cand = vs_test_xmalloc(T * sizeof(uint32_t));
    size_t nc = 0;
    CHECK_STATUS(vs_decode_candidates(x->c, h, cand, T, &nc), VS_OK);
    CHECK(nc == dg->candidates, "%s: %zu candidates listed, diag says %u", what, nc,
          dg->candidates);
    char *inC = calloc(T, 1);
    for (size_t i = 0; i < nc && i < T; i++) inC[cand[i]] = 1;
    R.bound = dg->error_bound;
    CHECK(dg->error_bound >= 0 && dg->rho_cert >= 0 && dg->rho_cert <= 1 &&
              dg->iterations <= o->max_iter && dg->face_size >= 1 &&
              dg->face_size <= dg->candidates && dg->residual >= 0 &&
              dg->leakage_bound >= 0 && dg->leakage_bound <= 1,
          "%s h%u: diag out of range (bound %g rho %g it %u face %u/%u res %g leak %g)", what, h,
          (double)dg->error_bound, (double)dg->rho_cert, dg->iterations, dg->face_size,
          dg->candidates, (double)dg->residual, (double)dg->leakage_bound);
    if (nc == T) CHECK(dg->rho_cert == 0.0f, "%s h%u: C is every token, rho_cert %g", what, h,
                       (double)dg->rho_cert);
    double on = 0;
    for (uint32_t j = 0; j < dv; j++) on += (double)oh[j] * oh[j];
    CHECK(fabs(sqrt(on) - dg->output_norm) <= 1e-6 * sqrt(on) + 1e-30,
          "%s h%u: output_norm %g vs ||out|| %g", what, h, (double)dg->output_norm, sqrt(on));
    if (o->solver == VS_SOLVER_EG) {
        need_ent(x, h, o->eps);
        const double *a = x->ent_alpha[h];
        double e2 = 0;
        for (uint32_t j = 0; j < dv; j++) {
            double s = 0;
            for (uint32_t t = 0; t < T; t++)
                if (a[t] != 0) s += a[t] * val(x, g, t)[j];
            e2 += (oh[j] - s) * (oh[j] - s);
        }
        R.err = sqrt(e2);
        R.radius = max_norm_vals(x, g) * x->ent_l1[h];
        R.ref_norm = sqrt(on);
        double off = 0;
        for (uint32_t t = 0; t < T; t++)
            if (!inC[t]) off += a[t];
        R.off = off;
        R.ok = R.err <= R.bound + R.radius + 1e-300;
        CHECK(R.ok, "%s h%u eg: ||out - V alpha*|| = %.6g > error_bound %.6g (+ ref radius %.3g)",
              what, h, R.err, R.bound, R.radius);
        CHECK(off <= dg->rho_cert + x->ent_l1[h] / 2 + 1e-300,
              "%s h%u eg: off-C mass of alpha* %.6g > rho_cert %.6g", what, h, off,
              (double)dg->rho_cert);
        /* leakage_bound: the mass off the face I, for a converged solve (the
           face theorem is about the fixed point; an iterate stopped by
           max_iter can be close to alpha* in l1 and still far from it in
           gradient, so its multiplier gap says little). Whatever I is, the
           mass alpha*_T puts outside its own |I| heaviest tokens is at most
           the mass it puts outside I; the returned alpha is within
           sqrt(2 G / eps) <= error_bound / vmax of alpha*_T in l1 */
        if (dg->face_size < T && dg->iterations < o->max_iter) {
            double *srt = vs_test_xmalloc(T * sizeof(double));
            memcpy(srt, a, T * sizeof(double));
            qsort(srt, T, sizeof(double), cmp_desc);
            double off_face = 0;
            for (uint32_t t = T; t-- > dg->face_size;) off_face += srt[t];
            free(srt);
            const double slack = R.bound / max_norm_vals(x, g) * (1 + 1e-6) / 2 + x->ent_l1[h] / 2;
            CHECK(off_face <= dg->leakage_bound + slack + 1e-300,
                  "%s h%u eg: mass off the %u heaviest tokens %.6g > leakage_bound %.6g + %.3g",
                  what, h, dg->face_size, off_face, (double)dg->leakage_bound, slack);
            if (dg->leakage_bound < 0.5) {
                leak_tested++;
                if (off_face > 0)
                    leak_worst = fmax(leak_worst, off_face / (dg->leakage_bound + slack));
            }
        }
    } else {
        need_proj(x, h);
        const double *p = x->proj_p[h];
        double e2 = 0, un = 0;
        for (uint32_t j = 0; j < d; j++) {
            e2 += (oh[j] - p[j]) * (oh[j] - p[j]);
            un += (double)oh[j] * oh[j];
        }
        R.err = sqrt(e2);
        R.radius = x->proj_r[h];
        R.slack = fw_slack(x, g, nc);
        R.ref_norm = sqrt(un); /* ||U alpha||, up to the slack */
        R.ok = R.err <= R.bound + R.radius + R.slack;
        CHECK(R.ok,
              "%s h%u fw: ||U alpha - p*|| = %.6g > error_bound %.6g (+ ref radius %.3g + slack "
              "%.3g)",
              what, h, R.err, R.bound, R.radius, R.slack);
        CHECK(dg->leakage_bound == 0.0f, "%s h%u fw: leakage_bound %g", what, h,
              (double)dg->leakage_bound);
        CHECK(nc == T ? dg->rho_cert == 0.0f : dg->rho_cert == 1.0f, "%s h%u fw: rho_cert %g",
              what, h, (double)dg->rho_cert);
    }
    free(cand);
    free(inC);
    return R;
}

static void record(stats *s, const head_result *R, const vs_head_diag *dg, uint32_t solver) {
    s->heads++;
    if (!R->ok) s->violations++;
    if (R->bound > 0 && R->err / R->bound > s->worst) s->worst = R->err / R->bound;
    if (R->bound < 0.1 * R->ref_norm) s->informative++;
    /* would a bound 10x smaller be violated (beyond the reference's own radius)? */
    if (R->err - R->radius - R->slack > 0.1 * R->bound) s->over10++;
    s->worst_ref = fmax(s->worst_ref, R->radius);
    if (solver == VS_SOLVER_EG && dg->rho_cert > 0 && dg->rho_cert < 1) {
        s->rho_tested++;
        s->worst_rho = fmax(s->worst_rho, R->off / dg->rho_cert);
        if (R->off > 0.1 * dg->rho_cert) s->rho_over10++;
    }
}

static vs_decode_options proj_options(uint32_t solver) {
    vs_decode_options o;
    vs_decode_options_default(&o);
    o.solver = solver;
    return o;
}

static int decode(inst *x, const vs_decode_options *o, float *out, vs_head_diag *dg) {
    return vs_decode(x->c, x->q, (size_t)x->H * x->d, o, out, (size_t)x->H * x->dv, dg, x->H);
}

/* ---- 1. full coverage -------------------------------------------------------------------- */

static void full_coverage(vs_test_rng *r) {
    static const uint32_t dims[] = {4, 8, 16, 32}, pages[] = {8, 16, 32, 64};
    double worst_eg_rel = 0, worst_fw_rel = 0, worst_eg_ratio = 0, worst_fw_ratio = 0;
    uint32_t eg_it_max = 0, fw_it_max = 0;
    int n = 0, eg_rel_1e3 = 0, fw_rel_1e3 = 0;
    double worst_floor = 0;
    for (int trial = 0; trial < 24; trial++) {
        const uint32_t d = dims[trial % 4], S = pages[(trial / 4) % 4];
        const uint32_t T = 50 + (uint32_t)(vs_test_next(r) % (trial % 6 == 5 ? 2500 : 500));
        const int geom = trial % NGEOM;
        const int gqa = trial % 3 == 0;
        inst x = make(gqa ? 4 : 1, gqa ? 2 : 1, d, 1 + trial % 3, S, T, geom, r);
        float *out = vs_test_xmalloc(sizeof(float) * x.H * x.dv);
        vs_head_diag dg[4];
        for (int sv = 0; sv < 2; sv++) {
            vs_decode_options o = proj_options(sv ? VS_SOLVER_FW : VS_SOLVER_EG);
            o.pages = (uint32_t)(T / S + 1);
            o.candidates = T + (uint32_t)(trial % 2);
            o.eps = trial % 3 == 0 ? 0.05f : trial % 3 == 1 ? 0.3f : 1.0f;
            o.solver_tol = 1e-9f;
            o.max_iter = 100000;
            o.scale = trial % 2 ? 0.0f : x.scale; /* the same scale, given or default */
            CHECK_STATUS(decode(&x, &o, out, dg), VS_OK);
            for (uint32_t h = 0; h < x.H; h++) {
                char what[96];
                snprintf(what, sizeof what, "full %s T=%u d=%u S=%u", geom_name[geom], T, d, S);
                CHECK(dg[h].candidates == T && dg[h].fallback == VS_FALLBACK_NONE &&
                          dg[h].rho_cert == 0.0f && isinf(dg[h].gap) == (dg[h].face_size == T),
                      "%s h%u: candidates %u of %u, fallback %u, rho %g, gap %g face %u", what, h,
                      dg[h].candidates, T, dg[h].fallback, (double)dg[h].rho_cert,
                      (double)dg[h].gap, dg[h].face_size);
                head_result R = check_head(&x, h, &o, out, &dg[h], what);
                const double rel = R.bound / R.ref_norm, cb = converged_bound(&x, h, &o);
                CHECK(R.bound <= cb,
                      "%s h%u %s: error_bound %.3g (%.3g x ||ref||) above %.3g, what a "
                      "converged solve should certify",
                      what, h, sv ? "fw" : "eg", R.bound, rel, cb);
                worst_floor = fmax(worst_floor, R.bound / cb);
                if (sv) fw_rel_1e3 += rel <= 1e-3;
                else eg_rel_1e3 += rel <= 1e-3;
                CHECK(dg[h].iterations < o.max_iter &&
                          dg[h].residual <= o.solver_tol * (1 + 1e-6),
                      "%s h%u %s: residual %g (tol %g) after %u iterations", what, h,
                      sv ? "fw" : "eg", (double)dg[h].residual, (double)o.solver_tol,
                      dg[h].iterations);
                if (sv) {
                    worst_fw_rel = fmax(worst_fw_rel, rel);
                    worst_fw_ratio = fmax(worst_fw_ratio, R.err / R.bound);
                    fw_it_max = dg[h].iterations > fw_it_max ? dg[h].iterations : fw_it_max;
                } else {
                    worst_eg_rel = fmax(worst_eg_rel, rel);
                    worst_eg_ratio = fmax(worst_eg_ratio, R.err / R.bound);
                    eg_it_max = dg[h].iterations > eg_it_max ? dg[h].iterations : eg_it_max;
                }
                n++;
            }
        }
        free(out);
        drop(&x);
    }
    printf("  full coverage: %d heads (per solver); eg error_bound / ||out|| <= %.3g (<= 1e-3 in "
           "%d), error / bound <= %.3g, max %u iterations; fw error_bound / ||U alpha|| <= %.3g "
           "(<= 1e-3 in %d), error / bound <= %.3g, max %u iterations; bound / predicted "
           "converged bound <= %.3g\n",
           n / 2, worst_eg_rel, eg_rel_1e3, worst_eg_ratio, eg_it_max, worst_fw_rel, fw_rel_1e3,
           worst_fw_ratio, fw_it_max, worst_floor);
}

/* T <= d: affinely independent keys, so the fw weights are unique and the
   whole output (extra value coordinates included) is determined. With
   delta = alpha - alpha*, sum delta = 0, U delta = D delta_{1:} (D = [k_i - k_0]),
   so ||delta_{1:}||_2 <= ||U delta|| / sqrt(lambda_min(D^T D)) and
   ||delta||_1 <= 2 sqrt(T - 1) ||delta_{1:}||_2; lambda_min^{-1} <= ||(D^T D)^-1||_F.
   Hence ||V delta|| <= vmax 2 sqrt(T - 1) ||(D^T D)^-1||_F^{1/2} ||U delta||,
   with ||U delta|| <= error_bound + r_ref + slack (the certificate, checked). */
static void fw_unique(vs_test_rng *r) {
    double worst = 0, worst_allowed = 0, worst_gap = 0;
    int n = 0, face_ok = 0, face_n = 0;
    for (int trial = 0; trial < 40; trial++) {
        const uint32_t d = trial % 2 ? 16 : 32, T = 2 + (uint32_t)(vs_test_next(r) % (d - 1));
        const uint32_t S = 1 + (uint32_t)(vs_test_next(r) % 8);
        vs_test_rng r2 = *r;
        (void)vs_test_next(r);
        inst x = make(1, 1, d, 3, S, T, trial % 3 == 0 ? GEOM_SCALED : GEOM_RANDOM, &r2);
        float out[64];
        vs_head_diag dg;
        vs_decode_options o = proj_options(VS_SOLVER_FW);
        o.pages = T;
        o.candidates = T;
        o.solver_tol = 1e-9f;
        o.max_iter = 100000;
        CHECK_STATUS(decode(&x, &o, out, &dg), VS_OK);
        head_result R = check_head(&x, 0, &o, out, &dg, "fw unique");
        /* (D^T D)^-1 by columns */
        const int m = (int)T - 1;
        double *A = vs_test_xmalloc(sizeof(double) * m * m), *B = vs_test_xmalloc(sizeof(double) * m * m);
        double *col = vs_test_xmalloc(sizeof(double) * m), inv_f2 = 0;
        for (int a = 0; a < m; a++)
            for (int c = 0; c < m; c++) {
                double s = 0;
                for (uint32_t j = 0; j < d; j++)
                    s += ((double)key(&x, 0, a + 1)[j] - key(&x, 0, 0)[j]) *
                         ((double)key(&x, 0, c + 1)[j] - key(&x, 0, 0)[j]);
                A[a * m + c] = s;
            }
        int invertible = 1;
        for (int c = 0; c < m && invertible; c++) {
            memcpy(B, A, sizeof(double) * m * m);
            for (int a = 0; a < m; a++) col[a] = a == c;
            invertible = vs_test_gauss(B, col, m, 1e-14);
            for (int a = 0; a < m; a++) inv_f2 += col[a] * col[a];
        }
        CHECK(invertible, "fw unique T=%u d=%u: keys affinely dependent", T, d);
        const double *lam = x.proj_lam[0];
        double dev2 = 0;
        for (uint32_t j = 0; j < x.dv; j++) {
            double s = 0;
            for (uint32_t t = 0; t < T; t++) s += lam[t] * val(&x, 0, t)[j];
            dev2 += (out[j] - s) * (out[j] - s);
        }
        const double dev = sqrt(dev2);
        const double allowed = max_norm_vals(&x, 0) * 2 * sqrt((double)m) * sqrt(sqrt(inv_f2)) *
                                   (R.bound + R.radius + R.slack) +
                               (gamma_n(T + 2) + 2 * U24) * max_norm_vals(&x, 0);
        worst = fmax(worst, dev / max_norm_vals(&x, 0));
        worst_allowed = fmax(worst_allowed, allowed / max_norm_vals(&x, 0));
        CHECK(dev <= allowed, "fw unique T=%u d=%u: ||out - V alpha*|| = %.3g > %.3g", T, d, dev,
              allowed);
        /* the support of alpha*: face_size when strictly complementary */
        uint32_t sup = 0;
        double minpos = INFINITY;
        for (uint32_t t = 0; t < T; t++)
            if (lam[t] > 0) sup++, minpos = fmin(minpos, lam[t]);
        if (minpos > 1e-3) {
            face_n++;
            face_ok += dg.face_size == sup;
            CHECK(dg.face_size == sup, "fw unique T=%u d=%u: face_size %u, support of alpha* %u",
                  T, d, dg.face_size, sup);
            /* gap = min_{i in I} a_i - max_{j not in I} a_j, a_j = scale <k_j, q - p>:
               at p*, a is constant on I; p moves each a_j by at most
               scale max||k|| ||p - p*|| */
            if (dg.face_size == sup && sup < T) {
                const double *pp = x.proj_p[0];
                double on = INFINITY, offm = -INFINITY;
                for (uint32_t t = 0; t < T; t++) {
                    double s = 0;
                    for (uint32_t j = 0; j < d; j++)
                        s += (double)key(&x, 0, t)[j] * ((double)x.q[j] - pp[j]);
                    s *= x.scale;
                    if (lam[t] > 0) on = fmin(on, s);
                    else offm = fmax(offm, s);
                }
                const double gref = on - offm;
                const double tolg =
                    2 * x.scale * max_norm_keys(&x, 0) * (R.bound + R.radius + R.slack) +
                    1e-6 * (1 + fabs(gref));
                worst_gap = fmax(worst_gap, fabs(dg.gap - gref));
                CHECK(fabs(dg.gap - gref) <= tolg, "fw unique T=%u d=%u: gap %.9g, float64 %.9g", T,
                      d, (double)dg.gap, gref);
            }
        }
        free(A), free(B), free(col);
        drop(&x);
        n++;
    }
    printf("  fw, T <= d (unique weights): %d decodes, max ||out - V alpha*|| / vmax = %.3g "
           "(allowed up to %.3g); face_size = |supp alpha*| in %d / %d, max |gap - float64 gap| "
           "%.3g\n",
           n, worst, worst_allowed, face_ok, face_n, worst_gap);
}

/* ---- 2, 3. certificate validity on sparse selections ------------------------------------ */

static stats st_cert[2][NGEOM], st_designed[2];
/* the share of the trials above routed by the tree (VS_ROUTING_TREE with
   expand 1-3 and small pages, so most nodes stay unexpanded): the heads where
   the tree routed (more middle pages than P, more nodes than E) */
static stats st_tree[2];
static int n_tree_trials;

/* designed: the needle geometry with settings under which the certificate
   should be informative: every needle page routable (P >= 4 >= needles),
   every needle a candidate (Kc >= 16), eps small against the planted
   adjusted-score gap, and a converged solve. */
static void cert_trial(int geom, uint32_t solver, int designed, vs_test_rng *r) {
    static const uint32_t dims[] = {4, 8, 16, 32}, pagesz[] = {8, 16, 32, 64};
    static const uint32_t Ps[] = {1, 2, 3, 4, 8}, Kcs[] = {1, 4, 16, 64};
    const int gqa = vs_test_next(r) % 2;
    const uint32_t d = dims[vs_test_next(r) % 4], S = pagesz[vs_test_next(r) % 4];
    uint32_t T = 50 + (uint32_t)(vs_test_next(r) % 700);
    if (vs_test_next(r) % 10 == 0) T += 2000;
    /* every third random trial routes by the tree, with pages 8x smaller (more
       nodes) and 1-3 nodes expanded (chosen by a counter, not the generator) */
    static unsigned trial_no;
    const unsigned k = trial_no++;
    const int tree = !designed && k % 3 == 1;
    inst x = make(gqa ? 4 : 1, gqa ? 2 : 1, d, 1 + (uint32_t)(vs_test_next(r) % 3),
                  tree ? S / 8 : S, T, geom, r);
    vs_decode_options o = proj_options(solver);
    if (tree) { /* (the others: the defaults, tree with automatic expand) */
        o.routing = VS_ROUTING_TREE;
        o.expand = 1 + (k / 3) % 3;
    }
    o.pages = Ps[vs_test_next(r) % 5];
    o.candidates = Kcs[vs_test_next(r) % 4];
    o.sink_pages = (uint32_t)(vs_test_next(r) % 2);
    o.recent_pages = (uint32_t)(vs_test_next(r) % 2);
    o.eps = (float)(0.05 * pow(20.0, vs_test_uniform(r)));
    const uint32_t iters[] = {2, 20, 3000, 3000};
    o.max_iter = iters[vs_test_next(r) % 4];
    const float tols[] = {1e-9f, 1e-6f, 1e-4f};
    o.solver_tol = tols[vs_test_next(r) % 3];
    if (designed) {
        o.pages = 4 + 4 * (uint32_t)(vs_test_next(r) % 2);
        o.candidates = 16 + 48 * (uint32_t)(vs_test_next(r) % 2);
        o.eps = (float)(0.05 * pow(6.0, vs_test_uniform(r)));
        o.max_iter = 3000;
        o.solver_tol = tols[vs_test_next(r) % 2];
    }
    float *out = vs_test_xmalloc(sizeof(float) * x.H * x.dv);
    vs_head_diag dg[4];
    CHECK_STATUS(decode(&x, &o, out, dg), VS_OK);
    n_decodes++;
    const uint32_t np = (T + x.S - 1) / x.S, nn = (np + VS_NODE_PAGES - 1) / VS_NODE_PAGES;
    const uint32_t mid = np - (o.sink_pages < np ? o.sink_pages : np) -
                         (o.recent_pages < np - (o.sink_pages < np ? o.sink_pages : np)
                              ? o.recent_pages
                              : np - (o.sink_pages < np ? o.sink_pages : np));
    const int tree_routed = tree && mid > o.pages && o.expand < nn;
    n_tree_trials += tree_routed;
    for (uint32_t h = 0; h < x.H; h++) {
        char what[160];
        snprintf(what, sizeof what, "cert %s T=%u d=%u S=%u P=%u Kc=%u eps=%g it=%u %s E=%u",
                 geom_name[geom], T, d, x.S, o.pages, o.candidates, (double)o.eps, o.max_iter,
                 tree ? "tree" : "flat", o.expand);
        head_result R = check_head(&x, h, &o, out, &dg[h], what);
        const int fw = solver == VS_SOLVER_FW;
        record(designed ? &st_designed[fw] : &st_cert[fw][geom], &R, &dg[h], solver);
        if (tree_routed) record(&st_tree[fw], &R, &dg[h], solver);
        if (solver == VS_SOLVER_EG && dg[h].iterations < o.max_iter)
            CHECK(dg[h].residual <= o.solver_tol * (1 + 1e-6),
                  "%s h%u: stopped after %u < max_iter iterations with residual %g > tol %g", what,
                  h, dg[h].iterations, (double)dg[h].residual, (double)o.solver_tol);
    }
    free(out);
    drop(&x);
}

/* Sensitivity beyond the random trials: full coverage, solver stopped after
   1-3 iterations, so the bound is dominated by the (exactly known) duality
   gap, where it is tight: eg with keys small against eps (F ~ eps KL, and
   Pinsker is tight near uniform), fw with q outside near a vertex. */
static stats st_sens[2];

static void sensitivity(vs_test_rng *r) {
    for (int trial = 0; trial < 40; trial++) {
        const uint32_t solver = trial % 2 ? VS_SOLVER_FW : VS_SOLVER_EG;
        const uint32_t d = 4 + 4 * (uint32_t)(vs_test_next(r) % 4);
        const uint32_t T = 20 + (uint32_t)(vs_test_next(r) % 200);
        inst x = make(1, 1, d, 2, 16, T, solver == VS_SOLVER_FW ? GEOM_SCALED : GEOM_INSIDE, r);
        vs_decode_options o = proj_options(solver);
        o.pages = T;
        o.candidates = T;
        o.eps = 2.0f;
        o.max_iter = 1 + (uint32_t)(vs_test_next(r) % 3);
        o.solver_tol = 1e-9f;
        float *out = vs_test_xmalloc(sizeof(float) * x.dv);
        vs_head_diag dg;
        CHECK_STATUS(decode(&x, &o, out, &dg), VS_OK);
        n_decodes++;
        head_result R = check_head(&x, 0, &o, out, &dg, "sensitivity");
        record(&st_sens[solver == VS_SOLVER_FW], &R, &dg, solver);
        free(out);
        drop(&x);
    }
}

/* ---- 4. tolerance ladder ---------------------------------------------------------------- */

static void ladder(vs_test_rng *r) {
    int counts[2][3] = {{0}}, dense_checked = 0;
    for (int trial = 0; trial < 60; trial++) {
        const uint32_t solver = trial % 2 ? VS_SOLVER_FW : VS_SOLVER_EG;
        const int geom = (trial / 2) % NGEOM;
        const uint32_t d = trial % 3 ? 8 : 16, S = trial % 4 ? 16 : 32;
        const uint32_t T = 100 + (uint32_t)(vs_test_next(r) % 600);
        const int gqa = trial % 5 == 0;
        inst x = make(gqa ? 4 : 1, gqa ? 2 : 1, d, 2, S, T, geom, r);
        vs_decode_options o = proj_options(solver);
        o.pages = 1 + (uint32_t)(vs_test_next(r) % 3);
        o.candidates = 2 + (uint32_t)(vs_test_next(r) % 16);
        o.widen = 2 + (uint32_t)(vs_test_next(r) % 3);
        o.tolerance = trial % 3 == 0 ? 1e-2f : trial % 3 == 1 ? 1e-4f : 0.3f;
        o.eps = 0.2f;
        o.solver_tol = 1e-9f;
        o.max_iter = 20000;
        float *out = vs_test_xmalloc(sizeof(float) * x.H * x.dv);
        vs_head_diag dg[4];
        CHECK_STATUS(decode(&x, &o, out, dg), VS_OK);
        for (uint32_t h = 0; h < x.H; h++) {
            char what[96];
            snprintf(what, sizeof what, "ladder %s %s T=%u tol=%g", solver ? "fw" : "eg",
                     geom_name[geom], T, (double)o.tolerance);
            head_result R = check_head(&x, h, &o, out, &dg[h], what);
            CHECK(dg[h].fallback <= VS_FALLBACK_DENSE, "%s: fallback %u", what, dg[h].fallback);
            counts[solver == VS_SOLVER_FW][dg[h].fallback % 3]++;
            /* fw: ref = ||U alpha||, the output's key part up to the slack */
            const double ref = R.ref_norm + R.slack;
            const int within = R.bound <= o.tolerance * ref;
            const int dense = dg[h].fallback == VS_FALLBACK_DENSE && dg[h].candidates == T;
            CHECK(within || dense,
                  "%s h%u: error_bound %.3g > tolerance x ref %.3g, fallback %u, candidates %u",
                  what, h, R.bound, o.tolerance * ref, dg[h].fallback, dg[h].candidates);
            if (dg[h].fallback == VS_FALLBACK_DENSE) {
                size_t np = 0;
                CHECK_STATUS(vs_decode_routed_pages(x.c, h, NULL, 0, &np), VS_OK);
                CHECK(dg[h].candidates == T && np == (T + S - 1) / S && dg[h].rho_cert == 0.0f,
                      "%s h%u: dense fallback with %u candidates, %zu pages, rho %g", what, h,
                      dg[h].candidates, np, (double)dg[h].rho_cert);
                /* converged over every token: the output matched the float64
                   references within the bound (check_head), and the bound is as
                   small as a converged solve certifies */
                if (dg[h].iterations < o.max_iter)
                    CHECK(R.bound <= converged_bound(&x, h, &o),
                          "%s h%u: dense fallback bound %.3g above the converged %.3g (||ref|| "
                          "%.3g)", what, h, R.bound, converged_bound(&x, h, &o), R.ref_norm);
                dense_checked++;
            }
            if (dg[h].fallback == VS_FALLBACK_NONE)
                CHECK(dg[h].candidates <= o.candidates, "%s: %u candidates > Kc", what,
                      dg[h].candidates);
            if (dg[h].fallback == VS_FALLBACK_WIDENED)
                CHECK(dg[h].candidates <= o.candidates * o.widen, "%s: widened to %u > Kc x widen",
                      what, dg[h].candidates);
        }
        free(out);
        drop(&x);
    }
    printf("  tolerance ladder: eg none/widened/dense %d/%d/%d, fw %d/%d/%d; %d dense fallbacks "
           "matched the float64 references\n",
           counts[0][0], counts[0][1], counts[0][2], counts[1][0], counts[1][1], counts[1][2],
           dense_checked);
    CHECK(counts[0][2] > 0 && counts[1][2] > 0 && counts[0][1] + counts[1][1] > 0,
          "the ladder trials never reached every rung");
}

/* ---- 5. solver iterations, max_iter = 1 ------------------------------------------------- */

static void kkt(vs_test_rng *r) {
    int n = 0, nfull = 0, larger = 0;
    double worst = 0;
    for (int trial = 0; trial < 24; trial++) {
        const uint32_t solver = trial % 2 ? VS_SOLVER_FW : VS_SOLVER_EG;
        const int geom = (trial / 2) % NGEOM;
        inst x = make(4, 2, 8, 1, 16, 80 + (uint32_t)(vs_test_next(r) % 300), geom, r);
        vs_decode_options o = proj_options(solver);
        o.pages = 2;
        o.candidates = 24;
        o.eps = 0.1f;
        o.solver_tol = 1e-8f;
        o.max_iter = 50000;
        float out[4 * 9], out1[4 * 9];
        vs_head_diag dg[4], dg1[4];
        CHECK_STATUS(decode(&x, &o, out, dg), VS_OK);
        for (uint32_t h = 0; h < 4; h++) {
            CHECK(dg[h].iterations <= o.max_iter, "kkt: %u iterations > max_iter",
                  dg[h].iterations);
            if (solver == VS_SOLVER_EG || dg[h].iterations < o.max_iter)
                CHECK(dg[h].residual <= o.solver_tol * (1 + 1e-6),
                      "kkt %s h%u: residual %g > tol %g after %u iterations",
                      solver ? "fw" : "eg", h, (double)dg[h].residual, (double)o.solver_tol,
                      dg[h].iterations);
            (void)check_head(&x, h, &o, out, &dg[h], "kkt converged");
        }
        vs_decode_options o1 = o;
        o1.max_iter = 1;
        CHECK_STATUS(decode(&x, &o1, out1, dg1), VS_OK);
        for (uint32_t h = 0; h < 4; h++) {
            CHECK(dg1[h].iterations <= 1, "max_iter 1: %u iterations", dg1[h].iterations);
            CHECK(dg1[h].candidates == dg[h].candidates,
                  "max_iter changed the selection (%u vs %u)", dg1[h].candidates, dg[h].candidates);
            head_result R = check_head(&x, h, &o1, out1, &dg1[h], "kkt max_iter=1");
            worst = fmax(worst, R.err / R.bound);
            n++;
        }
        /* over every token the bound is the exact duality gap's: one step
           certifies less than convergence (unless one step converged) */
        o.pages = o1.pages = x.T;
        o.candidates = o1.candidates = x.T;
        CHECK_STATUS(decode(&x, &o, out, dg), VS_OK);
        for (uint32_t h = 0; h < 4; h++) (void)check_head(&x, h, &o, out, &dg[h], "kkt full");
        CHECK_STATUS(decode(&x, &o1, out1, dg1), VS_OK);
        for (uint32_t h = 0; h < 4; h++) {
            head_result R = check_head(&x, h, &o1, out1, &dg1[h], "kkt full max_iter=1");
            worst = fmax(worst, R.err / R.bound);
            CHECK(dg1[h].iterations <= 1, "max_iter 1: %u iterations", dg1[h].iterations);
            const int ge = dg1[h].error_bound >= dg[h].error_bound;
            larger += ge;
            nfull++;
            CHECK(ge || dg1[h].residual <= o.solver_tol * (1 + 1e-6),
                  "max_iter 1 %s h%u (every token): bound %.3g below the converged %.3g",
                  solver ? "fw" : "eg", h, (double)dg1[h].error_bound, (double)dg[h].error_bound);
        }
        drop(&x);
    }
    printf("  max_iter = 1: %d sparse + %d full-coverage heads, error / bound <= %.3g; full "
           "coverage: bound >= converged bound in %d\n",
           n, nfull, worst, larger);
}

/* ---- 6. face_size ----------------------------------------------------------------------- */

static void face_sizes(vs_test_rng *r) {
    inst x = make(4, 2, 8, 1, 16, 400, GEOM_RANDOM, r);
    float out[4 * 9];
    vs_head_diag dg[4];
    vs_decode_options o;
    vs_decode_options_default(&o);
    o.pages = 2;
    o.candidates = 20;
    CHECK_STATUS(decode(&x, &o, out, dg), VS_OK);
    for (uint32_t h = 0; h < 4; h++)
        CHECK(dg[h].face_size == dg[h].candidates && dg[h].fallback == VS_FALLBACK_NONE,
              "softmax: face_size %u, candidates %u", dg[h].face_size, dg[h].candidates);
    o.tolerance = 1e-7f; /* unreachable sparsely on random keys: dense fallback */
    o.widen = 2;
    CHECK_STATUS(decode(&x, &o, out, dg), VS_OK);
    int dense = 0;
    for (uint32_t h = 0; h < 4; h++) {
        if (dg[h].fallback != VS_FALLBACK_DENSE) continue;
        dense++;
        CHECK(dg[h].face_size == x.T && dg[h].candidates == x.T,
              "softmax dense fallback: face_size %u, candidates %u, T %u", dg[h].face_size,
              dg[h].candidates, x.T);
    }
    CHECK(dense > 0, "softmax: no dense fallback at tolerance 1e-7");
    for (uint32_t s = VS_SOLVER_EG; s <= VS_SOLVER_FW; s++) {
        o.solver = s;
        o.tolerance = 0;
        CHECK_STATUS(decode(&x, &o, out, dg), VS_OK);
        for (uint32_t h = 0; h < 4; h++)
            CHECK(dg[h].face_size >= 1 && dg[h].face_size <= dg[h].candidates,
                  "solver %u: face_size %u of %u candidates", s, dg[h].face_size,
                  dg[h].candidates);
    }
    drop(&x);
}

/* ---- 7. determinism ---------------------------------------------------------------------- */

static uint64_t fnv(uint64_t h, const void *p, size_t n) {
    const unsigned char *b = p;
    for (size_t i = 0; i < n; i++) h = (h ^ b[i]) * 0x100000001b3ull;
    return h;
}

static uint64_t determinism_run(void) {
    vs_test_rng r = {0xde7e12u};
    uint64_t hash = 0xcbf29ce484222325ull;
    for (int trial = 0; trial < 8; trial++) {
        inst x = make(4, 2, trial % 2 ? 17 : 8, 2, trial % 3 ? 16 : 7, 300 + 97 * trial,
                      trial % NGEOM, &r);
        for (uint32_t s = VS_SOLVER_EG; s <= VS_SOLVER_FW; s++) {
            vs_decode_options o = proj_options(s);
            o.pages = 2 + trial % 3;
            o.candidates = 8 + 5 * trial;
            o.tolerance = trial % 2 ? 1e-3f : 0.0f;
            o.eps = 0.1f * (1 + trial % 3);
            o.max_iter = 500;
            float *a = vs_test_xmalloc(sizeof(float) * x.H * x.dv);
            float *b = vs_test_xmalloc(sizeof(float) * x.H * x.dv);
            vs_head_diag da[4], db[4];
            CHECK_STATUS(decode(&x, &o, a, da), VS_OK);
            CHECK_STATUS(decode(&x, &o, b, db), VS_OK);
            CHECK(memcmp(a, b, sizeof(float) * x.H * x.dv) == 0 && memcmp(da, db, sizeof da) == 0,
                  "%s solver %u trial %d: two calls differ", vs_isa_name(), s, trial);
            hash = fnv(hash, a, sizeof(float) * x.H * x.dv);
            hash = fnv(hash, da, sizeof da);
            for (uint32_t h = 0; h < 4; h++) {
                uint32_t idx[2048];
                size_t nc;
                CHECK_STATUS(vs_decode_candidates(x.c, h, idx, 2048, &nc), VS_OK);
                hash = fnv(hash, idx, (nc < 2048 ? nc : 2048) * sizeof(uint32_t));
            }
            free(a), free(b);
        }
        drop(&x);
    }
    return hash;
}

static void determinism(void) {
    const char *isas[8];
    const int nisa = vs_test_isas(isas, 8);
    uint64_t h0 = 0;
    for (int i = 0; i < nisa; i++) {
        CHECK_STATUS(vs_set_isa(isas[i]), VS_OK);
        const uint64_t h = determinism_run();
        if (i == 0) h0 = h;
        printf("  %s: eg/fw decode hash %016llx\n", isas[i], (unsigned long long)h);
        CHECK(h == h0, "%s eg/fw decode differs from %s", isas[i], isas[0]);
    }
    CHECK(nisa >= 1, "no ISA available");
    vs_set_isa("auto");
}

/* ---- main ---------------------------------------------------------------------------------- */

static void print_stats(const char *name, const stats *s) {
    printf("  %-14s heads %4d  violations %d  informative (bound < 0.1 ||ref||) %4d  max "
           "error/bound %.3g  error > 0.1 bound in %d",
           name, s->heads, s->violations, s->informative, s->worst, s->over10);
    if (s->rho_tested)
        printf("  | rho tested %d, max off/rho %.3g, > 0.1 rho in %d", s->rho_tested, s->worst_rho,
               s->rho_over10);
    printf("  (ref radius <= %.2g)\n", s->worst_ref);
}

int main(void) {
    const clock_t t0 = clock();
    vs_test_rng r = {0x50e7e5u};
    full_coverage(&r);
    fw_unique(&r);
    for (int geom = 0; geom < NGEOM; geom++)
        for (int i = 0; i < 60; i++) {
            cert_trial(geom, VS_SOLVER_EG, 0, &r);
            cert_trial(geom, VS_SOLVER_FW, 0, &r);
        }
    for (int i = 0; i < 40; i++) {
        cert_trial(GEOM_NEEDLE, VS_SOLVER_EG, 1, &r);
        cert_trial(GEOM_NEEDLE, VS_SOLVER_FW, 1, &r);
    }
    sensitivity(&r);
    int over[2] = {0, 0}, rho_over = 0, heads = 0;
    for (int s = 0; s < 2; s++) {
        for (int g = 0; g < NGEOM; g++) {
            char name[32];
            snprintf(name, sizeof name, "%s %s", s ? "fw" : "eg", geom_name[g]);
            print_stats(name, &st_cert[s][g]);
            over[s] += st_cert[s][g].over10;
            rho_over += st_cert[s][g].rho_over10;
            heads += st_cert[s][g].heads;
        }
        over[s] += st_sens[s].over10 + st_designed[s].over10;
        rho_over += st_sens[s].rho_over10 + st_designed[s].rho_over10;
        heads += st_sens[s].heads + st_designed[s].heads;
        print_stats(s ? "fw designed" : "eg designed", &st_designed[s]);
        print_stats(s ? "fw tree" : "eg tree", &st_tree[s]);
        print_stats(s ? "fw sensitivity" : "eg sensitivity", &st_sens[s]);
    }
    printf("  certificate trials: %d decodes, %d heads; eg leakage_bound (< 0.5, converged) "
           "checked on %d heads, max off-face mass / (bound + slack) %.3g; %d decodes routed "
           "by the tree (counted again in the tree lines)\n",
           n_decodes, heads, leak_tested, leak_worst, n_tree_trials);
    for (int s = 0; s < 2; s++)
        CHECK(st_tree[s].heads >= 40 && st_tree[s].violations == 0,
              "%s: %d tree-routed heads, %d violations", s ? "fw" : "eg", st_tree[s].heads,
              st_tree[s].violations);
    /* the designed needle trials must give informative certificates, or the
       validity checks could pass with bounds that are always huge */
    for (int s = 0; s < 2; s++) {
        const stats *n = &st_designed[s];
        CHECK(n->violations == 0 && n->informative * 10 >= n->heads * 9,
              "%s designed needle: certificate informative in only %d of %d heads",
              s ? "fw" : "eg", n->informative, n->heads);
    }
    /* sensitivity: a bound 10x smaller would have been caught, per solver */
    for (int s = 0; s < 2; s++)
        CHECK(over[s] >= 5, "%s: error_bound x 0.1 would be violated in only %d heads",
              s ? "fw" : "eg", over[s]);
    CHECK(rho_over >= 5, "eg: rho_cert x 0.1 would be violated in only %d heads", rho_over);
    printf("  sensitivity: error_bound x 0.1 violated in %d (eg) / %d (fw) heads, rho_cert x 0.1 "
           "in %d (eg) heads\n", over[0], over[1], rho_over);
    ladder(&r);
    kkt(&r);
    face_sizes(&r);
    determinism();
    printf("  time %.2f s\n", (double)(clock() - t0) / CLOCKS_PER_SEC);
    return vs_test_finish("test_decode_solvers");
}
