// vashista/pool (src/pool.js, src/pool-worker.js): one cache split by KV head
// over worker_threads. Every result must be bit-identical to one Cache holding
// everything (outputs, every diagnostic, the selections), errors must carry the
// codes a Cache gives, and a failed call must change nothing, in any worker.
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { readFile, rm } from 'node:fs/promises';
import { createServer } from 'node:http';
import { availableParallelism, tmpdir } from 'node:os';
import { extname, join, normalize } from 'node:path';
import { test } from 'node:test';
import { fileURLToPath } from 'node:url';

import { init, VashistaError } from '../src/index.js';
import createPoolDefault, { createPool, VashistaError as PoolError } from '../src/pool.js';
import { bitEqual, randomTokens, rng } from './helpers.js';

const web = fileURLToPath(new URL('..', import.meta.url));
const wasmUrl = new URL('../dist/vashista.wasm', import.meta.url);
const vs = await init();

/* Compares a Cache result with a pool result, bit for bit. */
function assertSameResult(single, pooled, what) {
  assert.ok(bitEqual(single.output, pooled.output), `${what}: outputs differ`);
  assert.deepStrictEqual(pooled.diagnostics, single.diagnostics, `${what}: diagnostics differ`);
}

/* The error a Cache call throws and the one the pool call rejects with: same
   class, code, status, argument, and message (the pool names itself). */
async function assertSameError(singleCall, poolCall, what) {
  let expected = null;
  try {
    singleCall();
  } catch (e) {
    expected = e;
  }
  assert.ok(expected instanceof VashistaError, `${what}: the cache did not throw`);
  let got = null;
  try {
    await poolCall();
  } catch (e) {
    got = e;
  }
  assert.ok(got instanceof VashistaError, `${what}: the pool did not reject (${got})`);
  assert.equal(got.code, expected.code, `${what}: code (${got.message})`);
  assert.equal(got.status, expected.status, `${what}: status`);
  assert.equal(got.argument, expected.argument, `${what}: argument`);
  assert.equal(got.message, expected.message.replace(/^cache\./, 'pool.'), `${what}: message`);
  return got;
}

/* A Cache and a pool of the same shape, fed the same calls. */
async function twin(config, poolOptions = {}) {
  const cache = vs.createCache(config);
  const pool = await createPool({ ...config, ...poolOptions });
  return {
    cache,
    pool,
    async append(keys, values) {
      cache.append(keys, values);
      await pool.append(keys, values);
      assert.equal(pool.length, cache.length);
    },
    async truncate(n) {
      cache.truncate(n);
      await pool.truncate(n);
      assert.equal(pool.length, cache.length);
    },
    /* dense and every sparse configuration, selections included */
    fallbacks: new Set(),
    async check(queries, optionsList, what) {
      for (const [i, q] of queries.entries()) {
        assert.ok(bitEqual(await pool.decodeDense(q), cache.decodeDense(q)), `${what}: dense, query ${i}`);
        assert.ok(bitEqual(await pool.decodeDense(q, { scale: 0.3 }), cache.decodeDense(q, { scale: 0.3 })), `${what}: dense scale, query ${i}`);
        for (const o of optionsList) {
          const label = `${what}: query ${i}, ${JSON.stringify(o)}`;
          const want = cache.decode(q, o);
          assertSameResult(want, await pool.decode(q, o), label);
          for (const g of want.diagnostics) this.fallbacks.add(g.fallback);
          for (let h = 0; h < config.heads; h++) {
            assert.deepEqual(await pool.lastCandidates(h), cache.lastCandidates(h), `${label}: candidates of head ${h}`);
            assert.deepEqual(await pool.lastRoutedPages(h), cache.lastRoutedPages(h), `${label}: pages of head ${h}`);
          }
        }
      }
    },
    async close() {
      cache.free();
      await pool.close();
    },
  };
}

const SPARSE = [
  {},
  { routing: 'flat', pages: 3, candidates: 24 },
  { routing: 'tree', pages: 2, candidates: 16, expand: 1 },
  { solver: 'eg', routing: 'flat', pages: 4, candidates: 32 },
  { solver: 'eg', routing: 'tree', pages: 3, candidates: 20, eps: 0.1 },
  { solver: 'fw', routing: 'tree', pages: 3, candidates: 24 },
  { routing: 'tree', pages: 2, candidates: 16, tolerance: 0.01 }, /* widened retries (gap workload) */
  { routing: 'tree', pages: 1, candidates: 8, tolerance: 1e-3 }, /* dense fallbacks (random tokens) */
  { solver: 'eg', routing: 'flat', pages: 1, candidates: 8, tolerance: 1e-4, maxIter: 50 },
];

