// API behaviour of the package (DESIGN section 5).
import assert from 'node:assert/strict';
import { readFile } from 'node:fs/promises';
import { test } from 'node:test';
import v8 from 'node:v8';
import vm from 'node:vm';

import init, { init as namedInit, VashistaError } from '../src/index.js';
import { bitEqual, l2, l2diff, randomTokens, referenceAttention, rng } from './helpers.js';

const wasmUrl = new URL('../dist/vashista.wasm', import.meta.url);
const vs = await init();

test('init: default loader, instance properties', () => {
  assert.equal(init, namedInit);
  assert.match(vs.version, /^\d+\.\d+\.\d+$/);
  const [ma, mi, pa] = vs.version.split('.').map(Number);
  assert.equal(vs.versionNumber, ma * 10000 + mi * 100 + pa);
  assert.equal(vs.isa, 'wasmsimd', 'the wasm build should pick the SIMD128 kernels');
  assert.ok(vs.memoryBytes >= 16 * 1024 * 1024);
  const d = vs.decodeDefaults;
  for (const k of ['pages', 'candidates', 'widen']) assert.ok(Number.isInteger(d[k]) && d[k] >= 1, k);
  assert.equal(d.solver, 'softmax');
  assert.equal(d.routing, 'tree');
  assert.equal(d.expand, 0);
  assert.equal(vs.nodePages, 16);
  assert.ok(Object.isFrozen(d));
});

test('init: every kind of wasm source', async () => {
  const bytes = await readFile(wasmUrl);
  const module = await WebAssembly.compile(bytes);
  const sources = {
    'Buffer': bytes,
    'Uint8Array': new Uint8Array(bytes),
    'ArrayBuffer': bytes.buffer.slice(bytes.byteOffset, bytes.byteOffset + bytes.byteLength),
    'WebAssembly.Module': module,
    'Response': new Response(bytes, { headers: { 'content-type': 'application/wasm' } }),
    'Response without wasm MIME type': new Response(bytes),
    'Promise<Response>': Promise.resolve(new Response(bytes, { headers: { 'content-type': 'application/wasm' } })),
    'file URL': wasmUrl,
    'file URL string': wasmUrl.href,
    'path string': wasmUrl.pathname,
  };
  for (const [name, wasm] of Object.entries(sources)) {
    const other = await init({ wasm });
    assert.equal(other.version, vs.version, name);
    const c = other.createCache({ heads: 1, headDim: 4 });
    c.append(new Float32Array([1, 0, 0, 0]), new Float32Array([1, 2, 3, 4]));
    assert.deepEqual(Array.from(c.decodeDense(new Float32Array([1, 1, 1, 1]))), [1, 2, 3, 4], name);
    c.free();
  }
  // the source may also be passed directly
  assert.equal((await init(module)).isa, 'wasmsimd');
});

test('init: bad sources and options give VashistaError', async () => {
  await assert.rejects(init({ wasm: 42 }), { name: 'VashistaError', code: 'E_TYPE', argument: 'wasm' });
  await assert.rejects(init({ wasm: new Uint8Array([0, 1, 2, 3]) }), { code: 'E_LOAD' });
  await assert.rejects(init({ wasm: new URL('./no-such.wasm', import.meta.url) }), { code: 'E_LOAD' });
  await assert.rejects(init({ wasm: new Response('nope', { status: 404 }) }), { code: 'E_LOAD' });
  await assert.rejects(init({ wsam: wasmUrl }), { code: 'E_OPTION', argument: 'options.wsam' });
  await assert.rejects(init({ isa: 'avx512' }), { code: 'E_ISA', argument: 'name' });
  // a valid wasm module that is not vashista
  const empty = new Uint8Array([0, 0x61, 0x73, 0x6d, 1, 0, 0, 0]);
  await assert.rejects(init({ wasm: empty }), { code: 'E_LOAD' });
});

