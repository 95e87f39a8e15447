// The demo's decoding worker: owns the wasm instance, fills the cache in
// chunks (posting progress and latency checkpoints), then decodes densely and
// sparsely and posts everything the page draws. The page never touches wasm.
//
// Messages in:  { type: 'run', cfg }          cfg: see demo/app.js readConfig()
// Messages out: { type: 'ready', version, isa }
//               { type: 'progress', done, total }
//               { type: 'checkpoint', T, denseMs, sparseMs }
//               { type: 'status', text }                     (a long step is running)
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

/* ---- eg, fw: the solver's weights on the candidates ----------------------------------------
 * The API returns outputs, not weights; to draw where eg and fw put their mass,
 * the worker re-solves head 0's problem over the same candidates in float64
 * (for the picture only; the numbers shown come from the library). Score units,
 * U = the candidate keys:
 *   eg: alpha = argmin_{simplex} scale/2 ||U alpha - q||^2 + eps sum alpha log alpha
 *       (Newton on its d-dimensional dual; alpha = softmax(-U^T lambda / eps));
 *   fw: alpha = argmin_{simplex} ||U alpha - q||^2 (Wolfe's minimum-norm point). */

/* Solves A x = b (n x n, row-major, A overwritten); null if singular. */
function solveLinear(A, b, n) {
  const x = Float64Array.from(b);
  for (let c = 0; c < n; c++) {
    let p = c;
    for (let r = c + 1; r < n; r++) if (Math.abs(A[r * n + c]) > Math.abs(A[p * n + c])) p = r;
    if (!(Math.abs(A[p * n + c]) > 0)) return null;
    if (p !== c) {
      for (let k = 0; k < n; k++) { const t = A[c * n + k]; A[c * n + k] = A[p * n + k]; A[p * n + k] = t; }
      const t = x[c]; x[c] = x[p]; x[p] = t;
    }
    for (let r = c + 1; r < n; r++) {
      const f = A[r * n + c] / A[c * n + c];
      if (f === 0) continue;
      for (let k = c; k < n; k++) A[r * n + k] -= f * A[c * n + k];
      x[r] -= f * x[c];
    }
  }
  for (let c = n - 1; c >= 0; c--) {
    let s = x[c];
    for (let k = c + 1; k < n; k++) s -= A[c * n + k] * x[k];
    x[c] = s / A[c * n + c];
  }
  return x;
}

function entropicWeights(U, n, d, q, scale, eps) {
  const lam = new Float64Array(d), trial = new Float64Array(d), mean = new Float64Array(d);
  const alpha = new Float64Array(n);
  const dual = (l) => { /* g(lambda); leaves alpha(lambda) and U alpha in alpha, mean */
    let zmax = -Infinity;
    for (let i = 0; i < n; i++) {
      let s = 0;
      for (let j = 0; j < d; j++) s += U[i * d + j] * l[j];
      alpha[i] = -s / eps;
      zmax = Math.max(zmax, alpha[i]);
    }
    let z = 0;
    for (let i = 0; i < n; i++) z += (alpha[i] = Math.exp(alpha[i] - zmax));
    mean.fill(0);
    for (let i = 0; i < n; i++) {
      alpha[i] /= z;
      if (alpha[i] > 0) for (let j = 0; j < d; j++) mean[j] += alpha[i] * U[i * d + j];
    }
    let lq = 0, ll = 0;
    for (let j = 0; j < d; j++) { lq += l[j] * q[j]; ll += l[j] * l[j]; }
    return -eps * (zmax + Math.log(z)) - lq - ll / (2 * scale);
  };
  let cur = dual(lam);
  const grad = new Float64Array(d), H = new Float64Array(d * d);
  for (let it = 0; it < 100; it++) {
    for (let j = 0; j < d; j++) grad[j] = mean[j] - q[j] - lam[j] / scale;
    H.fill(0);
    for (let i = 0; i < n; i++) {
      if (!(alpha[i] > 1e-300)) continue;
      for (let a = 0; a < d; a++) {
        const ua = (U[i * d + a] - mean[a]) * alpha[i] / eps;
        if (ua !== 0) for (let b = 0; b < d; b++) H[a * d + b] += ua * (U[i * d + b] - mean[b]);
      }
    }
    for (let a = 0; a < d; a++) H[a * d + a] += 1 / scale;
    const step = solveLinear(H, grad, d);
    if (!step) break;
    let slope = 0;
    for (let j = 0; j < d; j++) slope += step[j] * grad[j];
    if (!(slope > 1e-15 * Math.abs(cur))) break;
    let t = 1, next = null;
    for (let k = 0; k < 50 && next === null; k++, t /= 2) {
      for (let j = 0; j < d; j++) trial[j] = lam[j] + t * step[j];
      const v = dual(trial);
      if (v >= cur + 1e-4 * t * slope) next = v;
    }
    if (next === null) break;
    lam.set(trial);
    cur = next;
  }
  dual(lam);
  return alpha;
}