for (const shape of [
  { heads: 8, kvHeads: 4, workers: 2, note: 'even split' },
  { heads: 6, kvHeads: 3, workers: 2, note: 'uneven split' },
  { heads: 6, kvHeads: 3, workers: 3, note: 'one KV head each' },
  { heads: 4, kvHeads: 2, workers: 1, note: 'one worker' },
]) {
  test(`pool: bit-identical to one cache, heads ${shape.heads} / kvHeads ${shape.kvHeads}, ${shape.workers} workers (${shape.note})`, { timeout: 120000 }, async () => {
    const config = { heads: shape.heads, kvHeads: shape.kvHeads, headDim: 32, valueDim: 24, pageSize: 16 };
    const t = await twin(config, { workers: shape.workers });
    try {
      assert.equal(t.pool.workers, shape.workers);
      assert.deepEqual(t.pool.config, t.cache.config);
      /* contiguous shares covering every KV head, the larger ones first */
      const spans = t.pool.shards.map((s) => s.kvHeads[1] - s.kvHeads[0]);
      assert.equal(spans.reduce((a, b) => a + b), shape.kvHeads);
      assert.ok(spans.every((n, i) => n >= 1 && (i === 0 || n <= spans[i - 1])), `spans ${spans}`);
      const group = shape.heads / shape.kvHeads;
      t.pool.shards.forEach((s, w) => {
        assert.equal(s.kvHeads[0], w === 0 ? 0 : t.pool.shards[w - 1].kvHeads[1]);
        assert.deepEqual(s.heads, [s.kvHeads[0] * group, s.kvHeads[1] * group]);
      });
      const r = rng(11 + shape.heads * 10 + shape.workers);
      /* a planted face (sparse decodes certify), then random tokens */
      const wl = vs.workload({ kind: 'gap', T: 1381, heads: shape.heads, kvHeads: shape.kvHeads, headDim: 32, valueDim: 24, seed: 7 });
      const queries = [wl.queries(0), wl.queries(1), r.normals(shape.heads * 32, 2)];
      /* several chunks of uneven sizes, with checks in between */
      let n = 0;
      for (const [i, chunk] of [100, 1, 517, 63, 700].entries()) {
        const { keys, values } = wl.tokens(n, chunk);
        await t.append(keys, values);
        n += chunk;
        if (i === 1 || i === 4) await t.check(queries, SPARSE, `after ${n} tokens`);
      }
      /* truncate (mid-page), then append again */
      await t.truncate(700);
      await t.check(queries.slice(0, 1), SPARSE, 'after truncate(700)');
      const more = randomTokens(r, 333, t.cache.config);
      await t.append(more.keys, more.values);
      await t.check(queries, SPARSE, 'after appending again');
      await t.truncate(0);
      await assertSameError(() => t.cache.decode(queries[0]), () => t.pool.decode(queries[0]), 'decode on an emptied cache');
      const last = randomTokens(r, 50, t.cache.config);
      await t.append(last.keys, last.values);
      await t.check(queries.slice(0, 1), SPARSE.slice(0, 2), 'after refilling');
      assert.deepEqual([...t.fallbacks].sort(), ['dense', 'none', 'widened'], 'every kind of head decode was compared');
    } finally {
      await t.close();
    }
  });
}

test('pool: default workers, isa, other wasm sources, properties', { timeout: 60000 }, async () => {
  assert.equal(createPoolDefault, createPool);
  assert.equal(PoolError, VashistaError);
  const config = { heads: 8, kvHeads: 4, headDim: 16 };
  const cache = vs.createCache(config);
  const r = rng(5);
  const { keys, values } = randomTokens(r, 300, cache.config);
  cache.append(keys, values);
  const q = r.normals(8 * 16);
  const want = cache.decode(q, { solver: 'eg' });
  const bytes = await readFile(wasmUrl);
  const sources = {
    default: {},
    module: { wasm: await WebAssembly.compile(bytes) },
    bytes: { wasm: new Uint8Array(bytes) },
    response: { wasm: Promise.resolve(new Response(bytes)) },
    path: { wasm: wasmUrl.pathname },
    scalar: { isa: 'scalar' },
  };
  for (const [name, extra] of Object.entries(sources)) {
    const pool = await createPool({ ...config, ...extra });
    try {
      assert.equal(pool.workers, Math.min(4, availableParallelism()), name);
      assert.equal(pool.isa, name === 'scalar' ? 'scalar' : 'wasmsimd', name);
      assert.equal(pool.version, vs.version);
      assert.deepEqual(pool.decodeDefaults, vs.decodeDefaults);
      assert.equal(pool.config.valueDim, 16);
      assert.equal(pool.config.pageSize, cache.config.pageSize);
      assert.ok(Object.isFrozen(pool.config) && Object.isFrozen(pool.shards));
      assert.equal(pool.length, 0);
      await pool.append(keys, values);
      assertSameResult(want, await pool.decode(q, { solver: 'eg' }), name);
    } finally {
      await pool.close();
    }
  }
  cache.free();
});

