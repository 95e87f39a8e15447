/*
 * Projection solvers (src/solvers.c, DESIGN section 2), against independent
 * float64 solvers written here:
 *   - FW reference: the exact active-set solution of
 *     min_{alpha in simplex} 1/2 ||U alpha - q||^2 for n <= 8: every support S,
 *     the equality-constrained system [U_S^T U_S, 1; 1^T, 0], kept when it
 *     satisfies KKT (alpha_S >= 0, g_j >= nu for all j), best objective.
 *   - EG reference: Newton's method on the dual of the entropic problem,
 *     min_w eps logsumexp(-U^T w / eps) + <w, q> + 1/2 ||w||^2 (1-strongly
 *     convex, smooth; damped Newton with Armijo backtracking), whose solution
 *     gives log alpha_eps = -U^T w / eps - logsumexp exactly, tiny weights included.
 *
 *  1. Parameter checks.
 *  2. Closed forms: q equal to a key (FW: alpha = e_i); a face of two keys
 *     (FW: the projection onto the segment); two keys with the entropy (EG: the
 *     scalar optimality equation, solved by bisection); identical keys (EG:
 *     uniform).
 *  3. Small random problems: both solvers stop with residual <= tol, the
 *     residual recomputed here in float64 from the returned alpha agrees, and
 *     the solution agrees with the reference within what the tolerance
 *     implies (FW: f - f* <= gap, so ||U(alpha - alpha*)|| <= sqrt(2 gap); EG:
 *     F is eps-strongly convex in l1 (Pinsker), so ||alpha - alpha_eps||_1 <=
 *     sqrt(2 gap / eps)); the multipliers and face diagnostics are consistent.
 *  4. Planted gap: a face of 3 keys with known alpha*, 5 off-face keys with
 *     multiplier exactly Delta. The EG off-face mass never exceeds the face
 *     theorem's bound (n-m)/m exp(-Delta/(2 eps)), nor the solver's own
 *     leakage_bound; log(mass) is linear in Delta/eps and the fitted slope is
 *     the fixed point's -1 (alpha_j/alpha_i = exp(-(g_j - g_i)/eps)), at least
 *     as steep as the bound's -1/2.
 *  5. On-face bias: ||alpha_eps - alpha_FW||_1 on the face grows linearly in
 *     eps (log-log slope 1).
 *  6. Determinism and bit-identity of alpha, mu and the diagnostics across
 *     every ISA (data from integer hashing only, so the printed hash is the
 *     same natively and in wasm).
 *  7. Timing at n = 128, d = 128 (printed, never checked).
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "kernels/kernels.h"
#include "solvers.h"
#include "testutil.h"
#include "vashista.h"

/* ---- problems ---------------------------------------------------------------------- */

typedef struct prob {
    size_t n, d;
    float **row; /* each row its own allocation: rows are not contiguous */
    float *q;
} prob;


static prob prob_new(size_t n, size_t d) {
    prob P = {n, d, vs_test_xmalloc(n * sizeof(float *)), vs_test_xmalloc(d * sizeof(float))};
    for (size_t i = 0; i < n; i++) P.row[i] = vs_test_xmalloc(d * sizeof(float));
    return P;
}

static void prob_free(prob *P) {
    for (size_t i = 0; i < P->n; i++) free(P->row[i]);
    free(P->row);
    free(P->q);
}

/* Irwin-Hall, roughly N(0, 1): integer hashing and + - * / only (no libm). */
static float ih(vs_test_rng *r) {
    double s = 0.0;
    for (int i = 0; i < 4; i++) s += vs_test_uniform(r);
    return (float)((s - 2.0) * 1.7320508075688772);
}

static void fill_random(prob *P, vs_test_rng *r, double sigma) {
    for (size_t i = 0; i < P->n; i++)
        for (size_t j = 0; j < P->d; j++) P->row[i][j] = (float)(sigma * ih(r));
    for (size_t j = 0; j < P->d; j++) P->q[j] = (float)(sigma * ih(r));
}

typedef struct result {
    float *alpha, *mu;
    vs_solve_info info;
    int status;
} result;

static result solve(const prob *P, uint32_t solver, float eps, uint32_t max_iter, float tol) {
    result R = {vs_test_xmalloc(P->n * sizeof(float)), vs_test_xmalloc(P->n * sizeof(float)), {0}, 0};
    const size_t bytes = vs_solve_work_bytes(P->n, P->d);
    unsigned char *w = vs_test_xmalloc(bytes + 3);
    /* an odd offset: the workspace may have any alignment */
    R.status = vs_solve(vs_kernels_active(), solver, (const float *const *)P->row, P->n, P->d, P->q,
                        eps, max_iter, tol, R.alpha, R.mu, w + 3, &R.info);
    free(w);
    return R;
}

static void result_free(result *R) {
    free(R->alpha);
    free(R->mu);
}

/* ---- float64 evaluation -------------------------------------------------------------- */

/* z = U alpha, g = U^T (z - q); returns f = 1/2 ||z - q||^2. z: d, g: n (either may be NULL). */
static double eval64(const prob *P, const double *alpha, double *z_out, double *g) {
    const size_t n = P->n, d = P->d;
    double *z = vs_test_xmalloc(d * sizeof *z), f = 0;
    for (size_t j = 0; j < d; j++) {
        double s = 0;
        for (size_t i = 0; i < n; i++) s += alpha[i] * P->row[i][j];
        z[j] = s;
        f += 0.5 * (s - P->q[j]) * (s - P->q[j]);
    }
    if (g)
        for (size_t i = 0; i < n; i++) {
            double s = 0;
            for (size_t j = 0; j < d; j++) s += (double)P->row[i][j] * (z[j] - P->q[j]);
            g[i] = s;
        }
    if (z_out) memcpy(z_out, z, d * sizeof *z);
    free(z);
    return f;
}

/* alpha in float64, normalized (a float alpha sums to 1 only to rounding, and an
   unnormalized alpha would shift the gaps below by (sum - 1) |g|) */
static double *to64(const float *x, size_t n) {
    double *y = vs_test_xmalloc(n * sizeof *y), s = 0;
    for (size_t i = 0; i < n; i++) s += x[i];
    for (size_t i = 0; i < n; i++) y[i] = x[i] / s;
    return y;
}

/* FW duality gap <g, alpha> - min g of a float alpha, in float64. */
static double fw_gap64(const prob *P, const float *alpha) {
    double *a = to64(alpha, P->n), *g = vs_test_xmalloc(P->n * sizeof *g);
    eval64(P, a, NULL, g);
    double ag = 0, gm = INFINITY;
    for (size_t i = 0; i < P->n; i++) {
        ag += a[i] * g[i];
        gm = g[i] < gm ? g[i] : gm;
    }
    free(a), free(g);
    return ag - gm;
}

