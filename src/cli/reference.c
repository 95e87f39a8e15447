#include "reference.h"

#include <math.h>
#include <stdlib.h>

void vs_ref_attention(const float *keys, const float *values, size_t T, size_t heads,
                      size_t kv_heads, size_t d, size_t dv, const float *q, double scale,
                      double *out, double *weights) {
    if (scale <= 0) scale = 1.0 / sqrt((double)d);
    size_t group = heads / kv_heads;
    double *s = malloc((T ? T : 1) * sizeof *s);
    if (!s) abort(); /* test and CLI code only */
    for (size_t h = 0; h < heads; h++) {
        size_t g = h / group;
        double m = -INFINITY;
        for (size_t t = 0; t < T; t++) {
            const float *k = keys + (t * kv_heads + g) * d;
            double acc = 0;
            for (size_t j = 0; j < d; j++) acc += (double)q[h * d + j] * (double)k[j];
            s[t] = scale * acc;
            if (s[t] > m) m = s[t];
        }
        double z = 0;
        for (size_t t = 0; t < T; t++) z += (s[t] = exp(s[t] - m));
        for (size_t j = 0; j < dv; j++) out[h * dv + j] = 0;
        for (size_t t = 0; t < T; t++) {
            double w = s[t] / z;
            if (weights) weights[h * T + t] = w;
            const float *v = values + (t * kv_heads + g) * dv;
            for (size_t j = 0; j < dv; j++) out[h * dv + j] += w * (double)v[j];
        }
    }
    free(s);
}

double vs_ref_l2_diff(const float *a, const double *b, size_t n) {
    double s = 0;
    for (size_t i = 0; i < n; i++) {
        double e = (double)a[i] - b[i];
        s += e * e;
    }
    return sqrt(s);
}

double vs_ref_l2(const double *b, size_t n) {
    double s = 0;
    for (size_t i = 0; i < n; i++) s += b[i] * b[i];
    return sqrt(s);
}
