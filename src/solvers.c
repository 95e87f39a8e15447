/*
 * Projection solvers on the candidate set (DESIGN section 2).
 *
 * Problem. Keys U = [k_1 .. k_n] (d x n), query q, alpha in the simplex
 * Delta_n = {alpha >= 0, sum alpha = 1}, f(alpha) = 1/2 ||U alpha - q||^2,
 *   grad f(alpha) = g = U^T r,  r = z - q,  z = U alpha.
 * The hot loops are z = U alpha (kernels->accum) and g = U^T r
 * (kernels->dots); the n x n Gram matrix is never formed.
 *
 * KKT. alpha* minimizes f over Delta_n iff there is nu with
 *   g_i(alpha*) = nu on supp(alpha*),  g_j(alpha*) >= nu elsewhere;
 * mu_i = g_i - nu >= 0 are the multipliers of alpha >= 0 (mu = 0 on the
 * face), and the support gap is Delta = min_{j off the face} mu_j.
 * The entropic problem F = f + eps H, H(alpha) = sum alpha_i log alpha_i, has
 * the unique solution alpha_eps > 0 with
 *   g_i(alpha_eps) + eps log alpha_eps_i = const,  i.e.  alpha_eps = softmax(-g(alpha_eps) / eps).
 *
 * EG (VS_SOLVER_EG): Bregman (mirror) proximal gradient with the KL
 * divergence, the entropy handled exactly:
 *   alpha+ = argmin_a <g, a> + eps H(a) + KL(a || alpha) / eta
 *          = normalize(alpha^(1/(1+eta eps)) exp(-eta g / (1+eta eps))).
 * The state is y = log alpha up to a constant (shifted so max y = 0), so the
 * step is y+ = (y - eta g) / (1 + eta eps) and weights far below float range
 * keep their exact log; alpha = vs_exp(y) / sum (exp_sum kernel).
 * Step size: f is L-smooth relative to H with L = max_i ||k_i||^2: for
 * x = a - b, sum x = 0, ||U x|| <= (diam / 2) ||x||_1 <= max_i ||k_i|| ||x||_1
 * and Pinsker gives KL(a||b) >= ||x||_1^2 / 2, so
 *   (D)  1/2 ||U (alpha+ - alpha)||^2 <= KL(alpha+ || alpha) / eta
 * holds for every eta <= 1/L. Under (D) the step decreases F monotonically
 * and, eps H being eps-strongly convex relative to H,
 *   (1 + eta eps) KL(alpha_eps || alpha+) <= KL(alpha_eps || alpha) - eta (F(alpha+) - F*)
 * (Bregman proximal gradient with a relatively strongly convex regularizer),
 * a linear rate 1/(1 + eta eps). 1/L is usually far too cautious, so eta
 * adapts: (D) is checked exactly (f is quadratic: the left side is
 * 1/2 ||z+ - z||^2 from the z+ we need anyway; KL from the two y's), a step
 * failing it is retried with a smaller eta, and the next eta is predicted
 * from the measured ratio (both sides of (D) scale like eta^2 for small
 * steps, so the ratio is linear in eta), capped at x4 per step and floored at
 * 1/L where (D) holds by the bound above. Start: uniform alpha (y = 0).
 * Stop: the entropic duality gap. For w = r the dual of the problem is
 *   D(w) = -eps log sum_i exp(-<k_i, w>/eps) - <w, q> - 1/2 ||w||^2 <= F*,
 * and F(alpha) - D(r) = eps KL(alpha || softmax(-g/eps)) =: residual. It is
 * >= F(alpha) - F*, and 0 exactly when the KKT conditions hold; EG stops when
 * it is <= tol. It is evaluated around its first-order terms, which cancel
 * (eg_residual), so it resolves far below the float rounding of the weights.
 * (A sup-norm residual on log alpha cannot reach small tol in float: g's
 * rounding is amplified by 1/eps; the gap is second order in it.)
 * The residual is mass-weighted: weights below float resolution of the
 * largest (< 2^-24 alpha_max) converge in log only at the rate theta per
 * step, unseen by it. On convergence they are set to their KKT value given
 * the converged gradient (eg_polish: they move z below its resolution), and
 * the residual is checked again.
 *
 * FW (VS_SOLVER_FW): pairwise Frank-Wolfe on the unregularized problem. The
 * FW vertex s = argmin_j g_j (ties: lower index), the away vertex
 * a = argmax_{i in supp} g_i; mass moves from a to s along e_s - e_a with the
 * exact line search of the quadratic,
 *   gamma = min(alpha_a, (g_a - g_s) / ||k_s - k_a||^2),
 * (gamma = alpha_a drops a from the support). Pairwise steps converge
 * linearly on the simplex (Lacoste-Julien & Jaggi 2015), where plain FW
 * zig-zags on faces. Start: the FW step from alpha = 0, i.e. the vertex
 * e_s, s = argmax_i <k_i, q>. Iterates are exactly sparse: alpha_i = 0 off the
 * support. Stop: the FW duality gap
 *   residual = <g, alpha> - min_j g_j = <r, z - k_s> >= f(alpha) - f*  <= tol.
 * Precision: alpha, z = U alpha (updated exactly along each step) and r are
 * kept in double, and the gap and the line search are computed in double, so
 * the gap is driven far below the float rounding of <k_i, r> (~1e-7 |k| |r|).
 * The float dots pass only chooses s and a; when its choice gives no descent
 * at that precision, the support's gradients are recomputed in double and
 * chosen from. Per step: one dots pass (n d) plus O(d + |supp|).
 *
 * Diagnostics (both solvers, at the returned alpha; mu_i = g_i - min_j g_j):
 *  face I, gap Delta = min_{j not in I} g_j - max_{i in I} g_i (+inf when I is
 *  everything). At an unregularized optimum g is constant on the face, so this
 *  is DESIGN's Delta = min_{j not in I} mu_j; at alpha_eps the face's own
 *  multipliers are eps log(alpha_max / alpha_i) = O(eps), and subtracting
 *  their spread keeps Delta conservative.
 *  - FW: I = supp(alpha). leakage_bound = 0: the returned alpha has exactly
 *    no mass off I (the gap says how firmly I is separated; it is >= -residual).
 *  - EG: alpha_eps > 0 everywhere, so I is read off the multipliers: sort mu
 *    (m_(1) = 0 <= m_(2) <= ...); I = {mu <= m_(k)} for the k < n with the
 *    largest separation m_(k+1) - m_(k) (ties: the smaller face), among the
 *    prefixes whose last weight is representable next to the largest
 *    (m_(k) <= 24 ln2 eps, i.e. alpha_i >= 2^-24 alpha_max at the fixed
 *    point). When that split's leakage bound (below) is not < 1 -- a diffuse
 *    solution, no face the theorem certifies -- or all multipliers are equal,
 *    I is everything (Delta = +inf, leakage 0; effective_support then says
 *    how diffuse alpha is).
 *    leakage_bound = min(1, (n - |I|)/|I| exp(-Delta / (2 eps))).
 *    Why this holds: at the fixed point alpha_j / alpha_i = exp(-(g_j - g_i)/eps),
 *    so for every i in I and j not in I, alpha_j <= alpha_i exp(-Delta/eps);
 *    averaging over I, rho / (1 - rho) <= (n - |I|)/|I| exp(-Delta/eps) for the
 *    off-face mass rho. The face theorem states it with Delta/(2 eps): with
 *    Delta0 the gap of the unregularized solution, the gradient moves by
 *    U^T U (alpha_eps - alpha*) between the two solutions, and as long as that
 *    eats at most half the gap (eps small enough; it is O(eps)) the bound
 *    holds with Delta0/(2 eps). We report the theorem's exponent, which also
 *    leaves a factor exp(Delta/(2 eps)) of room for an unconverged iterate.
 *    The measured rate of the off-face mass is the fixed point's,
 *    exp(-Delta/eps): slope -1 in Delta/eps (tests/test_solvers.c fits it).
 *  effective_support = exp(-sum alpha_i log alpha_i).
 *
 * Determinism: besides the kernels (bit-identical across ISAs) only IEEE
 * float/double + - * / and comparisons in a fixed order; the few scalar logs
 * and exps are det_log / det_exp below, not libm, so native and wasm agree.
 */
