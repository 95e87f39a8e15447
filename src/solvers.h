/*
 * Projection solvers on a candidate set (DESIGN section 2; theory and
 * definitions at the top of solvers.c).
 *
 *   VS_SOLVER_EG  min_{alpha in simplex} 1/2 ||U alpha - q||^2 + eps sum alpha_i log alpha_i
 *   VS_SOLVER_FW  min_{alpha in simplex} 1/2 ||U alpha - q||^2
 *
 * U = [k_1 .. k_n]: n keys of d floats each, given by row pointer (rows need
 * not be contiguous). Deterministic, allocation-free (the caller passes the
 * workspace), and bit-identical across the kernel ISAs: everything outside
 * the kernels is plain IEEE float/double arithmetic in a fixed order (no libm).
 */
#ifndef VS_SOLVERS_H
#define VS_SOLVERS_H

#include <stddef.h>
#include <stdint.h>

#include "include/vashista.h"
#include "kernels/kernels.h"

/* Accepted ranges: eps (EG), and ||k_i||^2, ||q||^2, so that g = U^T (U alpha - q),
   g / eps and the step's eta g all stay far inside float range. */
#define VS_SOLVE_EPS_MIN 1e-9f
#define VS_SOLVE_EPS_MAX 1e9f
#define VS_SOLVE_MAX_SQNORM 1e15f

typedef struct vs_solve_info {
    uint32_t iterations;     /* update steps taken (0: the start already met tol) */
    uint32_t face_size;      /* |I|: FW the support; EG the most separated prefix of the
                                sorted multipliers if the bound certifies it, else n */
    uint32_t converged;      /* 1 if residual <= tol, 0 if max_iter stopped it */
    float residual;          /* EG: entropic duality gap eps*KL(alpha || softmax(-grad/eps))
                                >= F(alpha) - F*;  FW: Frank-Wolfe duality gap
                                max_j <grad, alpha - e_j> >= f(alpha) - f* of the double
                                iterate (rounding it to the float alpha can add up to
                                ~2^-23 (max|grad| + 2 max||k||^2)) */
    float gap;               /* Delta = min_{j not in I} grad_j - max_{i in I} grad_i
                                (+inf when I is every key) */
    float leakage_bound;     /* EG: (n - |I|)/|I| exp(-Delta / (2 eps)) < 1, the face
                                theorem's bound on the mass off I (0 when I is every key);
                                FW: 0 (alpha is exactly 0 off its support) */
    float effective_support; /* exp(entropy(alpha)), in [1, n] */
    float objective;         /* EG: f + eps sum alpha log alpha;  FW: f, at the returned alpha */
} vs_solve_info;

/* Bytes of workspace vs_solve needs for n keys of dimension d (either solver). */
size_t vs_solve_work_bytes(size_t n, size_t d);

/* Solves the projection problem of `solver` (VS_SOLVER_EG or VS_SOLVER_FW).
 *   keys[0..n)  row pointers, d floats each;  q: d floats.
 *   eps         EG only: in [VS_SOLVE_EPS_MIN, VS_SOLVE_EPS_MAX] (ignored by FW).
 *   max_iter    >= 1: cap on update steps.
 *   tol         > 0 and finite: stop when the residual (see vs_solve_info) <= tol.
 *   alpha       out, n floats: the solution, on the simplex.
 *   mu          out, n floats, or NULL: the KKT multipliers
 *               mu_i = grad_i - min_j grad_j >= 0 at the returned alpha,
 *               grad = U^T (U alpha - q).
 *   work        vs_solve_work_bytes(n, d) bytes, any alignment; contents on
 *               return are unspecified.
 *   info        out, or NULL.
 * Returns VS_OK, VS_E_NULL (K, keys, q, alpha or work NULL), VS_E_OPTION
 * (unknown solver, n or d 0, eps, max_iter or tol out of range),
 * VS_E_NONFINITE (NaN or Inf in a key or q, or a squared norm overflowing)
 * or VS_E_RANGE (||k_i||^2 or ||q||^2 > VS_SOLVE_MAX_SQNORM). Not reaching
 * tol within max_iter is not an error: info->converged says so. On error
 * alpha, mu and info are untouched.
 * Cost: one pass over the keys for the norms, then per step EG one accum and
 * one dots pass (plus one accum per rejected step size), FW one dots pass
 * plus O(d + |support|); O(n) scalar work besides.
 * The candidate values, not given here, are combined by the caller as
 * out = sum_i alpha_i v_i (kernels->accum). */
int vs_solve(const vs_kernels *K, uint32_t solver, const float *const *keys, size_t n, size_t d,
             const float *q, float eps, uint32_t max_iter, float tol, float *alpha, float *mu,
             void *work, vs_solve_info *info);

#endif /* VS_SOLVERS_H */
