/*
 * Golden-vector parity, in process: every case of $VASHISTA_VECTORS (set by
 * CMake to tests/vectors) is recomputed with every ISA this CPU runs and
 * compared as `vashista parity` does (src/cli/golden.c: inputs bit for bit,
 * outputs within 1e-6 relative L2, integer diagnostics and candidate sets
 * exactly, float diagnostics within 1e-4). A missing or stale directory is a
 * failure, not a skip: regenerate with `vashista vectors tests/vectors`.
 */
#define _POSIX_C_SOURCE 200809L

#include "cli/golden.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "testutil.h"
#include "vashista.h"

int main(void) {
    const char *dir = getenv("VASHISTA_VECTORS");
    CHECK(dir && *dir, "VASHISTA_VECTORS is not set (CMake sets it to tests/vectors)");
    if (!dir || !*dir) return vs_test_finish("test_parity");

    char err[512];
    char *files = NULL;
    long n = gv_list(dir, &files, err, sizeof err);
    CHECK(n > 0, "%s (generate with: vashista vectors %s)", err, dir);
    if (n <= 0) return vs_test_finish("test_parity");

    /* the directory holds exactly the compiled case list, in order */
    gv_case cases[GV_MAX_CASES];
    size_t want = gv_cases(cases);
    CHECK((size_t)n == want, "%s has %ld cases, the case list %zu: regenerate it", dir, n, want);
    const char *f = files;
    for (long i = 0; i < n && (size_t)i < want; i++, f += strlen(f) + 1) {
        char expect[128];
        snprintf(expect, sizeof expect, "%s.bin", cases[i].name);
        CHECK(strcmp(f, expect) == 0, "case %ld is %s, expected %s: regenerate %s", i, f, expect, dir);
    }

    const char *isas[4];
    int nisa = vs_test_isas(isas, 4);
    CHECK(nisa >= 1, "no ISA available");
    for (int k = 0; k < nisa; k++) {
        CHECK_STATUS(vs_set_isa(isas[k]), VS_OK);
        long identical = 0;
        f = files;
        for (long i = 0; i < n; i++, f += strlen(f) + 1) {
            gv_result r;
            gv_check(dir, f, &r);
            CHECK(r.ok, "%s [%s]: %s (dense rel %.3g, sparse rel %.3g, diag rel %.3g)", r.name,
                  isas[k], r.error, r.dense_rel, r.sparse_rel, r.diag_rel);
            identical += r.ok && r.dense_identical && r.sparse_identical && r.diag_identical &&
                         r.cand_identical;
        }
        printf("test_parity: isa %s: %ld/%ld cases bit-identical\n", isas[k], identical, n);
    }
    vs_set_isa("auto");
    free(files);
    return vs_test_finish("test_parity");
}
