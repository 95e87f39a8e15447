// Bad input: every mistake gives a VashistaError with a stable code and a
// message naming the argument, never a wasm trap, and leaves the cache intact.
import assert from 'node:assert/strict';
import { test } from 'node:test';

import { init, VashistaError } from '../src/index.js';
import { bitEqual, randomTokens, rng } from './helpers.js';

const vs = await init();
const shape = { heads: 4, kvHeads: 2, headDim: 16, valueDim: 8, pageSize: 8 };
const r = rng(99);
const base = randomTokens(r, 50, shape);
const q = r.normals(shape.heads * shape.headDim);

/* A cache with 50 tokens and a snapshot of everything observable about it. */
function fixture() {
  const cache = vs.createCache(shape);
  cache.append(base.keys, base.values);
  const snapshot = () => ({
    length: cache.length,
    info: cache.info(),
    dense: cache.decodeDense(q),
    sparse: cache.decode(q, { pages: 2, candidates: 8 }),
  });
  snapshot(); /* decode scratch allocated once, so reservedBytes is stable */
  return { cache, before: snapshot(), snapshot };
}

function assertIntact(before, after, what) {
  assert.equal(after.length, before.length, `${what}: length`);
  assert.deepEqual(after.info, before.info, `${what}: info`);
  assert.ok(bitEqual(after.dense, before.dense), `${what}: dense output`);
  assert.ok(bitEqual(after.sparse.output, before.sparse.output), `${what}: sparse output`);
  assert.deepEqual(after.sparse.diagnostics, before.sparse.diagnostics, `${what}: diagnostics`);
}