/* Entropic objective F and duality gap eps KL(alpha || softmax(-g/eps)), in float64. */
static double ent_eval64(const prob *P, const float *alpha, double eps, double *gap) {
    const size_t n = P->n;
    double *a = to64(alpha, n), *g = vs_test_xmalloc(n * sizeof *g);
    double F = eval64(P, a, NULL, g);
    double m = -INFINITY;
    for (size_t i = 0; i < n; i++) m = fmax(m, -g[i] / eps);
    double s = 0;
    for (size_t i = 0; i < n; i++) s += exp(-g[i] / eps - m);
    const double lse = m + log(s);
    double kl = 0;
    for (size_t i = 0; i < n; i++)
        if (a[i] > 0) {
            F += eps * a[i] * log(a[i]);
            kl += a[i] * (log(a[i]) - (-g[i] / eps - lse));
        }
    if (gap) *gap = eps * kl;
    free(a), free(g);
    return F;
}


/* ---- reference 1: exact active set (n <= 8) -------------------------------------------- */

#define NEXACT 8

/* alpha* and f*; returns 1 if a KKT point was found. kkt_margin: the smallest
   nonzero alpha*_i and the smallest off-support multiplier (strict complementarity). */
static int exact_fw(const prob *P, double *best_alpha, double *best_f, double *min_on,
                    double *min_off) {
    const int n = (int)P->n, d = (int)P->d;
    double A[(NEXACT + 1) * (NEXACT + 1)], b[NEXACT + 1], alpha[NEXACT], g[NEXACT];
    double scale = 0;
    for (int i = 0; i < n; i++)
        for (int j = 0; j < d; j++) scale = fmax(scale, fabs(P->row[i][j]));
    for (int j = 0; j < d; j++) scale = fmax(scale, fabs(P->q[j]));
    const double tol = 1e-9 * (1 + scale * scale);
    int found = 0;
    for (unsigned S = 1; S < (1u << n); S++) {
        int idx[NEXACT], m = 0;
        for (int i = 0; i < n; i++)
            if (S >> i & 1) idx[m++] = i;
        for (int a = 0; a < m; a++) {
            for (int c = 0; c < m; c++) {
                double s = 0;
                for (int j = 0; j < d; j++) s += (double)P->row[idx[a]][j] * P->row[idx[c]][j];
                A[a * (m + 1) + c] = s;
            }
            A[a * (m + 1) + m] = 1.0;
            A[m * (m + 1) + a] = 1.0;
            double s = 0;
            for (int j = 0; j < d; j++) s += (double)P->row[idx[a]][j] * P->q[j];
            b[a] = s;
        }
        A[m * (m + 1) + m] = 0.0;
        b[m] = 1.0;
        if (!vs_test_gauss(A, b, m + 1, 1e-11)) continue;
        int ok = 1;
        for (int i = 0; i < n; i++) alpha[i] = 0;
        for (int a = 0; a < m; a++) {
            if (b[a] < -1e-12) ok = 0;
            alpha[idx[a]] = b[a] > 0 ? b[a] : 0;
        }
        if (!ok) continue;
        const double f = eval64(P, alpha, NULL, g);
        double nu = INFINITY;
        for (int a = 0; a < m; a++) nu = fmin(nu, g[idx[a]]);
        for (int i = 0; i < n; i++)
            if (g[i] < nu - tol) ok = 0;
        if (!ok) continue;
        if (!found || f < *best_f) {
            found = 1;
            *best_f = f;
            memcpy(best_alpha, alpha, n * sizeof *alpha);
            double on = INFINITY, off = INFINITY;
            for (int i = 0; i < n; i++) {
                if (S >> i & 1)
                    on = fmin(on, alpha[i]);
                else
                    off = fmin(off, g[i] - nu);
            }
            *min_on = on;
            *min_off = off;
        }
    }
    return found;
}

/* ---- reference 2: entropic problem by dual Newton ------------------------------------- */

/* Phi(w) = eps lse(-U^T w / eps) + <w, q> + 1/2 ||w||^2; fills t = -U^T w / eps and
   lse when asked. */
static double dual_phi(const prob *P, const double *w, double eps, double *t, double *lse_out) {
    const size_t n = P->n, d = P->d;
    double m = -INFINITY;
    for (size_t i = 0; i < n; i++) {
        double s = 0;
        for (size_t j = 0; j < d; j++) s += (double)P->row[i][j] * w[j];
        t[i] = -s / eps;
        m = fmax(m, t[i]);
    }
    double s = 0;
    for (size_t i = 0; i < n; i++) s += exp(t[i] - m);
    const double lse = m + log(s);
    if (lse_out) *lse_out = lse;
    double v = eps * lse;
    for (size_t j = 0; j < d; j++) v += w[j] * P->q[j] + 0.5 * w[j] * w[j];
    return v;
}

/* log alpha_eps (n) and F*. */
static void ent_ref(const prob *P, double eps, double *logalpha, double *Fstar) {
    const size_t n = P->n, d = P->d;
    double *w = vs_test_xmalloc(d * sizeof *w), *wn = vs_test_xmalloc(d * sizeof *wn), *t = vs_test_xmalloc(n * sizeof *t);
    double *pi = vs_test_xmalloc(n * sizeof *pi), *grad = vs_test_xmalloc(d * sizeof *grad);
    double *H = vs_test_xmalloc(d * d * sizeof *H), *step = vs_test_xmalloc(d * sizeof *step);
    double *z = vs_test_xmalloc(d * sizeof *z);
    for (size_t j = 0; j < d; j++) { /* w = U uniform - q */
        double s = 0;
        for (size_t i = 0; i < n; i++) s += P->row[i][j];
        w[j] = s / n - P->q[j];
    }
    double lse;
    for (int it = 0; it < 2000; it++) {
        const double phi = dual_phi(P, w, eps, t, &lse);
        for (size_t i = 0; i < n; i++) pi[i] = exp(t[i] - lse);
        double gnorm = 0;
        for (size_t j = 0; j < d; j++) {
            double s = 0;
            for (size_t i = 0; i < n; i++) s += pi[i] * P->row[i][j];
            z[j] = s;
            grad[j] = w[j] + P->q[j] - s;
            gnorm = fmax(gnorm, fabs(grad[j]));
        }
        if (gnorm < 1e-15) break;
        for (size_t a = 0; a < d; a++)
            for (size_t b = 0; b < d; b++) {
                double s = 0;
                for (size_t i = 0; i < n; i++) s += pi[i] * P->row[i][a] * P->row[i][b];
                H[a * d + b] = (a == b) + (s - z[a] * z[b]) / eps;
            }
        for (size_t j = 0; j < d; j++) step[j] = -grad[j];
        if (!vs_test_gauss(H, step, (int)d, 1e-11)) break;
        double slope = 0;
        for (size_t j = 0; j < d; j++) slope += grad[j] * step[j];
        double s = 1;
        for (; s > 1e-30; s *= 0.5) {
            for (size_t j = 0; j < d; j++) wn[j] = w[j] + s * step[j];
            if (dual_phi(P, wn, eps, pi, NULL) <= phi + 1e-4 * s * slope) break;
        }
        double moved = 0;
        for (size_t j = 0; j < d; j++) {
            moved = fmax(moved, fabs(wn[j] - w[j]));
            w[j] = wn[j];
        }
        if (moved < 1e-17) break;
    }
    (void)dual_phi(P, w, eps, t, &lse);
    for (size_t i = 0; i < n; i++) logalpha[i] = t[i] - lse;
    /* F* = F(alpha_eps) */
    for (size_t i = 0; i < n; i++) pi[i] = exp(logalpha[i]);
    double F = eval64(P, pi, NULL, NULL);
    for (size_t i = 0; i < n; i++) F += eps * pi[i] * logalpha[i];
    *Fstar = F;
    free(w), free(wn), free(t), free(pi), free(grad), free(H), free(step), free(z);
}

