// The projection solvers (solver: 'eg' | 'fw') through the JS API, against
// float64 references written independently of the library
// (test/projection64.js: Newton on the entropic dual for eg, Wolfe's
// minimum-norm point for fw), in score units:
//   eg: alpha* = argmin_{simplex} scale/2 ||U alpha - q||^2 + eps sum alpha log alpha, out = V alpha*
//   fw: p* = the projection of q onto conv(keys); the certificate bounds ||U alpha - p*||,
//       so fw is checked with values = keys (out = U alpha).
// "Exact" is the same solver over every token; errorBound certifies the distance to it.
import assert from 'node:assert/strict';
import { test } from 'node:test';

import { init, VashistaError } from '../src/index.js';
import { bitEqual, l2, l2diff, rng } from './helpers.js';
import { entropicProjection64, hullProjection64 } from './projection64.js';

const vs = await init();
const f32 = Math.fround;

/* max ||row|| over the T rows of KV head g of a [T][kvHeads][w] array */
function maxRowNorm(a, T, kvHeads, w, g) {
  let m = 0;
  for (let t = 0; t < T; t++) m = Math.max(m, l2(a, (t * kvHeads + g) * w, (t * kvHeads + g + 1) * w));
  return m;
}

/* sum_t alpha_t v_t in float64 over the T tokens of KV head g */
function combine(alpha, values, T, kvHeads, dv, g) {
  const out = new Float64Array(dv);
  for (let t = 0; t < T; t++) {
    if (alpha[t] === 0) continue;
    const o = (t * kvHeads + g) * dv;
    for (let j = 0; j < dv; j++) out[j] += alpha[t] * values[o + j];
  }
  return out;
}

/* A cache holding keys/values [T][kvHeads][*]; returns it with the data. */
function makeCache({ heads, kvHeads, d, dv, pageSize, keys, values }) {
  const cache = vs.createCache({ heads, kvHeads, headDim: d, valueDim: dv, pageSize });
  cache.append(keys, values);
  return cache;
}

function randomCase(seed, { T, heads, kvHeads, d, dv = d, pageSize, qSigma = 1.5, valuesAreKeys = false }) {
  const r = rng(seed);
  const keys = r.normals(T * kvHeads * d);
  const values = valuesAreKeys ? keys.slice() : r.normals(T * kvHeads * dv);
  const q = r.normals(heads * d, qSigma);
  return { T, heads, kvHeads, d, dv: valuesAreKeys ? d : dv, pageSize, keys, values, q };
}

const groupOf = (c, h) => Math.floor(h / (c.heads / c.kvHeads));
const scaleOf = (d) => f32(1 / Math.sqrt(d));

/* ---- (1) full coverage: the solver over every token ----------------------------------- */

const FULL = [
  { seed: 11, T: 60, heads: 2, kvHeads: 1, d: 8, pageSize: 8, eps: 0.05, valuesAreKeys: true },
  { seed: 12, T: 200, heads: 2, kvHeads: 2, d: 16, pageSize: 16, eps: 1 },
  { seed: 13, T: 333, heads: 4, kvHeads: 2, d: 5, dv: 7, pageSize: 32, eps: 0.2 },
  { seed: 14, T: 150, heads: 1, kvHeads: 1, d: 24, dv: 3, pageSize: 10, eps: 5, qSigma: 3 },
];

