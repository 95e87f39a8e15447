// Parity of the wasm build with the native golden vectors (tests/vectors,
// format in tests/vectors/FORMAT.md): every case is recomputed from its
// header, on both wasm ISAs, and compared with what the native build wrote.
//   - regenerated inputs (keys, values, queries): bit for bit;
//   - dense and sparse outputs: bit-identical is the aim; per head
//     ||x - golden|| <= 1e-6 ||golden|| is the floor;
//   - integer diagnostics and candidate sets: exactly;
//   - float diagnostics: |x - golden| <= 1e-4 max(|x|, |golden|).
// Format version 4: header words 30 (routing: 0 flat, 1 tree), 31 (expand), 32 (share_routing).
// The directory can be overridden with VASHISTA_VECTORS.
import assert from 'node:assert/strict';
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';
import { fileURLToPath } from 'node:url';

import { init } from '../src/index.js';
import { bitEqual, l2, l2diff } from './helpers.js';

const dir = process.env.VASHISTA_VECTORS || fileURLToPath(new URL('../../tests/vectors', import.meta.url));
const MAGIC = 0x56475356;
const HEADER_WORDS = 64;
const VERSION = 4;
const DIAG_WORDS = 12;
const KINDS = ['gap', 'needle', 'uniform'];
const SOLVERS = ['softmax', 'eg', 'fw'];
const ROUTINGS = ['flat', 'tree'];
const TOL_OUTPUT = 1e-6;
const TOL_DIAG = 1e-4;
const INT_DIAG = ['routedPages', 'candidates', 'fallback', 'iterations', 'faceSize'];
const FLOAT_DIAG = ['effectiveSupport', 'gap', 'leakageBound', 'rhoCert', 'errorBound', 'outputNorm', 'residual'];

/* Reads one case file into typed arrays, checking the layout of FORMAT.md. */
function readCase(path, indexEntry) {
  const buf = readFileSync(path);
  const bytes = new Uint8Array(buf.buffer.slice(buf.byteOffset, buf.byteOffset + buf.byteLength));
  assert.ok(bytes.length >= HEADER_WORDS * 4, `${path}: shorter than its header`);
  const h = new Uint32Array(bytes.buffer, 0, HEADER_WORDS);
  const hf = new Float32Array(bytes.buffer, 0, HEADER_WORDS);
  assert.equal(h[0], MAGIC, `${path}: magic`);
  assert.equal(h[1], VERSION, `${path}: version`);
  assert.equal(h[2], HEADER_WORDS * 4, `${path}: header bytes`);
  assert.equal(h[25], DIAG_WORDS, `${path}: diag words`);
  const H = {
    kind: h[3], T: h[4], heads: h[5], kvHeads: h[6], headDim: h[7], valueDim: h[8], pageSize: h[9],
    face: h[10], needles: h[11], margin: hf[12], seedLo: h[13], seedHi: h[14], step: h[15],
    pages: h[16], candidates: h[17], sinkPages: h[18], recentPages: h[19], solver: h[20], widen: h[21],
    scale: hf[22], tolerance: hf[23], candTotal: h[24], chunk: h[26],
    eps: hf[27], maxIter: h[28], solverTol: hf[29], routing: h[30], expand: h[31],
    shareRouting: h[32],
  };
  assert.ok(H.routing < ROUTINGS.length, `${path}: routing ${H.routing}`);
  assert.ok(H.shareRouting <= 1, `${path}: share_routing ${H.shareRouting}`);
  for (let w = 33; w < HEADER_WORDS; w++) assert.equal(h[w], 0, `${path}: reserved header word ${w}`);
  if (indexEntry?.options) {
    /* index.json prints the float32 options with 9 significant digits: they round-trip */
    const o = indexEntry.options;
    const want = { pages: H.pages, candidates: H.candidates, sink_pages: H.sinkPages, recent_pages: H.recentPages, solver: H.solver,
      widen: H.widen, scale: H.scale, tolerance: H.tolerance, eps: H.eps, max_iter: H.maxIter, solver_tol: H.solverTol,
      routing: H.routing, expand: H.expand, share_routing: H.shareRouting };
    for (const k of Object.keys(want)) assert.ok(k in o, `${path}: index.json lacks option ${k}`);
    for (const [k, v] of Object.entries(want))
      assert.equal(typeof o[k] === 'number' && k !== 'pages' ? Math.fround(o[k]) : o[k], v, `${path}: index.json option ${k}`);
  }
  /* arrays in order, no padding except before ref (8-aligned) */
  const layout = [
    ['keys', Float32Array, H.T * H.kvHeads * H.headDim],
    ['values', Float32Array, H.T * H.kvHeads * H.valueDim],
    ['queries', Float32Array, H.heads * H.headDim],
    ['dense', Float32Array, H.heads * H.valueDim],
    ['sparse', Float32Array, H.heads * H.valueDim],
    ['diag', Uint32Array, H.heads * DIAG_WORDS],
    ['cand_count', Uint32Array, H.heads],
    ['cand', Uint32Array, H.candTotal],
    ['ref', Float64Array, H.heads * H.valueDim],
  ];
  const A = {};
  let at = HEADER_WORDS * 4;
  for (const [name, Type, count] of layout) {
    if (Type === Float64Array) at = Math.ceil(at / 8) * 8;
    if (indexEntry?.arrays?.[name]) assert.deepEqual(indexEntry.arrays[name], [at, count], `${path}: index.json offset of ${name}`);
    A[name] = new Type(bytes.buffer, at, count);
    at += count * Type.BYTES_PER_ELEMENT;
  }
  assert.equal(bytes.length, at, `${path}: file size`);
  A.diagF = new Float32Array(A.diag.buffer, A.diag.byteOffset, A.diag.length);
  return { H, A };
}