#include "solvers.h"

#include <math.h>
#include <string.h>

#include "include/vashista.h"
#include "kernels/vexp.h"

/* ---- deterministic double log / exp (only + - * /, so identical everywhere) ---- */

#define LN2_HI 6.93147180369123816490e-01 /* fdlibm split of ln 2: n * LN2_HI exact */
#define LN2_LO 1.90821492927058770002e-10

/* log x for x > 0 finite: x = m 2^e, m in [sqrt(1/2), sqrt(2)), log m = 2 atanh(s). */
static double det_log(double x) {
    uint64_t b;
    memcpy(&b, &x, sizeof b);
    int e = (int)((b >> 52) & 0x7ff);
    if (e == 0) { /* subnormal */
        x *= 0x1p54;
        memcpy(&b, &x, sizeof b);
        e = (int)((b >> 52) & 0x7ff) - 54;
    }
    e -= 1023;
    b = (b & 0x000fffffffffffffull) | 0x3ff0000000000000ull;
    double m;
    memcpy(&m, &b, sizeof m);
    if (m > 1.4142135623730951) {
        m *= 0.5;
        e++;
    }
    const double s = (m - 1.0) / (m + 1.0), s2 = s * s; /* |s| <= 0.1716 */
    double p = 2.0 / 25.0;
    for (int k = 23; k >= 1; k -= 2) p = p * s2 + 2.0 / k;
    return (double)e * LN2_HI + ((double)e * LN2_LO + s * p);
}

