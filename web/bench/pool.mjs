#!/usr/bin/env node
/*
 * npm run bench:pool: decode times of one cache (vashista, the calling thread)
 * against vashista/pool with 1, 2... workers on the same workload, through
 * the public API (inputs copied in, results copied out, for the pool also
 * posted to and from the workers), and the speedups.
 *
 * Method (as bench/bench.mjs): per T, the seeded workload's tokens; 16 query
 * steps, rep i uses step i % 16; one warm-up decode, then repetitions until at
 * least --reps and --min-time seconds (or >= 5 reps and 5 s); medians
 * reported. One configuration at a time holds the cache (the single cache is
 * freed, each pool closed, before the next). The pool is filled in appends of
 * 4096 tokens; the first query's dense and sparse results of every pool are
 * compared bit for bit with the single cache's (bit_identical).
 *
 * Usage: node bench/pool.mjs [--T 32K,128K] [--heads 32 --kv-heads 8 --d 128 --dv 128]
 *          [--workers 1,2] [--workload needle|gap|uniform] [--page-size S]
 *          [--pages P --candidates Kc --routing flat|tree --solver softmax|eg|fw]
 *          [--reps 15] [--min-time 0.3] [--json]
 *
 * Memory: a full cache is T * kvHeads * (d + dv) * 4 bytes (1 GiB at 128K,
 * 8 KV heads, d = dv = 128); a pool splits it over its workers.
 */
import { availableParallelism } from 'node:os';
import { performance } from 'node:perf_hooks';

import { init } from '../src/index.js';
import { createPool } from '../src/pool.js';
import { endProgress, parseCounts, printJson, progress, runMain, timeRepsAsync } from './common.mjs';

const STEPS = 16;
const CHUNK = 4096;

function bitEqual(a, b) {
  if (a.length !== b.length) return false;
  const x = new Uint32Array(a.buffer, a.byteOffset, a.length);
  const y = new Uint32Array(b.buffer, b.byteOffset, b.length);
  return x.every((v, i) => v === y[i]);
}

const USAGE =
  'usage: npm run bench:pool -- [--T 32K,128K] [--heads 32 --kv-heads 8 --d 128 --dv 128] [--workers 1,2]\n' +
  '  [--workload needle|gap|uniform] [--page-size S] [--pages P --candidates Kc --routing flat|tree --solver softmax|eg|fw]\n' +
  '  [--reps 15] [--min-time 0.3] [--json]';