function goldenDiag(A, h) {
  const w = h * DIAG_WORDS;
  return {
    routedPages: A.diag[w], candidates: A.diag[w + 1], fallback: ['none', 'widened', 'dense'][A.diag[w + 2]], iterations: A.diag[w + 3],
    effectiveSupport: A.diagF[w + 4], gap: A.diagF[w + 5], leakageBound: A.diagF[w + 6], rhoCert: A.diagF[w + 7],
    errorBound: A.diagF[w + 8], outputNorm: A.diagF[w + 9], residual: A.diagF[w + 10], faceSize: A.diag[w + 11],
  };
}

/* max over heads of ||x - g|| / ||g|| (0 when both are zero) */
function maxRel(x, g, heads, dv) {
  let worst = 0;
  for (let h = 0; h < heads; h++) {
    const n = l2(g, h * dv, h * dv + dv);
    const e = l2diff(x, g, h * dv, h * dv + dv);
    worst = Math.max(worst, n === 0 ? e : e / n);
  }
  return worst;
}

/* Recomputes a case with instance vs; returns what matched. Asserts the tolerances. */
function runCase(vs, name, { H, A }) {
  const wl = vs.workload({
    kind: KINDS[H.kind], T: H.T, heads: H.heads, kvHeads: H.kvHeads, headDim: H.headDim, valueDim: H.valueDim,
    face: H.face, needles: H.needles, margin: H.margin, seed: BigInt(H.seedLo) + (BigInt(H.seedHi) << 32n),
  });
  const gen = wl.tokens(0, H.T);
  assert.ok(bitEqual(gen.keys, A.keys), `${name}: regenerated keys differ`);
  assert.ok(bitEqual(gen.values, A.values), `${name}: regenerated values differ`);
  assert.ok(bitEqual(wl.queries(H.step), A.queries), `${name}: regenerated queries differ`);

  const cache = vs.createCache({
    heads: H.heads, kvHeads: H.kvHeads, headDim: H.headDim, valueDim: H.valueDim,
    ...(H.pageSize ? { pageSize: H.pageSize } : {}),
  });
  const kRow = H.kvHeads * H.headDim;
  const vRow = H.kvHeads * H.valueDim;
  const chunk = H.chunk || H.T;
  for (let t = 0; t < H.T; t += chunk) {
    const n = Math.min(chunk, H.T - t);
    cache.append(A.keys.subarray(t * kRow, (t + n) * kRow), A.values.subarray(t * vRow, (t + n) * vRow));
  }
  const dense = cache.decodeDense(A.queries, { scale: H.scale });
  const r = cache.decode(A.queries, {
    pages: H.pages, candidates: H.candidates, sinkPages: H.sinkPages, recentPages: H.recentPages,
    solver: SOLVERS[H.solver], widen: H.widen, scale: H.scale, tolerance: H.tolerance,
    eps: H.eps, maxIter: H.maxIter, solverTol: H.solverTol, routing: ROUTINGS[H.routing], expand: H.expand,
    shareRouting: H.shareRouting === 1,
  });
  const cands = [];
  for (let h = 0; h < H.heads; h++) cands.push(cache.lastCandidates(h));
  cache.free();

  const result = {
    dense: bitEqual(dense, A.dense),
    sparse: bitEqual(r.output, A.sparse),
    diag: true,
    cand: true,
    denseRel: maxRel(dense, A.dense, H.heads, H.valueDim),
    sparseRel: maxRel(r.output, A.sparse, H.heads, H.valueDim),
  };
  assert.ok(result.denseRel <= TOL_OUTPUT, `${name}: dense differs by ${result.denseRel} relative`);
  assert.ok(result.sparseRel <= TOL_OUTPUT, `${name}: sparse differs by ${result.sparseRel} relative`);
  let c = 0;
  for (let h = 0; h < H.heads; h++) {
    const want = goldenDiag(A, h);
    const got = r.diagnostics[h];
    for (const k of INT_DIAG) assert.equal(got[k], want[k], `${name} head ${h}: ${k}`);
    for (const k of FLOAT_DIAG) {
      const a = got[k];
      const b = want[k];
      if (!Object.is(a, b)) result.diag = false;
      if (a === b) continue; /* equal infinities too */
      assert.ok(Math.abs(a - b) <= TOL_DIAG * Math.max(Math.abs(a), Math.abs(b)), `${name} head ${h}: ${k} ${a} vs golden ${b}`);
    }
    assert.equal(cands[h].length, A.cand_count[h], `${name} head ${h}: candidate count`);
    const golden = A.cand.subarray(c, c + A.cand_count[h]);
    c += A.cand_count[h];
    if (!cands[h].every((v, i) => v === golden[i])) result.cand = false;
    assert.deepEqual(Array.from(cands[h]), Array.from(golden), `${name} head ${h}: candidates`);
  }
  return result;
}