test('pool: errors carry the codes, arguments and messages of Cache, and change nothing', { timeout: 120000 }, async () => {
  const config = { heads: 8, kvHeads: 4, headDim: 16, valueDim: 8, pageSize: 8 };
  const t = await twin(config, { workers: 2 });
  try {
    const { cache, pool } = t;
    const r = rng(21);
    const q = r.normals(8 * 16);
    /* on an empty cache the library reports E_EMPTY before looking at q's values */
    await assertSameError(() => cache.decode(q), () => pool.decode(q), 'decode, empty');
    await assertSameError(() => cache.decodeDense(q), () => pool.decodeDense(q), 'decodeDense, empty');
    const nanQ = q.slice();
    nanQ[100] = NaN;
    await assertSameError(() => cache.decode(nanQ), () => pool.decode(nanQ), 'NaN q, empty');
    await assertSameError(() => cache.decode(q, { pages: 0 }), () => pool.decode(q, { pages: 0 }), 'bad option, empty');

    const { keys, values } = randomTokens(r, 203, config);
    await t.append(keys, values);
    const reference = { dense: cache.decodeDense(q), sparse: cache.decode(q) };
    const unchanged = async (what) => {
      assert.equal(pool.length, 203, `${what}: length`);
      assert.ok(bitEqual(await pool.decodeDense(q), reference.dense), `${what}: dense changed`);
      assertSameResult(reference.sparse, await pool.decode(q), `${what}: decode changed`);
    };
    const bad = (a, i, v) => {
      const b = a.slice();
      b[i] = v;
      return b;
    };
    const cases = [
      ['pages 0', (c) => c.decode(q, { pages: 0 })],
      ['unknown solver', (c) => c.decode(q, { solver: 'adam' })],
      ['routing of the wrong type', (c) => c.decode(q, { routing: 1 })],
      ['unknown option', (c) => c.decode(q, { bogus: 1 })],
      ['widen 1', (c) => c.decode(q, { widen: 1 })],
      ['eps out of range', (c) => c.decode(q, { solver: 'eg', eps: 1e-12 })],
      ['eps / scale out of range', (c) => c.decode(q, { solver: 'eg', eps: 1e8, scale: 1e-3 })],
      ['options not an object', (c) => c.decode(q, /** @type {any} */ (5))],
      ['q too short', (c) => c.decode(q.subarray(1))],
      ['q of the wrong type', (c) => c.decode(/** @type {any} */ (Array.from(q)))],
      ['NaN q', (c) => c.decode(nanQ)],
      ['huge q', (c) => c.decode(bad(q, 77, 3e30))],
      ['dense: negative scale', (c) => c.decodeDense(q, { scale: -1 })],
      ['dense: scale of the wrong type', (c) => c.decodeDense(q, { scale: '1' })],
      ['dense: NaN q', (c) => c.decodeDense(nanQ)],
      ['dense: unknown option', (c) => c.decodeDense(q, { pages: 3 })],
      ['append: keys not a multiple', (c) => c.append(keys.subarray(1), values)],
      ['append: values hold other tokens', (c) => c.append(keys, values.subarray(8 * 4))],
      ['append: keys of the wrong type', (c) => c.append(/** @type {any} */ (Array.from(keys)), values)],
      ['append: NaN in values', (c) => c.append(keys, bad(values, 1234, NaN))],
      ['append: infinite key after a huge one', (c) => c.append(bad(bad(keys, 5, 2e30), 900, -Infinity), values)],
      ['append: huge key', (c) => c.append(bad(keys, 3000, 3e38), values)],
      ['truncate past the end', (c) => c.truncate(204)],
      ['truncate -1', (c) => c.truncate(-1)],
      ['truncate 1.5', (c) => c.truncate(1.5)],
      ['lastCandidates: head 8', (c) => c.lastCandidates(8)],
      ['lastRoutedPages: head "0"', (c) => c.lastRoutedPages(/** @type {any} */ ('0'))],
    ];
    for (const [what, call] of cases) {
      await assertSameError(() => call(cache), () => call(pool), what);
      await unchanged(what);
    }
    /* a rejected call leaves the queue working */
    const p1 = pool.decode(q, { pages: 0 });
    const p2 = pool.decode(q);
    await assert.rejects(p1, { code: 'E_OPTION' });
    assertSameResult(reference.sparse, await p2, 'after a rejected call');
  } finally {
    await t.close();
  }
});