static const double INV[] = {0.0,      1.0,      1.0 / 2,  1.0 / 3,  1.0 / 4,
                             1.0 / 5,  1.0 / 6,  1.0 / 7,  1.0 / 8,  1.0 / 9,
                             1.0 / 10, 1.0 / 11, 1.0 / 12, 1.0 / 13, 1.0 / 14};

/* exp x: 2^n exp(r), |r| <= ln2 / 2, degree-14 Taylor. 0 below -745, +inf above 709. */
static double det_exp(double x) {
    if (!(x > -745.0)) return 0.0;
    if (x > 709.0) return INFINITY;
    const double big = 0x1.8p52;
    const double n = (x * 1.4426950408889634 + big) - big;
    const double r = (x - n * LN2_HI) - n * LN2_LO;
    double p = 1.0;
    for (int k = 14; k >= 1; k--) p = 1.0 + p * r * INV[k];
    int ni = (int)n;
    if (ni < -1000) { /* 2^ni below the normal range: two steps */
        p *= 0x1p-600;
        ni += 600;
    }
    const uint64_t bits = (uint64_t)(ni + 1023) << 52;
    double two;
    memcpy(&two, &bits, sizeof two);
    return p * two;
}

/* Smallest float >= x (x >= 0). */
static float round_up(double x) {
    if (!(x < 3.0e38)) return INFINITY;
    float f = (float)x;
    if ((double)f < x) {
        uint32_t b;
        memcpy(&b, &f, sizeof b);
        b++;
        memcpy(&f, &b, sizeof f);
    }
    return f;
}

/* ---- workspace ------------------------------------------------------------------ */

#define ALIGN 64

static size_t up(size_t bytes) { return (bytes + ALIGN - 1) / ALIGN * ALIGN; }

static size_t eg_bytes(size_t n, size_t d) {
    return 5 * up(n * sizeof(float)) + 3 * up(d * sizeof(float));
}

static size_t fw_bytes(size_t n, size_t d) {
    return 2 * up(n * sizeof(double)) + 2 * up(d * sizeof(double)) + up(n * sizeof(float)) +
           up(d * sizeof(float)) + up(n * sizeof(uint32_t));
}

size_t vs_solve_work_bytes(size_t n, size_t d) {
    /* about 24 n + 48 d + 7 ALIGN bytes: saturate instead of wrapping (wasm32) */
    if (n > (SIZE_MAX / 2 - 8 * ALIGN) / 32 || d > (SIZE_MAX / 2 - 8 * ALIGN) / 64) return SIZE_MAX;
    const size_t e = eg_bytes(n, d), f = fw_bytes(n, d);
    return ALIGN + (e > f ? e : f);
}

typedef struct carver {
    unsigned char *p;
} carver;

static void *carve(carver *c, size_t bytes) {
    void *r = c->p;
    c->p += up(bytes);
    return r;
}

/* ---- shared pieces ------------------------------------------------------------- */

/* r = z - q, g = U^T r */
static void gradient(const vs_kernels *K, const float *const *keys, size_t n, size_t d,
                     const float *q, const float *z, float *r, float *g) {
    for (size_t j = 0; j < d; j++) r[j] = z[j] - q[j];
    K->dots(keys, n, d, r, g);
}

/* Lowest index of the smallest x. */
static size_t argmin(const float *x, size_t n) {
    size_t b = 0;
    for (size_t i = 1; i < n; i++)
        if (x[i] < x[b]) b = i;
    return b;
}

static double half_sq_norm(const float *r, size_t d) {
    double s = 0;
    for (size_t j = 0; j < d; j++) s += (double)r[j] * r[j];
    return 0.5 * s;
}

