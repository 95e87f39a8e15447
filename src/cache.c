/*
 * Paged KV cache: create, append (with summary updates), truncate, free.
 * Every mutating call allocates everything it needs before it changes
 * anything, so a failure leaves the cache exactly as it was.
 */
#include <math.h>
#include <string.h>

#include "internal.h"

/* ---- create / free ---------------------------------------------------------- */

static int check_config(const vs_cache_config *cfg) {
    if (cfg->heads == 0 || cfg->kv_heads == 0 || cfg->heads > VS_MAX_HEADS ||
        cfg->heads % cfg->kv_heads != 0)
        return VS_E_HEADS;
    if (cfg->head_dim == 0 || cfg->head_dim > VS_MAX_DIM || cfg->value_dim == 0 ||
        cfg->value_dim > VS_MAX_DIM)
        return VS_E_DIM;
    if (cfg->page_size > VS_MAX_PAGE_SIZE) return VS_E_PAGE;
    if (cfg->dtype != VS_DTYPE_F32) return VS_E_DTYPE;
    return VS_OK;
}

int vs_cache_create(const vs_cache_config *config, vs_cache **out) {
    if (!out) return VS_E_NULL;
    *out = NULL;
    if (!config) return VS_E_NULL;
    int st = check_config(config);
    if (st) return st;
    vs_cache *c = vs_alloc(sizeof *c);
    if (!c) return VS_E_NOMEM;
    memset(c, 0, sizeof *c);
    c->cfg = *config;
    if (c->cfg.page_size == 0) c->cfg.page_size = VS_DEFAULT_PAGE_SIZE;
    c->chunk_pages = c->cfg.page_size >= VS_CHUNK_TOKENS ? 1 : VS_CHUNK_TOKENS / c->cfg.page_size;
    c->kabs = vs_alloc((size_t)c->cfg.kv_heads * c->cfg.head_dim * sizeof(float));
    if (!c->kabs) {
        vs_dealloc(c);
        return VS_E_NOMEM;
    }
    memset(c->kabs, 0, (size_t)c->cfg.kv_heads * c->cfg.head_dim * sizeof(float));
    *out = c;
    return VS_OK;
}

void vs_cache_free(vs_cache *c) {
    if (!c) return;
    for (uint32_t i = 0; i < c->nchunks; i++) vs_dealloc(c->chunk[i]);
    vs_dealloc(c->chunk);
    vs_dealloc(c->summ);
    vs_dealloc(c->vnorm);
    vs_dealloc(c->kabs);
    vs_scratch_free(&c->ws);
    vs_dealloc(c);
}

/* ---- append ------------------------------------------------------------------ */

/* Upper bound of ||v||_2 as a float: double sum, then rounded up. */
static float value_norm_up(const float *v, size_t n) {
    double s = 0;
    for (size_t j = 0; j < n; j++) s += (double)v[j] * v[j];
    float f = (float)(sqrt(s) * (1.0 + 1e-12));
    return nextafterf(f, INFINITY);
}

/* Page summary (bfloat16 pairs box[2j] = lo_j, box[2j+1] = hi_j, rounded
   outward): the box starts at key k ... */
static void box_init(uint16_t *box, const float *k, uint32_t d) {
    for (uint32_t j = 0; j < d; j++) {
        box[2 * j] = vs_bf16_down(k[j]);
        box[2 * j + 1] = vs_bf16_up(k[j]);
    }
}

/* ... and grows to hold key k (compared as floats: the roundings are monotone,
   so lo ends as down(min k) and hi as up(max k)). */
static void box_fold(uint16_t *box, const float *k, uint32_t d) {
    for (uint32_t j = 0; j < d; j++) {
        const uint16_t a = vs_bf16_down(k[j]), b = vs_bf16_up(k[j]);
        if (vs_bf16_to_f32(a) < vs_bf16_to_f32(box[2 * j])) box[2 * j] = a;
        if (vs_bf16_to_f32(b) > vs_bf16_to_f32(box[2 * j + 1])) box[2 * j + 1] = b;
    }
}

/* kabs_j = max(kabs_j, |lo_j|, |hi_j|): the rounding model bounds the page
   bound terms q_j * lo_j, q_j * hi_j (not only the keys) by |q_j| kabs_j. */
static void kabs_fold(float *kabs, const uint16_t *box, uint32_t d) {
    for (uint32_t j = 0; j < d; j++) {
        const float a = fabsf(vs_bf16_to_f32(box[2 * j])), b = fabsf(vs_bf16_to_f32(box[2 * j + 1]));
        const float m = a > b ? a : b;
        kabs[j] = m > kabs[j] ? m : kabs[j];
    }
}