test('pool: errors found only by the workers (E_RANGE against the stored keys)', { timeout: 60000 }, async () => {
  const config = { heads: 8, kvHeads: 4, headDim: 32 };
  const t = await twin(config, { workers: 2 });
  try {
    const { cache, pool } = t;
    const r = rng(8);
    const { keys, values } = randomTokens(r, 96, cache.config);
    for (let i = 0; i < keys.length; i++) keys[i] *= 1e14; /* fine alone, too large against a large q */
    await t.append(keys, values);
    const q = r.normals(8 * 32, 0.1);
    const reference = cache.decode(q);
    /* |q| . |k| beyond 1e30 in head 6 only (the second worker's): every query element <= 1e30 */
    const big = q.slice();
    for (let j = 6 * 32; j < 7 * 32; j++) big[j] = 1e17;
    const e1 = await assertSameError(() => cache.decode(big), () => pool.decode(big), 'decode: |q|.|k| too large');
    assert.equal(e1.code, 'E_RANGE');
    await assertSameError(() => cache.decodeDense(big), () => pool.decodeDense(big), 'decodeDense: |q|.|k| too large');
    assertSameResult(reference, await pool.decode(q), 'after E_RANGE');
  } finally {
    await t.close();
  }
  /* eg / fw: ||q||^2 beyond about 1e15 in head 5 (second worker): named with its global index */
  const t2 = await twin(config, { workers: 2 });
  try {
    const r = rng(9);
    const { keys, values } = randomTokens(r, 64, t2.cache.config);
    await t2.append(keys, values);
    const q = r.normals(8 * 32);
    for (let j = 5 * 32; j < 6 * 32; j++) q[j] = 1e7;
    for (const solver of ['eg', 'fw']) {
      const e = await assertSameError(() => t2.cache.decode(q, { solver }), () => t2.pool.decode(q, { solver }), `${solver}: ||q||^2 too large`);
      assert.equal(e.argument, 'q');
      assert.match(e.message, /\|\|q\[5\]\|\|\^2/);
    }
  } finally {
    await t2.close();
  }
});

test('createPool: bad options give the codes createCache and init give', async () => {
  const shape = { heads: 8, kvHeads: 4, headDim: 16 };
  const bad = [
    [undefined, 'E_TYPE', 'options'],
    [null, 'E_TYPE', 'options'],
    [{ ...shape, nope: 1 }, 'E_OPTION', 'options.nope'],
    [{ ...shape, workers: 5 }, 'E_OPTION', 'options.workers'],
    [{ ...shape, workers: 0 }, 'E_OPTION', 'options.workers'],
    [{ ...shape, workers: 1.5 }, 'E_TYPE', 'options.workers'],
    [{ ...shape, kvHeads: 3 }, 'E_HEADS', 'options.kvHeads'],
    [{ ...shape, headDim: 0 }, 'E_DIM', 'options.headDim'],
    [{ ...shape, pageSize: 5000 }, 'E_PAGE', 'options.pageSize'],
    [{ ...shape, dtype: 'f16' }, 'E_DTYPE', 'options.dtype'],
    [{ heads: 8 }, 'E_TYPE', 'options.headDim'],
    [{ ...shape, wasm: 42 }, 'E_TYPE', 'wasm'],
    [{ ...shape, wasm: new Uint8Array([0, 1, 2, 3]) }, 'E_LOAD', 'wasm'],
    [{ ...shape, wasm: new URL('./no-such.wasm', import.meta.url) }, 'E_LOAD', 'wasm'],
    [{ ...shape, isa: 'avx512' }, 'E_ISA', 'name'],
    [{ ...shape, isa: 3 }, 'E_TYPE', 'options.isa'],
  ];
  for (const [options, code, argument] of bad) {
    const what = JSON.stringify(options, (k, v) => (v instanceof Uint8Array ? 'bytes' : v));
    await assert.rejects(createPool(/** @type {any} */ (options)), (e) => {
      assert.ok(e instanceof VashistaError, `${what}: ${e}`);
      assert.equal(e.code, code, `${what}: ${e.message}`);
      assert.equal(e.argument, argument, `${what}: ${e.message}`);
      assert.doesNotMatch(e.message, /\bconfig\./, what);
      return true;
    });
  }
});