function hullWeights(U, n, d, q) {
  const P = new Float64Array(n * d); /* k_i - q: the hull's point nearest the origin */
  let R2 = 0, first = 0, best = Infinity;
  for (let i = 0; i < n; i++) {
    let s = 0;
    for (let j = 0; j < d; j++) { P[i * d + j] = U[i * d + j] - q[j]; s += P[i * d + j] ** 2; }
    R2 = Math.max(R2, s);
    if (s < best) { best = s; first = i; }
  }
  const point = (S, w) => {
    const x = new Float64Array(d);
    S.forEach((i, k) => { for (let j = 0; j < d; j++) x[j] += w[k] * P[i * d + j]; });
    return x;
  };
  const affine = (S) => { /* weights summing to 1 of the affine hull's point nearest the origin */
    const m = S.length, A = new Float64Array((m + 1) * (m + 1)), b = new Float64Array(m + 1);
    for (let a = 0; a < m; a++) {
      for (let c = 0; c < m; c++) {
        let v = 0;
        for (let j = 0; j < d; j++) v += P[S[a] * d + j] * P[S[c] * d + j];
        A[a * (m + 1) + c] = v / (R2 || 1);
      }
      A[a * (m + 1) + m] = A[m * (m + 1) + a] = 1;
    }
    b[m] = 1;
    const x = solveLinear(A, b, m + 1);
    return x && Array.from(x.subarray(0, m)).every(Number.isFinite) ? Array.from(x.subarray(0, m)) : null;
  };
  let S = [first], w = [1], x = point(S, w);
  const norm2 = (v) => v.reduce((a, b) => a + b * b, 0);
  for (let it = 0; it < 10000; it++) {
    let m = Infinity, jmin = -1;
    for (let i = 0; i < n; i++) {
      let s = 0;
      for (let j = 0; j < d; j++) s += x[j] * P[i * d + j];
      if (s < m) { m = s; jmin = i; }
    }
    const xx = norm2(x);
    if (xx - m <= 1e-14 * R2 || S.includes(jmin)) break;
    const S1 = [...S, jmin];
    let w1 = [...w, 0], ok = true;
    for (;;) {
      const v = affine(S1);
      if (!v) { ok = false; break; }
      if (v.every((vi) => vi > 0)) { w1 = v; break; }
      let theta = Infinity, kmin = -1;
      v.forEach((vi, k) => { if (vi <= 0) { const t = w1[k] / (w1[k] - vi); if (t < theta) { theta = t; kmin = k; } } });
      w1 = w1.map((wk, k) => theta * v[k] + (1 - theta) * wk);
      w1[kmin] = 0;
      for (let k = w1.length - 1; k >= 0; k--) if (!(w1[k] > 0)) { S1.splice(k, 1); w1.splice(k, 1); }
      const sum = w1.reduce((a, b) => a + b, 0);
      w1 = w1.map((wk) => wk / sum);
    }
    if (!ok) break;
    const x1 = point(S1, w1);
    if (!(norm2(x1) < xx)) break;
    S = S1; w = w1; x = x1;
  }
  const alpha = new Float64Array(n);
  S.forEach((i, k) => { alpha[i] = w[k]; });
  return alpha;
}

/* Above this many multiply-adds (|C| d^2) the re-solve is skipped: the picture is not worth minutes. */
const RESOLVE_MAX_WORK = 4e8;

/**
 * Float64 reference attention for query head 0 (KV head 0), binned into
 * `bins` buckets of positions: the dense softmax mass per bin, and the sparse
 * decode's mass per bin over its candidates: softmax over them, or for eg and
 * fw their weights re-solved in float64 (null when that would take too long).
 * trueLeak: the dense softmax mass outside the candidates (softmax only).
 */
