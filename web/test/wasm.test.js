// The built module itself (wasm/check-wasm.mjs decodes it): SIMD128 code is
// present and in use, every public function is exported, the memory can grow
// to 4 GiB, and the only imports are the ones the loader provides.
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { test } from 'node:test';

import { analyzeWasm } from '../../wasm/check-wasm.mjs';
import { init } from '../src/index.js';

const bytes = readFileSync(new URL('../dist/vashista.wasm', import.meta.url));
const info = analyzeWasm(bytes);

test('the module holds SIMD128 instructions and uses the wasmsimd kernels', async () => {
  assert.ok(info.simd > 0, 'no SIMD instructions');
  assert.ok(info.functionsWithSimd > 0);
  // cross-check the decoder against the engine's own view of the module
  const mod = await WebAssembly.compile(bytes);
  assert.deepEqual(
    info.imports.map((i) => `${i.module}.${i.name}`).sort(),
    WebAssembly.Module.imports(mod).map((i) => `${i.module}.${i.name}`).sort(),
  );
  assert.deepEqual(info.exports.map((e) => e.name).sort(), WebAssembly.Module.exports(mod).map((e) => e.name).sort());
  assert.equal((await init()).isa, 'wasmsimd');
});

test('imports: only what the loader provides', () => {
  const allowed = new Set([
    'env.emscripten_notify_memory_growth',
    'wasi_snapshot_preview1.environ_get',
    'wasi_snapshot_preview1.environ_sizes_get',
    'wasi_snapshot_preview1.proc_exit',
    'wasi_snapshot_preview1.fd_write',
    'wasi_snapshot_preview1.fd_close',
    'wasi_snapshot_preview1.fd_seek',
    'wasi_snapshot_preview1.clock_time_get',
  ]);
  for (const i of info.imports) assert.ok(allowed.has(`${i.module}.${i.name}`), `unexpected import ${i.module}.${i.name}`);
});

test('exports: every VS_API function of the public headers, malloc, free, memory', () => {
  const exported = new Set(info.exports.map((e) => e.name));
  const headers = ['../../src/include/vashista.h', '../../src/workloads.h'];
  let count = 0;
  for (const h of headers) {
    const text = readFileSync(new URL(h, import.meta.url), 'utf8');
    for (const m of text.matchAll(/^VS_API\b[^(]*?\b([A-Za-z_]\w*)\s*\(/gm)) {
      assert.ok(exported.has(m[1]), `${m[1]} is not exported`);
      count++;
    }
  }
  assert.ok(count >= 20, `only ${count} API functions found in the headers`);
  for (const name of ['malloc', 'free', 'memory', 'vs_wasm_abi']) assert.ok(exported.has(name), name);
});

test('memory: grows up to 4 GiB', () => {
  assert.ok(info.memory, 'no memory');
  assert.equal(info.memory.max, 65536);
  assert.equal(info.memory.exported, true);
  assert.equal(info.memory.imported, false);
});