test('pool: calls run in call order, inputs are copied when called', { timeout: 60000 }, async () => {
  const config = { heads: 4, kvHeads: 2, headDim: 16, pageSize: 8 };
  const cache = vs.createCache(config);
  const pool = await createPool({ ...config, workers: 2 });
  try {
    const r = rng(3);
    const a = randomTokens(r, 90, cache.config);
    const b = randomTokens(r, 45, cache.config);
    const q = r.normals(4 * 16);
    /* issued without waiting; the arrays are overwritten right after each call */
    const keys = a.keys.slice();
    const values = a.values.slice();
    const qq = q.slice();
    const calls = [pool.append(keys, values)];
    keys.fill(7);
    values.fill(7);
    calls.push(pool.decode(qq), pool.truncate(50), pool.decodeDense(qq));
    qq.fill(0);
    calls.push(pool.append(b.keys, b.values), pool.decode(q, { routing: 'flat' }), pool.lastCandidates(3));
    assert.equal(pool.length, 0, 'length is what the completed calls left');
    const got = await Promise.all(calls);
    cache.append(a.keys, a.values);
    assertSameResult(cache.decode(q), got[1], 'decode after the first append');
    cache.truncate(50);
    assert.ok(bitEqual(got[3], cache.decodeDense(q)), 'dense after truncate');
    cache.append(b.keys, b.values);
    assertSameResult(cache.decode(q, { routing: 'flat' }), got[5], 'decode after the second append');
    assert.deepEqual(got[6], cache.lastCandidates(3));
    assert.equal(pool.length, 95);
  } finally {
    cache.free();
    await pool.close();
  }
});

/* The module with a smaller memory maximum (rewritten in place, same length). */
function withMaxPages(bytes, pages) {
  const b = new Uint8Array(bytes);
  const leb = (i) => {
    let v = 0;
    for (let n = 0, s = 1; ; n++, s *= 128) {
      v += (b[i + n] & 127) * s;
      if (!(b[i + n] & 128)) return [v, n + 1];
    }
  };
  for (let i = 8; i < b.length; ) {
    const id = b[i++];
    const [size, n] = leb(i);
    i += n;
    if (id === 5) {
      let j = i + leb(i)[1];
      assert.equal(b[j++] & 1, 1, 'the memory has a maximum');
      j += leb(j)[1];
      const width = leb(j)[1];
      for (let k = 0, v = pages; k < width; k++, v = Math.floor(v / 128)) b[j + k] = (v & 127) | (k < width - 1 ? 128 : 0);
      return b;
    }
    i += size;
  }
  throw new Error('no memory section');
}

test('pool: E_NOMEM in one worker undoes the append in the others', { timeout: 120000 }, async () => {
  /* 32 MiB of memory per instance; the first worker holds two KV heads of three, so it runs out first */
  const wasm = withMaxPages(readFileSync(wasmUrl), 512);
  const config = { heads: 3, kvHeads: 3, headDim: 64, valueDim: 64, pageSize: 32 };
  const pool = await createPool({ ...config, workers: 2, wasm });
  const cache = vs.createCache(config); /* the reference, with room to spare */
  try {
    assert.deepEqual(pool.shards.map((s) => s.kvHeads), [[0, 2], [2, 3]]);
    const r = rng(4);
    const n = 2048;
    const { keys, values } = randomTokens(r, n, cache.config);
    const q = r.normals(3 * 64);
    let error = null;
    for (let i = 0; i < 100 && !error; i++) {
      try {
        await pool.append(keys, values);
        cache.append(keys, values);
      } catch (e) {
        error = e;
      }
    }
    assert.ok(error, 'memory never ran out');
    assert.ok(error instanceof VashistaError);
    assert.equal(error.code, 'E_NOMEM');
    assert.match(error.message, /^pool\.append: /);
    const length = cache.length;
    assert.equal(pool.length, length);
    /* the second worker (its own room left) must have been truncated back: its heads decode as before */
    assert.ok(bitEqual(await pool.decodeDense(q), cache.decodeDense(q)), 'dense after E_NOMEM');
    for (const o of [{}, { routing: 'flat' }, { solver: 'eg' }]) assertSameResult(cache.decode(q, o), await pool.decode(q, o), JSON.stringify(o));
    /* a second failure changes nothing either; truncating makes room again */
    await assert.rejects(pool.append(keys, values), { code: 'E_NOMEM' });
    assert.equal(pool.length, length);
    await pool.truncate(length - 2 * n);
    cache.truncate(length - 2 * n);
    const more = randomTokens(r, n, cache.config);
    await pool.append(more.keys, more.values);
    cache.append(more.keys, more.values);
    assert.equal(pool.length, length - n);
    assertSameResult(cache.decode(q), await pool.decode(q), 'after making room');
  } finally {
    cache.free();
    await pool.close();
  }
});