/* In-place ascending heapsort (deterministic; no allocation). */
static void sift(float *x, size_t i, size_t n) {
    for (;;) {
        size_t c = 2 * i + 1;
        if (c >= n) return;
        if (c + 1 < n && x[c + 1] > x[c]) c++;
        if (!(x[c] > x[i])) return;
        const float t = x[i];
        x[i] = x[c];
        x[c] = t;
        i = c;
    }
}

static void sort_floats(float *x, size_t n) {
    for (size_t i = n / 2; i-- > 0;) sift(x, i, n);
    for (size_t e = n; e-- > 1;) {
        const float t = x[0];
        x[0] = x[e];
        x[e] = t;
        sift(x, 0, e);
    }
}

/* ---- EG -------------------------------------------------------------------------- */

/* y -= max y; a = vs_exp(y) / sum; returns log(sum). */
static double normalize(const vs_kernels *K, float *y, float *a, size_t n) {
    const float m = K->max(y, n);
    for (size_t i = 0; i < n; i++) y[i] = y[i] - m;
    memcpy(a, y, n * sizeof *a);
    const float s = K->exp_sum(a, n, 0.0f); /* >= 1: the max term is exactly 1 */
    K->scale(a, n, 1.0f / s);
    return det_log((double)s);
}

/* e^u - 1 and phi(u) = e^u - 1 - u given e = vs_exp(u) (float, from the exp kernel):
   for |u| < 1/16 the series (relative error < 1e-11: this is where accuracy
   matters, near convergence), beyond it e - 1 - u (phi >= 0.0019 there, so
   vs_exp's relative 5e-7 stays below 1e-4 of phi). */
static inline void expm1_phi(double u, float e, double *em1, double *phi) {
    if (u > -0.0625 && u < 0.0625) {
        const double p =
            1.0 +
            u * INV[3] *
                (1.0 + u * INV[4] * (1.0 + u * INV[5] * (1.0 + u * INV[6] * (1.0 + u * INV[7]))));
        *phi = 0.5 * u * u * p;
        *em1 = u + *phi;
    } else {
        *em1 = (double)e - 1.0;
        *phi = *em1 - u;
    }
}

static double log1p_det(double x) {
    if (x > -1e-4 && x < 1e-4) return x * (1 - x * (0.5 - x * (1.0 / 3 - x * (0.25 - x * 0.2))));
    return det_log(1.0 + x);
}

/* The O(n) sums below run in four interleaved partial sums (term i into
   partial i % 4, combined (p0 + p1) + (p2 + p3)): four independent add chains
   instead of one, in a fixed order, so still deterministic. */
static inline double sum4(const double p[4]) { return (p[0] + p[1]) + (p[2] + p[3]); }

/* Both KLs below are evaluated around their first-order terms, which cancel
   exactly: what is summed is second order (u^2-sized), so a converged
   iterate's residual is not buried under the float rounding of the weights
   (relative 1e-7, i.e. absolute 1e-7 for a plain sum a_i log(a_i / pi_i)).
   The weights a_i (float) stand for p_i = a_i / sum a, whose logs are y_i up
   to a constant; coordinates with a_i = 0 (y < -87) are negligible. The
   exponentials come from the exp kernel (SIMD) on u rounded to float; ex is
   n floats of scratch. */

/* eps KL(p || softmax(-g/eps)) = eps log sum_i p_i e^{u_i}, u = (-g/eps - y) - c,
   c = sum p (-g/eps - y) (so sum p u = 0). A weight that is 0 in float, or so
   far below its KKT value that e^u leaves the exp kernel's range (u >= 80), is
   counted through p_i e^{u_i} = exp(-g_i/eps - c - log_sa) directly: it may
   be where the residual is. */