/* ---- 1. parameters ------------------------------------------------------------------- */

static void check_params(void) {
    prob P = prob_new(3, 4);
    vs_test_rng r = {1};
    fill_random(&P, &r, 1.0);
    float alpha[3], mu[3];
    unsigned char *w = vs_test_xmalloc(vs_solve_work_bytes(3, 4));
    const vs_kernels *K = vs_kernels_active();
    const float *const *k = (const float *const *)P.row;
    vs_solve_info info;
    CHECK_STATUS(vs_solve(NULL, VS_SOLVER_EG, k, 3, 4, P.q, 0.1f, 10, 1e-6f, alpha, mu, w, &info),
                 VS_E_NULL);
    CHECK_STATUS(vs_solve(K, VS_SOLVER_EG, NULL, 3, 4, P.q, 0.1f, 10, 1e-6f, alpha, mu, w, &info),
                 VS_E_NULL);
    CHECK_STATUS(vs_solve(K, VS_SOLVER_FW, k, 3, 4, NULL, 0.1f, 10, 1e-6f, alpha, mu, w, &info),
                 VS_E_NULL);
    CHECK_STATUS(vs_solve(K, VS_SOLVER_FW, k, 3, 4, P.q, 0.1f, 10, 1e-6f, NULL, mu, w, &info),
                 VS_E_NULL);
    CHECK_STATUS(vs_solve(K, VS_SOLVER_FW, k, 3, 4, P.q, 0.1f, 10, 1e-6f, alpha, mu, NULL, &info),
                 VS_E_NULL);
    CHECK_STATUS(vs_solve(K, VS_SOLVER_SOFTMAX, k, 3, 4, P.q, 0.1f, 10, 1e-6f, alpha, mu, w, &info),
                 VS_E_OPTION);
    CHECK_STATUS(vs_solve(K, 7, k, 3, 4, P.q, 0.1f, 10, 1e-6f, alpha, mu, w, &info), VS_E_OPTION);
    CHECK_STATUS(vs_solve(K, VS_SOLVER_EG, k, 0, 4, P.q, 0.1f, 10, 1e-6f, alpha, mu, w, &info),
                 VS_E_OPTION);
    CHECK_STATUS(vs_solve(K, VS_SOLVER_EG, k, 3, 0, P.q, 0.1f, 10, 1e-6f, alpha, mu, w, &info),
                 VS_E_OPTION);
    CHECK_STATUS(vs_solve(K, VS_SOLVER_EG, k, 3, 4, P.q, 0.1f, 0, 1e-6f, alpha, mu, w, &info),
                 VS_E_OPTION);
    const float bad_tol[] = {0.0f, -1.0f, NAN, INFINITY};
    for (int i = 0; i < 4; i++)
        CHECK_STATUS(
            vs_solve(K, VS_SOLVER_FW, k, 3, 4, P.q, 0.1f, 10, bad_tol[i], alpha, mu, w, &info),
            VS_E_OPTION);
    const float bad_eps[] = {0.0f, -0.1f, NAN, INFINITY, 1e-10f, 1e10f};
    for (int i = 0; i < 6; i++)
        CHECK_STATUS(
            vs_solve(K, VS_SOLVER_EG, k, 3, 4, P.q, bad_eps[i], 10, 1e-6f, alpha, mu, w, &info),
            VS_E_OPTION);
    /* non-finite or too large inputs */
    {
        const float keep = P.row[1][2], keepq = P.q[3];
        P.row[1][2] = NAN;
        CHECK_STATUS(vs_solve(K, VS_SOLVER_EG, k, 3, 4, P.q, 0.1f, 10, 1e-6f, alpha, mu, w, &info),
                     VS_E_NONFINITE);
        P.row[1][2] = INFINITY;
        CHECK_STATUS(vs_solve(K, VS_SOLVER_FW, k, 3, 4, P.q, 0.1f, 10, 1e-6f, alpha, mu, w, &info),
                     VS_E_NONFINITE);
        P.row[1][2] = 1e8f; /* ||k||^2 = 1e16 > VS_SOLVE_MAX_SQNORM */
        CHECK_STATUS(vs_solve(K, VS_SOLVER_FW, k, 3, 4, P.q, 0.1f, 10, 1e-6f, alpha, mu, w, &info),
                     VS_E_RANGE);
        P.row[1][2] = keep;
        P.q[3] = NAN;
        CHECK_STATUS(vs_solve(K, VS_SOLVER_EG, k, 3, 4, P.q, 0.1f, 10, 1e-6f, alpha, mu, w, &info),
                     VS_E_NONFINITE);
        P.q[3] = -1e20f;
        CHECK_STATUS(vs_solve(K, VS_SOLVER_EG, k, 3, 4, P.q, 0.1f, 10, 1e-6f, alpha, mu, w, &info),
                     VS_E_NONFINITE); /* 1e40 overflows float */
        P.q[3] = keepq;
    }
    /* FW ignores eps; mu and info may be NULL */
    CHECK_STATUS(vs_solve(K, VS_SOLVER_FW, k, 3, 4, P.q, 0.0f, 10, 1e-6f, alpha, NULL, w, NULL),
                 VS_OK);
    CHECK_STATUS(vs_solve(K, VS_SOLVER_EG, k, 3, 4, P.q, 0.5f, 10, 1e-6f, alpha, NULL, w, NULL),
                 VS_OK);
    /* n = 1: alpha = 1, nothing to do */
    CHECK_STATUS(vs_solve(K, VS_SOLVER_EG, k, 1, 4, P.q, 0.5f, 10, 1e-6f, alpha, mu, w, &info),
                 VS_OK);
    CHECK(alpha[0] == 1.0f && info.iterations == 0 && info.face_size == 1 && mu[0] == 0.0f &&
              isinf(info.gap) && info.leakage_bound == 0.0f && info.effective_support == 1.0f,
          "EG n=1: alpha %g it %u face %u", (double)alpha[0], info.iterations, info.face_size);
    CHECK_STATUS(vs_solve(K, VS_SOLVER_FW, k, 1, 4, P.q, 0.5f, 10, 1e-6f, alpha, mu, w, &info),
                 VS_OK);
    CHECK(alpha[0] == 1.0f && info.iterations == 0 && info.face_size == 1 && isinf(info.gap),
          "FW n=1: alpha %g it %u face %u", (double)alpha[0], info.iterations, info.face_size);
    free(w);
    prob_free(&P);
}