test('eg, full coverage: equals the float64 entropic projection over every token, within a small errorBound', () => {
  for (const spec of FULL) {
    const c = randomCase(spec.seed, spec);
    const cache = makeCache(c);
    const np = Math.ceil(c.T / c.pageSize);
    const options = { pages: np, candidates: c.T, solver: 'eg', eps: spec.eps, solverTol: 1e-9, maxIter: 100000 };
    const r = cache.decode(c.q, options);
    for (let h = 0; h < c.heads; h++) {
      const where = `seed ${spec.seed} head ${h}`;
      const g = groupOf(c, h);
      const dg = r.diagnostics[h];
      const ref = entropicProjection64({ keys: c.keys, T: c.T, d: c.d, kvHeads: c.kvHeads, g, q: c.q.subarray(h * c.d, (h + 1) * c.d), scale: scaleOf(c.d), eps: f32(spec.eps) });
      const vmax = maxRowNorm(c.values, c.T, c.kvHeads, c.dv, g);
      const want = combine(ref.alpha, c.values, c.T, c.kvHeads, c.dv, g);
      const err = l2diff(r.output.subarray(h * c.dv, (h + 1) * c.dv), want);
      assert.ok(ref.l1 < 1e-4, `${where}: the reference did not converge (l1 bound ${ref.l1})`);
      assert.ok(err <= dg.errorBound + vmax * ref.l1, `${where}: ||out - ref|| = ${err} above errorBound ${dg.errorBound}`);
      assert.ok(err <= 1e-4 * vmax, `${where}: ||out - ref|| = ${err} (vmax ${vmax}): not converged`);
      assert.ok(dg.errorBound <= 2e-3 * vmax, `${where}: errorBound ${dg.errorBound} is not small (vmax ${vmax})`);
      assert.equal(dg.fallback, 'none', where);
      assert.equal(dg.candidates, c.T, where);
      assert.equal(dg.routedPages, np, where);
      assert.equal(dg.rhoCert, 0, `${where}: rhoCert with every token a candidate`);
      assert.ok(dg.faceSize >= 1 && dg.faceSize <= c.T, `${where}: faceSize ${dg.faceSize}`);
      if (dg.faceSize === c.T) assert.equal(dg.gap, Infinity, where);
      assert.ok(dg.leakageBound >= 0 && dg.leakageBound <= 1, where);
      assert.ok(dg.iterations >= 1 && dg.iterations < options.maxIter, `${where}: ${dg.iterations} iterations`);
      assert.ok(dg.residual >= 0 && dg.residual <= 1.001 * options.solverTol, `${where}: residual ${dg.residual}`);
      assert.ok(dg.effectiveSupport >= 1 && dg.effectiveSupport <= c.T, where);
      assert.ok(Math.abs(dg.outputNorm - l2(r.output, h * c.dv, (h + 1) * c.dv)) <= 1e-6 * (1 + dg.outputNorm), where);
      assert.deepEqual(Array.from(cache.lastCandidates(h)), Array.from({ length: c.T }, (_, t) => t), where);
    }
    cache.free();
  }
});

test('fw, full coverage (values = keys): the output is the projection of q onto the hull of the keys', () => {
  for (const spec of FULL) {
    const c = randomCase(spec.seed + 100, { ...spec, valuesAreKeys: true });
    const cache = makeCache(c);
    const np = Math.ceil(c.T / c.pageSize);
    const options = { pages: np + 3, candidates: c.T + 7, solver: 'fw', solverTol: 1e-9, maxIter: 20000 };
    const r = cache.decode(c.q, options);
    for (let h = 0; h < c.heads; h++) {
      const where = `seed ${spec.seed + 100} head ${h}`;
      const g = groupOf(c, h);
      const dg = r.diagnostics[h];
      const ref = hullProjection64({ keys: c.keys, T: c.T, d: c.d, kvHeads: c.kvHeads, g, q: c.q.subarray(h * c.d, (h + 1) * c.d) });
      const vmax = maxRowNorm(c.keys, c.T, c.kvHeads, c.d, g);
      const err = l2diff(r.output.subarray(h * c.d, (h + 1) * c.d), ref.point);
      assert.ok(ref.err < 1e-5 * vmax, `${where}: the reference did not converge (bound ${ref.err})`);
      assert.ok(err <= dg.errorBound + ref.err, `${where}: ||out - p*|| = ${err} above errorBound ${dg.errorBound}`);
      assert.ok(err <= 1e-4 * vmax, `${where}: ||out - p*|| = ${err} (vmax ${vmax}): not converged`);
      assert.ok(dg.errorBound <= 2e-3 * vmax, `${where}: errorBound ${dg.errorBound} is not small (vmax ${vmax})`);
      /* fw's alpha is the support of the projection (generic keys: unique, at most d + 1 points) */
      assert.equal(dg.faceSize, ref.weights.size, `${where}: faceSize ${dg.faceSize}, support of the projection ${[...ref.weights.keys()]}`);
      assert.equal(dg.fallback, 'none', where);
      assert.equal(dg.candidates, c.T, where);
      assert.equal(dg.routedPages, np, where);
      assert.equal(dg.rhoCert, 0, where);
      assert.equal(dg.leakageBound, 0, `${where}: fw puts no mass off its support`);
      /* Frank-Wolfe may stop at maxIter short of solverTol (slow on some faces); its bound says how close it got */
      assert.ok(dg.iterations <= options.maxIter, `${where}: ${dg.iterations} iterations`);
      if (dg.iterations < options.maxIter) assert.ok(dg.residual >= 0 && dg.residual <= 1.001 * options.solverTol, `${where}: residual ${dg.residual}`);
      assert.ok(dg.effectiveSupport >= 1 && dg.effectiveSupport <= dg.faceSize * (1 + 1e-6), where);
    }
    cache.free();
  }
});