const index = existsSync(join(dir, 'index.json')) ? JSON.parse(readFileSync(join(dir, 'index.json'), 'utf8')) : null;

test('golden vectors are present', () => {
  assert.ok(index, `no golden vectors in ${dir} (generate them with: build/vashista vectors tests/vectors)`);
  assert.equal(index.format, 'vashista-golden');
  assert.equal(index.version, VERSION);
  assert.equal(index.diag_words, DIAG_WORDS);
  assert.ok(index.cases.length > 0);
  /* both routings are covered (the library's default is tree) */
  for (const r of [0, 1]) assert.ok(index.cases.some((c) => c.options?.routing === r), `no case with routing ${ROUTINGS[r]}`);
});

if (index) {
  const cases = index.cases.map((entry) => ({ entry, data: readCase(join(dir, entry.file), entry) }));
  for (const isa of ['wasmsimd', 'scalar']) {
    test(`parity with native (${index.isa}) golden vectors, wasm isa ${isa}: ${cases.length} cases`, async (t) => {
      const vs = await init({ isa });
      assert.equal(vs.isa, isa);
      const count = { dense: 0, sparse: 0, diag: 0, cand: 0, all: 0 };
      let worstDense = 0;
      let worstSparse = 0;
      const notIdentical = [];
      for (const { entry, data } of cases) {
        const r = runCase(vs, entry.name, data);
        for (const k of ['dense', 'sparse', 'diag', 'cand']) if (r[k]) count[k]++;
        if (r.dense && r.sparse && r.diag && r.cand) count.all++;
        else notIdentical.push(entry.name);
        worstDense = Math.max(worstDense, r.denseRel);
        worstSparse = Math.max(worstSparse, r.sparseRel);
      }
      const n = cases.length;
      const summary =
        `parity ${isa}: ${n} cases; bit-identical: dense ${count.dense}/${n}, sparse ${count.sparse}/${n}, ` +
        `diagnostics ${count.diag}/${n}, candidates ${count.cand}/${n}, everything ${count.all}/${n}; ` +
        `worst relative difference: dense ${worstDense.toExponential(2)}, sparse ${worstSparse.toExponential(2)}` +
        (notIdentical.length ? `; not bit-identical: ${notIdentical.join(', ')}` : '');
      t.diagnostic(summary);
      if (process.env.VASHISTA_PARITY_REPORT) console.log(summary);
    });
  }
}