/* ---- 2. closed forms -------------------------------------------------------------------- */

/* The planted geometry: coordinate 0 is the normal of the face's plane.
   Face keys (0, v_i), i < m; q = (h, sum_i a*_i v_i); off-face keys
   (-Delta_j / h, u_j). At alpha* the residual is (-h, 0, ...), so g = 0 on the
   face and g_j = Delta_j off it: alpha* is optimal with multipliers Delta_j. */
static prob planted(size_t m, size_t n, size_t d, const double *astar, const double *delta,
                    double h, vs_test_rng *r) {
    prob P = prob_new(n, d);
    for (size_t j = 0; j < d; j++) P.q[j] = 0;
    double qj[64] = {0};
    for (size_t i = 0; i < m; i++) {
        P.row[i][0] = 0.0f;
        for (size_t j = 1; j < d; j++) {
            P.row[i][j] = ih(r);
            qj[j] += astar[i] * P.row[i][j];
        }
    }
    P.q[0] = (float)h;
    for (size_t j = 1; j < d; j++) P.q[j] = (float)qj[j];
    for (size_t i = m; i < n; i++) {
        P.row[i][0] = (float)(-delta[i - m] / h);
        for (size_t j = 1; j < d; j++) P.row[i][j] = (float)(qj[j] + 0.7 * ih(r));
    }
    return P;
}

static void check_closed_forms(void) {
    vs_test_rng r = {0xc105edu};
    /* (a) q = k_i: FW gives e_i (f* = 0); from the start e_s, s = argmax <k, q>,
       one pairwise step of length exactly alpha_s (a drop step) lands on e_i. */
    double worst_e = 0;
    int tried = 0;
    for (size_t d = 8; d <= 32; d *= 2) /* d >= n: affinely independent keys, e_i unique */
        for (size_t n = 2; n <= 8; n += 3) {
            prob P = prob_new(n, d);
            fill_random(&P, &r, 1.0);
            for (size_t i = 0; i < n; i++) {
                memcpy(P.q, P.row[i], d * sizeof(float));
                result R = solve(&P, VS_SOLVER_FW, 0, 1000, 1e-7f);
                int ok = R.status == VS_OK && R.info.converged && R.info.residual <= 1e-7f;
                double dev = fabs(R.alpha[i] - 1.0);
                for (size_t j = 0; j < n; j++)
                    if (j != i) dev = fmax(dev, fabs(R.alpha[j]));
                worst_e = fmax(worst_e, dev);
                CHECK(ok && dev <= 1e-6 && R.info.objective <= 1e-10f,
                      "FW q = k_%zu (n=%zu d=%zu): dev %.3g res %g it %u", i, n, d, dev,
                      (double)R.info.residual, R.info.iterations);
                tried++;
                result_free(&R);
            }
            prob_free(&P);
        }
    printf("  closed form q = k_i: %d FW solves, max |alpha - e_i| = %.3g\n", tried, worst_e);

    /* (b) a face of two keys: the projection onto the segment [k_0, k_1] */
    double worst_seg = 0, worst_gap = 0;
    for (int rep = 0; rep < 20; rep++) {
        const double t = 0.1 + 0.8 * vs_test_uniform(&r);
        const double astar[2] = {1 - t, t}, delta[4] = {0.3, 0.5, 1.0, 2.0};
        const double h = 0.5 + vs_test_uniform(&r);
        prob P = planted(2, 6, 8, astar, delta, h, &r);
        result R = solve(&P, VS_SOLVER_FW, 0, 1000, 1e-7f);
        /* the segment projection computed from the float keys */
        double num = 0, den = 0;
        for (size_t j = 0; j < P.d; j++) {
            const double e = (double)P.row[1][j] - P.row[0][j];
            num += ((double)P.q[j] - P.row[0][j]) * e;
            den += e * e;
        }
        const double tt = num / den;
        const double dev = fmax(fabs(R.alpha[0] - (1 - tt)), fabs(R.alpha[1] - tt));
        double off = 0;
        for (size_t j = 2; j < P.n; j++) off = fmax(off, R.alpha[j]);
        worst_seg = fmax(worst_seg, dev);
        worst_gap = fmax(worst_gap, fabs(R.info.gap - 0.3) / 0.3);
        CHECK(R.info.converged && dev <= 1e-5 && off == 0.0f && R.info.face_size == 2 &&
                  fabs(R.info.gap - 0.3) <= 1e-4 && R.info.leakage_bound == 0.0f,
              "FW segment: dev %.3g off %g face %u gap %g (want 0.3)", dev, (double)off,
              R.info.face_size, (double)R.info.gap);
        result_free(&R);
        prob_free(&P);
    }
    printf("  closed form segment face: max |alpha - alpha*| = %.3g, gap rel err %.3g\n", worst_seg,
           worst_gap);

    /* (c) EG on two keys: alpha = (1 - t, t), D^2 t - c + eps log(t / (1 - t)) = 0,
       D^2 = ||k_1 - k_0||^2, c = <q - k_0, k_1 - k_0>: bisection in float64 */
    double worst_eg2 = 0, worst_l1 = 0;
    for (int rep = 0; rep < 24; rep++) {
        prob P = prob_new(2, 5);
        fill_random(&P, &r, 1.0);
        const double eps = rep % 3 == 0 ? 0.02 : rep % 3 == 1 ? 0.2 : 2.0;
        double D2 = 0, c = 0;
        for (size_t j = 0; j < P.d; j++) {
            const double e = (double)P.row[1][j] - P.row[0][j];
            D2 += e * e;
            c += ((double)P.q[j] - P.row[0][j]) * e;
        }
        /* in log-odds u = log(t/(1-t)), the equation is increasing in u */
        double lo = -200, hi = 200;
        for (int k = 0; k < 200; k++) {
            const double u = 0.5 * (lo + hi), tt = 1 / (1 + exp(-u));
            if (D2 * tt - c + eps * u > 0)
                hi = u;
            else
                lo = u;
        }
        const double u = 0.5 * (lo + hi), t1 = 1 / (1 + exp(-u)), t0 = 1 / (1 + exp(u));
        const float tol = 1e-10f;
        result R = solve(&P, VS_SOLVER_EG, (float)eps, 100000, tol);
        /* the residual bounds F - F* >= eps/2 ||alpha - alpha_eps||_1^2 (Pinsker), and a
           weight w's log is then known to about sqrt(2 res / (eps w)) */
        const double l1 = fabs(R.alpha[0] - t0) + fabs(R.alpha[1] - t1);
        const double rel0 = fabs(R.alpha[0] - t0) / t0, rel1 = fabs(R.alpha[1] - t1) / t1;
        const double slack = 1e-7 * eps;
        int ok = R.status == VS_OK && R.info.converged && l1 <= sqrt(2 * (tol + slack) / eps) &&
                 rel0 <= 1e-5 + sqrt(2 * (tol + slack) / (eps * t0)) &&
                 rel1 <= 1e-5 + sqrt(2 * (tol + slack) / (eps * t1));
        worst_eg2 = fmax(worst_eg2, fmin(t0, t1) >= 1e-3 ? fmax(rel0, rel1) : 0);
        worst_l1 = fmax(worst_l1, l1);
        CHECK(ok, "EG two keys eps=%g: alpha (%.9g, %.9g) want (%.9g, %.9g), it %u res %g", eps,
              (double)R.alpha[0], (double)R.alpha[1], t0, t1, R.info.iterations,
              (double)R.info.residual);
        result_free(&R);
        prob_free(&P);
    }
    printf(
        "  closed form EG two keys (tol 1e-10): max ||alpha - alpha_eps||_1 %.3g, max relative "
        "error %.3g (weights >= 1e-3)\n",
        worst_l1, worst_eg2);

    /* (d) identical keys: f does not depend on alpha; EG gives uniform, FW stays at e_0 */
    {
        prob P = prob_new(7, 9);
        fill_random(&P, &r, 1.0);
        for (size_t i = 1; i < P.n; i++) memcpy(P.row[i], P.row[0], P.d * sizeof(float));
        result R = solve(&P, VS_SOLVER_EG, 0.1f, 100, 1e-7f);
        int uni = 1;
        for (size_t i = 0; i < P.n; i++) uni &= R.alpha[i] == R.alpha[0];
        CHECK(uni && fabs(R.alpha[0] - 1.0 / 7) < 1e-7 && R.info.iterations == 0 &&
                  R.info.face_size == 7 && fabs(R.info.effective_support - 7) < 1e-4,
              "EG identical keys: alpha0 %g it %u face %u", (double)R.alpha[0], R.info.iterations,
              R.info.face_size);
        result_free(&R);
        R = solve(&P, VS_SOLVER_FW, 0, 100, 1e-7f);
        CHECK(R.alpha[0] == 1.0f && R.info.iterations == 0 && R.info.face_size == 1,
              "FW identical keys: alpha0 %g it %u", (double)R.alpha[0], R.info.iterations);
        result_free(&R);
        prob_free(&P);
    }
}

