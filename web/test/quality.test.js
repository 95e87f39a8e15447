// Quality on the DESIGN workloads (section 6), always against the float64
// dense reference of test/helpers.js (independent of the library):
// output relative L2 error, mass recall, needle / face recall, and
// certificate validity (the bound is never below the true error).
import assert from 'node:assert/strict';
import { test } from 'node:test';

import { init } from '../src/index.js';
import { l2, l2diff, referenceAttention } from './helpers.js';

const vs = await init();

/* Builds the workload's cache and returns everything a check needs. */
function setup(options, pageSize = 32) {
  const wl = vs.workload(options);
  const c = wl.config;
  const cache = vs.createCache({ heads: c.heads, kvHeads: c.kvHeads, headDim: c.headDim, valueDim: c.valueDim, pageSize });
  const { keys, values } = wl.tokens(0, c.T);
  cache.append(keys, values);
  return { wl, c, cache, keys, values };
}

/* Float64 scores and dense attention weights of one head. */
function scoresAndWeights({ keys, c }, q, h) {
  const g = Math.floor(h / (c.heads / c.kvHeads));
  const s = new Float64Array(c.T);
  const w = new Float64Array(c.T);
  let max = -Infinity;
  for (let t = 0; t < c.T; t++) {
    let dot = 0;
    for (let j = 0; j < c.headDim; j++) dot += q[h * c.headDim + j] * keys[(t * c.kvHeads + g) * c.headDim + j];
    s[t] = dot / Math.sqrt(c.headDim);
    if (s[t] > max) max = s[t];
  }
  let z = 0;
  for (let t = 0; t < c.T; t++) z += w[t] = Math.exp(s[t] - max);
  for (let t = 0; t < c.T; t++) w[t] /= z;
  return { s, w };
}

/*
 * Decodes and checks, per head, that every certified quantity bounds the
 * true one: errorBound >= ||out - ref||, rhoCert and leakageBound >= the
 * dense mass outside the candidates, gap <= the true support gap.
 * Returns per-head records (relative error, diagnostics, candidates, mass).
 */
function measure(env, q, options) {
  const { c, cache, keys, values } = env;
  const ref = referenceAttention({ keys, values, T: c.T, heads: c.heads, kvHeads: c.kvHeads, d: c.headDim, dv: c.valueDim, q });
  const dense = cache.decodeDense(q);
  const denseRel = l2diff(dense, ref) / l2(ref);
  assert.ok(denseRel < 1e-5, `dense relative error ${denseRel}`);
  const r = cache.decode(q, options);
  const heads = [];
  for (let h = 0; h < c.heads; h++) {
    const lo = h * c.valueDim;
    const hi = lo + c.valueDim;
    const err = l2diff(r.output, ref, lo, hi);
    const d = r.diagnostics[h];
    const where = `head ${h} ${JSON.stringify(options)}`;
    assert.ok(err <= d.errorBound, `${where}: true error ${err} above the certified bound ${d.errorBound}`);
    const candidates = cache.lastCandidates(h);
    assert.equal(candidates.length, d.candidates, where);
    const { s, w } = scoresAndWeights(env, q, h);
    const inC = new Uint8Array(c.T);
    let mass = 0;
    let minIn = Infinity;
    for (const t of candidates) {
      inC[t] = 1;
      mass += w[t];
      minIn = Math.min(minIn, s[t]);
    }
    let maxOut = -Infinity;
    for (let t = 0; t < c.T; t++) if (!inC[t]) maxOut = Math.max(maxOut, s[t]);
    const rho = Math.max(0, 1 - mass);
    assert.ok(rho <= d.rhoCert + 1e-6, `${where}: off-candidate mass ${rho} above rhoCert ${d.rhoCert}`);
    assert.ok(rho <= d.leakageBound + 1e-6, `${where}: off-candidate mass ${rho} above leakageBound ${d.leakageBound}`);
    const trueGap = minIn - maxOut; /* Infinity when every token is a candidate */
    assert.ok(d.gap <= trueGap + 1e-4 * (1 + Math.abs(trueGap)), `${where}: certified gap ${d.gap} above the true gap ${trueGap}`);
    heads.push({ h, err, rel: err / l2(ref, lo, hi), d, candidates, mass, trueGap });
  }
  return heads;
}

