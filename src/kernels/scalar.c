/*
 * Scalar reference kernels: the definition every SIMD kernel must reproduce
 * bit for bit (see the rules in kernels.h). Written lane by lane so that the
 * canonical 8-lane order is visible.
 */
#include "kernels.h"
#include "vexp.h"

#define LANES 8

static float combine(const float l[LANES]) {
    return ((l[0] + l[4]) + (l[2] + l[6])) + ((l[1] + l[5]) + (l[3] + l[7]));
}

static float dot(const float *a, const float *b, size_t n) {
    float l[LANES] = {0};
    for (size_t i = 0; i < n; i++) l[i % LANES] += a[i] * b[i];
    return combine(l);
}

static void scores_scalar(const float *k, size_t n, size_t d, const float *q, float scale,
                          float *out) {
    for (size_t i = 0; i < n; i++) out[i] = scale * dot(q, k + i * d, d);
}

static void dots_scalar(const float *const *rows, size_t n, size_t d, const float *x, float *out) {
    for (size_t i = 0; i < n; i++) out[i] = dot(x, rows[i], d);
}

static void page_bounds_scalar(const uint16_t *summ, size_t n, size_t d, const float *q,
                               float scale, float *out) {
    for (size_t p = 0; p < n; p++) {
        const uint16_t *box = summ + p * 2 * d; /* lo_j = box[2j], hi_j = box[2j + 1] */
        float l[LANES] = {0};
        for (size_t j = 0; j < d; j++)
            l[j % LANES] += q[j] * vs_bf16_to_f32(box[2 * j + (q[j] >= 0.0f)]);
        out[p] = scale * combine(l);
    }
}

static float max_scalar(const float *x, size_t n) {
    float m = x[0];
    for (size_t i = 1; i < n; i++) m = (x[i] > m) ? x[i] : m;
    return m;
}

static float exp_sum_scalar(float *x, size_t n, float shift) {
    float l[LANES] = {0};
    for (size_t i = 0; i < n; i++) {
        x[i] = vs_exp(x[i] - shift);
        l[i % LANES] += x[i];
    }
    return combine(l);
}

static void accum_scalar(const float *const *rows, const float *w, size_t n, size_t dv,
                         float *acc) {
    for (size_t i = 0; i < n; i++)
        for (size_t j = 0; j < dv; j++) acc[j] = acc[j] + w[i] * rows[i][j];
}

static void scale_scalar(float *x, size_t n, float a) {
    for (size_t i = 0; i < n; i++) x[i] = x[i] * a;
}

static size_t topk_scalar(const float *x, size_t n, size_t k, vs_topk_item *scratch,
                          uint32_t *out) {
    vs_topk_buf h;
    vs_topk_init(&h, scratch, k);
    for (size_t i = 0; i < n; i++) vs_topk_offer(&h, x[i], (uint32_t)i);
    return vs_topk_finish(&h, out);
}

const vs_kernels vs_kernels_scalar = {
    .name = "scalar",
    .scores = scores_scalar,
    .page_bounds = page_bounds_scalar,
    .max = max_scalar,
    .exp_sum = exp_sum_scalar,
    .dots = dots_scalar,
    .accum = accum_scalar,
    .scale = scale_scalar,
    .topk = topk_scalar,
};