/* ---- 3. small random problems against the references ----------------------------------- */

static void check_small(void) {
    vs_test_rng r = {0x5a11u};
    static const size_t DS[] = {3, 8, 16};
    const float fw_tol = 1e-7f, eg_tol = 1e-8f;
    double fw_worst_dz = 0, fw_worst_alpha = 0, fw_worst_df = -INFINITY, fw_worst_res = 0;
    double eg_worst_l1 = 0, eg_worst_dF = -INFINITY, eg_worst_res = 0, eg_worst_rel = 0;
    double eg_worst_leak = -INFINITY;
    int fw_cases = 0, fw_strict = 0, eg_cases = 0;
    unsigned fw_it_max = 0, eg_it_max = 0;
    for (int rep = 0; rep < 120; rep++) {
        const size_t n = 2 + (size_t)rep % 7, d = DS[(rep / 7) % 3];
        prob P = prob_new(n, d);
        fill_random(&P, &r, 1.0);
        if (rep % 2) { /* q near the hull: a convex combination plus a small offset */
            double wsum = 0, wt[NEXACT];
            for (size_t i = 0; i < n; i++) wsum += (wt[i] = vs_test_uniform(&r));
            for (size_t j = 0; j < d; j++) {
                double s = 0;
                for (size_t i = 0; i < n; i++) s += wt[i] / wsum * P.row[i][j];
                P.q[j] = (float)(s + 0.2 * ih(&r));
            }
        }

        /* FW vs the exact active set */
        double astar[NEXACT] = {0}, fstar = 0, min_on = 0, min_off = 0;
        const int found = exact_fw(&P, astar, &fstar, &min_on, &min_off);
        CHECK(found, "exact solver found no KKT point (rep %d)", rep);
        result R = solve(&P, VS_SOLVER_FW, 0, 100000, fw_tol);
        double *a64 = to64(R.alpha, n), z[16], zs[16], g[NEXACT];
        const double f = eval64(&P, a64, z, g);
        eval64(&P, astar, zs, NULL);
        double dz = 0, sum = 0, amin = 0;
        for (size_t j = 0; j < d; j++) dz += (z[j] - zs[j]) * (z[j] - zs[j]);
        dz = sqrt(dz);
        for (size_t i = 0; i < n; i++) sum += a64[i], amin = fmin(amin, a64[i]);
        const double gap64 = fw_gap64(&P, R.alpha);
        /* the float alpha rounds the internal double iterate: its gap may exceed the
           residual by 2^-23 (max |g| + 2 max ||k||^2) (with a factor 2 of margin) */
        double gmax = 0, kmax = 0;
        for (size_t i = 0; i < n; i++) {
            double kk = 0;
            for (size_t j = 0; j < d; j++) kk += (double)P.row[i][j] * P.row[i][j];
            kmax = fmax(kmax, kk);
            gmax = fmax(gmax, fabs(g[i]));
        }
        const double slack = 2 * 0x1p-23 * (gmax + 2 * kmax);
        fw_cases++;
        fw_worst_res = fmax(fw_worst_res, gap64);
        fw_worst_df = fmax(fw_worst_df, f - fstar);
        fw_worst_dz = fmax(fw_worst_dz, dz);
        if (R.info.iterations > fw_it_max) fw_it_max = R.info.iterations;
        CHECK(R.status == VS_OK && R.info.converged && R.info.residual <= fw_tol,
              "FW rep %d n=%zu d=%zu: not converged, residual %g after %u", rep, n, d,
              (double)R.info.residual, R.info.iterations);
        CHECK(amin >= 0 && fabs(sum - 1) <= 1e-6, "FW rep %d: alpha off the simplex (sum %.9g)",
              rep, sum);
        CHECK(gap64 <= fw_tol + slack && f - fstar <= fw_tol + slack &&
                  dz <= sqrt(2 * (fw_tol + slack)),
              "FW rep %d n=%zu d=%zu: float64 gap %.3g, f - f* %.3g, ||z - z*|| %.3g", rep, n, d,
              gap64, f - fstar, dz);
        /* multipliers: mu = g - min g, face = support, gap = min off g - max on g */
        {
            double gmin = INFINITY;
            for (size_t i = 0; i < n; i++) gmin = fmin(gmin, g[i]);
            double mu_err = 0, on_max = -INFINITY, off_min = INFINITY;
            uint32_t supp = 0;
            for (size_t i = 0; i < n; i++) {
                mu_err = fmax(mu_err, fabs(R.mu[i] - (g[i] - gmin)));
                if (R.alpha[i] > 0)
                    supp++, on_max = fmax(on_max, g[i]);
                else
                    off_min = fmin(off_min, g[i]);
            }
            const double gap_ref = supp == n ? INFINITY : off_min - on_max;
            CHECK(mu_err <= 1e-5 * (1 + fabs(gmin)) && supp == R.info.face_size &&
                      (supp == n ? isinf(R.info.gap)
                                 : fabs(R.info.gap - gap_ref) <= 1e-5 * (1 + fabs(gmin))) &&
                      R.info.gap >= -R.info.residual - 1e-5f && R.info.leakage_bound == 0.0f,
                  "FW rep %d diagnostics: mu err %.3g, face %u vs %u, gap %g vs %g", rep, mu_err,
                  R.info.face_size, supp, (double)R.info.gap, gap_ref);
        }
        /* strict complementarity and a well-conditioned face: alpha itself agrees */
        if (min_on > 1e-2 && min_off > 1e-2) {
            double da = 0;
            for (size_t i = 0; i < n; i++) da = fmax(da, fabs(a64[i] - astar[i]));
            fw_strict++;
            fw_worst_alpha = fmax(fw_worst_alpha, da);
            CHECK(da <= 1e-4, "FW rep %d: |alpha - alpha*| = %.3g", rep, da);
        }
        free(a64);
        result_free(&R);

        /* EG vs dual Newton, three eps */
        static const double EPS[] = {0.01, 0.1, 1.0};
        for (int e = 0; e < 3; e++) {
            const double eps = EPS[e];
            double la[NEXACT], Fstar;
            ent_ref(&P, eps, la, &Fstar);
            result E = solve(&P, VS_SOLVER_EG, (float)eps, 100000, eg_tol);
            double egap64;
            const double F = ent_eval64(&P, E.alpha, eps, &egap64);
            double l1 = 0, rel = 0, sum_e = 0;
            for (size_t i = 0; i < n; i++) {
                const double ai = exp(la[i]);
                l1 += fabs(E.alpha[i] - ai);
                if (ai >= 1e-3) rel = fmax(rel, fabs(E.alpha[i] - ai) / ai);
                sum_e += E.alpha[i];
            }
            const double eslack = 1e-6 * eps + 1e-7 * (1 + fabs(Fstar));
            eg_cases++;
            eg_worst_res = fmax(eg_worst_res, egap64);
            eg_worst_dF = fmax(eg_worst_dF, F - Fstar);
            eg_worst_l1 = fmax(eg_worst_l1, l1);
            if (l1 > 0) eg_worst_rel = fmax(eg_worst_rel, rel);
            if (E.info.iterations > eg_it_max) eg_it_max = E.info.iterations;
            CHECK(E.status == VS_OK && E.info.converged && E.info.residual <= eg_tol,
                  "EG rep %d eps=%g n=%zu d=%zu: residual %g after %u", rep, eps, n, d,
                  (double)E.info.residual, E.info.iterations);
            CHECK(fabs(sum_e - 1) <= 1e-6, "EG rep %d: sum alpha %.9g", rep, sum_e);
            CHECK(egap64 <= eg_tol + eslack && F - Fstar <= eg_tol + eslack &&
                      l1 <= sqrt(2 * (eg_tol + eslack) / eps),
                  "EG rep %d eps=%g n=%zu d=%zu: float64 gap %.3g, F - F* %.3g, l1 %.3g (bound "
                  "%.3g)",
                  rep, eps, n, d, egap64, F - Fstar, l1, sqrt(2 * (eg_tol + eslack) / eps));
            /* diagnostics: mu >= 0 with min 0, face in [1, n], leakage consistent */
            float mumin = INFINITY;
            int mu_ok = 1;
            for (size_t i = 0; i < n; i++) {
                mumin = fminf(mumin, E.mu[i]);
                mu_ok &= E.mu[i] >= 0.0f;
            }
            double rho = 0; /* mass off the reported face: the face is {mu <= cut} */
            if (E.info.face_size < n) {
                float tmp[NEXACT];
                memcpy(tmp, E.mu, n * sizeof *tmp);
                for (size_t a = 0; a < n; a++) /* selection sort: small n */
                    for (size_t b = a + 1; b < n; b++)
                        if (tmp[b] < tmp[a]) {
                            float t = tmp[a];
                            tmp[a] = tmp[b];
                            tmp[b] = t;
                        }
                const float cut = tmp[E.info.face_size - 1];
                for (size_t i = 0; i < n; i++)
                    if (E.mu[i] > cut) rho += E.alpha[i];
                CHECK(fabs((tmp[E.info.face_size] - cut) - E.info.gap) <= 1e-6 * (1 + cut),
                      "EG rep %d: reported gap %g vs sorted multipliers %g", rep,
                      (double)E.info.gap, (double)(tmp[E.info.face_size] - cut));
            }
            /* the bound is about alpha_eps; alpha is within sqrt(2 res / eps) of it in l1 */
            const double within = sqrt(2 * (E.info.residual + eslack) / eps);
            eg_worst_leak = fmax(eg_worst_leak, (rho - E.info.leakage_bound) / within);
            CHECK(mu_ok && mumin == 0.0f && E.info.face_size >= 1 && E.info.face_size <= n &&
                      rho <= E.info.leakage_bound + within && E.info.effective_support >= 1.0f &&
                      E.info.effective_support <= (float)n,
                  "EG rep %d diagnostics: mu min %g, face %u, off-face mass %.3g > bound %.3g, "
                  "eff %g",
                  rep, (double)mumin, E.info.face_size, rho, (double)E.info.leakage_bound,
                  (double)E.info.effective_support);
            result_free(&E);
        }
        prob_free(&P);
    }
    printf(
        "  small problems, FW (tol %.0e): %d cases, max float64 gap %.3g, max f - f* %.3g, "
        "max ||z - z*|| %.3g, |alpha - alpha*| %.3g on %d strictly complementary, max %u "
        "iterations\n",
        (double)fw_tol, fw_cases, fw_worst_res, fw_worst_df, fw_worst_dz, fw_worst_alpha, fw_strict,
        fw_it_max);
    printf(
        "  small problems, EG (tol %.0e, eps 0.01/0.1/1): %d cases, max float64 gap %.3g, max F - "
        "F* %.3g, max ||alpha - alpha_eps||_1 %.3g (relative %.3g on weights >= 1e-3), max %u "
        "iterations; off-face mass - leakage_bound <= %.3g x sqrt(2 res / eps)\n",
        (double)eg_tol, eg_cases, eg_worst_res, eg_worst_dF, eg_worst_l1, eg_worst_rel, eg_it_max,
        eg_worst_leak);
}

