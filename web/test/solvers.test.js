// The projection solvers (solver: 'eg' | 'fw') through the JS API. Their
// mathematics is tested natively (tests/test_solvers.c); here: the options.
import assert from 'node:assert/strict';
import { test } from 'node:test';

import { init } from '../src/index.js';
import { bitEqual } from './helpers.js';

const vs = await init();
const wl = vs.workload({ kind: 'gap', T: 2048, heads: 2, kvHeads: 1, headDim: 32, valueDim: 16, face: 3, seed: 2 });
const cache = vs.createCache({ heads: 2, kvHeads: 1, headDim: 32, valueDim: 16, pageSize: 16 });
wl.appendTo(cache);
const q = wl.queries();

// vs_decode accepts only 'softmax' until the projection solvers are wired
// into it (issue 4); until then asking for them is a clear E_OPTION, and the
// cache is untouched.
for (const solver of ['eg', 'fw']) {
  test(`solver '${solver}' is rejected by this build with E_OPTION`, () => {
    const before = cache.decodeDense(q);
    assert.throws(() => cache.decode(q, { solver }), { code: 'E_OPTION' });
    assert.ok(bitEqual(cache.decodeDense(q), before));
  });
}

test('solver option validation', () => {
  assert.throws(() => cache.decode(q, { eps: 0 }), { code: 'E_OPTION', argument: 'options.eps' });
  assert.throws(() => cache.decode(q, { eps: -1 }), { code: 'E_OPTION', argument: 'options.eps' });
  assert.throws(() => cache.decode(q, { eps: 1e-50 }), { code: 'E_OPTION', argument: 'options.eps' }); // 0 as a float32
  assert.throws(() => cache.decode(q, { maxIter: 0 }), { code: 'E_OPTION', argument: 'options.maxIter' });
  assert.throws(() => cache.decode(q, { maxIter: 2.5 }), { code: 'E_TYPE', argument: 'options.maxIter' });
  assert.throws(() => cache.decode(q, { solverTol: 0 }), { code: 'E_OPTION', argument: 'options.solverTol' });
  assert.throws(() => cache.decode(q, { solverTol: NaN }), { code: 'E_OPTION', argument: 'options.solverTol' });
  assert.throws(() => cache.decode(q, { solverTol: '1e-6' }), { code: 'E_TYPE', argument: 'options.solverTol' });
  const d = vs.decodeDefaults;
  assert.ok(d.eps > 0 && d.maxIter >= 1 && d.solverTol > 0);
});
