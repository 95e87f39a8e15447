/*
 * Golden vectors: a fixed list of cases (shapes, workloads, decode options),
 * written by `vashista vectors DIR` and checked by `vashista parity DIR` and
 * tests/test_parity.c. The format is described in tests/vectors/FORMAT.md.
 */
#ifndef VS_GOLDEN_H
#define VS_GOLDEN_H

#include <stddef.h>
#include <stdint.h>

#include "include/vashista.h"
#include "workloads.h"

/* ---- the format -------------------------------------------------------------- */
#define GV_MAGIC 0x56475356u /* the bytes "VSGV" read as a little-endian uint32 */
#define GV_VERSION 4u /* 2: solver options, face_size; 3: routing, expand; 4: share_routing */
#define GV_HEADER_WORDS 64u
#define GV_DIAG_WORDS 12u /* sizeof(vs_head_diag) / 4 */

/* Parity tolerances: outputs (dense and sparse) per head,
   ||x - golden||_2 <= GV_TOL_OUTPUT * ||golden||_2; float diagnostics
   |x - golden| <= GV_TOL_DIAG * max(|x|, |golden|); integer diagnostics and
   candidate sets exactly; regenerated inputs bit for bit. */
#define GV_TOL_OUTPUT 1e-6
#define GV_TOL_DIAG 1e-4

/* Header word indices. */
enum {
    GV_W_MAGIC = 0, GV_W_VERSION, GV_W_HEADER_BYTES, GV_W_KIND, GV_W_T, GV_W_HEADS, GV_W_KV_HEADS,
    GV_W_HEAD_DIM, GV_W_VALUE_DIM, GV_W_PAGE_SIZE, GV_W_FACE, GV_W_NEEDLES, GV_W_MARGIN,
    GV_W_SEED_LO, GV_W_SEED_HI, GV_W_STEP, GV_W_PAGES, GV_W_CANDIDATES, GV_W_SINK_PAGES,
    GV_W_RECENT_PAGES, GV_W_SOLVER, GV_W_WIDEN, GV_W_SCALE, GV_W_TOLERANCE, GV_W_CAND_TOTAL,
    GV_W_DIAG_WORDS, GV_W_CHUNK, GV_W_EPS, GV_W_MAX_ITER, GV_W_SOLVER_TOL, GV_W_ROUTING, GV_W_EXPAND, GV_W_SHARE_ROUTING, GV_W_COUNT
};

typedef struct gv_case {
    const char *name;
    vs_workload wl;        /* generator of the inputs (kind, T, shapes, seed...) */
    uint32_t page_size;
    uint32_t step;         /* query step */
    uint32_t chunk;        /* tokens per vs_cache_append call */
    vs_decode_options opt; /* sparse decode options (dense uses opt.scale) */
} gv_case;

typedef struct gv_result {
    char name[64];
    int ok;                 /* the case passed every comparison */
    char error[400];        /* first problem found, "" if none */
    int inputs_identical;   /* the generator reproduces the stored inputs bit for bit */
    int dense_identical, sparse_identical, diag_identical, cand_identical;
    double dense_rel, sparse_rel; /* max over heads of ||x - golden|| / ||golden|| */
    double diag_rel;        /* largest relative difference of a float diagnostic */
    uint32_t int_mismatch;  /* integer diagnostics that differ */
    double ref_rel;         /* max over heads of ||golden dense - ref|| / ||ref|| (information) */
} gv_result;

/* The fixed case list; writes up to GV_MAX_CASES cases to out, returns the count. */
#define GV_MAX_CASES 48
size_t gv_cases(gv_case *out);

/* Writes every case and DIR/index.json (DIR is created if missing);
   progress(i, n, name) is called before each case (may be NULL). Returns 0
   with the case count and bytes written, or -1 with a message in err. */
int gv_write_dir(const char *dir, void (*progress)(size_t, size_t, const char *),
                 size_t *ncases, uint64_t *total_bytes, char *err, size_t errlen);

/* The "file" entries of DIR/index.json, in order. *files is one allocation
   of NUL-separated names (the caller frees it); returns the count, or -1
   with err set. */
long gv_list(const char *dir, char **files, char *err, size_t errlen);

/* Checks DIR/file against this build and ISA. Fills r; returns r->ok. */
int gv_check(const char *dir, const char *file, gv_result *r);

#endif
