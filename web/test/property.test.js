// Property-based tests (fast-check): the API against the plain-JS float64
// reference of test/helpers.js on random small shapes, random float32 data
// (including exact zeros, signed zeros, subnormals and duplicated tokens)
// appended in random chunks. Every property runs with a fixed seed, so a
// failure is reproducible; fast-check prints the seed, the path and the
// shrunk counterexample.
import assert from 'node:assert/strict';
import { test } from 'node:test';

import fc from 'fast-check';

import { init, VashistaError } from '../src/index.js';
import { autoExpandRule, bitEqual, l2, l2diff, referenceAttention } from './helpers.js';
import { entropicProjection64, hullProjection64 } from './projection64.js';

const vs = await init();

/* ---- generators ------------------------------------------------------------ */

/* A float32 in [-8, 8]: a uniform grid value, fc.float's edge-biased draws
   (subnormals, -0, +-8, tiny magnitudes), or an exact zero. */
const element = fc.oneof(
  { weight: 5, arbitrary: fc.integer({ min: -(1 << 23), max: 1 << 23 }).map((i) => i / (1 << 20)) },
  { weight: 3, arbitrary: fc.float({ min: -8, max: 8, noNaN: true }) },
  { weight: 1, arbitrary: fc.constant(0) },
);
const f32 = (n) => fc.array(element, { minLength: n, maxLength: n }).map((a) => Float32Array.from(a));

function divisors(n) {
  const out = [];
  for (let k = 1; k <= n; k++) if (n % k === 0) out.push(k);
  return out;
}

const shapeArb = fc
  .integer({ min: 1, max: 4 })
  .chain((heads) =>
    fc.record({
      heads: fc.constant(heads),
      kvHeads: fc.constantFrom(...divisors(heads)),
      headDim: fc.integer({ min: 1, max: 40 }),
      valueDim: fc.integer({ min: 1, max: 24 }),
      pageSize: fc.integer({ min: 1, max: 20 }),
      T: fc.integer({ min: 1, max: 300 }),
    }),
  );

/* A case: a shape, its tokens (some rows duplicated), the append chunk sizes
   and a query (scaled so that attention ranges from diffuse to one-hot). */
const caseArb = shapeArb.chain((s) =>
  fc
    .record({
      keys: f32(s.T * s.kvHeads * s.headDim),
      values: f32(s.T * s.kvHeads * s.valueDim),
      q: f32(s.heads * s.headDim),
      qScale: fc.constantFrom(1, 1 / 4, 1 / 16),
      chunks: fc.array(fc.integer({ min: 0, max: s.T }), { maxLength: 8 }),
      dups: fc.array(fc.tuple(fc.nat(s.T - 1), fc.nat(s.T - 1), fc.boolean()), { maxLength: 6 }),
    })
    .map(({ keys, values, q, qScale, chunks, dups }) => {
      const kRow = s.kvHeads * s.headDim;
      const vRow = s.kvHeads * s.valueDim;
      for (const [from, to, withValue] of dups) {
        keys.copyWithin(to * kRow, from * kRow, (from + 1) * kRow);
        if (withValue) values.copyWithin(to * vRow, from * vRow, (from + 1) * vRow);
      }
      for (let i = 0; i < q.length; i++) q[i] = Math.fround(q[i] * qScale);
      return withSummary({ ...s, keys, values, q, chunks });
    }),
);

/* ---- helpers ------------------------------------------------------------------ */

/* Counterexamples print their shape, chunks and (when short) their data;
   the seed and path that fast-check prints replay the full case. */
function withSummary(c) {
  const arr = (a) => (a.length <= 64 ? `[${Array.from(a).join(', ')}]` : `<${a.length} floats>`);
  Object.defineProperty(c, fc.toStringMethod, {
    value: () =>
      `{heads: ${c.heads}, kvHeads: ${c.kvHeads}, headDim: ${c.headDim}, valueDim: ${c.valueDim}, pageSize: ${c.pageSize}, T: ${c.T}, ` +
      `chunks: [${c.chunks}], keys: ${arr(c.keys)}, values: ${arr(c.values)}, q: ${arr(c.q)}}`,
  });
  return c;
}

function build({ heads, kvHeads, headDim, valueDim, pageSize, T, keys, values, chunks }, n = T) {
  const cache = vs.createCache({ heads, kvHeads, headDim, valueDim, pageSize });
  const kRow = kvHeads * headDim;
  const vRow = kvHeads * valueDim;
  let at = 0;
  for (const c of chunks ?? []) {
    const m = Math.min(c, n - at);
    cache.append(keys.subarray(at * kRow, (at + m) * kRow), values.subarray(at * vRow, (at + m) * vRow));
    at += m;
  }
  cache.append(keys.subarray(at * kRow, n * kRow), values.subarray(at * vRow, n * vRow));
  assert.equal(cache.length, n);
  return cache;
}

