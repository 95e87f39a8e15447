// Out of memory for real: fill one instance's wasm memory to its 4 GiB
// maximum. The append that no longer fits fails with E_NOMEM and leaves the
// cache exactly as it was; decoding still works; freeing gives the memory
// back to later appends. (About 20 s and 4 GiB of RAM.)
import assert from 'node:assert/strict';
import { test } from 'node:test';

import { init } from '../src/index.js';
import { bitEqual } from './helpers.js';

test('filling memory to 4 GiB: E_NOMEM, cache intact, memory reusable after free', { timeout: 300000 }, async () => {
  const vs = await init();
  const d = 512;
  const c = vs.createCache({ heads: 1, headDim: d, pageSize: 4096 });
  const n = 8192;
  const keys = new Float32Array(n * d);
  const values = new Float32Array(n * d);
  for (let i = 0; i < keys.length; i++) {
    keys[i] = ((i * 7919) % 1000) / 1000 - 0.5;
    values[i] = ((i * 104729) % 1000) / 1000 - 0.5;
  }
  const q = new Float32Array(d).fill(0.01);
  let error = null;
  for (let i = 0; i < 1000 && !error; i++) {
    try {
      c.append(keys, values);
    } catch (e) {
      error = e;
    }
  }
  assert.ok(error, 'memory never ran out');
  assert.equal(error.name, 'VashistaError');
  assert.equal(error.code, 'E_NOMEM');
  assert.ok(vs.memoryBytes > 3.9 * 2 ** 30, `memory ${vs.memoryBytes}`);
  const length = c.length;
  assert.ok(length > 0 && length % n === 0, `length ${length} holds whole appends only`);
  const dense = c.decodeDense(q);
  assert.equal(c.decode(q).output.length, d); /* scratch allocated before the snapshot */
  const info = c.info();
  // a second failing append changes nothing either
  assert.throws(() => c.append(keys, values), { code: 'E_NOMEM' });
  assert.equal(c.length, length);
  assert.deepEqual(c.info(), info);
  assert.ok(bitEqual(c.decodeDense(q), dense));
  // truncating frees pages, which later appends reuse
  c.truncate(length - 4 * n);
  c.append(keys, values);
  assert.equal(c.length, length - 3 * n);
  c.free();
  const again = vs.createCache({ heads: 1, headDim: d, pageSize: 4096 });
  for (let i = 0; i < 8; i++) again.append(keys, values);
  assert.equal(again.length, 8 * n);
  again.free();
});
