/* Version, status strings, allocation and input checks shared by the library. */
#include <math.h>
#include <stdlib.h>

#include "internal.h"

#define VS_STR2(x) #x
#define VS_STR(x) VS_STR2(x)

int vs_version_number(void) { return VS_VERSION_NUMBER; }

const char *vs_version_string(void) {
    return VS_STR(VS_VERSION_MAJOR) "." VS_STR(VS_VERSION_MINOR) "." VS_STR(VS_VERSION_PATCH);
}

const char *vs_strerror(int status) {
    switch (status) {
    case VS_OK: return "ok";
    case VS_E_NULL: return "a required pointer argument is NULL";
    case VS_E_DIM: return "head_dim and value_dim must be in 1..512";
    case VS_E_HEADS: return "heads and kv_heads must be >= 1 with heads a multiple of kv_heads";
    case VS_E_PAGE: return "page_size must be in 1..4096";
    case VS_E_LENGTH: return "an element count does not match the cache's shape";
    case VS_E_NONFINITE: return "input contains NaN or Inf";
    case VS_E_RANGE: return "input magnitude too large (|x| > 1e30, or scores could overflow)";
    case VS_E_NOMEM: return "out of memory; the cache is unchanged";
    case VS_E_OPTION: return "invalid decode option";
    case VS_E_EMPTY: return "the cache holds no tokens";
    case VS_E_ISA: return "unknown or unsupported instruction set";
    case VS_E_DTYPE: return "unsupported dtype (only f32)";
    case VS_E_CAPACITY: return "the cache would exceed its maximum number of tokens";
    default: return "unknown status code";
    }
}

static long fail_countdown = -1;

void vs_test_fail_alloc_after(long n) { fail_countdown = n; }

void *vs_alloc(size_t bytes) {
    if (fail_countdown == 0 || bytes > SIZE_MAX - 63) return NULL;
    if (fail_countdown > 0) fail_countdown--;
    /* 64-byte aligned (a cache line): SIMD loads of page rows never split lines */
    return aligned_alloc(64, bytes ? (bytes + 63) & ~(size_t)63 : 64);
}

void vs_dealloc(void *p) { free(p); }

int vs_check_finite(const float *x, size_t n) {
    int big = 0;
    for (size_t i = 0; i < n; i++) {
        float a = fabsf(x[i]);
        if (!(a <= VS_MAX_ABS)) {
            if (!isfinite(x[i])) return VS_E_NONFINITE;
            big = 1; /* keep scanning: a NaN later is the more specific error */
        }
    }
    return big ? VS_E_RANGE : VS_OK;
}
