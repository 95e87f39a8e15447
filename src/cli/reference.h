/*
 * Float64 dense attention: the independent reference every test, eval and
 * parity check measures against. Plain loops, no kernels, no shared code with
 * the library's decode path.
 */
#ifndef VS_REFERENCE_H
#define VS_REFERENCE_H

#include <stddef.h>

/* out[h][j] = sum_t softmax_t(scale * <q_h, k_{t,g}>) v_{t,g,j} in double, with
 * g = h / (heads / kv_heads). keys: [T][kv_heads][d], values: [T][kv_heads][dv],
 * q: [heads][d], out: [heads][dv]. scale <= 0 means 1/sqrt(d).
 * If weights is not NULL it receives the attention weights [heads][T]. */
void vs_ref_attention(const float *keys, const float *values, size_t T, size_t heads,
                      size_t kv_heads, size_t d, size_t dv, const float *q, double scale,
                      double *out, double *weights);

/* ||a - b||_2 for float a against double b, n elements. */
double vs_ref_l2_diff(const float *a, const double *b, size_t n);
/* ||b||_2 */
double vs_ref_l2(const double *b, size_t n);

#endif
