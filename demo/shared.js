// Shared by the page, the worker and the tests: the demo's configuration, its
// defaults, the URL-parameter parser, the memory estimate and the decode
// options built from it.

export const MAX_BYTES = 3.5 * 2 ** 30;

export const DEFAULTS = Object.freeze({
  T: 65536, heads: 4, kvHeads: 1, d: 128, pageSize: 32, P: 16, Kc: 128,
  solver: 'softmax', routing: 'tree', tolerance: 0, workload: 'needle', seed: 1,
  /* eg, fw only (the library's defaults) */
  eps: 0.05, maxIter: 200, solverTol: 1e-6,
});

const NUMERIC = ['T', 'heads', 'kvHeads', 'd', 'pageSize', 'P', 'Kc', 'tolerance', 'seed', 'eps', 'maxIter', 'solverTol'];

/** Reads a config from URLSearchParams (or any get(name) source) over the defaults. */
export function configFrom(params, base = DEFAULTS) {
  const cfg = { ...base };
  for (const k of NUMERIC) {
    const v = params.get(k);
    if (v !== null && v !== '') cfg[k] = Number(v);
  }
  for (const k of ['solver', 'routing', 'workload']) {
    const v = params.get(k);
    if (v) cfg[k] = v;
  }
  return cfg;
}

/**
 * About what the cache takes in wasm memory: keys and values
 * (T * kvHeads * (d + dv) * 4 bytes) plus page summaries
 * (pages * kvHeads * (d + 1) * 4 bytes, as the library stores them).
 */
export function estimateBytes(cfg) {
  const pages = Math.ceil(cfg.T / cfg.pageSize);
  return cfg.T * cfg.kvHeads * (cfg.d + cfg.d) * 4 + pages * cfg.kvHeads * (cfg.d + 1) * 4;
}

/** The cache.decode() options of a config; eps, maxIter and solverTol only for the eg and fw solvers. */
export function decodeOptions(cfg) {
  const o = { pages: cfg.P, candidates: cfg.Kc, routing: cfg.routing, solver: cfg.solver, tolerance: cfg.tolerance };
  if (cfg.solver === 'eg' || cfg.solver === 'fw') Object.assign(o, { eps: cfg.eps, maxIter: cfg.maxIter, solverTol: cfg.solverTol });
  return o;
}

export function formatBytes(b) {
  if (b >= 2 ** 30) return `${(b / 2 ** 30).toFixed(2)} GiB`;
  if (b >= 2 ** 20) return `${(b / 2 ** 20).toFixed(1)} MiB`;
  return `${(b / 1024).toFixed(1)} KiB`;
}