static double eg_residual(const vs_kernels *K, const float *y, const float *a, double log_sa,
                          const float *g, size_t n, float eps, float *ex) {
    const double ie = 1.0 / eps;
    double A[4] = {0}, C[4] = {0};
    for (size_t b = 0; b < n; b += 4)
        for (size_t l = 0; l < 4; l++) {
            const size_t i = b + l;
            if (i >= n) break;
            A[l] += a[i];
            C[l] += (double)a[i] * (-(double)g[i] * ie - y[i]);
        }
    const double As = sum4(A), c = sum4(C) / As;
    for (size_t i = 0; i < n; i++) ex[i] = (float)((-(double)g[i] * ie - y[i]) - c);
    (void)K->exp_sum(ex, n, 0.0f);
    double S1[4] = {0}, S2[4] = {0};
    for (size_t b = 0; b < n; b += 4)
        for (size_t l = 0; l < 4; l++) {
            const size_t i = b + l;
            if (i >= n) break;
            double em1, phi;
            const double u = (-(double)g[i] * ie - y[i]) - c;
            if (a[i] == 0.0f) { /* As p_i e^u, p_i ~ 0 */
                S2[l] += As * det_exp(-(double)g[i] * ie - c - log_sa);
                continue;
            }
            if (u >= 80.0) {
                em1 = det_exp(u > 700.0 ? 700.0 : u) - 1.0;
                phi = em1 - u;
            } else {
                expm1_phi(u, ex[i], &em1, &phi);
            }
            S1[l] += (double)a[i] * u; /* ~0: rounding of c */
            S2[l] += (double)a[i] * phi;
        }
    const double s1 = sum4(S1) / As, s2 = sum4(S2) / As;
    const double kl = log1p_det(s1 + s2) - s1;
    return kl > 0 ? (double)eps * kl : 0.0;
}

/* KL(pn || p) for pn_i = p_i e^{dy_i} / Z, dy = yn - y (both up to constants).
   Weights that are 0 in float, and e^u past the exp kernel's clamp, only make
   it smaller: the descent check (D) then errs on the safe side. */
static double eg_step_kl(const vs_kernels *K, const float *y, const float *yn, const float *a,
                         size_t n, float *ex) {
    double A[4] = {0}, C[4] = {0};
    for (size_t b = 0; b < n; b += 4)
        for (size_t l = 0; l < 4; l++) {
            const size_t i = b + l;
            if (i >= n) break;
            A[l] += a[i];
            C[l] += (double)a[i] * ((double)yn[i] - (double)y[i]);
        }
    const double As = sum4(A), c = sum4(C) / As;
    for (size_t i = 0; i < n; i++) ex[i] = (float)(((double)yn[i] - (double)y[i]) - c);
    (void)K->exp_sum(ex, n, 0.0f);
    double S0[4] = {0}, S1[4] = {0}, S2[4] = {0};
    for (size_t b = 0; b < n; b += 4)
        for (size_t l = 0; l < 4; l++) {
            const size_t i = b + l;
            if (i >= n) break;
            if (a[i] == 0.0f) continue;
            double em1, phi;
            const double u = ((double)yn[i] - (double)y[i]) - c;
            expm1_phi(u, ex[i], &em1, &phi);
            S0[l] += (double)a[i] * u; /* ~0 */
            S1[l] += (double)a[i] * u * em1;
            S2[l] += (double)a[i] * phi;
        }
    const double s0 = sum4(S0) / As, s1 = sum4(S1) / As, s2 = sum4(S2) / As;
    /* Z = sum p e^u = 1 + s0 + s2;  sum pn u = (s0 + s1) / Z;  KL = sum pn u - log Z */
    return (s0 + s1) / (1.0 + s0 + s2) - log1p_det(s0 + s2);
}

#define FACE_SPAN 16.635532333438686 /* 24 ln 2: weights within 2^-24 of the largest */

/* Coordinates whose weight is below 2^-24 of the largest (before and after)
   move z by less than its float resolution: the KKT conditions are imposed
   on them directly, y_i = c - g_i / eps, with c = sum_i p_i (y_i + g_i / eps)
   the face's value. (EG moves them only by the factor theta = 1/(1 + eta eps)
   per step, which a mass-weighted residual does not see; the off-face
   weights, which the leakage diagnostics are about, need their exact logs.)
   Returns whether any y changed. */
static int eg_polish(float *y, const float *a, const float *g, size_t n, float eps) {
    double A = 0, c = 0;
    for (size_t i = 0; i < n; i++) {
        A += a[i];
        c += (double)a[i] * ((double)y[i] + (double)g[i] / eps);
    }
    c /= A;
    int changed = 0;
    for (size_t i = 0; i < n; i++) {
        const double target = c - (double)g[i] / eps;
        if (y[i] < -FACE_SPAN && target < -FACE_SPAN) {
            const float v = target < -1e30 ? -1e30f : (float)target;
            changed |= v != y[i];
            y[i] = v;
        }
    }
    return changed;
}

