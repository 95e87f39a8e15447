// The terminal summary of the main job: one long context, decoded densely
// and sparsely by the WebAssembly package, in this process, offline.
//
//   node demo/summary.mjs [--T 131072] [--d 128] [--json]
//
// Prints, for the seed paper's configuration (S=16, P=64, Kc=128) and for
// the library's defaults: decode time dense vs sparse (medians), speedup,
// relative error against this build's dense decode, the certificate
// (rho_cert, error bound) and needle recall.
import { init } from '../web/src/index.js';

const args = process.argv.slice(2);
const arg = (name, dflt) => {
  const i = args.indexOf(name);
  return i >= 0 ? Number(args[i + 1]) : dflt;
};
const T = arg('--T', 131072);
const d = arg('--d', 128);
const json = args.includes('--json');

const median = (xs) => xs.slice().sort((a, b) => a - b)[xs.length >> 1];
function time(fn, minReps, minMs) {
  const ts = [];
  const start = performance.now();
  while (ts.length < minReps || performance.now() - start < minMs) {
    const t0 = performance.now();
    fn();
    ts.push(performance.now() - t0);
  }
  return median(ts);
}
const norm = (x) => Math.sqrt(x.reduce((s, v) => s + v * v, 0));
const diffNorm = (a, b) => Math.sqrt(a.reduce((s, v, i) => s + (v - b[i]) ** 2, 0));

const vs = await init();
const log = (...m) => { if (!json) console.log(...m); };
log(`vashista ${vs.version}, wasm (${vs.isa}), offline: needle workload, T = ${T}, d = dv = ${d}, 1 KV head`);

const configs = [
  { name: 'seed S=16 P=64 Kc=128', pageSize: 16, pages: 64, candidates: 128 },
  { name: 'default', pageSize: undefined, pages: undefined, candidates: undefined },
];
const rows = [];
for (const cfg of configs) {
  const wl = vs.workload({ kind: 'needle', T, headDim: d, valueDim: d, seed: 1 });
  const cache = vs.createCache({ heads: 1, kvHeads: 1, headDim: d, valueDim: d, pageSize: cfg.pageSize });
  const t0 = performance.now();
  for (let t = 0; t < T; t += 8192) wl.appendTo(cache, t, Math.min(8192, T - t));
  const fillMs = performance.now() - t0;
  const q = wl.queries(0);
  const opts = { pages: cfg.pages, candidates: cfg.candidates };
  const dense = cache.decodeDense(q);
  const r = cache.decode(q, opts);
  const needles = wl.marked();
  const cand = new Set(cache.lastCandidates(0));
  const recall = needles.filter((n) => cand.has(n)).length / needles.length;
  const denseMs = time(() => cache.decodeDense(q), 5, 300);
  const sparseMs = time(() => cache.decode(q, opts), 20, 300);
  const dg = r.diagnostics[0];
  rows.push({
    config: cfg.name, pageSize: cache.config.pageSize, T, fillMs,
    denseMs, sparseMs, speedup: denseMs / sparseMs,
    relError: diffNorm(r.output, dense) / norm(dense),
    rhoCert: dg.rhoCert, errorBound: dg.errorBound / dg.outputNorm,
    routedPages: dg.routedPages, candidates: dg.candidates, needleRecall: recall,
  });
  cache.free();
}
if (json) {
  console.log(JSON.stringify({ version: vs.version, isa: vs.isa, rows }, null, 2));
} else {
  const pad = (s, n) => String(s).padStart(n);
  log(`\n${'configuration'.padEnd(24)}${pad('dense ms', 10)}${pad('sparse ms', 11)}${pad('speedup', 9)}` +
      `${pad('rel err', 10)}${pad('rho_cert', 10)}${pad('bound', 10)}${pad('recall', 8)}`);
  for (const r of rows)
    log(`${r.config.padEnd(24)}${pad(r.denseMs.toFixed(3), 10)}${pad(r.sparseMs.toFixed(4), 11)}` +
        `${pad(r.speedup.toFixed(1) + 'x', 9)}${pad(r.relError.toExponential(1), 10)}` +
        `${pad(r.rhoCert.toExponential(1), 10)}${pad(r.errorBound.toExponential(1), 10)}` +
        `${pad((100 * r.needleRecall).toFixed(0) + '%', 8)}`);
  log('\nrel err: ||sparse - dense|| / ||dense||; bound: the certified error bound / ||out|| ' +
      '(the certificate is loose on this workload: page box bounds in d = 128 sit well above the ' +
      'background scores; see README).');
}