async function main(a) {
  const vs = await init();
  const Ts = parseCounts(a.T ?? '32K,128K');
  const heads = Number(a.heads ?? 32);
  const kvHeads = Number(a['kv-heads'] ?? 8);
  const d = Number(a.d ?? 128);
  const dv = Number(a.dv ?? d);
  const workerCounts = (a.workers ?? '1,2').split(',').map(Number);
  const kind = a.workload ?? 'needle';
  const minReps = Number(a.reps ?? 15);
  const minTime = Number(a['min-time'] ?? 0.3);
  const shape = { heads, kvHeads, headDim: d, valueDim: dv, ...(a['page-size'] ? { pageSize: Number(a['page-size']) } : {}) };
  const options = {};
  for (const [flag, key] of [['pages', 'pages'], ['candidates', 'candidates']]) if (a[flag] !== undefined) options[key] = Number(a[flag]);
  for (const key of ['routing', 'solver']) if (a[key] !== undefined) options[key] = a[key];

  const results = [];
  let pageSize = 0;
  for (const T of Ts) {
    const wl = vs.workload({ kind, T, heads, kvHeads, headDim: d, valueDim: dv });
    const qs = Array.from({ length: STEPS }, (_, s) => wl.queries(s));
    const runs = [];

    /* one cache, on this thread */
    progress(`T=${T}: filling one cache`);
    let t0 = performance.now();
    const cache = vs.createCache(shape);
    wl.appendTo(cache);
    const fillCache = (performance.now() - t0) / 1e3;
    pageSize = cache.config.pageSize;
    const refDense = cache.decodeDense(qs[0]);
    const refSparse = cache.decode(qs[0], options);
    progress(`T=${T}: timing one cache`);
    const cDense = await timeRepsAsync((i) => cache.decodeDense(qs[i % STEPS]), null, minReps, minTime);
    const cSparse = await timeRepsAsync((i) => cache.decode(qs[i % STEPS], options), null, minReps, minTime);
    cache.free();
    runs.push({ label: 'cache', workers: 0, fill_s: fillCache, dense_ms: cDense.medianMs, sparse_ms: cSparse.medianMs,
      dense_min_ms: cDense.minMs, sparse_min_ms: cSparse.minMs, dense_reps: cDense.reps, sparse_reps: cSparse.reps });

    let identical = true;
    for (const w of workerCounts) {
      progress(`T=${T}: filling a pool of ${w}`);
      t0 = performance.now();
      const pool = await createPool({ ...shape, workers: w });
      try {
        for (let s = 0; s < T; s += CHUNK) {
          const { keys, values } = wl.tokens(s, Math.min(CHUNK, T - s));
          await pool.append(keys, values);
        }
        const fill = (performance.now() - t0) / 1e3;
        const dense = await pool.decodeDense(qs[0]);
        const sparse = await pool.decode(qs[0], options);
        identical &&= bitEqual(dense, refDense) && bitEqual(sparse.output, refSparse.output) && JSON.stringify(sparse.diagnostics) === JSON.stringify(refSparse.diagnostics);
        progress(`T=${T}: timing a pool of ${w}`);
        const pDense = await timeRepsAsync((i) => pool.decodeDense(qs[i % STEPS]), null, minReps, minTime);
        const pSparse = await timeRepsAsync((i) => pool.decode(qs[i % STEPS], options), null, minReps, minTime);
        runs.push({ label: `pool ${w}`, workers: w, fill_s: fill, dense_ms: pDense.medianMs, sparse_ms: pSparse.medianMs,
          dense_min_ms: pDense.minMs, sparse_min_ms: pSparse.minMs, dense_reps: pDense.reps, sparse_reps: pSparse.reps });
      } finally {
        await pool.close();
      }
    }
    for (const r of runs) {
      r.dense_speedup = runs[0].dense_ms / r.dense_ms;
      r.sparse_speedup = runs[0].sparse_ms / r.sparse_ms;
    }
    results.push({ T, cache_bytes: T * kvHeads * (d + dv) * 4, bit_identical: identical, runs });
  }
  endProgress();

  const report = {
    command: 'bench:pool', runtime: `node ${process.versions.node}`, version: vs.version, isa: vs.isa, cpus: availableParallelism(),
    workload: { kind, heads, kv_heads: kvHeads, head_dim: d, value_dim: dv, page_size: pageSize },
    options: { ...vs.decodeDefaults, ...options }, min_reps: minReps, min_time_s: minTime, results,
  };
  if (a.json) return printJson(report);
  const o = report.options;
  console.log(`vashista bench:pool (node ${process.versions.node}, ${report.cpus} cpus): isa ${vs.isa}, workload ${kind}, heads ${heads}/${kvHeads}, d ${d}, dv ${dv}, page ${pageSize}`);
  console.log(`sparse: solver ${o.solver}, routing ${o.routing}, pages ${o.pages}, candidates ${o.candidates}; times are medians (ms) through the JS API; speedup vs one cache`);
  const p = (s, w) => String(s).padStart(w);
  console.log(`\n${p('T', 8)} ${p('cache', 9)} ${p('run', 8)} ${p('fill s', 8)} ${p('dense ms', 10)} ${p('speedup', 8)} ${p('sparse ms', 10)} ${p('speedup', 8)} ${p('bit-identical', 14)}`);
  for (const r of results)
    for (const x of r.runs)
      console.log(
        `${p(r.T, 8)} ${p(`${(r.cache_bytes / 2 ** 20).toFixed(0)} MiB`, 9)} ${p(x.label, 8)} ${p(x.fill_s.toFixed(2), 8)} ${p(x.dense_ms.toFixed(2), 10)} ${p(`${x.dense_speedup.toFixed(2)}x`, 8)} ${p(x.sparse_ms.toFixed(3), 10)} ${p(`${x.sparse_speedup.toFixed(2)}x`, 8)} ${p(x.workers ? (r.bit_identical ? 'yes' : 'NO') : '', 14)}`,
      );
  console.log('\nfill s: appending every token (cache: the workload generated in place; pools: generated here, split and posted in 4096-token appends).');
}

runMain('bench:pool', main, { usage: USAGE });