/* The EG face from the multipliers (see the top of the file). s: n floats of scratch. */
static void eg_face(const float *mu, size_t n, float eps, float *s, uint32_t *face, double *gap) {
    memcpy(s, mu, n * sizeof *s);
    sort_floats(s, n);
    size_t kmax = 0;
    while (kmax < n && (double)s[kmax] <= FACE_SPAN * eps) kmax++;
    if (kmax == n) kmax = n - 1;
    size_t best = 0;
    double best_gap = 0;
    for (size_t k = 1; k <= kmax; k++) {
        const double dl = (double)s[k] - (double)s[k - 1];
        if (dl > best_gap) best_gap = dl, best = k;
    }
    /* no separation at all, or none the bound certifies (bound >= 1): the face is
       everything (Delta = +inf over the empty complement, leakage 0) */
    if (best == 0 || det_log((double)(n - best) / (double)best) - best_gap / (2.0 * eps) >= 0.0) {
        *face = (uint32_t)n;
        *gap = INFINITY;
        return;
    }
    *face = (uint32_t)best;
    *gap = best_gap;
}

#define ETA_GROW 4.0
#define ETA_SAFETY 0.9

static void solve_eg(const vs_kernels *K, const float *const *keys, size_t n, size_t d,
                     const float *q, float eps, uint32_t max_iter, float tol, double kmax2,
                     float *alpha, float *mu, carver *w, vs_solve_info *info) {
    float *y = carve(w, n * sizeof(float)), *yn = carve(w, n * sizeof(float));
    float *an = carve(w, n * sizeof(float)), *g = carve(w, n * sizeof(float));
    float *t = carve(w, n * sizeof(float));
    float *z = carve(w, d * sizeof(float)), *zn = carve(w, d * sizeof(float));
    float *r = carve(w, d * sizeof(float));
    float *a = alpha; /* a and an swap roles; the result is copied to alpha */

    /* L = max ||k_i||^2 (+ rounding margin): (D) holds for eta <= 1/L */
    const double L = kmax2 * (1.0 + 1e-5);
    const double eta_min = L > 0 ? 1.0 / L : 1.0;
    const double eta_max = 1e6 / eps; /* theta >= 1e-6: a step that is all fixed point */

    for (size_t i = 0; i < n; i++) y[i] = 0.0f;
    double log_sa = normalize(K, y, a, n);
    memset(z, 0, d * sizeof *z);
    K->accum(keys, a, n, d, z);
    gradient(K, keys, n, d, q, z, r, g);

    double eta = eta_min, res;
    uint32_t it = 0;
    int polished = 0;
    for (;;) {
        res = eg_residual(K, y, a, log_sa, g, n, eps, t);
        if (res <= tol && !polished) { /* converged: settle the negligible weights, recheck */
            polished = 1;
            if (eg_polish(y, a, g, n, eps)) {
                log_sa = normalize(K, y, a, n);
                memset(z, 0, d * sizeof *z);
                K->accum(keys, a, n, d, z);
                gradient(K, keys, n, d, q, z, r, g);
                res = eg_residual(K, y, a, log_sa, g, n, eps, t);
            }
        }
        if (res <= tol || it >= max_iter) break;
        polished = 0;
        double et = eta, log_sn;
        for (;;) {
            const float th = (float)(1.0 / (1.0 + et * eps)), ef = (float)et;
            for (size_t i = 0; i < n; i++) yn[i] = (y[i] - ef * g[i]) * th;
            log_sn = normalize(K, yn, an, n);
            memset(zn, 0, d * sizeof *zn);
            K->accum(keys, an, n, d, zn);
            /* (D): 1/2 ||zn - z||^2 <= KL(an || a) / et */
            double dz4[4] = {0};
            for (size_t b = 0; b < d; b += 4)
                for (size_t l = 0; l < 4 && b + l < d; l++) {
                    const double e = (double)zn[b + l] - (double)z[b + l];
                    dz4[l] += e * e;
                }
            const double dz = sum4(dz4);
            const double kl = eg_step_kl(K, y, yn, a, n, t);
            const double lhs = 0.5 * dz * et; /* accept when lhs <= kl */
            const double ratio = kl > 0 ? lhs / kl : (lhs > 0 ? INFINITY : 0.0);
            if (ratio <= 1.0 || et <= eta_min) {
                double next = ratio > 0 ? ETA_SAFETY * et / ratio : ETA_GROW * et;
                if (next > ETA_GROW * et) next = ETA_GROW * et;
                eta = next < eta_min ? eta_min : next > eta_max ? eta_max : next;
                break;
            }
            double shrink = ETA_SAFETY / ratio;
            shrink = shrink > 0.5 ? 0.5 : shrink < 0.1 ? 0.1 : shrink;
            et = et * shrink < eta_min ? eta_min : et * shrink;
        }
        float *sw;
        sw = y, y = yn, yn = sw;
        sw = a, a = an, an = sw;
        sw = z, z = zn, zn = sw;
        log_sa = log_sn;
        gradient(K, keys, n, d, q, z, r, g);
        it++;
    }
    if (a != alpha) memcpy(alpha, a, n * sizeof *alpha);

    /* diagnostics at the returned alpha (g is its gradient) */
    const float gmin = g[argmin(g, n)];
    for (size_t i = 0; i < n; i++) t[i] = g[i] - gmin;
    if (mu) memcpy(mu, t, n * sizeof *mu);
    uint32_t face;
    double gap;
    eg_face(t, n, eps, yn, &face, &gap);
    double ay = 0, A = 0;
    for (size_t i = 0; i < n; i++) {
        ay += (double)alpha[i] * y[i];
        A += alpha[i];
    }
    const double H = log_sa - ay / A; /* -sum p log p, log p_i = y_i - log_sa */
    info->iterations = it;
    info->face_size = face;
    info->converged = res <= tol;
    info->residual = (float)res;
    info->gap = (float)gap;
    info->leakage_bound =
        face == n ? 0.0f
                  : round_up(fmin(1.0, (double)(n - face) / face * det_exp(-gap / (2.0 * eps))));
    info->effective_support = (float)fmin(fmax(det_exp(H), 1.0), (double)n);
    info->objective = (float)(half_sq_norm(r, d) - (double)eps * H);
}

