// The demo's decoding worker: owns the wasm instance, fills the cache in
// chunks (posting progress and latency checkpoints), then decodes densely and
// sparsely and posts everything the page draws. The page never touches wasm.
//
// Messages in:  { type: 'run', cfg }          cfg: see demo/app.js readConfig()
// Messages out: { type: 'ready', version, isa }
//               { type: 'progress', done, total }
//               { type: 'checkpoint', T, denseMs, sparseMs }
//               { type: 'heatmap', pages, candidates, ms }   (stretch view)
//               { type: 'result', ... }  |  { type: 'error', code, message }
import { init } from '../web/src/index.js';
import { estimateBytes, decodeOptions, MAX_BYTES } from './shared.js';

let vsPromise = null;
const vsReady = () => (vsPromise ??= init(self.VASHISTA_WASM ? { wasm: self.VASHISTA_WASM } : undefined));

const median = (xs) => xs.slice().sort((a, b) => a - b)[xs.length >> 1];
/*
 * Median ms per call. Browsers coarsen performance.now() (to 100 us without
 * cross-origin isolation), so each sample times a batch of calls lasting at
 * least ~2 ms and divides.
 */
function time(fn, minReps, minMs, maxReps = 200) {
  let batch = 1;
  for (;;) {
    const t0 = performance.now();
    for (let i = 0; i < batch; i++) fn();
    if (performance.now() - t0 >= 2 || batch >= 4096) break;
    batch *= 4;
  }
  const ts = [];
  const start = performance.now();
  while (ts.length < minReps || (performance.now() - start < minMs && ts.length < maxReps)) {
    const t0 = performance.now();
    for (let i = 0; i < batch; i++) fn();
    ts.push((performance.now() - t0) / batch);
  }
  return median(ts);
}
const norm = (x, o = 0, n = x.length) => {
  let s = 0;
  for (let i = o; i < o + n; i++) s += x[i] * x[i];
  return Math.sqrt(s);
};
const diffNorm = (a, b, o, n) => {
  let s = 0;
  for (let i = o; i < o + n; i++) s += (a[i] - b[i]) ** 2;
  return Math.sqrt(s);
};

/**
 * Float64 reference attention for query head 0 (KV head 0), binned into
 * `bins` buckets of positions: the dense mass per bin, plus the sparse mass
 * per bin derived from the candidates (exact softmax over them; only when the
 * solver is softmax and head 0 did not fall back).
 */
function attentionView(wl, cfg, q, candidates, bins) {
  const { T, headDim: d, kvHeads } = wl.config;
  const scale = 1 / Math.sqrt(d);
  const scores = new Float64Array(T);
  const chunk = 8192;
  for (let s = 0; s < T; s += chunk) {
    const n = Math.min(chunk, T - s);
    const { keys } = wl.tokens(s, n);
    for (let t = 0; t < n; t++) {
      const o = (t * kvHeads) * d; /* kv head 0 */
      let dot = 0;
      for (let j = 0; j < d; j++) dot += q[j] * keys[o + j];
      scores[s + t] = dot * scale;
    }
  }
  let mx = -Infinity;
  for (let t = 0; t < T; t++) mx = Math.max(mx, scores[t]);
  const w = new Float64Array(T);
  let z = 0;
  for (let t = 0; t < T; t++) z += (w[t] = Math.exp(scores[t] - mx));
  const dense = new Float64Array(bins);
  const per = T / bins;
  for (let t = 0; t < T; t++) dense[Math.min(bins - 1, Math.floor(t / per))] += w[t] / z;
  let candMass = 0;
  for (const c of candidates) candMass += w[c] / z;
  if (cfg.solver !== 'softmax') return { dense: Array.from(dense), sparse: null, trueLeak: 1 - candMass };
  const sparse = new Float64Array(bins);
  let cz = 0;
  for (const c of candidates) cz += w[c];
  for (const c of candidates) sparse[Math.min(bins - 1, Math.floor(c / per))] += w[c] / cz;
  return { dense: Array.from(dense), sparse: Array.from(sparse), trueLeak: 1 - candMass };
}

