#include "testutil.h"

#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>

#include "vashista.h"

int vs_test_passed, vs_test_failed;

void vs_test_check(int ok, const char *file, int line, const char *fmt, ...) {
    if (ok) {
        vs_test_passed++;
        return;
    }
    vs_test_failed++;
    if (vs_test_failed > 50) return; /* keep logs readable */
    fprintf(stderr, "FAIL %s:%d: ", file, line);
    va_list ap;
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fputc('\n', stderr);
}

void vs_test_check_status(int got, int want, const char *file, int line) {
    vs_test_check(got == want, file, line, "status %d (%s), expected %d (%s)", got, vs_strerror(got),
                  want, vs_strerror(want));
}

int vs_test_finish(const char *name) {
    printf("%s: %d passed, %d failed\n", name, vs_test_passed, vs_test_failed);
    return vs_test_failed == 0 && vs_test_passed > 0 ? 0 : 1;
}

uint64_t vs_test_next(vs_test_rng *r) {
    uint64_t z = (r->s += 0x9E3779B97F4A7C15ull);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
}

double vs_test_uniform(vs_test_rng *r) { return (double)(vs_test_next(r) >> 11) * 0x1.0p-53; }

double vs_test_normal(vs_test_rng *r) {
    double u = vs_test_uniform(r), v = vs_test_uniform(r);
    return sqrt(-2.0 * log(1.0 - u)) * cos(6.283185307179586 * v);
}

void vs_test_fill_normal(vs_test_rng *r, float *x, size_t n, double sigma) {
    for (size_t i = 0; i < n; i++) x[i] = (float)(sigma * vs_test_normal(r));
}

int vs_test_isas(const char **names, int cap) {
    static const char *all[] = {"scalar", "avx2", "wasmsimd"};
    int n = 0;
    for (size_t i = 0; i < sizeof all / sizeof all[0] && n < cap; i++)
        if (vs_set_isa(all[i]) == VS_OK) names[n++] = all[i];
    vs_set_isa("auto");
    return n;
}

void *vs_test_xmalloc(size_t bytes) {
    void *p = malloc(bytes ? bytes : 1);
    if (!p) {
        fprintf(stderr, "out of memory\n");
        exit(2);
    }
    return p;
}

int vs_test_gauss(double *A, double *b, int m, double rel_tol) {
    double scale = 0;
    for (int i = 0; i < m * m; i++) scale = fmax(scale, fabs(A[i]));
    for (int c = 0; c < m; c++) {
        int p = c;
        for (int r = c + 1; r < m; r++)
            if (fabs(A[r * m + c]) > fabs(A[p * m + c])) p = r;
        if (!(fabs(A[p * m + c]) > rel_tol * scale)) return 0;
        if (p != c) {
            for (int k = 0; k < m; k++) {
                double t = A[c * m + k];
                A[c * m + k] = A[p * m + k];
                A[p * m + k] = t;
            }
            double t = b[c];
            b[c] = b[p];
            b[p] = t;
        }
        for (int r = c + 1; r < m; r++) {
            const double f = A[r * m + c] / A[c * m + c];
            for (int k = c; k < m; k++) A[r * m + k] -= f * A[c * m + k];
            b[r] -= f * b[c];
        }
    }
    for (int c = m - 1; c >= 0; c--) {
        double s = b[c];
        for (int k = c + 1; k < m; k++) s -= A[c * m + k] * b[k];
        b[c] = s / A[c * m + c];
    }
    return 1;
}