test('eg and fw give the same bits on the wasmsimd and scalar kernels', async () => {
  const scalar = await init({ isa: 'scalar' });
  assert.equal(scalar.isa, 'scalar');
  const c = randomCase(21, { T: 700, heads: 4, kvHeads: 2, d: 19, dv: 6, pageSize: 16 });
  const a = makeCache(c);
  const b = scalar.createCache({ heads: c.heads, kvHeads: c.kvHeads, headDim: c.d, valueDim: c.dv, pageSize: c.pageSize });
  b.append(c.keys, c.values);
  for (const options of [{ solver: 'eg' }, { solver: 'fw' }, { solver: 'eg', eps: 0.7, tolerance: 1e-3 }, { solver: 'fw', pages: 3, candidates: 20, tolerance: 0.5 }]) {
    const x = a.decode(c.q, options);
    const y = b.decode(c.q, options);
    assert.ok(bitEqual(x.output, y.output), JSON.stringify(options));
    assert.deepEqual(x.diagnostics, y.diagnostics, JSON.stringify(options));
  }
  a.free();
  b.free();
});

/* ---- (2) sparse decodes: the certificate against the solver over every token ------------- */

/* The seeded sparse cases: 3 workloads x 6 seeds x both solvers, plus needle
   cases on few dimensions, where eg's bound is informative more often. */
function sparseCases() {
  const out = [];
  for (const kind of ['needle', 'gap', 'uniform'])
    for (let seed = 1; seed <= 6; seed++)
      for (const solver of ['eg', 'fw']) {
        const gqa = seed % 3 === 0;
        out.push({
          kind, seed, solver, T: 500 + 170 * seed, heads: gqa ? 4 : 2, kvHeads: gqa ? 2 : 1, d: seed % 2 ? 8 : 4, step: seed % 2,
          options: {
            solver, pages: 2 + (seed % 4), candidates: 16 << seed % 3, sinkPages: seed % 2, recentPages: 1,
            ...(solver === 'eg' ? { eps: [0.05, 0.5, 2][seed % 3] } : {}),
            ...(seed % 2 ? { maxIter: 1000, solverTol: 1e-7 } : {}),
          },
        });
      }
  for (let seed = 1; seed <= 4; seed++)
    for (const d of [4, 8])
      for (const eps of [0.05, 0.2])
        out.push({ kind: 'needle', seed, wseed: seed, solver: 'eg', T: 1200, heads: 2, kvHeads: 1, d, step: seed % 2, options: { solver: 'eg', eps, pages: 16, candidates: 128 } });
  return out;
}

