/*
 * ABI self-description for the JS package (web/src/index.js).
 *
 * The JS loader reads the public structs (vs_cache_config, vs_decode_options,
 * vs_head_diag, vs_cache_info, vs_workload) field by field at fixed offsets.
 * vs_wasm_abi() reports the sizes and offsets this build was compiled with,
 * so the loader can refuse a module whose layout differs from the one it was
 * written for (error code E_ABI) instead of reading garbage. The table ends
 * with the constants the loader relies on (VS_NODE_PAGES, exposed as
 * vs.nodePages).
 *
 * The table written to out[] is a flat list of uint32, in the order of the
 * VS_ABI_FIELDS X-macro below; the JS side keeps the same list (ABI in
 * web/src/index.js).
 */
#include <stddef.h>
#include <stdint.h>

#include "include/vashista.h"
#include "workloads.h"

#define VS_ABI_FIELDS(X)                                   \
    X(sizeof(vs_cache_config))                             \
    X(offsetof(vs_cache_config, heads))                    \
    X(offsetof(vs_cache_config, kv_heads))                 \
    X(offsetof(vs_cache_config, head_dim))                 \
    X(offsetof(vs_cache_config, value_dim))                \
    X(offsetof(vs_cache_config, page_size))                \
    X(offsetof(vs_cache_config, dtype))                    \
    X(sizeof(vs_decode_options))                           \
    X(offsetof(vs_decode_options, pages))                  \
    X(offsetof(vs_decode_options, candidates))             \
    X(offsetof(vs_decode_options, sink_pages))             \
    X(offsetof(vs_decode_options, recent_pages))           \
    X(offsetof(vs_decode_options, solver))                 \
    X(offsetof(vs_decode_options, widen))                  \
    X(offsetof(vs_decode_options, scale))                  \
    X(offsetof(vs_decode_options, tolerance))              \
    X(offsetof(vs_decode_options, eps))                    \
    X(offsetof(vs_decode_options, max_iter))               \
    X(offsetof(vs_decode_options, solver_tol))             \
    X(offsetof(vs_decode_options, routing))                \
    X(offsetof(vs_decode_options, expand))                 \
    X(offsetof(vs_decode_options, share_routing))          \
    X(sizeof(vs_head_diag))                                \
    X(offsetof(vs_head_diag, routed_pages))                \
    X(offsetof(vs_head_diag, candidates))                  \
    X(offsetof(vs_head_diag, fallback))                    \
    X(offsetof(vs_head_diag, iterations))                  \
    X(offsetof(vs_head_diag, effective_support))           \
    X(offsetof(vs_head_diag, gap))                         \
    X(offsetof(vs_head_diag, leakage_bound))               \
    X(offsetof(vs_head_diag, rho_cert))                    \
    X(offsetof(vs_head_diag, error_bound))                 \
    X(offsetof(vs_head_diag, output_norm))                 \
    X(offsetof(vs_head_diag, residual))                    \
    X(offsetof(vs_head_diag, face_size))                   \
    X(sizeof(vs_cache_info))                               \
    X(offsetof(vs_cache_info, length))                     \
    X(offsetof(vs_cache_info, pages))                      \
    X(offsetof(vs_cache_info, kv_bytes))                   \
    X(offsetof(vs_cache_info, summary_bytes))              \
    X(offsetof(vs_cache_info, reserved_bytes))             \
    X(sizeof(vs_workload))                                 \
    X(offsetof(vs_workload, kind))                         \
    X(offsetof(vs_workload, T))                            \
    X(offsetof(vs_workload, heads))                        \
    X(offsetof(vs_workload, kv_heads))                     \
    X(offsetof(vs_workload, head_dim))                     \
    X(offsetof(vs_workload, value_dim))                    \
    X(offsetof(vs_workload, face))                         \
    X(offsetof(vs_workload, needles))                      \
    X(offsetof(vs_workload, margin))                       \
    X(offsetof(vs_workload, seed_lo))                      \
    X(offsetof(vs_workload, seed_hi))                      \
    X(sizeof(size_t))                                      \
    X(sizeof(void *))                                      \
    X(VS_NODE_PAGES)

#define VS_ABI_COUNT_ONE(v) +1
#define VS_ABI_COUNT (0 VS_ABI_FIELDS(VS_ABI_COUNT_ONE))

/* Writes min(cap, VS_ABI_COUNT) entries to out; returns VS_ABI_COUNT. */
VS_API uint32_t vs_wasm_abi(uint32_t *out, uint32_t cap) {
    const uint32_t table[] = {
#define VS_ABI_ENTRY(v) (uint32_t)(v),
        VS_ABI_FIELDS(VS_ABI_ENTRY)
#undef VS_ABI_ENTRY
    };
    uint32_t n = (uint32_t)(sizeof table / sizeof table[0]);
    for (uint32_t i = 0; i < n && i < cap; i++) out[i] = table[i];
    return n;
}
