/*
 * A small test harness: CHECK records a failure with file:line and goes on;
 * each test binary ends with vs_test_finish(), which prints
 * "name: N passed, N failed" and returns the exit code for main.
 */
#ifndef VS_TESTUTIL_H
#define VS_TESTUTIL_H

#include <stddef.h>
#include <stdint.h>

extern int vs_test_passed, vs_test_failed;

void vs_test_check(int ok, const char *file, int line, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

#define CHECK(cond, ...) vs_test_check((cond) ? 1 : 0, __FILE__, __LINE__, __VA_ARGS__)
/* Status checks print the library's message on failure; `got` is evaluated once. */
void vs_test_check_status(int got, int want, const char *file, int line);
#define CHECK_STATUS(got, want) vs_test_check_status((got), (want), __FILE__, __LINE__)

int vs_test_finish(const char *name);

/* Deterministic test randomness (splitmix64), independent of the library. */
typedef struct { uint64_t s; } vs_test_rng;
uint64_t vs_test_next(vs_test_rng *r);
double vs_test_uniform(vs_test_rng *r);           /* [0, 1) */
double vs_test_normal(vs_test_rng *r);            /* N(0, 1), Box-Muller */
void vs_test_fill_normal(vs_test_rng *r, float *x, size_t n, double sigma);

/* malloc that exits (status 2) when out of memory; never returns NULL. */
void *vs_test_xmalloc(size_t bytes);

/* Solves A x = b in place (x in b) by Gaussian elimination with partial
   pivoting; A is m x m row-major and is destroyed. Returns 0 (A singular)
   when a pivot is not above rel_tol * max|A|. */
int vs_test_gauss(double *A, double *b, int m, double rel_tol);

/* Every ISA this build and CPU can run ("scalar" first); returns the count. */
int vs_test_isas(const char **names, int cap);

#endif