const dense64 = (c) =>
  referenceAttention({ keys: c.keys, values: c.values, T: c.T, heads: c.heads, kvHeads: c.kvHeads, d: c.headDim, dv: c.valueDim, q: c.q });

/* Float64 softmax attention of query head h over the tokens `tokens` only:
   the reference of helpers.js on the gathered rows. */
function subset64(c, h, tokens) {
  const kRow = c.kvHeads * c.headDim;
  const vRow = c.kvHeads * c.valueDim;
  const keys = new Float32Array(tokens.length * kRow);
  const values = new Float32Array(tokens.length * vRow);
  tokens.forEach((t, i) => {
    keys.set(c.keys.subarray(t * kRow, (t + 1) * kRow), i * kRow);
    values.set(c.values.subarray(t * vRow, (t + 1) * vRow), i * vRow);
  });
  const out = referenceAttention({ keys, values, T: tokens.length, heads: c.heads, kvHeads: c.kvHeads, d: c.headDim, dv: c.valueDim, q: c.q });
  return out.subarray(h * c.valueDim, (h + 1) * c.valueDim);
}

/* Float64 scores s_t = <q_h, k_t> / sqrt(d), |q_h| . |k_t| / sqrt(d) (for
   rounding slack), and dense weights of query head h. */
function scores64(c, h) {
  const g = Math.floor(h / (c.heads / c.kvHeads));
  const s = new Float64Array(c.T);
  const abs = new Float64Array(c.T);
  const w = new Float64Array(c.T);
  const scale = 1 / Math.sqrt(c.headDim);
  let max = -Infinity;
  for (let t = 0; t < c.T; t++) {
    let dot = 0;
    let a = 0;
    for (let j = 0; j < c.headDim; j++) {
      const p = c.q[h * c.headDim + j] * c.keys[(t * c.kvHeads + g) * c.headDim + j];
      dot += p;
      a += Math.abs(p);
    }
    s[t] = dot * scale;
    abs[t] = a * scale;
    max = Math.max(max, s[t]);
  }
  let z = 0;
  for (let t = 0; t < c.T; t++) z += w[t] = Math.exp(s[t] - max);
  for (let t = 0; t < c.T; t++) w[t] /= z;
  return { s, abs, w };
}

/* The largest value-row norm of KV group g: the scale of float32 rounding in an output. */
function vmax(c, g) {
  let m = 0;
  for (let t = 0; t < c.T; t++) {
    const at = (t * c.kvHeads + g) * c.valueDim;
    m = Math.max(m, l2(c.values, at, at + c.valueDim));
  }
  return m;
}

const REL = 1e-5;
/* ||got_h - want_h|| <= 1e-5 ||want_h|| + 1e-6 vmax: relative L2 1e-5, with an
   absolute floor for outputs near zero (cancellation among the values). */
function assertClose(got, gotFrom, want, wantFrom, dv, floor, what) {
  let e = 0;
  let n = 0;
  for (let j = 0; j < dv; j++) {
    e += (got[gotFrom + j] - want[wantFrom + j]) ** 2;
    n += want[wantFrom + j] ** 2;
  }
  e = Math.sqrt(e);
  n = Math.sqrt(n);
  assert.ok(e <= REL * n + 1e-6 * floor, `${what}: ||out - ref|| = ${e}, ||ref|| = ${n}, relative ${e / n}, floor ${floor}`);
}

const groupOf = (c, h) => Math.floor(h / (c.heads / c.kvHeads));
const NODE = vs.nodePages;
const autoExpand = autoExpandRule(NODE); /* expand 0 (vashista.h) */
const pagesOf = (c, n = c.T) => Math.ceil(n / c.pageSize);

/* ---- properties ------------------------------------------------------------------ */

const RUNS = { dense: 500, sparse: 1000, solvers: 500, full: 400, truncate: 400, bad: 600 };

test('decodeDense equals the float64 reference (relative L2 1e-5 per head)', () => {
  fc.assert(
    fc.property(caseArb, (c) => {
      const cache = build(c);
      try {
        const out = cache.decodeDense(c.q);
        assert.equal(out.length, c.heads * c.valueDim);
        const ref = dense64(c);
        for (let h = 0; h < c.heads; h++)
          assertClose(out, h * c.valueDim, ref, h * c.valueDim, c.valueDim, vmax(c, groupOf(c, h)), `head ${h}`);
      } finally {
        cache.free();
      }
    }),
    { seed: 0x5eed01, numRuns: RUNS.dense, includeErrorInReport: true },
  );
});

/* routing: flat, or tree with small expand values (nodes of 16 pages: with at
   most 300 pages, expand 1..3 leaves some nodes unexpanded; the automatic
   expand mostly covers every node, which is flat routing) */