test('isa: scalar and wasmsimd kernels give bit-identical results', async () => {
  const scalar = await init({ isa: 'scalar' });
  assert.equal(scalar.isa, 'scalar');
  const simd = await init();
  const shape = { heads: 4, kvHeads: 2, headDim: 100, valueDim: 37, pageSize: 16 };
  const r = rng(11);
  const { keys, values } = randomTokens(r, 1000, shape);
  const q = r.normals(shape.heads * shape.headDim, 1.5);
  const outs = [];
  for (const inst of [scalar, simd]) {
    const c = inst.createCache(shape);
    c.append(keys, values);
    outs.push({ dense: c.decodeDense(q), sparse: c.decode(q, { pages: 8, candidates: 64 }) });
    c.free();
  }
  assert.ok(bitEqual(outs[0].dense, outs[1].dense), 'dense');
  assert.ok(bitEqual(outs[0].sparse.output, outs[1].sparse.output), 'sparse');
  assert.deepEqual(outs[0].sparse.diagnostics, outs[1].sparse.diagnostics);
  assert.throws(() => simd.setIsa('avx2'), { code: 'E_ISA' });
  assert.throws(() => simd.setIsa(3), { code: 'E_TYPE' });
  simd.setIsa('auto');
  assert.equal(simd.isa, 'wasmsimd');
});

test('createCache: config, defaults and validation', () => {
  const c = vs.createCache({ heads: 8, kvHeads: 2, headDim: 64, valueDim: 32, pageSize: 16, dtype: 'f32' });
  assert.deepEqual({ ...c.config }, { heads: 8, kvHeads: 2, headDim: 64, valueDim: 32, pageSize: 16, dtype: 'f32' });
  assert.ok(Object.isFrozen(c.config));
  assert.equal(c.length, 0);
  assert.equal(c.freed, false);
  c.free();
  assert.equal(c.freed, true);

  const d = vs.createCache({ heads: 2, headDim: 8 });
  assert.equal(d.config.kvHeads, 2);
  assert.equal(d.config.valueDim, 8);
  assert.ok(d.config.pageSize >= 1, 'page size resolved to the library default');
  d.free();

  const bad = [
    [undefined, 'E_TYPE', 'config'],
    [null, 'E_TYPE', 'config'],
    [{ heads: 0, headDim: 8 }, 'E_HEADS', 'config.heads'],
    [{ heads: 6, kvHeads: 4, headDim: 8 }, 'E_HEADS', 'config.kvHeads'],
    [{ heads: 1025, headDim: 8 }, 'E_HEADS', 'config.heads'],
    [{ heads: 1, headDim: 0 }, 'E_DIM', 'config.headDim'],
    [{ heads: 1, headDim: 513 }, 'E_DIM', 'config.headDim'],
    [{ heads: 1, headDim: 8, valueDim: 600 }, 'E_DIM', 'config.valueDim'],
    [{ heads: 1, headDim: 8, pageSize: 5000 }, 'E_PAGE', 'config.pageSize'],
    [{ heads: 1, headDim: 8, pageSize: 0 }, 'E_PAGE', 'config.pageSize'],
    [{ heads: 1, headDim: 8, dtype: 'f16' }, 'E_DTYPE', 'config.dtype'],
    [{ heads: '4', headDim: 8 }, 'E_TYPE', 'config.heads'],
    [{ heads: 1.5, headDim: 8 }, 'E_TYPE', 'config.heads'],
    [{ heads: 1, headDim: 8, kv_heads: 1 }, 'E_OPTION', 'config.kv_heads'],
  ];
  for (const [config, code, argument] of bad) {
    assert.throws(() => vs.createCache(config), (e) => {
      assert.ok(e instanceof VashistaError, `${JSON.stringify(config)}: ${e}`);
      assert.equal(e.code, code, JSON.stringify(config));
      assert.equal(e.argument, argument, JSON.stringify(config));
      assert.ok(e.message.includes(argument), `message names ${argument}: ${e.message}`);
      return true;
    });
  }
});