test('pool: close() waits for earlier calls, then terminates the workers', { timeout: 60000 }, async () => {
  const config = { heads: 4, kvHeads: 2, headDim: 8 };
  const pool = await createPool({ ...config, workers: 2 });
  const r = rng(1);
  const { keys, values } = randomTokens(r, 10, { kvHeads: 2, headDim: 8, valueDim: 8 });
  const appended = pool.append(keys, values);
  const decoded = pool.decodeDense(r.normals(4 * 8));
  assert.equal(pool.closed, false);
  const closing = pool.close();
  assert.equal(pool.closed, true);
  assert.equal(pool.close(), closing, 'closing again: the same promise');
  await appended;
  assert.equal((await decoded).length, 4 * 8);
  await closing;
  assert.equal(pool.length, 10);
  for (const call of [() => pool.decode(new Float32Array(32)), () => pool.append(keys, values), () => pool.truncate(0), () => pool.lastCandidates(0)])
    await assert.rejects(call(), { name: 'VashistaError', code: 'E_FREED', argument: 'pool' });
  /* Symbol.asyncDispose (await using) closes */
  const other = await createPool({ ...config, workers: 1 });
  await other[Symbol.asyncDispose]();
  assert.equal(other.closed, true);

  /* a process that closes its pool exits by itself: live workers would keep its
     event loop alive until the timeout (process-wide thread counts were tried
     and are not a stable signal: V8 and libuv start threads of their own) */
  const script = `
    import { createPool } from ${JSON.stringify(new URL('../src/pool.js', import.meta.url).href)};
    const pool = await createPool({ heads: 4, kvHeads: 2, headDim: 8, workers: 2 });
    await pool.append(new Float32Array(2 * 8 * 3), new Float32Array(2 * 8 * 3));
    await pool.decode(new Float32Array(4 * 8));
    await pool.close();
    console.log('closed');
  `;
  const child = spawnSync(process.execPath, ['--input-type=module', '-e', script], { encoding: 'utf8', timeout: 30000 });
  assert.equal(child.status, 0, `the process did not exit by itself (signal ${child.signal}):\n${child.stderr}`);
  assert.equal(child.stdout.trim(), 'closed');
});

/* npm with no way to reach a registry (as test/pack.test.js). */
function npm(args, cwd, cache) {
  const env = { ...process.env, npm_config_registry: 'http://127.0.0.1:9/', npm_config_cache: cache, npm_config_audit: 'false', npm_config_fund: 'false', npm_config_update_notifier: 'false' };
  const r = spawnSync('npm', args, { cwd, env, encoding: 'utf8', shell: process.platform === 'win32' });
  assert.equal(r.status, 0, `npm ${args.join(' ')} failed:\n${r.stdout}\n${r.stderr}`);
  return r.stdout;
}