const routingArb = {
  routing: fc.constantFrom('flat', 'tree'),
  expand: fc.oneof({ weight: 1, arbitrary: fc.constant(0) }, { weight: 3, arbitrary: fc.integer({ min: 1, max: 3 }) }),
};
const optionsArb = fc.record(
  {
    pages: fc.integer({ min: 1, max: 24 }),
    candidates: fc.integer({ min: 1, max: 320 }),
    sinkPages: fc.integer({ min: 0, max: 4 }),
    recentPages: fc.integer({ min: 0, max: 4 }),
    ...routingArb,
  },
  { requiredKeys: ['pages', 'candidates'] },
);

test('decode: softmax over exactly lastCandidates, a valid selection, and a certificate that holds', (t) => {
  const defaults = vs.decodeDefaults;
  /* how often the checks had something to bite on (so the property is not vacuous) */
  const seen = { heads: 0, partialRouting: 0, topk: 0, leaked: 0, tree: 0 };
  fc.assert(
    fc.property(caseArb, optionsArb, (c, options) => {
      const cache = build(c);
      try {
        const r = cache.decode(c.q, options);
        assert.equal(r.output.length, c.heads * c.valueDim);
        assert.equal(r.diagnostics.length, c.heads);
        const dense = dense64(c);
        const np = pagesOf(c);
        const o = { ...defaults, ...options };
        for (let h = 0; h < c.heads; h++) {
          const where = `head ${h}`;
          const d = r.diagnostics[h];
          const cand = cache.lastCandidates(h);
          const routed = cache.lastRoutedPages(h);
          assert.equal(d.fallback, 'none', where);

          /* routing: increasing distinct pages, sink and recent pages included, sink + min(P, middle) + recent
             of them; tree routing with unexpanded nodes (E < nodes): at most P middle pages, of at most E
             nodes, fewer than P only when the expanded nodes are routed whole */
          const sink = Math.min(o.sinkPages, np);
          const recent = Math.min(o.recentPages, np - sink);
          const middle = np - sink - recent;
          const nodes = Math.ceil(np / NODE);
          const E = o.routing === 'tree' ? o.expand || autoExpand(o.pages) : nodes;
          if (E >= nodes || o.pages >= middle) {
            assert.equal(routed.length, sink + Math.min(o.pages, middle) + recent, `${where}: routed pages ${routed}`);
          } else {
            seen.tree++;
            const others = Array.from(routed).filter((p) => p >= sink && p < np - recent);
            assert.equal(others.length, routed.length - sink - recent, `${where}: routed pages ${routed}`);
            assert.ok(others.length >= 1 && others.length <= o.pages, `${where}: ${others.length} middle pages routed, P = ${o.pages}`);
            const used = new Set(others.map((p) => Math.floor(p / NODE)));
            assert.ok(used.size <= E, `${where}: pages of ${used.size} nodes routed, expand ${E}: ${routed}`);
            if (others.length < o.pages)
              for (const n of used)
                for (let p = Math.max(n * NODE, sink); p < Math.min((n + 1) * NODE, np - recent); p++)
                  assert.ok(others.includes(p), `${where}: node ${n} routed in part with ${others.length} < P pages: ${routed}`);
          }
          assert.equal(d.routedPages, routed.length, where);
          for (let i = 0; i < routed.length; i++) {
            assert.ok(routed[i] < np, `${where}: routed page ${routed[i]} of ${np}`);
            if (i) assert.ok(routed[i] > routed[i - 1], `${where}: routed pages not increasing: ${routed}`);
          }
          const routedSet = new Set(routed);
          for (let p = 0; p < sink; p++) assert.ok(routedSet.has(p), `${where}: sink page ${p} not routed`);
          for (let p = np - recent; p < np; p++) assert.ok(routedSet.has(p), `${where}: recent page ${p} not routed`);

          /* candidates: increasing, in range, in routed pages, count = min(Kc, routed tokens) */
          let routedTokens = 0;
          for (const p of routed) routedTokens += Math.min(c.pageSize, c.T - p * c.pageSize);
          seen.heads++;
          if (routed.length < np) seen.partialRouting++;
          if (o.candidates < routedTokens) seen.topk++;
          assert.equal(cand.length, Math.min(o.candidates, routedTokens), `${where}: ${cand.length} candidates`);
          assert.equal(d.candidates, cand.length, where);
          for (let i = 0; i < cand.length; i++) {
            assert.ok(cand[i] < c.T, `${where}: candidate ${cand[i]} >= T = ${c.T}`);
            if (i) assert.ok(cand[i] > cand[i - 1], `${where}: candidates not increasing`);
            assert.ok(routedSet.has(Math.floor(cand[i] / c.pageSize)), `${where}: candidate ${cand[i]} outside the routed pages`);
          }

          /* the candidates are the top-Kc routed tokens (up to float32 score rounding) */
          const { s, abs, w } = scores64(c, h);
          const inC = new Uint8Array(c.T);
          for (const t of cand) inC[t] = 1;
          let minIn = Infinity;
          let minInAbs = 0;
          for (const t of cand) if (s[t] < minIn) [minIn, minInAbs] = [s[t], abs[t]];
          const slack = (c.headDim + 4) * 2 ** -23;
          for (const p of routed)
            for (let t = p * c.pageSize; t < Math.min(c.T, (p + 1) * c.pageSize); t++)
              if (!inC[t])
                assert.ok(s[t] <= minIn + slack * (abs[t] + minInAbs) + 1e-30, `${where}: routed token ${t} (score ${s[t]}) left out for a candidate scoring ${minIn}`);

          /* the output: float64 softmax over exactly these candidates */
          const sub = subset64(c, h, cand);
          assertClose(r.output, h * c.valueDim, sub, 0, c.valueDim, vmax(c, groupOf(c, h)), `${where}: vs softmax over the candidates`);

          /* the certificate against the float64 dense reference */
          const err = l2diff(r.output.subarray(h * c.valueDim, (h + 1) * c.valueDim), dense.subarray(h * c.valueDim, (h + 1) * c.valueDim));
          const refNorm = l2(dense, h * c.valueDim, (h + 1) * c.valueDim);
          assert.ok(err <= d.errorBound + 1e-12 * refNorm, `${where}: ||out - dense64|| = ${err} above errorBound ${d.errorBound}`);
          let mass = 0;
          for (const t of cand) mass += w[t];
          const rho = Math.max(0, 1 - mass);
          if (rho > 1e-6) seen.leaked++;
          assert.ok(rho <= d.rhoCert + 1e-12, `${where}: off-candidate mass ${rho} above rhoCert ${d.rhoCert}`);
          /* leakageBound is a float32 rounded to nearest (not up): half an ulp of slack */
          assert.ok(rho <= d.leakageBound * (1 + 2 ** -23) + 1e-12, `${where}: off-candidate mass ${rho} above leakageBound ${d.leakageBound}`);
          /* rhoCert is a mass rounded up: it may exceed 1 by one float32 ulp */
          assert.ok(d.rhoCert >= 0 && d.rhoCert <= 1 + 2 ** -23 && d.leakageBound >= 0 && d.leakageBound <= 1 && d.errorBound >= 0, `${where}: ${JSON.stringify(d)}`);
        }
      } finally {
        cache.free();
      }
    }),
    { seed: 0x5eed02, numRuns: RUNS.sparse, includeErrorInReport: true },
  );
  for (const k of ['partialRouting', 'topk', 'leaked'])
    assert.ok(seen[k] >= 0.2 * seen.heads, `only ${seen[k]} of ${seen.heads} heads had ${k}`);
  t.diagnostic(`heads: ${JSON.stringify(seen)}`);
  assert.ok(seen.tree >= 0.05 * seen.heads, `only ${seen.tree} of ${seen.heads} heads routed by a partial tree`);
});