function attentionView(wl, opts, q, candidates, bins) {
  const { T, headDim: d, kvHeads } = wl.config;
  const scale = Math.fround(1 / Math.sqrt(d));
  const scores = new Float64Array(T);
  const projection = opts.solver === 'eg' || opts.solver === 'fw';
  const nc = candidates.length;
  const resolve = projection && nc * d * d <= RESOLVE_MAX_WORK;
  const U = resolve ? new Float64Array(nc * d) : null; /* the candidates' keys, for the re-solve */
  const chunk = 8192;
  for (let s = 0, ci = 0; s < T; s += chunk) {
    const n = Math.min(chunk, T - s);
    const { keys } = wl.tokens(s, n);
    for (let t = 0; t < n; t++) {
      const o = (t * kvHeads) * d; /* kv head 0 */
      let dot = 0;
      for (let j = 0; j < d; j++) dot += q[j] * keys[o + j];
      scores[s + t] = dot * scale;
      if (U && ci < nc && candidates[ci] === s + t) {
        for (let j = 0; j < d; j++) U[ci * d + j] = keys[o + j];
        ci++;
      }
    }
  }
  let mx = -Infinity;
  for (let t = 0; t < T; t++) mx = Math.max(mx, scores[t]);
  const w = new Float64Array(T);
  let z = 0;
  for (let t = 0; t < T; t++) z += (w[t] = Math.exp(scores[t] - mx));
  const dense = new Float64Array(bins);
  const per = T / bins;
  const bin = (t) => Math.min(bins - 1, Math.floor(t / per));
  for (let t = 0; t < T; t++) dense[bin(t)] += w[t] / z;
  let candMass = 0;
  for (const c of candidates) candMass += w[c] / z;
  if (projection) {
    /* the bars are softmax; eg's and fw's exact weights over every token are not computed here */
    if (!U) return { dense: Array.from(dense), sparse: null, trueLeak: null };
    const qd = Float64Array.from(q);
    const alpha = opts.solver === 'eg' ? entropicWeights(U, nc, d, qd, scale, Math.fround(opts.eps ?? 0.05)) : hullWeights(U, nc, d, qd);
    const sparse = new Float64Array(bins);
    candidates.forEach((c, i) => { sparse[bin(c)] += alpha[i]; });
    return { dense: Array.from(dense), sparse: Array.from(sparse), trueLeak: null };
  }
  const sparse = new Float64Array(bins);
  let cz = 0;
  for (const c of candidates) cz += w[c];
  for (const c of candidates) sparse[bin(c)] += w[c] / cz;
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
    /* What the sparse decode is measured against: exact attention of its solver.
       softmax: the dense decode. eg, fw: the same solver over every token (what
       their dense fallback runs), itself certified within its own errorBound. */
    let exact = dense;
    let exactDiag = null;
    if (opts.solver === 'eg' || opts.solver === 'fw') {
      self.postMessage({ type: 'status', text: `running ${opts.solver} over all ${T.toLocaleString('en')} tokens for the reference…` });
      const full = cache.decode(q, { ...opts, pages: cache.info().pages, candidates: T, tolerance: 0 });
      exact = full.output;
      exactDiag = full.diagnostics;
    }
    const perHead = r.diagnostics.map((dg, h) => ({
      ...dg,
      /* fw certifies its point U alpha, not the output (its weights need not be unique): no true error to show */
      trueError: opts.solver === 'fw' ? NaN : diffNorm(r.output, exact, h * dv, dv),
      denseNorm: norm(exact, h * dv, dv),
      referenceBound: exactDiag ? exactDiag[h].errorBound : 0,
    }));
    const denseMs = cfg.noTiming ? NaN : time(() => cache.decodeDense(q), 5, 200);
    const sparseMs = cfg.noTiming ? NaN : time(() => cache.decode(q, opts), 10, 200);
    const marked = wl.marked();
    const candSet = new Set(candidates);
    const view = attentionView(wl, opts, q.subarray(0, cfg.d), candidates, Math.min(512, T));
    const result = {
      type: 'result',
      version: vs.version, isa: vs.isa,
      config: { ...cache.config, T, workload: cfg.workload, seed: cfg.seed, options: opts },
      fillMs, denseMs, sparseMs, memoryBytes: vs.memoryBytes, info: cache.info(), estimateBytes: bytes,
      dense: Array.from(dense), sparse: Array.from(r.output),
      diagnostics: perHead,
      candidates: Array.from(candidates), routedPages: Array.from(routed),
      marked: Array.from(marked), markedFound: marked.filter((m) => candSet.has(m)).length,
      relError: diffNorm(r.output, exact, 0, exact.length) / norm(exact),
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