test('gap workload: the face is found, error tiny, bounds hold', () => {
  // margin 16 (the default): dense mass off the face ~ T e^-16 / m, about 5e-5 here
  const env = setup({ kind: 'gap', T: 16384, heads: 4, kvHeads: 2, headDim: 64, valueDim: 64, face: 6, seed: 7 });
  const face = env.wl.marked();
  assert.equal(face.length, 6);
  for (let step = 0; step < 3; step++) {
    const q = env.wl.queries(step);
    for (const options of [{}, { pages: 64, candidates: 128, sinkPages: 0, recentPages: 0 }, { pages: 8, candidates: 6 }]) {
      for (const { h, rel, d, candidates, mass } of measure(env, q, options)) {
        const set = new Set(candidates);
        for (const t of face) assert.ok(set.has(t), `step ${step} head ${h}: face token ${t} not a candidate`);
        assert.ok(rel < 1e-3, `step ${step} head ${h}: relative error ${rel}`);
        assert.ok(mass > 1 - 1e-3, `mass recall ${mass}`);
        assert.equal(d.fallback, 'none');
      }
    }
  }
  env.cache.free();
});

test('needle workload: needle recall 100%, mass recall, error <= 1e-3 where certified', () => {
  const env = setup({ kind: 'needle', T: 32768, heads: 4, kvHeads: 1, headDim: 128, valueDim: 128, needles: 4, seed: 3 });
  const needles = env.wl.marked();
  assert.equal(needles.length, 4);
  for (let step = 0; step < 2; step++) {
    const q = env.wl.queries(step);
    for (const { h, rel, d, candidates, mass } of measure(env, q, { pages: 64, candidates: 128 })) {
      const set = new Set(candidates);
      for (const t of needles) assert.ok(set.has(t), `step ${step} head ${h}: needle ${t} missed`);
      assert.ok(mass > 0.99, `mass recall ${mass}`);
      if (d.errorBound <= 1e-3 * d.outputNorm) assert.ok(rel <= 1e-3, `certified but relative error ${rel}`);
    }
  }
  env.cache.free();
});

test('uniform workload: no gap, and the diagnostics say so', () => {
  const env = setup({ kind: 'uniform', T: 8192, heads: 2, headDim: 64, seed: 5 });
  const q = env.wl.queries(0);
  for (const { h, d } of measure(env, q, { pages: 8, candidates: 64 })) {
    assert.ok(d.errorBound > 1e-2 * d.outputNorm, `head ${h}: bound ${d.errorBound} should flag the missing gap`);
    assert.ok(d.rhoCert > 0.1, `rhoCert ${d.rhoCert}`);
    assert.ok(d.leakageBound > 0.1, `leakageBound ${d.leakageBound}`);
  }
  // with a tolerance the decode widens or goes dense, and its bound holds
  for (const { d, rel } of measure(env, q, { pages: 8, candidates: 64, tolerance: 1e-3 })) {
    assert.notEqual(d.fallback, 'none');
    if (d.fallback === 'dense') assert.ok(rel < 1e-5, `dense fallback relative error ${rel}`);
    else assert.ok(d.errorBound <= 1e-3 * d.outputNorm);
  }
  env.cache.free();
});

test('certificate validity: never violated over seeds, steps, options and page sizes', () => {
  let checked = 0;
  for (const kind of ['gap', 'needle', 'uniform']) {
    for (const [seed, pageSize] of [[1, 16], [2, 32], [3, 64]]) {
      const env = setup({ kind, T: 4096, heads: 2, kvHeads: 1, headDim: 32, valueDim: 48, seed }, pageSize);
      for (let step = 0; step < 2; step++) {
        const q = env.wl.queries(step);
        for (const options of [{ pages: 1, candidates: 1 }, { pages: 4, candidates: 16 }, { pages: 16, candidates: 256, sinkPages: 2, recentPages: 2 }]) {
          checked += measure(env, q, options).length; // asserts err <= bound per head
        }
      }
      env.cache.free();
    }
  }
  assert.equal(checked, 3 * 3 * 2 * 3 * 2);
});