/* Float64 exact output of the projection solvers over every token of head h
   (test/projection64.js), with the reference's own certified slack:
   eg: out* = V alpha*, fw: p* (values = keys there). */
function projection64(c, h, options) {
  const g = groupOf(c, h);
  const q = c.q.subarray(h * c.headDim, (h + 1) * c.headDim);
  const base = { keys: c.keys, T: c.T, d: c.headDim, kvHeads: c.kvHeads, g, q };
  if (options.solver === 'fw') {
    const ref = hullProjection64(base);
    return { out: ref.point, slack: ref.err, alpha: null };
  }
  const eps = Math.fround(options.eps ?? vs.decodeDefaults.eps);
  const ref = entropicProjection64({ ...base, scale: Math.fround(1 / Math.sqrt(c.headDim)), eps });
  const out = new Float64Array(c.valueDim);
  for (let t = 0; t < c.T; t++) {
    if (ref.alpha[t] === 0) continue;
    const at = (t * c.kvHeads + g) * c.valueDim;
    for (let j = 0; j < c.valueDim; j++) out[j] += ref.alpha[t] * c.values[at + j];
  }
  return { out, slack: vmax(c, g) * ref.l1, alpha: ref.alpha, l1: ref.l1 };
}

test('decode with a tolerance (and any solver): the certificate holds and the fallback rule is kept', (t) => {
  const optArb = fc.record(
    {
      pages: fc.integer({ min: 1, max: 24 }),
      candidates: fc.integer({ min: 1, max: 320 }),
      sinkPages: fc.integer({ min: 0, max: 4 }),
      recentPages: fc.integer({ min: 0, max: 4 }),
      solver: fc.oneof({ weight: 2, arbitrary: fc.constant('softmax') }, { weight: 3, arbitrary: fc.constantFrom('eg', 'fw') }),
      tolerance: fc.constantFrom(0, 1e-4, 1e-2, 0.3),
      widen: fc.integer({ min: 2, max: 6 }),
      eps: fc.constantFrom(0.05, 0.5, 3),
      maxIter: fc.constantFrom(1, 5, 200, 1000),
      solverTol: fc.constantFrom(1e-4, 1e-6, 1e-8),
      ...routingArb,
    },
    { requiredKeys: ['pages', 'candidates', 'solver', 'tolerance'] },
  );
  const seen = { softmax: 0, eg: 0, fw: 0, dense: 0, widened: 0 };
  fc.assert(
    fc.property(caseArb, optArb, (c0, options) => {
      /* fw certifies its point U alpha: give it values = keys, so that the output is that point */
      const c = options.solver === 'fw' ? withSummary({ ...c0, valueDim: c0.headDim, values: c0.keys.slice() }) : c0;
      const proj = options.solver !== 'softmax';
      const cache = build(c);
      try {
        const lib = cache.decodeDense(c.q);
        const r = cache.decode(c.q, options);
        seen[options.solver]++;
        const selection = Array.from({ length: c.heads }, (_, h) => cache.lastCandidates(h));
        /* eg, fw fall back to the same solver over every token: the decode that asks for every token */
        const full = proj ? cache.decode(c.q, { ...options, pages: pagesOf(c), candidates: c.T, tolerance: 0 }) : null;
        const dense = proj ? null : dense64(c);
        for (let h = 0; h < c.heads; h++) {
          const where = `head ${h}`;
          const d = r.diagnostics[h];
          const lo = h * c.valueDim;
          const hi = lo + c.valueDim;
          const out = r.output.subarray(lo, hi);
          const ref = proj ? projection64(c, h, options) : { out: dense.subarray(lo, hi), slack: 1e-12 * l2(dense, lo, hi) };
          const err = l2diff(out, ref.out);
          assert.ok(err <= d.errorBound + ref.slack, `${where}: ||out - exact|| = ${err} above errorBound ${d.errorBound} (+ ${ref.slack}) (${JSON.stringify(d)})`);
          assert.equal(selection[h].length, d.candidates, where);
          assert.ok(['none', 'widened', 'dense'].includes(d.fallback), where);
          assert.ok(d.faceSize >= (proj ? 1 : d.candidates) && d.faceSize <= d.candidates, `${where}: faceSize ${d.faceSize}`);
          if (options.solver === 'softmax' || options.solver === 'eg') {
            /* the mass exact attention puts outside the candidates */
            const w = proj ? ref.alpha : scores64(c, h).w;
            const inC = new Uint8Array(c.T);
            for (const t of selection[h]) inC[t] = 1;
            let mass = 0;
            for (let t = 0; t < c.T; t++) if (inC[t]) mass += w[t];
            assert.ok(Math.max(0, 1 - mass) <= d.rhoCert + (ref.l1 ?? 0) / 2 + 1e-12, `${where}: off-candidate mass ${1 - mass} above rhoCert ${d.rhoCert}`);
          } else {
            assert.equal(d.rhoCert, d.candidates === c.T ? 0 : 1, where);
            assert.equal(d.leakageBound, 0, where);
          }
          if (d.fallback !== 'none') seen[d.fallback]++;
          if (d.fallback === 'dense') {
            assert.equal(d.candidates, c.T, `${where}: dense fallback reports every token`);
            assert.equal(d.routedPages, pagesOf(c), where);
            if (proj) {
              assert.ok(bitEqual(out, full.output.subarray(lo, hi)), `${where}: dense fallback differs from the decode over every token`);
              assert.deepEqual({ ...d, fallback: 'none' }, full.diagnostics[h], where);
            } else {
              assert.ok(bitEqual(out, lib.subarray(lo, hi)), `${where}: dense fallback differs from decodeDense`);
            }
          } else if (options.tolerance > 0) {
            /* the reference norm: ||out||, for fw ||U alpha|| (= the output here, up to its float32 rounding) */
            const norm = options.solver === 'fw' ? d.outputNorm * (1 + 1e-5) + (c.T + 16) * 2 ** -22 * vmax(c, groupOf(c, h)) : d.outputNorm * (1 + 1e-6);
            assert.ok(d.errorBound <= options.tolerance * norm, `${where}: kept a ${d.fallback} result with errorBound ${d.errorBound} > ${options.tolerance} * ${d.outputNorm}`);
          }
          if (options.tolerance === 0) assert.equal(d.fallback, 'none', where);
          if (proj) assert.ok(d.iterations <= (options.maxIter ?? vs.decodeDefaults.maxIter), where);
        }
      } finally {
        cache.free();
      }
    }),
    { seed: 0x5eed06, numRuns: RUNS.solvers, includeErrorInReport: true },
  );
  t.diagnostic(`runs per solver and heads per fallback: ${JSON.stringify(seen)}`);
  for (const k of Object.keys(seen)) assert.ok(seen[k] >= 10, `only ${seen[k]} runs/heads of ${k}: ${JSON.stringify(seen)}`);
});