/* ---- FW (pairwise) --------------------------------------------------------------- */

/* <k, x> in double */
static double dot64(const float *k, const double *x, size_t d) {
    double s = 0;
    for (size_t j = 0; j < d; j++) s += (double)k[j] * x[j];
    return s;
}

static void solve_fw(const vs_kernels *K, const float *const *keys, size_t n, size_t d,
                     const float *q, uint32_t max_iter, float tol, float *alpha, float *mu,
                     carver *w, vs_solve_info *info) {
    double *ad = carve(w, n * sizeof(double)), *gs = carve(w, n * sizeof(double));
    double *zd = carve(w, d * sizeof(double)), *rd = carve(w, d * sizeof(double));
    float *g = carve(w, n * sizeof(float)), *rf = carve(w, d * sizeof(float));
    uint32_t *sup = carve(w, n * sizeof(uint32_t));

    /* start: the FW vertex of alpha = 0 (g = -U^T q): the best-scoring key */
    K->dots(keys, n, d, q, g);
    size_t s = 0;
    for (size_t i = 1; i < n; i++)
        if (g[i] > g[s]) s = i;
    for (size_t i = 0; i < n; i++) ad[i] = 0.0;
    ad[s] = 1.0;
    sup[0] = (uint32_t)s;
    size_t ns = 1;
    for (size_t j = 0; j < d; j++) zd[j] = keys[s][j];

    double res;
    uint32_t it = 0;
    for (;;) {
        for (size_t j = 0; j < d; j++) {
            rd[j] = zd[j] - (double)q[j];
            rf[j] = (float)rd[j];
        }
        K->dots(keys, n, d, rf, g); /* the vertex scan: float is enough to choose */
        s = argmin(g, n);
        size_t ka = 0; /* away vertex: largest g on the support (ties: lower index) */
        for (size_t k = 1; k < ns; k++)
            if (g[sup[k]] > g[sup[ka]]) ka = k;
        /* the gap and the step in double: g_i = <k_i, r> exactly, sum alpha_i g_i = <z, r> */
        double ag = 0;
        for (size_t j = 0; j < d; j++) ag += zd[j] * rd[j];
        double gd_s = dot64(keys[s], rd, d), gd_a = dot64(keys[sup[ka]], rd, d);
        if (!(gd_a - gd_s > 0)) { /* float choice wrong at this precision: choose in double */
            ka = 0;
            for (size_t k = 0; k < ns; k++) {
                gs[k] = dot64(keys[sup[k]], rd, d);
                if (gs[k] > gs[ka]) ka = k;
            }
            size_t kb = 0;
            for (size_t k = 1; k < ns; k++)
                if (gs[k] < gs[kb]) kb = k;
            gd_a = gs[ka];
            if (gs[kb] < gd_s) gd_s = gs[kb], s = sup[kb];
        }
        res = ag - gd_s;
        if (res <= tol || it >= max_iter) break;
        const size_t a = sup[ka];
        const double num = gd_a - gd_s;
        double den = 0;
        for (size_t j = 0; j < d; j++) {
            const double dk = (double)keys[a][j] - (double)keys[s][j];
            den += dk * dk;
        }
        if (a == s || !(num > 0) || !(den > 0)) break; /* no descent left at this precision */
        double gamma = num / den;
        if (gamma >= ad[a]) { /* drop step: a leaves the support */
            gamma = ad[a];
            ad[a] = 0.0;
            memmove(sup + ka, sup + ka + 1, (ns - ka - 1) * sizeof *sup);
            ns--;
        } else {
            ad[a] -= gamma;
        }
        if (ad[s] == 0.0) { /* s enters the support, kept in increasing order */
            size_t k = ns;
            while (k > 0 && sup[k - 1] > s) {
                sup[k] = sup[k - 1];
                k--;
            }
            sup[k] = (uint32_t)s;
            ns++;
        }
        ad[s] += gamma;
        for (size_t j = 0; j < d; j++) zd[j] += gamma * ((double)keys[s][j] - (double)keys[a][j]);
        it++;
    }

    for (size_t i = 0; i < n; i++) alpha[i] = (float)ad[i];
    const float gmin = g[argmin(g, n)];
    if (mu)
        for (size_t i = 0; i < n; i++) mu[i] = g[i] - gmin;
    double on_max = -INFINITY, off_min = INFINITY, H = 0, f = 0;
    for (size_t i = 0, k = 0; i < n; i++) {
        if (k < ns && sup[k] == i) {
            k++;
            on_max = g[i] > on_max ? g[i] : on_max;
            H -= ad[i] * det_log(ad[i]);
        } else {
            off_min = g[i] < off_min ? g[i] : off_min;
        }
    }
    for (size_t j = 0; j < d; j++) f += 0.5 * rd[j] * rd[j];
    info->iterations = it;
    info->face_size = (uint32_t)ns;
    info->converged = res <= tol;
    info->residual = (float)(res > 0 ? res : 0.0);
    info->gap = ns == n ? INFINITY : (float)(off_min - on_max);
    info->leakage_bound = 0.0f;
    info->effective_support = (float)fmin(fmax(det_exp(H), 1.0), (double)n);
    info->objective = (float)f;
}