/* ---- 4, 5. planted gap: leakage and bias ------------------------------------------------ */

/* least squares slope of y on x */
static double fit_slope(const double *x, const double *y, int m) {
    double mx = 0, my = 0;
    for (int i = 0; i < m; i++) mx += x[i] / m, my += y[i] / m;
    double sxy = 0, sxx = 0;
    for (int i = 0; i < m; i++) sxy += (x[i] - mx) * (y[i] - my), sxx += (x[i] - mx) * (x[i] - mx);
    return sxy / sxx;
}

#define PM 3 /* face size */
#define PN 8 /* keys */
#define PD 8

static void check_planted(void) {
    const double astar[PM] = {0.5, 0.3, 0.2};
    /* (i) eps sweep at Delta = 1, (ii) Delta sweep at eps = 0.05; x = Delta / eps */
    static const double XS[] = {1, 2, 4, 6, 8, 12, 16, 20, 25, 30, 40, 50, 60, 70};
    enum { NX = sizeof XS / sizeof XS[0] };
    double worst_ratio = 0, worst_own = 0, worst_ref = 0;
    double slopes[2];
    for (int sweep = 0; sweep < 2; sweep++) {
        double fx[NX], fy[NX];
        int nf = 0;
        vs_test_rng r = {0x91a47edu}; /* the same geometry for every point of a sweep */
        for (int k = 0; k < NX; k++) {
            const double x = XS[k];
            const double Delta = sweep == 0 ? 1.0 : 0.05 * x, eps = Delta / x;
            double delta[PN - PM];
            for (int j = 0; j < PN - PM; j++) delta[j] = Delta;
            vs_test_rng rk = r;
            prob P = planted(PM, PN, PD, astar, delta, 1.0, &rk);
            result E = solve(&P, VS_SOLVER_EG, (float)eps, 200000, 1e-14f);
            double la[PN], Fstar;
            ent_ref(&P, eps, la, &Fstar);
            double rho = 0, rho_ref = 0;
            for (int j = PM; j < PN; j++) rho += E.alpha[j], rho_ref += exp(la[j]);
            const double bound = (double)(PN - PM) / PM * exp(-x / 2);
            worst_ratio = fmax(worst_ratio, rho / bound);
            worst_ref = fmax(worst_ref, fabs(log(rho / rho_ref)));
            CHECK(rho <= bound, "planted x=%g: off-face mass %.4g exceeds the bound %.4g", x, rho,
                  bound);
            CHECK(fabs(log(rho / rho_ref)) <= 1e-2,
                  "planted x=%g: EG off-face mass %.6g vs float64 reference %.6g", x, rho, rho_ref);
            /* the solver's own face and bound: face = the planted one once the gap shows */
            if (x >= 8) {
                CHECK(E.info.face_size == PM && fabs(E.info.gap - Delta) <= 0.2 * Delta &&
                          rho <= E.info.leakage_bound,
                      "planted x=%g: face %u (want %d), gap %g (planted %g), mass %.3g vs "
                      "leakage_bound %.3g",
                      x, E.info.face_size, PM, (double)E.info.gap, Delta, rho,
                      (double)E.info.leakage_bound);
                worst_own = fmax(worst_own, rho / E.info.leakage_bound);
            }
            if (x >= 8) fx[nf] = x, fy[nf] = log(rho), nf++;
            result_free(&E);
            prob_free(&P);
        }
        slopes[sweep] = fit_slope(fx, fy, nf);
    }
    printf(
        "  planted gap (m=%d, n=%d): off-face mass / ((n-m)/m exp(-Delta/(2 eps))) <= %.3g; "
        "mass / own leakage_bound <= %.3g; |log(mass / float64 mass)| <= %.3g\n",
        PM, PN, worst_ratio, worst_own, worst_ref);
    printf(
        "  log(off-face mass) vs Delta/eps in [8, 70]: slope %.4f (eps sweep, Delta = 1), %.4f "
        "(Delta sweep, eps = 0.05); fixed point predicts -1, the bound's exponent is -1/2\n",
        slopes[0], slopes[1]);
    for (int s = 0; s < 2; s++)
        CHECK(fabs(slopes[s] + 1.0) <= 0.03 && slopes[s] < -0.5,
              "leakage slope %.4f: want -1 +- 0.03 (and steeper than -1/2)", slopes[s]);

    /* on-face bias: Delta = 3 (leakage <= 5/3 e^-75 at the largest eps) */
    static const double ES[] = {0.0025, 0.005, 0.01, 0.02, 0.04};
    enum { NE = sizeof ES / sizeof ES[0] };
    double lx[NE], ly[NE], worst_fw = 0;
    for (int k = 0; k < NE; k++) {
        double delta[PN - PM];
        for (int j = 0; j < PN - PM; j++) delta[j] = 3.0;
        vs_test_rng r = {0xb1a5u};
        prob P = planted(PM, PN, PD, astar, delta, 1.0, &r);
        result F = solve(&P, VS_SOLVER_FW, 0, 100000, 1e-9f);
        result E = solve(&P, VS_SOLVER_EG, (float)ES[k], 400000, 1e-12f);
        double la[PN], Fstar, bias = 0, bias_ref = 0, dfw = 0;
        ent_ref(&P, ES[k], la, &Fstar);
        for (int i = 0; i < PM; i++) {
            bias += fabs((double)E.alpha[i] - F.alpha[i]);
            bias_ref += fabs(exp(la[i]) - astar[i]);
            dfw = fmax(dfw, fabs(F.alpha[i] - astar[i]));
        }
        worst_fw = fmax(worst_fw, dfw);
        CHECK(dfw <= 1e-5 && F.info.face_size == PM, "bias: FW alpha vs planted alpha*: %.3g", dfw);
        CHECK(fabs(bias - bias_ref) <= 1e-3 * bias_ref + 2e-6,
              "bias eps=%g: EG %.6g vs float64 %.6g", ES[k], bias, bias_ref);
        lx[k] = log(ES[k]);
        ly[k] = log(bias);
        result_free(&F);
        result_free(&E);
        prob_free(&P);
    }
    const double bslope = fit_slope(lx, ly, NE);
    printf(
        "  on-face bias ||alpha_eps - alpha_FW||_1 over eps in [%.4g, %.4g]: %.4g .. %.4g, "
        "log-log slope %.4f (theory: 1); FW vs planted alpha* %.3g\n",
        ES[0], ES[NE - 1], exp(ly[0]), exp(ly[NE - 1]), bslope, worst_fw);
    CHECK(fabs(bslope - 1.0) <= 0.05, "on-face bias slope %.4f, want 1 +- 0.05", bslope);
}