test('full coverage equals dense and certifies rhoCert = 0', () => {
  fc.assert(
    fc.property(caseArb, fc.nat(8), fc.nat(8), fc.nat(4), fc.nat(4), (c, extraPages, extraCand, sinkPages, recentPages) => {
      const cache = build(c);
      try {
        const np = pagesOf(c);
        const r = cache.decode(c.q, { pages: np + extraPages, candidates: c.T + extraCand, sinkPages, recentPages });
        const ref = dense64(c);
        const lib = cache.decodeDense(c.q);
        for (let h = 0; h < c.heads; h++) {
          const where = `head ${h}`;
          const d = r.diagnostics[h];
          const floor = vmax(c, groupOf(c, h));
          assertClose(r.output, h * c.valueDim, ref, h * c.valueDim, c.valueDim, floor, `${where}: vs dense64`);
          assertClose(r.output, h * c.valueDim, lib, h * c.valueDim, c.valueDim, floor, `${where}: vs decodeDense`);
          assert.equal(d.rhoCert, 0, `${where}: rhoCert`);
          assert.equal(d.leakageBound, 0, `${where}: leakageBound`);
          assert.equal(d.gap, Infinity, `${where}: gap`);
          assert.equal(d.candidates, c.T, where);
          assert.equal(d.routedPages, np, where);
          assert.deepEqual(Array.from(cache.lastCandidates(h)), Array.from({ length: c.T }, (_, t) => t), where);
          const err = l2diff(r.output.subarray(h * c.valueDim, (h + 1) * c.valueDim), ref.subarray(h * c.valueDim, (h + 1) * c.valueDim));
          assert.ok(err <= d.errorBound + 1e-12 * l2(ref, h * c.valueDim, (h + 1) * c.valueDim), `${where}: error ${err} above errorBound ${d.errorBound}`);
        }
      } finally {
        cache.free();
      }
    }),
    { seed: 0x5eed03, numRuns: RUNS.full, includeErrorInReport: true },
  );
});

