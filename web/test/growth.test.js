// Memory growth in the middle of a session: every typed-array view on the
// old buffer is detached when wasm memory grows, so the package must rebuild
// its views after any call that may allocate, and results must stay valid.
import assert from 'node:assert/strict';
import { test } from 'node:test';

import { init } from '../src/index.js';
import { bitEqual, l2, l2diff, referenceAttention } from './helpers.js';

test('append until memory grows, then decode and read the results', async () => {
  const vs = await init();
  const shape = { heads: 4, kvHeads: 2, headDim: 128, valueDim: 128, pageSize: 32 };
  const wl = vs.workload({ kind: 'needle', T: 1 << 20, heads: 4, kvHeads: 2, headDim: 128, valueDim: 128, seed: 9 });
  const cache = vs.createCache(shape);
  const q = wl.queries(0);

  const first = wl.tokens(0, 2048);
  cache.append(first.keys, first.values);
  const denseBefore = cache.decodeDense(q);
  const sparseBefore = cache.decode(q);
  const start = vs.memoryBytes;

  // keep appending (through JS arrays, the ordinary path) until memory grew twice
  let grew = 0;
  let last = start;
  while (grew < 2) {
    const { keys, values } = wl.tokens(cache.length, 4096);
    cache.append(keys, values);
    if (vs.memoryBytes > last) {
      grew++;
      last = vs.memoryBytes;
    }
  }
  assert.ok(vs.memoryBytes > start);
  // results taken before the growth are copies: still intact and readable
  assert.equal(denseBefore.length, 4 * 128);
  assert.ok(Number.isFinite(denseBefore[0]) && Number.isFinite(sparseBefore.output[511]));

  // decode after growth, check against the float64 reference over all tokens
  const T = cache.length;
  const { keys, values } = wl.tokens(0, T);
  const ref = referenceAttention({ keys, values, T, heads: 4, kvHeads: 2, d: 128, dv: 128, q });
  const dense = cache.decodeDense(q);
  assert.ok(l2diff(dense, ref) / l2(ref) < 1e-5);
  const sparse = cache.decode(q);
  for (let h = 0; h < 4; h++) {
    const err = l2diff(sparse.output, ref, h * 128, h * 128 + 128);
    assert.ok(err <= sparse.diagnostics[h].errorBound, `head ${h}: ${err} > ${sparse.diagnostics[h].errorBound}`);
  }

  // truncating back to the first tokens reproduces the results from before the growth
  cache.truncate(2048);
  assert.ok(bitEqual(cache.decodeDense(q), denseBefore));
  assert.ok(bitEqual(cache.decode(q).output, sparseBefore.output));
  cache.free();
});

test('memory growth inside decode (scratch allocation) is handled', async () => {
  const vs = await init();
  const shape = { heads: 8, kvHeads: 8, headDim: 64, valueDim: 64, pageSize: 16 };
  const wl = vs.workload({ kind: 'uniform', T: 1 << 20, heads: 8, headDim: 64, seed: 4 });
  const cache = vs.createCache(shape);
  const q = wl.queries(0);
  const everything = { pages: 1 << 20, candidates: 1 << 20 };
  let inside = 0;
  for (let i = 0; i < 200 && inside < 2; i++) {
    wl.appendTo(cache, cache.length, 1024);
    const before = vs.memoryBytes;
    const r = cache.decode(q, everything); // routes every page: scratch grows with T
    if (vs.memoryBytes > before) {
      inside++;
      const dense = cache.decodeDense(q);
      assert.ok(l2diff(r.output, dense) / l2(dense) < 1e-5, 'decode that grew memory returns the right output');
      for (const d of r.diagnostics) assert.equal(d.candidates, cache.length);
    }
  }
  assert.ok(inside >= 1, 'no decode grew memory: the test did not exercise the case');
  cache.free();
});
