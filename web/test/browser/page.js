// Runs inside headless Chromium (test/browser.test.js): the package as a
// browser loads it (default fetch + compileStreaming from import.meta.url,
// and the other wasm sources), then posts its findings back to the server.
import { init, VashistaError } from '../../src/index.js';

async function run() {
  const out = {};
  const vs = await init();
  out.isa = vs.isa;
  out.version = vs.version;
  const wl = vs.workload({ kind: 'needle', T: 4096, heads: 2, kvHeads: 1, headDim: 64, valueDim: 64, seed: 5 });
  const cache = vs.createCache({ heads: 2, kvHeads: 1, headDim: 64, valueDim: 64 });
  const { keys, values } = wl.tokens(0, 4096);
  cache.append(keys, values);
  const q = wl.queries(0);
  const dense = cache.decodeDense(q);
  const r = cache.decode(q, { pages: 8, candidates: 64 });
  let err = 0;
  for (let h = 0; h < 2; h++) {
    let e = 0;
    for (let j = h * 64; j < h * 64 + 64; j++) e += (dense[j] - r.output[j]) ** 2;
    err = Math.max(err, Math.sqrt(e) - r.diagnostics[h].errorBound);
  }
  out.boundHolds = err <= 1e-6;
  out.length = cache.length;
  out.needlesFound = Array.from(wl.marked()).every((t) => cache.lastCandidates(0).includes(t));
  out.dense0 = Array.from(dense.slice(0, 4));
  cache.free();
  try {
    cache.free();
  } catch (e) {
    out.doubleFree = e instanceof VashistaError ? e.code : String(e);
  }
  // other sources: a promise of a Response (streaming), a Response without the
  // wasm MIME type (fallback), bytes, a compiled module
  const url = new URL('../../dist/vashista.wasm', import.meta.url);
  const sources = {
    fetchPromise: fetch(url),
    noMime: fetch('/nomime/vashista.wasm'),
    bytes: await (await fetch(url)).arrayBuffer(),
    module: await WebAssembly.compileStreaming(fetch(url)),
    url,
  };
  out.sources = {};
  for (const [name, wasm] of Object.entries(sources)) {
    const other = await init({ wasm });
    const c = other.createCache({ heads: 2, kvHeads: 1, headDim: 64, valueDim: 64 });
    c.append(keys, values);
    const d = c.decodeDense(q);
    out.sources[name] = d.every((v, i) => Object.is(v, dense[i]));
    c.free();
  }
  return out;
}

run()
  .then((result) => ({ ok: true, result }))
  .catch((e) => ({ ok: false, error: `${e?.name}: ${e?.message}\n${e?.stack}` }))
  .then((body) => fetch('/result', { method: 'POST', body: JSON.stringify(body) }));