test('sparse eg and fw: errorBound and rhoCert hold against the float64 solution over every token (seeded workloads)', (t) => {
  const cases = sparseCases();
  let heads = 0;
  const worst = { eg: 0, fw: 0 }; /* largest ||out - exact|| / errorBound */
  const informative = { eg: 0, fw: 0 }; /* heads whose bound is below ||out|| (so the check has teeth) */
  for (const { kind, seed, wseed = 40 + seed, solver, T, heads: H, kvHeads, d, step, options } of cases) {
    const dv = solver === 'fw' ? d : 5;
    const wl = vs.workload({ kind, T, heads: H, kvHeads, headDim: d, valueDim: dv, seed: wseed });
    const { keys, values } = wl.tokens(0, T);
    const c = { T, heads: H, kvHeads, d, dv, pageSize: 16, keys, values: solver === 'fw' ? keys : values, q: wl.queries(step) };
    const cache = makeCache(c);
    const r = cache.decode(c.q, options);
    for (let h = 0; h < H; h++) {
      heads++;
      const where = `${kind} seed ${seed} T ${T} d ${d} head ${h} ${JSON.stringify(options)}`;
      const g = groupOf(c, h);
      const dg = r.diagnostics[h];
      const qh = c.q.subarray(h * d, (h + 1) * d);
      const cand = cache.lastCandidates(h);
      assert.equal(cand.length, dg.candidates, where);
      assert.equal(dg.fallback, 'none', where);
      assert.ok(dg.faceSize >= 1 && dg.faceSize <= dg.candidates, `${where}: faceSize ${dg.faceSize}`);
      assert.ok(dg.leakageBound >= 0 && dg.leakageBound <= 1, where);
      assert.ok(dg.rhoCert >= 0 && dg.rhoCert <= 1, where);
      assert.ok(dg.iterations <= (options.maxIter ?? vs.decodeDefaults.maxIter), where);
      const out = r.output.subarray(h * c.dv, (h + 1) * c.dv);
      if (dg.errorBound < dg.outputNorm) informative[solver]++;
      if (solver === 'eg') {
        const ref = entropicProjection64({ keys: c.keys, T, d, kvHeads, g, q: qh, scale: scaleOf(d), eps: f32(options.eps) });
        const vmax = maxRowNorm(c.values, T, kvHeads, c.dv, g);
        const err = l2diff(out, combine(ref.alpha, c.values, T, kvHeads, c.dv, g));
        assert.ok(err <= dg.errorBound + vmax * ref.l1, `${where}: ||out - exact|| = ${err} above errorBound ${dg.errorBound}`);
        worst.eg = Math.max(worst.eg, err / dg.errorBound);
        let mass = 0;
        for (const t of cand) mass += ref.alpha[t];
        assert.ok(1 - mass <= dg.rhoCert + ref.l1 / 2 + 1e-12, `${where}: exact mass off the candidates ${1 - mass} above rhoCert ${dg.rhoCert}`);
      } else {
        const ref = hullProjection64({ keys: c.keys, T, d, kvHeads, g, q: qh });
        const err = l2diff(out, ref.point);
        assert.ok(err <= dg.errorBound + ref.err, `${where}: ||U alpha - p*|| = ${err} above errorBound ${dg.errorBound}`);
        worst.fw = Math.max(worst.fw, err / dg.errorBound);
        assert.equal(dg.rhoCert, dg.candidates === T ? 0 : 1, `${where}: fw's rhoCert`);
        assert.equal(dg.leakageBound, 0, where);
      }
    }
    cache.free();
  }
  t.diagnostic(`${cases.length} cases, ${heads} heads; informative bounds (below ||out||): ${JSON.stringify(informative)}; largest error / errorBound: eg ${worst.eg.toExponential(2)}, fw ${worst.fw.toExponential(2)}`);
  assert.equal(cases.length, 52);
  assert.ok(informative.eg >= 5 && informative.fw >= 10, `too few informative bounds (${JSON.stringify(informative)} of ${heads} heads)`);
});

/* ---- (3) bad options ------------------------------------------------------------------ */