/* Writes token `pos` of KV head g and folds it into the page summary. */
static void store_token(vs_cache *c, uint32_t pos, uint32_t g, const float *k, const float *v) {
    const uint32_t S = c->cfg.page_size, d = c->cfg.head_dim, dv = c->cfg.value_dim;
    const uint32_t p = pos / S, i = pos % S;
    memcpy((float *)vs_page_keys(c, p, g) + (size_t)i * d, k, d * sizeof(float));
    memcpy((float *)vs_page_values(c, p, g) + (size_t)i * dv, v, dv * sizeof(float));
    uint16_t *box = vs_summary(c, g, p);
    float vn = value_norm_up(v, dv), *vmax = c->vnorm + (size_t)g * c->page_cap + p;
    if (i == 0) {
        box_init(box, k, d);
        *vmax = vn;
    } else {
        box_fold(box, k, d);
        *vmax = vn > *vmax ? vn : *vmax;
    }
    kabs_fold(c->kabs + (size_t)g * d, box, d);
}

/* Grows the chunk pointers to `chunks` and summ, vnorm to `pages`; all or nothing. */
static int grow_arrays(vs_cache *c, uint32_t pages, uint32_t chunks) {
    float **chunk = NULL, *vnorm = NULL;
    uint16_t *summ = NULL;
    uint32_t ccap = c->chunk_cap, pcap = c->page_cap;
    const size_t G = c->cfg.kv_heads, d2 = 2 * (size_t)c->cfg.head_dim;
    if (chunks > ccap) {
        ccap = ccap ? ccap : 4;
        while (ccap < chunks) ccap = ccap > UINT32_MAX / 2 ? chunks : ccap * 2;
        chunk = vs_alloc(vs_mul_sat(ccap, sizeof *chunk));
    }
    if (pages > pcap) {
        pcap = pcap ? pcap : 16;
        while (pcap < pages) pcap = pcap > UINT32_MAX / 2 ? pages : pcap * 2;
        summ = vs_alloc(vs_mul_sat(vs_mul_sat(G * d2, pcap), sizeof *summ));
        vnorm = vs_alloc(vs_mul_sat(vs_mul_sat(G, pcap), sizeof *vnorm));
    }
    if ((chunks > c->chunk_cap && !chunk) || (pages > c->page_cap && (!summ || !vnorm))) {
        vs_dealloc(chunk);
        vs_dealloc(summ);
        vs_dealloc(vnorm);
        return VS_E_NOMEM;
    }
    if (chunk) {
        if (c->nchunks) memcpy(chunk, c->chunk, c->nchunks * sizeof *chunk);
        vs_dealloc(c->chunk);
        c->chunk = chunk;
        c->chunk_cap = ccap;
    }
    if (summ) {
        for (size_t g = 0; g < G && c->npages; g++) {
            memcpy(summ + g * pcap * d2, c->summ + g * c->page_cap * d2, c->npages * d2 * sizeof *summ);
            memcpy(vnorm + g * pcap, c->vnorm + g * c->page_cap, c->npages * sizeof *vnorm);
        }
        vs_dealloc(c->summ);
        vs_dealloc(c->vnorm);
        c->summ = summ;
        c->vnorm = vnorm;
        c->page_cap = pcap;
    }
    return VS_OK;
}

int vs_cache_append(vs_cache *c, const float *keys, size_t key_count, const float *values,
                    size_t value_count) {
    if (!c) return VS_E_NULL;
    const size_t G = c->cfg.kv_heads, d = c->cfg.head_dim, dv = c->cfg.value_dim;
    const size_t krow = G * d, vrow = G * dv;
    if (key_count % krow != 0 || value_count % vrow != 0 || key_count / krow != value_count / vrow)
        return VS_E_LENGTH;
    const size_t n = key_count / krow;
    if (n == 0) return VS_OK;
    if (!keys || !values) return VS_E_NULL;
    if (n > VS_MAX_TOKENS - c->length) return VS_E_CAPACITY;
    int st = vs_check_finite(keys, key_count);
    if (!st) st = vs_check_finite(values, value_count);
    if (st) return st;

    /* one chunk must fit in size_t (32 bits in wasm32) */
    if ((uint64_t)c->cfg.kv_heads * vs_chunk_tokens(c) * (d + (uint64_t)dv) * sizeof(float) >
        SIZE_MAX)
        return VS_E_NOMEM;
    const uint32_t S = c->cfg.page_size, new_len = c->length + (uint32_t)n;
    const uint32_t new_pages = (new_len + S - 1) / S;
    const uint32_t new_chunks = (new_pages + c->chunk_pages - 1) / c->chunk_pages;
    /* The chunk blocks first, then the arrays; only then change anything. */
    float *fresh[16];
    float **blocks = fresh;
    const uint32_t add = new_chunks - c->nchunks;
    if (add > 16 && !(blocks = vs_alloc(add * sizeof *blocks))) return VS_E_NOMEM;
    uint32_t got = 0;
    for (; got < add; got++)
        if (!(blocks[got] = vs_alloc(vs_chunk_floats(c) * sizeof(float)))) break;
    if (got < add || grow_arrays(c, new_pages, new_chunks) != VS_OK) {
        for (uint32_t i = 0; i < got; i++) vs_dealloc(blocks[i]);
        if (blocks != fresh) vs_dealloc(blocks);
        return VS_E_NOMEM;
    }
    /* Nothing can fail from here on. */
    for (uint32_t i = 0; i < add; i++) c->chunk[c->nchunks + i] = blocks[i];
    if (blocks != fresh) vs_dealloc(blocks);
    c->nchunks = new_chunks;
    c->npages = new_pages;
    for (size_t t = 0; t < n; t++)
        for (uint32_t g = 0; g < G; g++)
            store_token(c, c->length + (uint32_t)t, g, keys + t * krow + g * d,
                        values + t * vrow + g * dv);
    c->length = new_len;
    c->ws.sel_valid = 0;
    return VS_OK;
}