test('append, length, truncate, info', () => {
  const shape = { heads: 4, kvHeads: 2, headDim: 16, valueDim: 8, pageSize: 8 };
  const c = vs.createCache(shape);
  const r = rng(1);
  const a = randomTokens(r, 20, shape);
  c.append(a.keys, a.values);
  assert.equal(c.length, 20);
  c.append(new Float32Array(0), new Float32Array(0));
  assert.equal(c.length, 20);
  const b = randomTokens(r, 5, shape);
  c.append(b.keys, b.values);
  assert.equal(c.length, 25);
  let info = c.info();
  assert.equal(info.length, 25);
  assert.equal(info.pages, 4);
  assert.equal(info.pageSize, 8);
  assert.equal(info.kvHeads, 2);
  assert.ok(info.kvBytes >= 25 * 2 * (16 + 8) * 4);
  assert.ok(info.summaryBytes > 0 && info.reservedBytes >= info.kvBytes + info.summaryBytes);

  // truncate then append again equals appending the same tokens from scratch
  c.truncate(13);
  assert.equal(c.length, 13);
  info = c.info();
  assert.equal(info.pages, 2);
  const fresh = vs.createCache(shape);
  fresh.append(a.keys.subarray(0, 13 * 2 * 16), a.values.subarray(0, 13 * 2 * 8));
  const q = r.normals(4 * 16);
  assert.ok(bitEqual(c.decodeDense(q), fresh.decodeDense(q)));
  assert.ok(bitEqual(c.decode(q, { pages: 1, candidates: 4 }).output, fresh.decode(q, { pages: 1, candidates: 4 }).output));
  c.truncate(0);
  assert.equal(c.length, 0);
  c.free();
  fresh.free();
});

test('decodeDense matches a float64 reference (GQA, odd dims)', () => {
  for (const shape of [
    { heads: 1, kvHeads: 1, headDim: 1, valueDim: 1, pageSize: 1 },
    { heads: 4, kvHeads: 1, headDim: 13, valueDim: 7, pageSize: 3 },
    { heads: 6, kvHeads: 3, headDim: 64, valueDim: 80, pageSize: 32 },
  ]) {
    const r = rng(shape.headDim);
    const T = 333;
    const { keys, values } = randomTokens(r, T, shape);
    const q = r.normals(shape.heads * shape.headDim);
    const c = vs.createCache(shape);
    c.append(keys, values);
    for (const scale of [0, 0.3]) {
      const out = c.decodeDense(q, { scale });
      assert.ok(out instanceof Float32Array);
      assert.equal(out.length, shape.heads * shape.valueDim);
      const ref = referenceAttention({ keys, values, T, heads: shape.heads, kvHeads: shape.kvHeads, d: shape.headDim, dv: shape.valueDim, q, scale });
      const rel = l2diff(out, ref) / l2(ref);
      assert.ok(rel < 1e-5, `${JSON.stringify(shape)} scale ${scale}: relative error ${rel}`);
    }
    c.free();
  }
});

test('decode: result shape, diagnostics fields and certificate', () => {
  const shape = { heads: 4, kvHeads: 2, headDim: 32, valueDim: 16, pageSize: 16 };
  const r = rng(5);
  const T = 2000;
  const { keys, values } = randomTokens(r, T, shape);
  const q = r.normals(shape.heads * shape.headDim, 2);
  const c = vs.createCache(shape);
  c.append(keys, values);
  const ref = referenceAttention({ keys, values, T, heads: 4, kvHeads: 2, d: 32, dv: 16, q });
  const res = c.decode(q, { pages: 4, candidates: 32, sinkPages: 1, recentPages: 1, solver: 'softmax' });
  assert.deepEqual(Object.keys(res).sort(), ['diagnostics', 'output']);
  assert.ok(res.output instanceof Float32Array);
  assert.equal(res.output.length, 4 * 16);
  assert.equal(res.diagnostics.length, 4);
  const fields = ['routedPages', 'candidates', 'fallback', 'iterations', 'effectiveSupport', 'gap', 'leakageBound', 'rhoCert', 'errorBound', 'outputNorm', 'residual', 'faceSize'];
  for (let h = 0; h < 4; h++) {
    const d = res.diagnostics[h];
    assert.deepEqual(Object.keys(d), fields);
    assert.equal(d.fallback, 'none');
    assert.ok(d.routedPages >= 1 && d.routedPages <= 6, `routed ${d.routedPages}`);
    assert.ok(d.candidates >= 1 && d.candidates <= 32, `candidates ${d.candidates}`);
    assert.equal(d.iterations, 1);
    assert.equal(d.residual, 0);
    assert.equal(d.faceSize, d.candidates, 'softmax: the face is the candidate set');
    assert.ok(d.effectiveSupport >= 1 && d.effectiveSupport <= d.candidates + 1e-3);
    assert.ok(d.rhoCert >= 0 && d.rhoCert <= 1);
    assert.ok(d.leakageBound >= 0 && d.leakageBound <= 1);
    assert.ok(Math.abs(d.outputNorm - l2(res.output, h * 16, h * 16 + 16)) <= 1e-5 * (1 + d.outputNorm));
    const err = l2diff(res.output, ref, h * 16, h * 16 + 16);
    assert.ok(err <= d.errorBound, `head ${h}: error ${err} > bound ${d.errorBound}`);
  }
  // default options = vs.decodeDefaults
  const a = c.decode(q);
  const b = c.decode(q, { ...vs.decodeDefaults });
  assert.ok(bitEqual(a.output, b.output));
  assert.deepEqual(a.diagnostics, b.diagnostics);
  // decoding is deterministic
  assert.ok(bitEqual(c.decode(q, { pages: 4, candidates: 32 }).output, res.output));
  c.free();
});