function expectError(fn, code, argument, what) {
  let caught = null;
  try {
    fn();
  } catch (e) {
    caught = e;
  }
  assert.ok(caught, `${what}: no error`);
  assert.ok(caught instanceof VashistaError, `${what}: ${caught?.constructor?.name}: ${caught?.message}`);
  assert.equal(caught.name, 'VashistaError');
  assert.equal(caught.code, code, `${what}: code (${caught.message})`);
  if (argument !== undefined) {
    assert.equal(caught.argument, argument, `${what}: argument (${caught.message})`);
    assert.ok(caught.message.includes(argument.split('.').pop().replace(/\[.*/, '')), `${what}: message names ${argument}: ${caught.message}`);
  }
  return caught;
}

const tokenKeys = (n) => r.normals(n * shape.kvHeads * shape.headDim);
const tokenValues = (n) => r.normals(n * shape.kvHeads * shape.valueDim);
function withBad(a, i, v) {
  const b = a.slice();
  b[i] = v;
  return b;
}

const cases = [
  /* append: types */
  ['append keys as Array', (c) => c.append(Array.from(tokenKeys(1)), tokenValues(1)), 'E_TYPE', 'keys'],
  ['append keys as Float64Array', (c) => c.append(new Float64Array(tokenKeys(1)), tokenValues(1)), 'E_TYPE', 'keys'],
  ['append values missing', (c) => c.append(tokenKeys(1)), 'E_TYPE', 'values'],
  ['append values as null', (c) => c.append(tokenKeys(1), null), 'E_TYPE', 'values'],
  /* append: lengths */
  ['append keys not whole tokens', (c) => c.append(tokenKeys(2).subarray(1), tokenValues(2)), 'E_LENGTH', 'keys'],
  ['append values not whole tokens', (c) => c.append(tokenKeys(2), tokenValues(2).subarray(3)), 'E_LENGTH', 'values'],
  ['append token counts differ', (c) => c.append(tokenKeys(3), tokenValues(2)), 'E_LENGTH', 'values'],
  /* append: values */
  ['append NaN key', (c) => c.append(withBad(tokenKeys(3), 40, NaN), tokenValues(3)), 'E_NONFINITE', 'keys'],
  ['append Inf value', (c) => c.append(tokenKeys(3), withBad(tokenValues(3), 7, Infinity)), 'E_NONFINITE', 'values'],
  ['append -Inf key', (c) => c.append(withBad(tokenKeys(3), 0, -Infinity), tokenValues(3)), 'E_NONFINITE', 'keys'],
  ['append huge value', (c) => c.append(tokenKeys(3), withBad(tokenValues(3), 9, 3e38)), 'E_RANGE', 'values'],
  /* decodeDense */
  ['decodeDense q as Array', (c) => c.decodeDense(Array.from(q)), 'E_TYPE', 'q'],
  ['decodeDense q too short', (c) => c.decodeDense(q.subarray(1)), 'E_LENGTH', 'q'],
  ['decodeDense q too long', (c) => c.decodeDense(new Float32Array(q.length + 16)), 'E_LENGTH', 'q'],
  ['decodeDense NaN in q', (c) => c.decodeDense(withBad(q, 5, NaN)), 'E_NONFINITE', 'q'],
  ['decodeDense huge q', (c) => c.decodeDense(withBad(q, 5, -2e30)), 'E_RANGE', 'q'],
  ['decodeDense negative scale', (c) => c.decodeDense(q, { scale: -1 }), 'E_OPTION', 'options.scale'],
  ['decodeDense NaN scale', (c) => c.decodeDense(q, { scale: NaN }), 'E_OPTION', 'options.scale'],
  ['decodeDense string scale', (c) => c.decodeDense(q, { scale: '0.5' }), 'E_TYPE', 'options.scale'],
  ['decodeDense unknown option', (c) => c.decodeDense(q, { pages: 3 }), 'E_OPTION', 'options.pages'],
  ['decodeDense options not an object', (c) => c.decodeDense(q, 3), 'E_TYPE', 'options'],
  /* decode */
  ['decode q wrong type', (c) => c.decode(new Uint8Array(64)), 'E_TYPE', 'q'],
  ['decode q wrong length', (c) => c.decode(new Float32Array(3)), 'E_LENGTH', 'q'],
  ['decode NaN in q', (c) => c.decode(withBad(q, 63, NaN)), 'E_NONFINITE', 'q'],
  ['decode pages 0', (c) => c.decode(q, { pages: 0 }), 'E_OPTION', 'options.pages'],
  ['decode pages fractional', (c) => c.decode(q, { pages: 1.5 }), 'E_TYPE', 'options.pages'],
  ['decode candidates 0', (c) => c.decode(q, { candidates: 0 }), 'E_OPTION', 'options.candidates'],
  ['decode candidates negative', (c) => c.decode(q, { candidates: -4 }), 'E_OPTION', 'options.candidates'],
  ['decode sinkPages as string', (c) => c.decode(q, { sinkPages: '1' }), 'E_TYPE', 'options.sinkPages'],
  ['decode recentPages 2^32', (c) => c.decode(q, { recentPages: 2 ** 32 }), 'E_OPTION', 'options.recentPages'],
  ['decode widen 1', (c) => c.decode(q, { widen: 1 }), 'E_OPTION', 'options.widen'],
  ['decode tolerance negative', (c) => c.decode(q, { tolerance: -0.1 }), 'E_OPTION', 'options.tolerance'],
  ['decode tolerance Infinity', (c) => c.decode(q, { tolerance: Infinity }), 'E_OPTION', 'options.tolerance'],
  ['decode scale beyond float32', (c) => c.decode(q, { scale: 1e39 }), 'E_OPTION', 'options.scale'],
  ['decode unknown solver', (c) => c.decode(q, { solver: 'adam' }), 'E_OPTION', 'options.solver'],
  ['decode solver not a string', (c) => c.decode(q, { solver: 0 }), 'E_TYPE', 'options.solver'],
  ['decode misspelled option', (c) => c.decode(q, { candidate: 8 }), 'E_OPTION', 'options.candidate'],
  ['decode options as array', (c) => c.decode(q, [1]), 'E_TYPE', 'options'],
  /* truncate */
  ['truncate past the end', (c) => c.truncate(51), 'E_LENGTH', 'n'],
  ['truncate negative', (c) => c.truncate(-1), 'E_OPTION', 'n'],
  ['truncate fractional', (c) => c.truncate(2.5), 'E_TYPE', 'n'],
  ['truncate string', (c) => c.truncate('3'), 'E_TYPE', 'n'],
];

for (const [what, fn, code, argument] of cases) {
  test(`bad input: ${what} -> ${code}, cache intact`, () => {
    const { cache, before, snapshot } = fixture();
    expectError(() => fn(cache), code, argument, what);
    assertIntact(before, snapshot(), what);
    // and the cache still works normally afterwards
    const t = randomTokens(r, 3, shape);
    cache.append(t.keys, t.values);
    assert.equal(cache.length, 53);
    cache.free();
  });
}

test('NaN report names the first bad element', () => {
  const { cache } = fixture();
  const e = expectError(() => cache.append(withBad(tokenKeys(2), 37, NaN), tokenValues(2)), 'E_NONFINITE', 'keys', 'nan');
  assert.match(e.message, /keys\[37\] is NaN/);
  assert.equal(e.status, -6);
  cache.free();
});

test('decode on an empty cache: E_EMPTY', () => {
  const c = vs.createCache(shape);
  expectError(() => c.decodeDense(q), 'E_EMPTY', 'cache', 'empty dense');
  expectError(() => c.decode(q), 'E_EMPTY', 'cache', 'empty sparse');
  c.truncate(0);
  assert.equal(c.length, 0);
  c.free();
});

test('a freed cache used again, or freed twice: E_FREED, never a trap', () => {
  const { cache } = fixture();
  cache.free();
  const uses = {
    'length': (c) => c.length,
    'append': (c) => c.append(tokenKeys(1), tokenValues(1)),
    'decodeDense': (c) => c.decodeDense(q),
    'decode': (c) => c.decode(q),
    'truncate': (c) => c.truncate(0),
    'info': (c) => c.info(),
    'free (double free)': (c) => c.free(),
    'workload.appendTo': (c) => vs.workload({ kind: 'uniform', T: 10, heads: 4, kvHeads: 2, headDim: 16, valueDim: 8 }).appendTo(c, 0, 1),
  };
  for (const [what, fn] of Object.entries(uses)) {
    const e = expectError(() => fn(cache), 'E_FREED', 'cache', what);
    assert.match(e.message, /freed/);
  }
  // the instance is unharmed: other caches work
  const { cache: other, before, snapshot } = fixture();
  assertIntact(before, snapshot(), 'other cache');
  other.free();
});

test('errors carry the C status and the library text for library-side failures', () => {
  const c = vs.createCache(shape);
  const e = expectError(() => c.decode(q), 'E_EMPTY', 'cache', 'status');
  assert.equal(e.status, -10);
  assert.match(e.message, /^cache\.decode: /);
  assert.ok(e.stack.includes('errors.test.js'), 'stack points at the caller');
  c.free();
});