test('bad solver options: VashistaError E_OPTION / E_TYPE naming the option; the cache keeps working', () => {
  const c = randomCase(31, { T: 300, heads: 2, kvHeads: 1, d: 16, dv: 8, pageSize: 16 });
  const cache = makeCache(c);
  const good = { solver: 'eg', pages: 4, candidates: 32 };
  const before = cache.decode(c.q, good);
  const dense = cache.decodeDense(c.q);
  const bad = [
    ['eps', 0, 'E_OPTION'], ['eps', NaN, 'E_OPTION'], ['eps', -1, 'E_OPTION'], ['eps', 1e10, 'E_OPTION'],
    ['eps', Infinity, 'E_OPTION'], ['eps', 1e-10, 'E_OPTION'], ['eps', 1e-50, 'E_OPTION'], ['eps', '0.1', 'E_TYPE'], ['eps', null, 'E_TYPE'],
    ['maxIter', 0, 'E_OPTION'], ['maxIter', -1, 'E_OPTION'], ['maxIter', 2 ** 32, 'E_OPTION'], ['maxIter', 1.5, 'E_TYPE'],
    ['maxIter', NaN, 'E_TYPE'], ['maxIter', '5', 'E_TYPE'], ['maxIter', 5n, 'E_TYPE'],
    ['solverTol', 0, 'E_OPTION'], ['solverTol', NaN, 'E_OPTION'], ['solverTol', -1e-6, 'E_OPTION'], ['solverTol', Infinity, 'E_OPTION'],
    ['solverTol', 1e-50, 'E_OPTION'], ['solverTol', 1e39, 'E_OPTION'], ['solverTol', 'x', 'E_TYPE'],
  ];
  for (const solver of ['eg', 'fw', 'softmax']) {
    for (const [k, v, code] of bad) {
      const what = `${solver} ${k} = ${String(v)}`;
      assert.throws(
        () => cache.decode(c.q, { ...good, solver, [k]: v }),
        (e) => e instanceof VashistaError && e.code === code && e.argument === `options.${k}` && e.message.includes(`options.${k}`),
        what,
      );
    }
  }
  /* in range alone but not in the key space's units: eps / scale and solverTol / scale (scale 1/4 here) */
  for (const solver of ['eg', 'fw']) {
    assert.throws(() => cache.decode(c.q, { ...good, solver, eps: 1e9, scale: 0.5 }), { code: 'E_OPTION', argument: 'options.eps' });
    assert.throws(() => cache.decode(c.q, { ...good, solver, eps: 1e-9, scale: 2 }), { code: 'E_OPTION', argument: 'options.eps' });
    assert.throws(() => cache.decode(c.q, { ...good, solver, eps: 1e9 }), { code: 'E_OPTION', argument: 'options.eps' });
    assert.throws(() => cache.decode(c.q, { ...good, solver, solverTol: 1e-45, scale: 4 }), { code: 'E_OPTION', argument: 'options.solverTol' });
    assert.throws(() => cache.decode(c.q, { ...good, solver, solverTol: 3e38, scale: 0.5 }), { code: 'E_OPTION', argument: 'options.solverTol' });
  }
  /* the same extremes are fine where they stay in range, and for softmax (which ignores them) */
  cache.decode(c.q, { ...good, eps: 1e9 * 0.25, maxIter: 1, solverTol: 3e38, scale: 2 });
  cache.decode(c.q, { ...good, solver: 'fw', eps: 1e-9, maxIter: 2 ** 32 - 1, solverTol: 1e-45 });
  cache.decode(c.q, { ...good, solver: 'softmax', eps: 1e9, scale: 0.5 });
  /* query norms the projection solvers cannot take: E_RANGE naming q (softmax takes them) */
  const big = c.q.map((x, i) => (i < 16 ? 1e8 : x));
  cache.decode(big, { ...good, solver: 'softmax' });
  for (const solver of ['eg', 'fw'])
    assert.throws(() => cache.decode(big, { ...good, solver }), (e) => e instanceof VashistaError && e.code === 'E_RANGE' && e.argument === 'q' && /q\[0\]/.test(e.message), solver);
  /* and nothing changed */
  const after = cache.decode(c.q, good);
  assert.ok(bitEqual(after.output, before.output));
  assert.deepEqual(after.diagnostics, before.diagnostics);
  assert.ok(bitEqual(cache.decodeDense(c.q), dense));
  cache.free();

  /* keys too large for them: E_RANGE naming the cache */
  const huge = randomCase(32, { T: 40, heads: 1, kvHeads: 1, d: 4, dv: 2, pageSize: 8 });
  huge.keys[5] = 1e8;
  const hc = makeCache(huge);
  hc.decode(huge.q, { solver: 'softmax' });
  for (const solver of ['eg', 'fw']) assert.throws(() => hc.decode(huge.q, { solver }), { code: 'E_RANGE', argument: 'cache' });
  hc.free();
});

/* ---- (4) diagnostics: faceSize ------------------------------------------------------------ */

