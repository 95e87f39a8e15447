/* Top-k selection bookkeeping shared by all ISAs (see kernels.h). */
#include <math.h>
#include <string.h>

#include "kernels.h"

/* An item's rank as one 64-bit key: larger key = better item (larger value,
   or equal value and lower index). The value's float bits are mapped to an
   order-preserving unsigned integer (-0 first made +0: they are equal
   values), the index is complemented. One integer compare per comparison
   lets the compiler select without branches: selection data are random, so
   branches would be mispredicted half the time. */
static uint64_t rank_key(float value, uint32_t index) {
    const float v = value + 0.0f; /* -0 -> +0 */
    uint32_t u;
    memcpy(&u, &v, sizeof u);
    u = (u & 0x80000000u) ? ~u : (u | 0x80000000u);
    return ((uint64_t)u << 32) | (uint32_t)~index;
}

/* Rearranges t[0..n) so that t[k] is the k-th largest (0-based): Lomuto
   partitions around a median of three, with branch-free swaps; iterative. */
static void select_kth(uint64_t *t, size_t n, size_t k) {
    size_t lo = 0, hi = n; /* [lo, hi) holds position k */
    while (hi - lo > 1) {
        const size_t mid = lo + (hi - lo) / 2, last = hi - 1;
        const uint64_t a = t[lo], b = t[mid], c = t[last];
        /* median of a, b, c to the end, as the pivot */
        const size_t med = (a > b) ? ((b > c) ? mid : (a > c ? last : lo))
                                   : ((a > c) ? lo : (b > c ? last : mid));
        const uint64_t pivot = t[med];
        t[med] = t[last];
        t[last] = pivot;
        size_t store = lo;
        for (size_t i = lo; i < last; i++) {
            const uint64_t x = t[i], y = t[store];
            const int better = x > pivot;
            t[i] = better ? y : x;
            t[store] = better ? x : y;
            store += (size_t)better;
        }
        t[last] = t[store];
        t[store] = pivot; /* t[lo..store) > pivot > t(store..hi) */
        if (k == store) return;
        if (k < store) hi = store;
        else lo = store + 1;
    }
}

/* Keeps the k best of the buffer, in index order, and sets the threshold. */
static void shrink(vs_topk_buf *h) {
    uint64_t *keys = (uint64_t *)(void *)(h->item + 2 * h->k); /* the 2k spare items */
    for (size_t i = 0; i < h->size; i++) keys[i] = rank_key(h->item[i].value, h->item[i].index);
    select_kth(keys, h->size, h->k - 1);
    const uint64_t worst = keys[h->k - 1];
    size_t m = 0;
    for (size_t i = 0; i < h->size; i++) {
        h->item[m] = h->item[i];
        m += rank_key(h->item[i].value, h->item[i].index) >= worst;
    }
    h->size = m; /* == k: keys are distinct, so exactly k are at least as good */
    h->thr = h->item[0].value;
    for (size_t i = 1; i < m; i++) /* the k-th best value: the smallest kept */
        h->thr = h->item[i].value < h->thr ? h->item[i].value : h->thr;
    h->have_thr = 1;
}

/* The value a rank key was made from (+0 for a -0). */
static float key_value(uint64_t key) {
    uint32_t u = (uint32_t)(key >> 32);
    u = (u & 0x80000000u) ? (u & 0x7fffffffu) : ~u;
    float v;
    memcpy(&v, &u, sizeof v);
    return v;
}

int vs_topk_seed(vs_topk_buf *h, const float *x, size_t n, float (*max)(const float *, size_t)) {
    const size_t k = h->k, nb = 2 * k;
    if (k == 0 || n < 32 * k) return 0;
    /* 2k block maxima are 2k distinct elements of x, so at least k elements
       are >= the k-th largest of them: a threshold that loses nothing. */
    uint64_t *keys = (uint64_t *)(void *)(h->item + 2 * k);
    const size_t bs = n / nb;
    for (size_t b = 0; b < nb; b++) keys[b] = rank_key(max(x + b * bs, bs), 0);
    select_kth(keys, nb, k - 1);
    h->thr = nextafterf(key_value(keys[k - 1]), -INFINITY); /* offers need x > thr */
    h->have_thr = 1;
    return 1;
}

void vs_topk_init(vs_topk_buf *h, vs_topk_item *scratch, size_t k) {
    h->item = scratch;
    h->size = 0;
    h->k = k;
    h->thr = 0;
    h->have_thr = 0;
}

void vs_topk_offer(vs_topk_buf *h, float value, uint32_t index) {
    if (h->k == 0 || (h->have_thr && !(value > h->thr))) return;
    h->item[h->size].value = value;
    h->item[h->size].index = index;
    if (++h->size == 2 * h->k) shrink(h);
}

void vs_topk_offer_bits(vs_topk_buf *h, const float *x, size_t i, unsigned bits) {
    while (bits) {
        const unsigned b = (unsigned)__builtin_ctz(bits);
        vs_topk_offer(h, x[i + b], (uint32_t)(i + b));
        bits &= bits - 1;
    }
}

size_t vs_topk_finish(vs_topk_buf *h, uint32_t *out) {
    if (h->size > h->k) shrink(h);
    for (size_t i = 0; i < h->size; i++) out[i] = h->item[i].index;
    return h->size;
}
