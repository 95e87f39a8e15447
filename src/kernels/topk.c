/* Top-k selection bookkeeping shared by all ISAs (see kernels.h). */
#include <string.h>

#include "kernels.h"

/* a is better than b: larger value, or equal value and lower index. */
static int better(vs_topk_item a, vs_topk_item b) {
    return a.value > b.value || (a.value == b.value && a.index < b.index);
}

/* Rearranges t[0..n) so that t[k] is the item that would be at position k if
   t were sorted best first (Hoare partition, median of three; iterative). */
static void select_kth(vs_topk_item *t, size_t n, size_t k) {
    size_t lo = 0, hi = n - 1;
    while (hi > lo) {
        size_t mid = lo + (hi - lo) / 2;
        vs_topk_item a = t[lo], b = t[mid], c = t[hi], pivot;
        if (better(a, b)) pivot = better(b, c) ? b : (better(a, c) ? c : a);
        else pivot = better(a, c) ? a : (better(b, c) ? c : b);
        size_t i = lo, j = hi;
        for (;;) {
            while (better(t[i], pivot)) i++;
            while (better(pivot, t[j])) j--;
            if (i >= j) break;
            vs_topk_item x = t[i];
            t[i] = t[j];
            t[j] = x;
            i++;
            j--;
        }
        /* now t[lo..j] are at least as good as pivot, t[j+1..hi] at most */
        if (k <= j) hi = j;
        else lo = j + 1;
    }
}

/* Keeps the k best of the buffer, in index order, and sets the threshold. */
static void shrink(vs_topk_buf *h) {
    vs_topk_item *tmp = h->item + 2 * h->k;
    memcpy(tmp, h->item, h->size * sizeof *tmp);
    select_kth(tmp, h->size, h->k - 1);
    const vs_topk_item worst = tmp[h->k - 1];
    size_t m = 0;
    for (size_t i = 0; i < h->size; i++)
        if (!better(worst, h->item[i])) h->item[m++] = h->item[i];
    h->size = m; /* == k: items are distinct, so exactly k are at least as good */
    h->thr = worst.value;
    h->have_thr = 1;
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