test('truncate(n) then decode equals a fresh cache of the first n tokens, bit for bit', () => {
  const expectEmpty = (fn) => assert.throws(fn, (e) => e instanceof VashistaError && e.code === 'E_EMPTY');
  fc.assert(
    fc.property(caseArb, fc.nat(), optionsArb, (c, pick, options) => {
      const n = pick % (c.T + 1);
      const cache = build(c);
      /* the fresh cache: one append (a different chunking from the truncated one) */
      const fresh = build({ ...c, chunks: [] }, n);
      try {
        cache.decode(c.q, options); /* a selection that the truncation must drop */
        cache.truncate(n);
        assert.equal(cache.length, n);
        /* a truncation that removes tokens clears the selection (truncate(length) changes nothing) */
        if (n < c.T) assert.equal(cache.lastCandidates(0).length, 0, 'selection kept after truncate');
        assert.deepEqual(cache.info(), { ...fresh.info(), reservedBytes: cache.info().reservedBytes });
        if (n === 0) {
          expectEmpty(() => cache.decodeDense(c.q));
          expectEmpty(() => cache.decode(c.q, options));
        } else {
          assert.ok(bitEqual(cache.decodeDense(c.q), fresh.decodeDense(c.q)), 'decodeDense differs');
          const a = cache.decode(c.q, options);
          const b = fresh.decode(c.q, options);
          assert.ok(bitEqual(a.output, b.output), 'decode output differs');
          assert.deepEqual(a.diagnostics, b.diagnostics, 'diagnostics differ');
          for (let h = 0; h < c.heads; h++) {
            assert.deepEqual(cache.lastCandidates(h), fresh.lastCandidates(h), `head ${h}: candidates differ`);
            assert.deepEqual(cache.lastRoutedPages(h), fresh.lastRoutedPages(h), `head ${h}: routed pages differ`);
          }
        }
        /* appending the rest again gives the full cache back */
        const kRow = c.kvHeads * c.headDim;
        const vRow = c.kvHeads * c.valueDim;
        cache.append(c.keys.subarray(n * kRow), c.values.subarray(n * vRow));
        const full = build({ ...c, chunks: [] });
        try {
          assert.ok(bitEqual(cache.decodeDense(c.q), full.decodeDense(c.q)), 'decodeDense after re-append differs');
          assert.ok(bitEqual(cache.decode(c.q, options).output, full.decode(c.q, options).output), 'decode after re-append differs');
        } finally {
          full.free();
        }
      } finally {
        cache.free();
        fresh.free();
      }
    }),
    { seed: 0x5eed04, numRuns: RUNS.truncate, includeErrorInReport: true },
  );
});

/* ---- bad input ------------------------------------------------------------------ */

/* A wrong-typed stand-in for a Float32Array of n elements. */
const wrongTypeArb = (n) =>
  fc.constantFrom(
    new Float64Array(n),
    Array.from({ length: n }, () => 0.5),
    new Int32Array(n),
    new Uint8Array(n * 4),
    new DataView(new ArrayBuffer(n * 4)),
    new ArrayBuffer(n * 4),
    n,
    '1,2,3',
    null,
    undefined,
    {},
    { length: n },
    1n,
    Symbol('x'),
    () => 0,
  );