async function run(cfg) {
  const bytes = estimateBytes(cfg);
  if (bytes > MAX_BYTES) throw Object.assign(new Error(`T = ${cfg.T} needs about ${(bytes / 2 ** 30).toFixed(2)} GiB: over the ~3.5 GiB a wasm32 page can address`), { code: 'E_TOO_BIG' });
  const vs = await vsReady();
  const wl = vs.workload({ kind: cfg.workload, T: cfg.T, heads: cfg.heads, kvHeads: cfg.kvHeads, headDim: cfg.d, valueDim: cfg.d, seed: cfg.seed });
  const cache = vs.createCache({ heads: cfg.heads, kvHeads: cfg.kvHeads, headDim: cfg.d, valueDim: cfg.d, pageSize: cfg.pageSize });
  try {
    const opts = decodeOptions(cfg);
    const q = wl.queries(0);
    const T = cfg.T;
    /* latency checkpoints: T/64 .. T, doubling (at least one page's worth) */
    const checkpoints = [];
    for (let c = T; c >= Math.max(256, T / 64) && checkpoints.length < 8; c = Math.floor(c / 2)) checkpoints.unshift(c);
    const chunk = Math.max(1024, Math.min(65536, Math.ceil(T / 100)));
    const t0 = performance.now();
    let next = 0;
    for (let s = 0; s < T; ) {
      const n = Math.min(chunk, T - s, (checkpoints[next] ?? T) - s);
      wl.appendTo(cache, s, n);
      s += n;
      self.postMessage({ type: 'progress', done: s, total: T });
      if (s === checkpoints[next]) {
        next++;
        if (!cfg.noTiming) {
          const denseMs = time(() => cache.decodeDense(q), 3, 60);
          const sparseMs = time(() => cache.decode(q, opts), 5, 60);
          self.postMessage({ type: 'checkpoint', T: s, denseMs, sparseMs });
        }
      }
    }
    const fillMs = performance.now() - t0;
    const dense = cache.decodeDense(q);
    const r = cache.decode(q, opts);
    const candidates = cache.lastCandidates(0);
    const routed = cache.lastRoutedPages(0);
    const dv = cache.config.valueDim;
    const perHead = r.diagnostics.map((dg, h) => ({
      ...dg,
      trueError: diffNorm(r.output, dense, h * dv, dv),
      denseNorm: norm(dense, h * dv, dv),
    }));
    const denseMs = cfg.noTiming ? NaN : time(() => cache.decodeDense(q), 5, 200);
    const sparseMs = cfg.noTiming ? NaN : time(() => cache.decode(q, opts), 10, 200);
    const marked = wl.marked();
    const candSet = new Set(candidates);
    const view = attentionView(wl, cfg, q.subarray(0, cfg.d), candidates, Math.min(512, T));
    const result = {
      type: 'result',
      version: vs.version, isa: vs.isa,
      config: { ...cache.config, T, workload: cfg.workload, seed: cfg.seed, options: opts },
      fillMs, denseMs, sparseMs, memoryBytes: vs.memoryBytes, info: cache.info(), estimateBytes: bytes,
      dense: Array.from(dense), sparse: Array.from(r.output),
      diagnostics: perHead,
      candidates: Array.from(candidates), routedPages: Array.from(routed),
      marked: Array.from(marked), markedFound: marked.filter((m) => candSet.has(m)).length,
      relError: diffNorm(r.output, dense, 0, dense.length) / norm(dense),
      attention: view,
      workerResources: performance.getEntriesByType('resource').map((e) => e.name),
    };
    self.postMessage(result);
    if (cfg.heatmap && !cfg.noTiming) {
      const pagesList = [1, 2, 4, 8, 16, 32, 64].filter((p) => p * cfg.pageSize <= T);
      const candList = [16, 32, 64, 128, 256, 512].filter((k) => k <= T);
      const ms = pagesList.map((P) => candList.map((Kc) => time(() => cache.decode(q, { ...opts, pages: P, candidates: Kc }), 3, 15)));
      self.postMessage({ type: 'heatmap', pages: pagesList, candidates: candList, ms });
    }
  } finally {
    cache.free();
  }
}

self.onmessage = async (e) => {
  const m = e.data;
  if (m.type !== 'run') return;
  try {
    await run(m.cfg);
    self.postMessage({ type: 'done' });
  } catch (err) {
    self.postMessage({ type: 'error', code: err.code ?? err.name, message: String(err.message ?? err) });
  }
};

vsReady().then(
  (vs) => self.postMessage({ type: 'ready', version: vs.version, isa: vs.isa }),
  (err) => self.postMessage({ type: 'error', code: err.code ?? err.name, message: String(err.message ?? err) }),
);