/* ---- truncate ------------------------------------------------------------------ */

int vs_cache_truncate(vs_cache *c, size_t length) {
    if (!c) return VS_E_NULL;
    if (length > c->length) return VS_E_LENGTH;
    if (length == c->length) return VS_OK;
    const uint32_t S = c->cfg.page_size, G = c->cfg.kv_heads, d = c->cfg.head_dim;
    const uint32_t keep = (uint32_t)((length + S - 1) / S);
    const uint32_t keep_chunks = (keep + c->chunk_pages - 1) / c->chunk_pages;
    for (uint32_t i = keep_chunks; i < c->nchunks; i++) vs_dealloc(c->chunk[i]);
    c->nchunks = keep_chunks;
    c->npages = keep;
    c->length = (uint32_t)length;
    c->ws.sel_valid = 0;
    /* routing nodes past the last whole one lost tokens: rebuild them (decode.c) */
    const uint32_t whole = (uint32_t)(length / S) / VS_NODE_PAGES * VS_NODE_PAGES * S;
    if (c->ws.nodes_len > whole) c->ws.nodes_len = whole;
    if (length % S != 0) { /* a summary cannot forget a token: rebuild the last page's */
        const uint32_t p = keep - 1, n = (uint32_t)(length % S);
        for (uint32_t g = 0; g < G; g++) {
            const float *k = vs_page_keys(c, p, g), *v = vs_page_values(c, p, g);
            uint16_t *box = vs_summary(c, g, p);
            float *vmax = c->vnorm + (size_t)g * c->page_cap + p;
            box_init(box, k, d);
            *vmax = value_norm_up(v, c->cfg.value_dim);
            for (uint32_t i = 1; i < n; i++) {
                box_fold(box, k + (size_t)i * d, d);
                float vn = value_norm_up(v + (size_t)i * c->cfg.value_dim, c->cfg.value_dim);
                *vmax = vn > *vmax ? vn : *vmax;
            }
        }
    }
    /* kabs from the remaining summaries, so the rounding bounds stay tight. */
    for (uint32_t g = 0; g < G; g++) {
        float *kabs = c->kabs + (size_t)g * d;
        memset(kabs, 0, d * sizeof(float));
        for (uint32_t p = 0; p < keep; p++) {
            kabs_fold(kabs, vs_summary(c, g, p), d);
        }
    }
    return VS_OK;
}

/* ---- queries ---------------------------------------------------------------------- */

int vs_cache_length(const vs_cache *c, size_t *length) {
    if (!c || !length) return VS_E_NULL;
    *length = c->length;
    return VS_OK;
}

int vs_cache_get_info(const vs_cache *c, vs_cache_info *info) {
    if (!c || !info) return VS_E_NULL;
    const vs_cache_config *k = &c->cfg;
    const double G = k->kv_heads, d = k->head_dim, dv = k->value_dim, S = k->page_size;
    info->heads = k->heads;
    info->kv_heads = k->kv_heads;
    info->head_dim = k->head_dim;
    info->value_dim = k->value_dim;
    info->page_size = k->page_size;
    info->dtype = k->dtype;
    info->length = c->length;
    info->pages = c->npages;
    info->kv_bytes = c->npages * G * S * (d + dv) * sizeof(float);
    /* per page and KV head: 2 bfloat16 rows and the float vnorm */
    info->summary_bytes = c->npages * G * (2 * d * sizeof(uint16_t) + sizeof(float));
    info->reserved_bytes = sizeof *c + (double)c->nchunks * vs_chunk_floats(c) * sizeof(float) +
                           c->chunk_cap * sizeof(float *) +
                           c->page_cap * G * (2 * d * sizeof(uint16_t) + sizeof(float)) +
                           G * d * sizeof(float) + (double)c->ws.bytes;
    return VS_OK;
}