/* ---- entry ------------------------------------------------------------------------ */

int vs_solve(const vs_kernels *K, uint32_t solver, const float *const *keys, size_t n, size_t d,
             const float *q, float eps, uint32_t max_iter, float tol, float *alpha, float *mu,
             void *work, vs_solve_info *info) {
    if (!K || !keys || !q || !alpha || !work) return VS_E_NULL;
    if (solver != VS_SOLVER_EG && solver != VS_SOLVER_FW) return VS_E_OPTION;
    if (n == 0 || d == 0 || n > UINT32_MAX || max_iter == 0) return VS_E_OPTION;
    if (!(tol > 0.0f) || !isfinite(tol)) return VS_E_OPTION;
    if (solver == VS_SOLVER_EG && !(eps >= VS_SOLVE_EPS_MIN && eps <= VS_SOLVE_EPS_MAX))
        return VS_E_OPTION;
    /* ||k_i||^2 and ||q||^2 (one pass over the keys): NaN or Inf in an input
       would poison every iterate; the norm cap keeps g = U^T r, g / eps and
       eta g (eta <= 1e6 / eps) far inside float range */
    float qq;
    double kmax2 = 0;
    K->dots(&q, 1, d, q, &qq);
    if (isnan(qq)) return VS_E_NONFINITE;
    if (!(qq <= VS_SOLVE_MAX_SQNORM)) return isinf(qq) ? VS_E_NONFINITE : VS_E_RANGE;
    for (size_t i = 0; i < n; i++) {
        float kk;
        K->dots(keys + i, 1, d, keys[i], &kk);
        if (isnan(kk)) return VS_E_NONFINITE;
        if (!(kk <= VS_SOLVE_MAX_SQNORM)) return isinf(kk) ? VS_E_NONFINITE : VS_E_RANGE;
        kmax2 = kk > kmax2 ? kk : kmax2;
    }
    vs_solve_info local;
    if (!info) info = &local;
    carver w = {(unsigned char *)work + (ALIGN - (uintptr_t)work % ALIGN) % ALIGN};
    if (solver == VS_SOLVER_EG)
        solve_eg(K, keys, n, d, q, eps, max_iter, tol, kmax2, alpha, mu, &w, info);
    else
        solve_fw(K, keys, n, d, q, max_iter, tol, alpha, mu, &w, info);
    return VS_OK;
}
