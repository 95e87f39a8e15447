/* Top-k selection bookkeeping shared by all ISAs (see kernels.h). */
#include <stdlib.h>

#include "kernels.h"

/* a is better than b: larger value, or equal value and lower index. */
static int better(vs_topk_item a, vs_topk_item b) {
    return a.value > b.value || (a.value == b.value && a.index < b.index);
}

static void sift_down(vs_topk_item *h, size_t n, size_t i) {
    for (;;) {
        size_t l = 2 * i + 1, r = l + 1, w = i;
        if (l < n && better(h[w], h[l])) w = l;
        if (r < n && better(h[w], h[r])) w = r;
        if (w == i) return;
        vs_topk_item t = h[i];
        h[i] = h[w];
        h[w] = t;
        i = w;
    }
}

void vs_topk_offer(vs_topk_heap *h, float value, uint32_t index) {
    vs_topk_item it = {value, index};
    if (h->size < h->cap) {
        size_t i = h->size++;
        h->item[i] = it;
        while (i > 0) { /* sift up: the worst item rises to the root */
            size_t p = (i - 1) / 2;
            if (!better(h->item[p], h->item[i])) break;
            vs_topk_item t = h->item[p];
            h->item[p] = h->item[i];
            h->item[i] = t;
            i = p;
        }
    } else if (h->cap > 0 && better(it, h->item[0])) {
        h->item[0] = it;
        sift_down(h->item, h->size, 0);
    }
}

static int cmp_u32(const void *a, const void *b) {
    uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;
    return (x > y) - (x < y);
}

size_t vs_topk_finish(vs_topk_heap *h, uint32_t *out) {
    for (size_t i = 0; i < h->size; i++) out[i] = h->item[i].index;
    qsort(out, h->size, sizeof *out, cmp_u32);
    return h->size;
}