/* ---- 6. determinism and bit-identity across ISAs ------------------------------------------ */

static uint64_t hash;
static void hash_bytes(const void *p, size_t n) {
    const unsigned char *b = p;
    for (size_t i = 0; i < n; i++) hash = (hash ^ b[i]) * 0x100000001b3ull;
}

static void hash_result(const result *R, size_t n) {
    hash_bytes(R->alpha, n * sizeof(float));
    hash_bytes(R->mu, n * sizeof(float));
    const vs_solve_info *I = &R->info;
    const uint32_t u[3] = {I->iterations, I->face_size, I->converged};
    const float f[6] = {I->residual,          I->gap,       I->leakage_bound,
                        I->effective_support, I->objective, 0.0f};
    hash_bytes(u, sizeof u);
    hash_bytes(f, sizeof f);
}

static int same_result(const result *A, const result *B, size_t n) {
    return memcmp(A->alpha, B->alpha, n * sizeof(float)) == 0 &&
           memcmp(A->mu, B->mu, n * sizeof(float)) == 0 &&
           memcmp(&A->info, &B->info, sizeof A->info) == 0;
}

static uint64_t identity_run(void) {
    static const size_t NS[] = {1, 2, 3, 7, 8, 9, 17, 40, 128};
    static const size_t DSI[] = {1, 3, 8, 17, 64, 128};
    vs_test_rng r = {0x1d3a7u};
    hash = 0xcbf29ce484222325ull;
    for (size_t a = 0; a < sizeof NS / sizeof NS[0]; a++)
        for (size_t b = 0; b < sizeof DSI / sizeof DSI[0]; b++) {
            const size_t n = NS[a], d = DSI[b];
            prob P = prob_new(n, d);
            fill_random(&P, &r, 1.0 / sqrt(sqrt((double)d)) * (1 + (a + b) % 3));
            for (int s = 0; s < 3; s++) {
                const uint32_t solver = s == 2 ? VS_SOLVER_FW : VS_SOLVER_EG;
                const float eps = s == 0 ? 0.05f : 0.5f;
                result R = solve(&P, solver, eps, 300, 1e-6f);
                result R2 = solve(&P, solver, eps, 300, 1e-6f);
                CHECK(R.status == VS_OK && same_result(&R, &R2, n),
                      "%s solver %u n=%zu d=%zu: two runs differ", vs_isa_name(), solver, n, d);
                hash_result(&R, n);
                result_free(&R);
                result_free(&R2);
            }
            prob_free(&P);
        }
    return hash;
}