test('decode: enough pages and candidates reproduce dense attention', () => {
  const shape = { heads: 2, kvHeads: 1, headDim: 24, valueDim: 24, pageSize: 8 };
  const r = rng(8);
  const T = 200;
  const { keys, values } = randomTokens(r, T, shape);
  const q = r.normals(48);
  const c = vs.createCache(shape);
  c.append(keys, values);
  const res = c.decode(q, { pages: 1000, candidates: 1000 });
  const dense = c.decodeDense(q);
  for (const d of res.diagnostics) {
    assert.equal(d.candidates, T);
    assert.equal(d.gap, Infinity);
    assert.equal(d.rhoCert, 0);
  }
  const rel = l2diff(res.output, dense) / l2(dense);
  assert.ok(rel < 1e-6, `relative difference ${rel}`);
  c.free();
});

test('decode: tolerance widens or falls back, and the bound then meets it', () => {
  const shape = { heads: 2, kvHeads: 2, headDim: 64, valueDim: 64, pageSize: 16 };
  const wl = vs.workload({ kind: 'uniform', T: 4096, heads: 2, headDim: 64, seed: 3 });
  const c = vs.createCache(shape);
  wl.appendTo(c);
  const q = wl.queries();
  const loose = c.decode(q, { pages: 2, candidates: 16 });
  const tight = c.decode(q, { pages: 2, candidates: 16, tolerance: 1e-4, widen: 2 });
  for (let h = 0; h < 2; h++) {
    assert.equal(loose.diagnostics[h].fallback, 'none');
    const d = tight.diagnostics[h];
    assert.ok(['widened', 'dense'].includes(d.fallback), d.fallback);
    if (d.fallback === 'widened') assert.ok(d.errorBound <= 1e-4 * d.outputNorm);
  }
  c.free();
});

test('results are copies that survive later calls and memory growth', () => {
  const shape = { heads: 1, kvHeads: 1, headDim: 8, valueDim: 8 };
  const r = rng(2);
  const c = vs.createCache(shape);
  const t = randomTokens(r, 10, shape);
  c.append(t.keys, t.values);
  const q = r.normals(8);
  const out = c.decodeDense(q);
  const keep = out.slice();
  assert.equal(out.byteOffset, 0);
  assert.equal(out.buffer.byteLength, out.byteLength, 'not a view into wasm memory');
  out.fill(7); // writing to a result cannot touch the cache
  assert.ok(bitEqual(c.decodeDense(q), keep));
  const big = vs.createCache({ heads: 1, headDim: 512 });
  const before = vs.memoryBytes;
  const chunk = randomTokens(r, 4096, { kvHeads: 1, headDim: 512, valueDim: 512 });
  while (vs.memoryBytes === before) big.append(chunk.keys, chunk.values);
  assert.ok(bitEqual(keep, c.decodeDense(q)));
  assert.equal(keep.length, 8);
  big.free();
  c.free();
});

test('free, Symbol.dispose and the FinalizationRegistry safety net', async () => {
  const c = vs.createCache({ heads: 1, headDim: 4 });
  c.free();
  assert.throws(() => c.free(), { code: 'E_FREED', argument: 'cache' });
  // dispose after free is a no-op
  assert.equal(typeof Symbol.dispose, 'symbol', 'Node >= 20 has Symbol.dispose');
  c[Symbol.dispose]();
  const d = vs.createCache({ heads: 1, headDim: 4 });
  d[Symbol.dispose]();
  assert.equal(d.freed, true);
  assert.throws(() => d.append(new Float32Array(4), new Float32Array(4)), { code: 'E_FREED' });
  // leaked caches are reclaimed: create many big ones without freeing; with
  // the registry freeing them, memory stops growing.
  {
    v8.setFlagsFromString('--expose_gc');
    const gc = vm.runInNewContext('gc');
    const inst = await init();
    const shape = { heads: 1, headDim: 256 };
    const tok = randomTokens(rng(4), 8192, { kvHeads: 1, headDim: 256, valueDim: 256 }); // 16 MiB
    for (let i = 0; i < 40; i++) {
      const leak = inst.createCache(shape);
      leak.append(tok.keys, tok.values);
      if (i % 4 === 3) {
        gc();
        await new Promise((resolve) => setTimeout(resolve, 0));
      }
    }
    // 40 x 16 MiB leaked without the registry; a few chunks with it
    assert.ok(inst.memoryBytes < 20 * 16 * 1024 * 1024, `memory ${inst.memoryBytes}: leaked caches were not freed`);
  }
});