const nonFinite = fc.constantFrom(NaN, Infinity, -Infinity);
const tooBig = fc.constantFrom(1e31, -1e31, 3.4e38, -3.4e38);

/* Options that are always invalid: [key, value]. */
const badDecodeOption = fc.oneof(
  fc.tuple(fc.constantFrom('pages', 'candidates', 'maxIter'), fc.constantFrom(0, -1, 1.5, 2 ** 32, NaN, Infinity, '4', null, true, 4n)),
  fc.tuple(fc.constantFrom('sinkPages', 'recentPages'), fc.constantFrom(-1, 0.5, 2 ** 32, NaN, -Infinity, '1', null)),
  fc.tuple(fc.constant('widen'), fc.constantFrom(0, 1, -2, 2.5, 2 ** 32, NaN, '2')),
  fc.tuple(fc.constantFrom('scale', 'tolerance'), fc.constantFrom(-1, -1e-30, NaN, Infinity, -Infinity, 1e39, '0.1', null)),
  fc.tuple(fc.constantFrom('eps', 'solverTol'), fc.constantFrom(0, -1, 1e-50, NaN, Infinity, 1e39, 'x')),
  fc.tuple(fc.constant('eps'), fc.constantFrom(1e10, 1e-10, -1e-9, null)),
  fc.tuple(fc.constant('solver'), fc.constantFrom('', 'Softmax', 'dense', 'xyz', 0, 1, null, {})),
  fc.tuple(fc.constant('routing'), fc.constantFrom('', 'Tree', 'FLAT', 'hnsw', 0, 1, null, {}, ['flat'])),
  fc.tuple(fc.constant('expand'), fc.constantFrom(-1, 0.5, 2 ** 32, NaN, Infinity, '1', null, true, 1n)),
  fc.tuple(fc.constantFrom('page', 'topk', 'Pages', '__proto__x', 'length'), fc.constantFrom(1, 'x')),
);
const badOptionsObject = fc.constantFrom(null, 5, 'pages', [], [1], true, 0n);

/* One call with at least one invalid argument, for a cache of shape s holding n tokens. */
function badCallArb(s) {
  const kRow = s.kvHeads * s.headDim;
  const vRow = s.kvHeads * s.valueDim;
  const qLen = s.heads * s.headDim;
  const tokens = fc.integer({ min: 1, max: 6 });
  const goodKV = tokens.map((m) => [new Float32Array(m * kRow).fill(0.25), new Float32Array(m * vRow).fill(-0.5)]);
  /* a length that is not a multiple of the row (when the row is 1, every length is) */
  const notMultiple = (row) => (row === 1 ? fc.constant(null) : fc.integer({ min: 1, max: 6 * row }).filter((x) => x % row !== 0));
  const wrongQLen = fc.integer({ min: 0, max: 3 * qLen + 3 }).filter((x) => x !== qLen);
  const goodQ = new Float32Array(qLen).fill(0.125);
  const poisoned = (a, at, v) => {
    const b = a.slice();
    b[at % b.length] = v;
    return b;
  };
  return fc.oneof(
    /* append: wrong types */
    fc.tuple(goodKV, wrongTypeArb(6 * kRow), fc.boolean()).map(([[k, v], bad, which]) => ({
      what: `append(${which ? 'keys' : 'values'} = ${describe(bad)})`,
      call: (c) => (which ? c.append(bad, v) : c.append(k, bad)),
    })),
    /* append: lengths not a multiple of the row, or different token counts */
    fc.tuple(goodKV, notMultiple(kRow), notMultiple(vRow), fc.integer({ min: 1, max: 3 })).map(([[k, v], kl, vl, extra]) => {
      if (kl !== null) return { what: `append(keys of ${kl})`, call: (c) => c.append(new Float32Array(kl), v) };
      if (vl !== null) return { what: `append(values of ${vl})`, call: (c) => c.append(k, new Float32Array(vl)) };
      const m = k.length / kRow + extra;
      return { what: `append(${k.length / kRow} keys, ${m} values)`, call: (c) => c.append(k, new Float32Array(m * vRow)) };
    }),
    /* append: non-finite or too large data (anywhere, including the last token) */
    fc.tuple(goodKV, fc.oneof(nonFinite, tooBig), fc.nat(), fc.boolean()).map(([[k, v], x, at, which]) => ({
      what: `append(${which ? 'keys' : 'values'}[${at} % n] = ${x})`,
      call: (c) => (which ? c.append(poisoned(k, at, x), v) : c.append(k, poisoned(v, at, x))),
    })),
    /* decodeDense / decode: bad q */
    fc.tuple(fc.oneof(wrongTypeArb(qLen), wrongQLen.map((m) => new Float32Array(m)), fc.tuple(nonFinite, fc.nat()).map(([x, at]) => poisoned(goodQ, at, x)), fc.tuple(tooBig, fc.nat()).map(([x, at]) => poisoned(goodQ, at, x))), fc.boolean()).map(([q, sparse]) => ({
      what: `${sparse ? 'decode' : 'decodeDense'}(q = ${describe(q)})`,
      call: (c) => (sparse ? c.decode(q, { pages: 2, candidates: 4 }) : c.decodeDense(q)),
    })),
    /* decode: one invalid option among valid ones */
    fc.tuple(badDecodeOption, fc.boolean()).map(([[key, value], withGood]) => {
      const options = withGood ? { pages: 3, candidates: 5, [key]: value } : { [key]: value };
      return { what: `decode(q, ${describe(options)} with ${key} = ${describe(value)})`, call: (c) => c.decode(goodQ, options) };
    }),
    /* decodeDense: bad scale, unknown options */
    fc.oneof(
      fc.constantFrom(-1, NaN, Infinity, 1e39, '1').map((scale) => ({ scale })),
      fc.constantFrom({ pages: 1 }, { Scale: 1 }, { scale: 0, candidates: 2 }),
    ).map((options) => ({ what: `decodeDense(q, ${describe(options)})`, call: (c) => c.decodeDense(goodQ, options) })),
    /* options that are not objects */
    fc.tuple(badOptionsObject, fc.boolean()).map(([options, sparse]) => ({
      what: `${sparse ? 'decode' : 'decodeDense'}(q, ${describe(options)})`,
      call: (c) => (sparse ? c.decode(goodQ, options) : c.decodeDense(goodQ, options)),
    })),
    /* truncate past the end, or not a count */
    fc.oneof(fc.integer({ min: 1, max: 1000 }).map((d) => ({ past: d })), fc.constantFrom(-1, 1.5, NaN, Infinity, 2 ** 32, '1', null, undefined, 1n).map((v) => ({ v }))).map((x) => ({
      what: `truncate(${'past' in x ? `length + ${x.past}` : describe(x.v)})`,
      call: (c) => c.truncate('past' in x ? c.length + x.past : x.v),
    })),
    /* selections of a head that does not exist */
    fc.tuple(fc.oneof(fc.integer({ min: s.heads, max: s.heads + 100 }), fc.constantFrom(-1, 0.5, NaN, '0', null, undefined, 2 ** 32)), fc.boolean()).map(([head, routed]) => ({
      what: `${routed ? 'lastRoutedPages' : 'lastCandidates'}(${describe(head)})`,
      call: (c) => (routed ? c.lastRoutedPages(head) : c.lastCandidates(head)),
    })),
  );
}