test('diagnostics: every solver reports faceSize (softmax: the candidates; eg, fw: a face within them)', () => {
  const wl = vs.workload({ kind: 'gap', T: 2048, heads: 2, kvHeads: 1, headDim: 32, valueDim: 16, face: 3, seed: 2 });
  const cache = vs.createCache({ heads: 2, kvHeads: 1, headDim: 32, valueDim: 16, pageSize: 16 });
  wl.appendTo(cache);
  const q = wl.queries();
  const fields = ['routedPages', 'candidates', 'fallback', 'iterations', 'effectiveSupport', 'gap', 'leakageBound', 'rhoCert', 'errorBound', 'outputNorm', 'residual', 'faceSize'];
  for (const solver of ['softmax', 'eg', 'fw']) {
    for (const options of [{}, { pages: 3, candidates: 40 }, { pages: 200, candidates: 5000 }, { maxIter: 3 }]) {
      const r = cache.decode(q, { solver, ...options });
      for (const [h, dg] of r.diagnostics.entries()) {
        const where = `${solver} ${JSON.stringify(options)} head ${h}`;
        assert.deepEqual(Object.keys(dg), fields, where);
        assert.ok(Number.isInteger(dg.faceSize), where);
        if (solver === 'softmax') {
          assert.equal(dg.faceSize, dg.candidates, where);
          assert.equal(dg.iterations, 1, where);
          assert.equal(dg.residual, 0, where);
        } else {
          assert.ok(dg.faceSize >= 1 && dg.faceSize <= dg.candidates, `${where}: faceSize ${dg.faceSize}`);
          assert.ok(dg.iterations <= (options.maxIter ?? vs.decodeDefaults.maxIter), `${where}: ${dg.iterations} iterations`);
          assert.ok(dg.residual >= 0, where);
        }
        if (solver === 'fw') assert.equal(dg.leakageBound, 0, where);
        if (dg.candidates === 2048) assert.equal(dg.rhoCert, 0, where);
      }
    }
  }
  cache.free();
});

/* ---- (5) the tolerance ladder --------------------------------------------------------------- */

test('tolerance ladder for eg and fw: none, widened, or the same solver over every token (fallback dense)', () => {
  const seen = new Set();
  for (const kind of ['needle', 'uniform', 'gap']) {
    const T = 1500;
    const wl = vs.workload({ kind, T, heads: 2, kvHeads: 1, headDim: 8, valueDim: 8, seed: 5 });
    const cache = vs.createCache({ heads: 2, kvHeads: 1, headDim: 8, valueDim: 8, pageSize: 16 });
    const { keys } = wl.tokens(0, T);
    cache.append(keys, keys); /* values = keys: fw's reference norm ||U alpha|| is then ||out|| */
    const q = wl.queries();
    const np = Math.ceil(T / 16);
    for (const solver of ['eg', 'fw']) {
      const base = { solver, pages: 2, candidates: 16, widen: 4, eps: 0.5 };
      /* the same solver over every token, asked for directly */
      const full = cache.decode(q, { ...base, pages: np, candidates: T });
      for (const tolerance of [0, 1e-6, 1e-3, 0.1, 0.5, 1]) {
        const r = cache.decode(q, { ...base, tolerance });
        for (let h = 0; h < 2; h++) {
          const where = `${kind} ${solver} tolerance ${tolerance} head ${h}`;
          const dg = r.diagnostics[h];
          seen.add(dg.fallback);
          const out = r.output.subarray(h * 8, h * 8 + 8);
          if (tolerance === 0) assert.equal(dg.fallback, 'none', where);
          if (dg.fallback === 'dense') {
            assert.equal(dg.candidates, T, where);
            assert.equal(dg.routedPages, np, where);
            assert.equal(cache.lastCandidates(h).length, T, where);
            assert.deepEqual(Array.from(cache.lastRoutedPages(h)), Array.from({ length: np }, (_, p) => p), where);
            assert.equal(dg.rhoCert, 0, where);
            /* bit for bit the decode that asks for every token */
            assert.ok(bitEqual(out, full.output.subarray(h * 8, h * 8 + 8)), `${where}: differs from the full decode`);
            assert.deepEqual({ ...dg, fallback: 'none' }, full.diagnostics[h], where);
          } else {
            const ref = solver === 'eg' ? dg.outputNorm : l2(out);
            if (tolerance > 0) assert.ok(dg.errorBound <= tolerance * ref * (1 + 1e-5), `${where}: kept ${dg.fallback} with errorBound ${dg.errorBound} > ${tolerance} * ${ref}`);
            assert.ok(dg.candidates <= (dg.fallback === 'widened' ? 64 : 16), where);
          }
        }
      }
    }
    cache.free();
  }
  assert.deepEqual([...seen].sort(), ['dense', 'none', 'widened'], 'every rung of the ladder was taken');
});