test('package: vashista/pool from an installed tarball (worker found in node_modules), and its types', { timeout: 120000 }, () => {
  const tsc = fileURLToPath(new URL('../node_modules/typescript/bin/tsc', import.meta.url));
  assert.ok(existsSync(tsc), 'typescript is not installed: run `npm ci` in web/');
  const dir = mkdtempSync(join(tmpdir(), 'vashista-pool-pack-'));
  try {
    const cache = join(dir, 'npm-cache');
    const [{ filename }] = JSON.parse(npm(['pack', '--json', '--pack-destination', dir], web, cache));
    const app = join(dir, 'app');
    mkdirSync(app);
    writeFileSync(join(app, 'package.json'), JSON.stringify({ name: 'app', private: true, type: 'module' }));
    npm(['install', '--offline', '--no-package-lock', join(dir, filename)], app, cache);
    writeFileSync(
      join(app, 'main.js'),
      `import { init } from 'vashista';
import { createPool, VashistaError } from 'vashista/pool';
const vs = await init();
const wl = vs.workload({ kind: 'needle', T: 1024, heads: 4, kvHeads: 2, headDim: 32 });
const cache = vs.createCache({ heads: 4, kvHeads: 2, headDim: 32 });
const pool = await createPool({ heads: 4, kvHeads: 2, headDim: 32, workers: 2 });
const { keys, values } = wl.tokens(0, 1024);
cache.append(keys, values);
await pool.append(keys, values);
const q = wl.queries();
const a = cache.decode(q), b = await pool.decode(q);
const same = a.output.every((v, i) => Object.is(v, b.output[i])) && JSON.stringify(a.diagnostics) === JSON.stringify(b.diagnostics);
let code = null;
try { await pool.decode(q, { pages: 0 }); } catch (e) { code = e instanceof VashistaError ? e.code : String(e); }
await pool.close();
console.log(JSON.stringify({ same, code, workers: pool.workers }));
`,
    );
    const run = spawnSync(process.execPath, ['main.js'], { cwd: app, encoding: 'utf8', timeout: 60000 });
    assert.equal(run.status, 0, run.stderr);
    assert.deepEqual(JSON.parse(run.stdout.trim().split('\n').pop()), { same: true, code: 'E_OPTION', workers: 2 });

    /* the declarations, resolved through the installed package's "exports" */
    writeFileSync(
      join(app, 'usage.ts'),
      `import { createPool, VashistaError, type Pool, type PoolOptions, type PoolShard } from 'vashista/pool';
import type { DecodeResult } from 'vashista';
const options: PoolOptions = { heads: 8, kvHeads: 2, headDim: 64, workers: 2, isa: 'auto' };
export async function run(q: Float32Array): Promise<number> {
  const pool: Pool = await createPool(options);
  await pool.append(new Float32Array(2 * 64), new Float32Array(2 * 64));
  const dense: Float32Array = await pool.decodeDense(q, { scale: 0 });
  const r: DecodeResult = await pool.decode(q, { pages: 4, solver: 'eg', routing: 'tree' });
  const shard: PoolShard | undefined = pool.shards[0];
  const heads: readonly [number, number] | undefined = shard?.heads;
  const c: Uint32Array = await pool.lastCandidates(0);
  await pool.truncate(0);
  try {
    await pool.decode(q);
  } catch (e) {
    if (e instanceof VashistaError) console.log(e.code, e.argument);
  }
  await pool[Symbol.asyncDispose]();
  await pool.close();
  return dense.length + r.output.length + (heads?.[0] ?? 0) + c.length + pool.length + pool.workers + (pool.closed ? 1 : 0);
}
// @ts-expect-error: workers is a number
createPool({ heads: 8, headDim: 64, workers: '2' });
// @ts-expect-error: not an option
createPool({ heads: 8, headDim: 64, threads: 2 });
`,
    );
    writeFileSync(
      join(app, 'tsconfig.json'),
      JSON.stringify({
        compilerOptions: { target: 'ES2022', module: 'NodeNext', moduleResolution: 'NodeNext', lib: ['ES2022', 'DOM'], types: [], strict: true, noEmit: true, exactOptionalPropertyTypes: true, noUncheckedIndexedAccess: true },
        files: ['usage.ts'],
      }),
    );
    const r = spawnSync(process.execPath, [tsc, '--noEmit', '-p', 'tsconfig.json'], { cwd: app, encoding: 'utf8' });
    assert.equal(r.status, 0, `tsc failed:\n${r.stdout}${r.stderr}`);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('bench:pool runs (tiny, --json)', { timeout: 120000 }, () => {
  const r = spawnSync(process.execPath, ['bench/pool.mjs', '--T', '1K', '--heads', '4', '--kv-heads', '2', '--d', '16', '--reps', '1', '--min-time', '0', '--json'], { cwd: web, encoding: 'utf8', timeout: 110000 });
  assert.equal(r.status, 0, r.stderr);
  const report = JSON.parse(r.stdout);
  assert.equal(report.command, 'bench:pool');
  assert.equal(report.results.length, 1);
  const row = report.results[0];
  assert.equal(row.T, 1024);
  assert.deepEqual(row.runs.map((x) => x.label), ['cache', 'pool 1', 'pool 2']);
  for (const x of row.runs) assert.ok(x.dense_ms > 0 && x.sparse_ms > 0, JSON.stringify(x));
  assert.equal(row.bit_identical, true);
});

test('in headless Chromium: Web Workers, bit-identical, errors, close', { timeout: 60000 }, async () => {
  const chromium = ['chromium', 'chromium-browser', 'google-chrome'].find((c) => spawnSync('which', [c]).status === 0);
  assert.ok(chromium, 'no Chromium found: run tests/setup.sh (installs Debian chromium)');
  const page = `
import { init } from '/src/index.js';
import { createPool, VashistaError } from '/src/pool.js';
async function run() {
  const config = { heads: 6, kvHeads: 3, headDim: 32, valueDim: 24, pageSize: 16 };
  const vs = await init();
  const wl = vs.workload({ kind: 'needle', T: 3000, heads: 6, kvHeads: 3, headDim: 32, valueDim: 24, seed: 3 });
  const cache = vs.createCache(config);
  const pool = await createPool({ ...config, workers: 2 });
  for (const [a, b] of [[0, 1000], [1000, 2999], [2999, 3000]]) {
    const { keys, values } = wl.tokens(a, b - a);
    cache.append(keys, values);
    await pool.append(keys, values);
  }
  const same = (x, y) => x.length === y.length && x.every((v, i) => Object.is(v, y[i]));
  const out = { workers: pool.workers, hardwareConcurrency: navigator.hardwareConcurrency, checks: {} };
  for (let s = 0; s < 3; s++) {
    const q = wl.queries(s);
    out.checks['dense' + s] = same(cache.decodeDense(q), await pool.decodeDense(q));
    for (const o of [{}, { routing: 'flat' }, { solver: 'eg', pages: 4 }, { tolerance: 1e-3, pages: 1, candidates: 8 }]) {
      const a = cache.decode(q, o), b = await pool.decode(q, o);
      out.checks[JSON.stringify(o) + s] = same(a.output, b.output) && JSON.stringify(a.diagnostics) === JSON.stringify(b.diagnostics);
    }
  }
  try { await pool.decode(wl.queries(0), { pages: 0 }); } catch (e) { out.badOption = e instanceof VashistaError ? e.code : String(e); }
  out.length = pool.length;
  await pool.close();
  try { await pool.decode(wl.queries(0)); } catch (e) { out.afterClose = e instanceof VashistaError ? e.code : String(e); }
  const defaultPool = await createPool(config);
  out.defaultWorkers = defaultPool.workers;
  await defaultPool.close();
  return out;
}
run().then((result) => ({ ok: true, result }), (e) => ({ ok: false, error: e?.name + ': ' + e?.message + '\\n' + e?.stack }))
  .then((body) => fetch('/result', { method: 'POST', body: JSON.stringify(body) }));
`;
  const TYPES = { '.js': 'text/javascript', '.wasm': 'application/wasm' };
  let resolveResult;
  const result = new Promise((resolve) => {
    resolveResult = resolve;
  });
  let wasmFetches = 0;
  const server = createServer(async (req, res) => {
    const path = decodeURIComponent(new URL(req.url, 'http://x').pathname);
    if (req.method === 'POST' && path === '/result') {
      let body = '';
      for await (const chunk of req) body += chunk;
      res.end('ok');
      resolveResult(JSON.parse(body));
      return;
    }
    if (path === '/pool.html') return res.writeHead(200, { 'content-type': 'text/html' }).end('<!doctype html><meta charset="utf-8"><script type="module" src="/pool-page.js"></script>');
    if (path === '/pool-page.js') return res.writeHead(200, { 'content-type': 'text/javascript' }).end(page);
    const file = normalize(join(web, path));
    if (!file.startsWith(join(web, 'src')) && !file.startsWith(join(web, 'dist'))) return res.writeHead(403).end();
    if (extname(file) === '.wasm') wasmFetches++;
    try {
      const data = await readFile(file);
      res.writeHead(200, { 'content-type': TYPES[extname(file)] ?? 'application/octet-stream', 'cache-control': 'no-store' }).end(data);
    } catch {
      res.writeHead(404).end();
    }
  });
  await new Promise((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address();
  const profile = mkdtempSync(join(tmpdir(), 'vashista-chromium-pool-'));
  const browser = spawn(chromium, ['--headless=new', '--no-sandbox', '--disable-gpu', '--no-first-run', '--disable-dev-shm-usage',
    '--disable-background-networking', '--disable-component-update', '--disable-sync', '--disable-quic',
    `--user-data-dir=${profile}`, `http://127.0.0.1:${port}/pool.html`], { stdio: 'ignore' });
  try {
    const timer = setTimeout(() => resolveResult({ ok: false, error: 'timed out waiting for the page' }), 45000);
    const body = await result;
    clearTimeout(timer);
    assert.ok(body.ok, body.error);
    const r = body.result;
    assert.equal(r.workers, 2);
    for (const [k, v] of Object.entries(r.checks)) assert.equal(v, true, `not bit-identical: ${k}`);
    assert.equal(Object.keys(r.checks).length, 15);
    assert.equal(r.badOption, 'E_OPTION');
    assert.equal(r.afterClose, 'E_FREED');
    assert.equal(r.length, 3000);
    assert.equal(r.defaultWorkers, Math.min(3, r.hardwareConcurrency));
    /* init() once, createPool() once per pool: the workers get the compiled module, they fetch nothing */
    assert.ok(wasmFetches <= 3, `${wasmFetches} fetches of the .wasm`);
  } finally {
    const exited = new Promise((resolve) => browser.once('exit', resolve));
    browser.kill();
    await exited;
    server.close();
    /* Chromium's helper processes may still be writing to the profile for a moment */
    await rm(profile, { recursive: true, force: true, maxRetries: 10, retryDelay: 100 });
  }
});