function describe(x) {
  if (typeof x === 'bigint') return `${x}n`;
  if (typeof x === 'symbol' || typeof x === 'function') return String(x);
  if (ArrayBuffer.isView(x) || x instanceof ArrayBuffer) return `${x.constructor.name}(${x.length ?? x.byteLength})`;
  try {
    return JSON.stringify(x, (k, v) => (typeof v === 'number' && !Number.isFinite(v) ? String(v) : v)) ?? String(x);
  } catch {
    return String(x);
  }
}

test('bad input never traps: a VashistaError with a code, and the cache unchanged', () => {
  const caseWithCalls = caseArb.chain((c) => fc.tuple(fc.constant(c), fc.array(badCallArb(c), { minLength: 1, maxLength: 8 })));
  const probe = { pages: 2, candidates: 6 };
  fc.assert(
    fc.property(caseWithCalls, ([c, calls]) => {
      const cache = build(c);
      try {
        const dense = cache.decodeDense(c.q);
        const sparse = cache.decode(c.q, probe);
        const selection = Array.from({ length: c.heads }, (_, h) => Array.from(cache.lastCandidates(h)));
        for (const { what, call } of calls) {
          let caught = null;
          try {
            call(cache);
          } catch (e) {
            caught = e;
          }
          assert.ok(caught !== null, `${what}: did not throw`);
          assert.ok(caught instanceof VashistaError, `${what}: threw ${caught?.constructor?.name}: ${caught?.message}`);
          assert.ok(typeof caught.code === 'string' && /^E_[A-Z]+$/.test(caught.code) && caught.code !== 'E_TRAP', `${what}: code ${caught.code}`);
          assert.equal(cache.length, c.T, `${what}: length changed`);
          for (let h = 0; h < c.heads; h++)
            assert.deepEqual(Array.from(cache.lastCandidates(h)), selection[h], `${what}: head ${h}: selection changed`);
          assert.ok(bitEqual(cache.decodeDense(c.q), dense), `${what}: dense output changed`);
        }
        const after = cache.decode(c.q, probe);
        assert.ok(bitEqual(after.output, sparse.output), 'sparse output changed');
        assert.deepEqual(after.diagnostics, sparse.diagnostics, 'diagnostics changed');
      } finally {
        cache.free();
      }
    }),
    { seed: 0x5eed05, numRuns: RUNS.bad, includeErrorInReport: true },
  );
});