static void check_identity(void) {
    const char *isas[8];
    const int nisa = vs_test_isas(isas, 8);
    uint64_t h[8];
    for (int i = 0; i < nisa; i++) {
        CHECK_STATUS(vs_set_isa(isas[i]), VS_OK);
        h[i] = identity_run();
        printf("  %s: solver output hash %016llx\n", isas[i], (unsigned long long)h[i]);
        CHECK(h[i] == h[0], "%s solver outputs differ from scalar", isas[i]);
    }
    vs_set_isa("auto");
}

/* ---- 7. timing (printed only) ------------------------------------------------------------- */

static double now_us(void) {
    struct timespec t;
    timespec_get(&t, TIME_UTC);
    return t.tv_sec * 1e6 + t.tv_nsec * 1e-3;
}

static void timing(void) {
    const size_t n = 128, d = 128;
    const char *isas[8];
    const int nisa = vs_test_isas(isas, 8);
    for (int fam = 0; fam < 2; fam++) {
        vs_test_rng r = {0x7133u + (uint64_t)fam};
        prob P = prob_new(n, d);
        /* keys with the 1/sqrt(d) softmax scale folded in (k, q scaled by d^-1/4);
           fam 1: q near a mix of three keys (a clear face) */
        fill_random(&P, &r, pow((double)d, -0.25));
        if (fam == 1)
            for (size_t j = 0; j < d; j++)
                P.q[j] =
                    0.5f * P.row[3][j] + 0.3f * P.row[10][j] + 0.2f * P.row[20][j] + 0.3f * P.q[j];
        for (int a = 0; a < nisa; a++) {
            vs_set_isa(isas[a]);
            const struct {
                uint32_t solver;
                float eps;
            } runs[] = {{VS_SOLVER_EG, 0.5f}, {VS_SOLVER_EG, 0.05f}, {VS_SOLVER_FW, 0}};
            for (int k = 0; k < 3; k++) {
                result R = solve(&P, runs[k].solver, runs[k].eps, 100000, 1e-6f);
                float *alpha = vs_test_xmalloc(n * sizeof(float));
                unsigned char *w = vs_test_xmalloc(vs_solve_work_bytes(n, d));
                vs_solve_info info;
                double us = 0;
                for (int reps = 4;; reps *= 2) { /* until the clock's resolution is negligible */
                    const double t0 = now_us();
                    for (int i = 0; i < reps; i++)
                        vs_solve(vs_kernels_active(), runs[k].solver, (const float *const *)P.row,
                                 n, d, P.q, runs[k].eps, 100000, 1e-6f, alpha, NULL, w, &info);
                    const double t = now_us() - t0;
                    us = t / reps;
                    if (t > 3e4 || reps > 100000) break;
                }
                printf(
                    "  timing n=%zu d=%zu %s %-2s%s eps=%-4g: %5u iterations, %8.1f us/solve "
                    "(%.2f us/iteration), face %u, eff. support %.2f, residual %.2g\n",
                    n, d, fam ? "face " : "random", runs[k].solver == VS_SOLVER_EG ? "EG" : "FW",
                    "", (double)runs[k].eps, R.info.iterations, us,
                    us / (R.info.iterations ? R.info.iterations : 1), R.info.face_size,
                    (double)R.info.effective_support, (double)R.info.residual);
                free(alpha);
                free(w);
                result_free(&R);
            }
            printf("    (%s)\n", isas[a]);
        }
        vs_set_isa("auto");
        prob_free(&P);
    }
}

int main(void) {
    check_params();
    check_closed_forms();
    check_small();
    check_planted();
    check_identity();
    timing();
    return vs_test_finish("test_solvers");
}