test('caches of one instance cannot be used with another', async () => {
  const other = await init();
  const c = other.createCache({ heads: 1, headDim: 4 });
  const wl = vs.workload({ kind: 'uniform', T: 16, headDim: 4 });
  assert.throws(() => wl.appendTo(c), { code: 'E_FOREIGN' });
  assert.throws(() => wl.appendTo({}), { code: 'E_TYPE' });
  c.free();
});

test('workloads: deterministic, chunkable, shaped, with planted positions', () => {
  const opts = { kind: 'needle', T: 3000, heads: 4, kvHeads: 2, headDim: 32, valueDim: 16, needles: 3, margin: 10, seed: 42 };
  const a = vs.workload(opts);
  const b = vs.workload(opts);
  assert.deepEqual({ ...a.config }, { ...opts, face: a.config.face, seed: 42n });
  const whole = a.tokens(0, 3000);
  assert.equal(whole.keys.length, 3000 * 2 * 32);
  assert.equal(whole.values.length, 3000 * 2 * 16);
  const part = b.tokens(1000, 500);
  assert.ok(bitEqual(part.keys, whole.keys.subarray(1000 * 64, 1500 * 64)), 'chunks equal the whole');
  assert.ok(bitEqual(part.values, whole.values.subarray(1000 * 32, 1500 * 32)));
  assert.ok(bitEqual(a.queries(0), b.queries(0)));
  assert.equal(a.queries(0).length, 4 * 32);
  assert.ok(!bitEqual(a.queries(0), a.queries(1)), 'steps give fresh queries');
  const m = a.marked();
  assert.ok(m instanceof Uint32Array);
  assert.equal(m.length, 3);
  for (let i = 1; i < m.length; i++) assert.ok(m[i] > m[i - 1]);
  assert.ok(m[m.length - 1] < 3000);
  const other = vs.workload({ ...opts, seed: 43n });
  assert.ok(!bitEqual(other.tokens(0, 10).keys, whole.keys.subarray(0, 10 * 64)));
  assert.equal(vs.workload({ kind: 'uniform', T: 10 }).marked().length, 0);
  assert.equal(vs.workload({ kind: 'gap', T: 100, face: 5 }).marked().length, 5);
  // appendTo equals append(tokens())
  const c1 = vs.createCache({ heads: 4, kvHeads: 2, headDim: 32, valueDim: 16 });
  const c2 = vs.createCache({ heads: 4, kvHeads: 2, headDim: 32, valueDim: 16 });
  a.appendTo(c1);
  c2.append(whole.keys, whole.values);
  assert.equal(c1.length, 3000);
  assert.ok(bitEqual(c1.decodeDense(a.queries()), c2.decodeDense(a.queries())));
  c1.free();
  c2.free();
  // validation
  assert.throws(() => vs.workload({ kind: 'zipf' }), { code: 'E_OPTION', argument: 'options.kind' });
  assert.throws(() => vs.workload({ kind: 'gap', seed: -1 }), { code: 'E_OPTION', argument: 'options.seed' });
  assert.throws(() => vs.workload({ kind: 'gap', seed: 2n ** 64n }), { code: 'E_OPTION' });
  assert.throws(() => vs.workload({ kind: 'gap', T: 0 }), { code: 'E_OPTION', argument: 'options.T' });
  assert.throws(() => vs.workload({ kind: 'gap', heads: 3, kvHeads: 2 }), { name: 'VashistaError' });
  assert.throws(() => a.tokens(2999, 2), { code: 'E_LENGTH' });
  assert.throws(() => a.tokens(-1, 2), { code: 'E_OPTION' });
});
