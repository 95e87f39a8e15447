/*
 * Run-time kernel selection: the first ISA of the priority list that this
 * build contains and this CPU (and OS) can run, unless VASHISTA_ISA or
 * vs_set_isa() names one. Chosen once, lazily.
 */
#include <stdlib.h>
#include <string.h>

#include "../include/vashista.h"
#include "kernels.h"

#if defined(VS_HAVE_AVX2_KERNELS) && (defined(__GNUC__) || defined(__clang__))
#include <cpuid.h>
/* AVX2 needs the CPU flag and the OS saving YMM state (XCR0 bits 1 and 2). */
static int cpu_has_avx2(void) {
    unsigned a, b, c, d;
    if (!__get_cpuid(1, &a, &b, &c, &d)) return 0;
    if (!(c & (1u << 27)) || !(c & (1u << 28))) return 0; /* OSXSAVE, AVX */
    unsigned lo, hi;
    __asm__ volatile("xgetbv" : "=a"(lo), "=d"(hi) : "c"(0));
    if ((lo & 6u) != 6u) return 0;
    if (__get_cpuid_max(0, NULL) < 7) return 0;
    __cpuid_count(7, 0, a, b, c, d);
    return (b & (1u << 5)) != 0;
}
#endif

typedef struct isa_entry {
    const vs_kernels *kernels;
    int (*supported)(void);
} isa_entry;

static int always(void) { return 1; }

/* Priority order: best first. */
static const isa_entry isa_list[] = {
#ifdef VS_HAVE_AVX2_KERNELS
    {&vs_kernels_avx2, cpu_has_avx2},
#endif
#ifdef VS_HAVE_WASMSIMD_KERNELS
    {&vs_kernels_wasmsimd, always},
#endif
    {&vs_kernels_scalar, always},
};
#define ISA_COUNT (sizeof isa_list / sizeof isa_list[0])

static const vs_kernels *active;

static const vs_kernels *pick(const char *name) {
    int is_auto = name == NULL || strcmp(name, "auto") == 0;
    for (size_t i = 0; i < ISA_COUNT; i++) {
        if (!is_auto && strcmp(name, isa_list[i].kernels->name) != 0) continue;
        return isa_list[i].supported() ? isa_list[i].kernels : NULL;
    }
    return NULL;
}

const vs_kernels *vs_kernels_active(void) {
    if (!active) {
        const char *env = getenv("VASHISTA_ISA");
        active = env && *env ? pick(env) : NULL;
        if (!active) active = pick(NULL); /* unusable env choice: vs_set_isa reports errors */
    }
    return active;
}

int vs_set_isa(const char *name) {
    if (!name) return VS_E_NULL;
    const vs_kernels *k = pick(name);
    if (!k) return VS_E_ISA;
    active = k;
    return VS_OK;
}

const char *vs_isa_name(void) { return vs_kernels_active()->name; }
