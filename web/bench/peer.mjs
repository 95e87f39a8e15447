#!/usr/bin/env node
/*
 * npm run bench:peer: vashista's dense wasm decode against a general-purpose
 * runtime's attention on the same input, in one run, as a ratio
 * (DESIGN target: ours >= 2.5x faster).
 *
 * The peer is TensorFlow.js with its WebAssembly backend (devDependencies
 * @tensorflow/tfjs-core and @tensorflow/tfjs-backend-wasm, never runtime
 * dependencies of the package). Its .wasm binary is read from node_modules
 * (setWasmPaths with the package's own directory): no network. In Node the
 * backend runs single-threaded (tfjs turns threads off in Node) and picks the
 * SIMD binary when the engine has SIMD128, so it is single-threaded SIMD like
 * vashista's module; the binary it read is reported.
 *
 * Per decode call, for one query head over T tokens, the peer does what a
 * general-purpose runtime without a paged KV cache does: it creates tensors
 * from the Float32Arrays K [T, d], V [T, dv] and q [1, d] (the copy into its
 * heap is part of the call), then three ops, s = matMul(q, K^T) * scale,
 * p = softmax(s), o = matMul(p, V), reads o back (dataSync) and disposes every
 * tensor. Ours is cache.decodeDense(q, { scale }) on a cache that holds the
 * same K and V (appended once, untimed), scale = 1/sqrt(d) for both.
 *
 * Data: vashista's seeded workload generator (as npm run bench), 16 query
 * steps; rep i uses step i % 16. Timing: bench.mjs's rule (one warm-up call,
 * then repetitions until at least --reps and 0.3 s, at most ~5 s; medians).
 * By default each side runs its repetitions as one block (as bench.mjs does);
 * --interleave alternates peer and ours call by call instead, so both see the
 * same machine state. Numerics (untimed): every one of the 16 steps is decoded
 * by both and compared (||peer - ours|| / ||ours||, max over steps), and each
 * against a float64 reference. For reference only (not the target), the
 * peer's 3 ops are also timed on K, V tensors created once (only q per call).
 *
 * Usage: node bench/peer.mjs [--T 4K,16K,32K,128K,256K] [--d 128 --dv 128]
 *          [--workload needle|gap|uniform] [--seed N] [--reps 15]
 *          [--min-seconds 0.3] [--interleave] [--isa wasmsimd|scalar] [--json]
 *
 * As a module: loadPeer() loads the peer (once per process) and tells which
 * binary it read; peerAttention(peer.tf, ...) is the peer's timed call;
 * referenceAttention64 the float64 reference; runPeer(args) the benchmark.
 */
import { createRequire } from 'node:module';
import { basename, dirname } from 'node:path';
import { performance } from 'node:perf_hooks';

import { init } from '../src/index.js';
import { endProgress, enoughReps, parseArgs as parseCliArgs, parseCounts, printJson, progress, repStats, runIfMain, timeReps } from './common.mjs';

const STEPS = 16;
const require = createRequire(import.meta.url);

let peerPromise = null;

/**
 * Loads TensorFlow.js with the wasm backend from node_modules, once per
 * process. Resolves to { tf, wasmBackend, backend, binary, binaryPath,
 * wasmReads, simd, threads, threadsCount, version }: binary is the .wasm file
 * the backend read (tfjs-backend-wasm.wasm, -simd.wasm or -threaded-simd.wasm).
 * Throws if the backend cannot be loaded (e.g. the devDependencies are not installed).
 */
export function loadPeer() {
  peerPromise ??= (async () => {
    let tf;
    let wasmBackend;
    try {
      /* CommonJS main entries (the Node builds); the backend requires the same tfjs-core */
      tf = require('@tensorflow/tfjs-core');
      wasmBackend = require('@tensorflow/tfjs-backend-wasm');
    } catch (e) {
      throw new Error(`the peer (TensorFlow.js wasm backend) is not installed: run npm install in web/ (${e.message})`);
    }
    const dir = dirname(require.resolve('@tensorflow/tfjs-backend-wasm'));
    /* a file-path prefix: Emscripten reads it with fs in Node, no fetch */
    wasmBackend.setWasmPaths(`${dir}/`);
    /* the binary it reads: Emscripten's Node loader uses fs.readFileSync (fs.readFile as a fallback) */
    const fs = require('node:fs');
    const wasmReads = [];
    const spy = (name) => {
      const orig = fs[name];
      fs[name] = function (p, ...rest) {
        if (/\.wasm$/.test(String(p))) wasmReads.push(String(p));
        return orig.call(this, p, ...rest);
      };
      return () => {
        fs[name] = orig;
      };
    };
    const restore = [spy('readFileSync'), spy('readFile')];
    /* Emscripten's Node glue adds process handlers that rethrow every uncaught
       error and rejection; they would change how this process (a test runner,
       the benchmark) reports errors: remove them, Node's defaults apply */
    const events = ['uncaughtException', 'unhandledRejection'];
    const before = events.map((ev) => process.listeners(ev));
    let ok;
    try {
      ok = await tf.setBackend('wasm');
      await tf.ready();
    } finally {
      for (const r of restore) r();
      events.forEach((ev, i) => {
        for (const l of process.listeners(ev)) if (!before[i].includes(l)) process.removeListener(ev, l);
      });
    }
    if (!ok || tf.getBackend() !== 'wasm') throw new Error('the TensorFlow.js wasm backend did not initialize');
    const simd = Boolean(await tf.env().getAsync('WASM_HAS_SIMD_SUPPORT'));
    const threads = Boolean(await tf.env().getAsync('WASM_HAS_MULTITHREAD_SUPPORT'));
    const binaryPath = wasmReads.length ? wasmReads[wasmReads.length - 1] : null;
    return {
      tf,
      wasmBackend,
      backend: tf.getBackend(),
      binaryPath,
      binary: binaryPath ? basename(binaryPath) : null,
      wasmReads,
      packageDir: dir,
      simd,
      threads,
      threadsCount: wasmBackend.getThreadsCount(),
      version: { core: tf.version_core, wasm: wasmBackend.version_wasm },
    };
  })();
  return peerPromise;
}

/**
 * The peer's attention for one query head, as a general-purpose runtime runs
 * it: tensors created from K [T, d], V [T, dv], q [1, d] (copied per call),
 * s = matMul(q, K, false, true) * scale, p = softmax(s), o = matMul(p, V),
 * o read back; every tensor disposed. Returns Float32Array [dv].
 */
export function peerAttention(tf, K, V, q, T, d, dv, scale) {
  const k = tf.tensor2d(K, [T, d], 'float32');
  const v = tf.tensor2d(V, [T, dv], 'float32');
  const qt = tf.tensor2d(q, [1, d], 'float32');
  const o = tf.tidy(() => {
    const s = tf.mul(tf.matMul(qt, k, false, true), tf.scalar(scale, 'float32'));
    const p = tf.softmax(s);
    return tf.matMul(p, v);
  });
  const out = o.dataSync(); /* a fresh copy out of the backend's heap, as decodeDense returns one */
  o.dispose();
  qt.dispose();
  v.dispose();
  k.dispose();
  return out;
}

/* The same three ops on K, V tensors the caller keeps (only q is created per call): a reference point, not the peer's timed call. */
function peerAttentionResident(tf, k, v, q, d, scale) {
  const qt = tf.tensor2d(q, [1, d], 'float32');
  const o = tf.tidy(() => tf.matMul(tf.softmax(tf.mul(tf.matMul(qt, k, false, true), tf.scalar(scale, 'float32'))), v));
  const out = o.dataSync();
  o.dispose();
  qt.dispose();
  return out;
}

/* The sum of the peer's softmax probabilities, minus 1 (in float64): its normalizer's rounding, untimed. */
function peerSoftmaxSumErr(tf, K, q, T, d, scale) {
  const p = tf.tidy(() => {
    const k = tf.tensor2d(K, [T, d], 'float32');
    const qt = tf.tensor2d(q, [1, d], 'float32');
    return tf.softmax(tf.mul(tf.matMul(qt, k, false, true), tf.scalar(scale, 'float32')));
  });
  const pd = p.dataSync();
  p.dispose();
  let sum = 0;
  for (let i = 0; i < pd.length; i++) sum += pd[i];
  return sum - 1;
}

/** Dense attention for one head in float64: K [T][d], V [T][dv], q [d]. */
export function referenceAttention64(K, V, q, T, d, dv, scale) {
  const s = new Float64Array(T);
  let max = -Infinity;
  for (let t = 0; t < T; t++) {
    let dot = 0;
    for (let j = 0, o = t * d; j < d; j++) dot += q[j] * K[o + j];
    s[t] = scale * dot;
    if (s[t] > max) max = s[t];
  }
  let z = 0;
  for (let t = 0; t < T; t++) z += s[t] = Math.exp(s[t] - max);
  const out = new Float64Array(dv);
  for (let t = 0; t < T; t++) {
    const w = s[t] / z;
    for (let j = 0, o = t * dv; j < dv; j++) out[j] += w * V[o + j];
  }
  return out;
}

/** ||a - b|| / ||b|| (||a - b|| when b = 0). */
export function relErr(a, b) {
  let e = 0;
  let n = 0;
  for (let i = 0; i < b.length; i++) {
    e += (a[i] - b[i]) ** 2;
    n += b[i] * b[i];
  }
  return n > 0 ? Math.sqrt(e / n) : Math.sqrt(e);
}

/* max_i |a_i - b_i| / max_i |b_i|: the worst element, relative to the output's scale */
function maxAbsRel(a, b) {
  let e = 0;
  let m = 0;
  for (let i = 0; i < b.length; i++) {
    e = Math.max(e, Math.abs(a[i] - b[i]));
    m = Math.max(m, Math.abs(b[i]));
  }
  return m > 0 ? e / m : e;
}

/** --name value pairs; --json, --interleave and --help take none. */
const SWITCHES = ['json', 'help', 'interleave'];
export const parseArgs = (argv) => parseCliArgs(argv, SWITCHES);

/* both sides call by call, alternating, after one warm-up call each */
function timeInterleaved(runA, runB, minReps, minSeconds) {
  runA(0);
  runB(0);
  const ta = [];
  const tb = [];
  let sa = 0;
  let sb = 0;
  while (!enoughReps(ta.length, sa, minReps, minSeconds) || !enoughReps(tb.length, sb, minReps, minSeconds)) {
    let t0 = performance.now();
    runA(ta.length);
    let dt = (performance.now() - t0) / 1e3;
    ta.push(dt);
    sa += dt;
    t0 = performance.now();
    runB(tb.length);
    dt = (performance.now() - t0) / 1e3;
    tb.push(dt);
    sb += dt;
  }
  return [repStats(ta), repStats(tb)];
}

/** Measures for the parsed arguments `a`; resolves to the --json document. */
export async function runPeer(a) {
  const peer = await loadPeer();
  const { tf } = peer;
  const vs = await init(a.isa ? { isa: a.isa } : undefined);
  const Ts = parseCounts(a.T ?? '4K,16K,32K,128K,256K');
  const d = Number(a.d ?? 128);
  const dv = Number(a.dv ?? d);
  const kind = a.workload ?? 'needle';
  const minReps = Number(a.reps ?? 15);
  const scale = 1 / Math.sqrt(d);
  const interleave = Boolean(a.interleave);
  const minSeconds = Number(a['min-seconds'] ?? 0.3);
  if (!(minSeconds >= 0 && minSeconds <= 60)) throw new Error(`--min-seconds: '${a['min-seconds']}' is not in [0, 60]`);
  const rows = [];
  for (const T of Ts) {
    let cache = null;
    try {
      progress(`T=${T}: generating the workload and filling the cache`);
      const wl = vs.workload({ kind, T, heads: 1, kvHeads: 1, headDim: d, valueDim: dv, ...(a.seed !== undefined ? { seed: BigInt(a.seed) } : {}) });
      const qs = Array.from({ length: STEPS }, (_, s) => wl.queries(s));
      const { keys: K, values: V } = wl.tokens(0, T);
      cache = vs.createCache({ heads: 1, kvHeads: 1, headDim: d, valueDim: dv });
      cache.append(K, V); /* resident: not timed */

      /* numerics, untimed: both on every step, each also against float64 */
      progress(`T=${T}: numerics`);
      let peerVsOurs = 0;
      let peerVsOursElem = 0;
      let oursVs64 = 0;
      let peerVs64 = 0;
      for (let s = 0; s < STEPS; s++) {
        const ours = cache.decodeDense(qs[s], { scale });
        const theirs = peerAttention(tf, K, V, qs[s], T, d, dv, scale);
        const ref = referenceAttention64(K, V, qs[s], T, d, dv, scale);
        peerVsOurs = Math.max(peerVsOurs, relErr(theirs, ours));
        peerVsOursElem = Math.max(peerVsOursElem, maxAbsRel(theirs, ours));
        oursVs64 = Math.max(oursVs64, relErr(ours, ref));
        peerVs64 = Math.max(peerVs64, relErr(theirs, ref));
      }
      const softmaxSumErr = peerSoftmaxSumErr(tf, K, qs[0], T, d, scale);
      const tensorsBefore = tf.memory().numTensors;

      const runOurs = (rep) => cache.decodeDense(qs[rep % STEPS], { scale });
      const runPeerCall = (rep) => peerAttention(tf, K, V, qs[rep % STEPS], T, d, dv, scale);
      let ours;
      let theirs;
      if (interleave) {
        progress(`T=${T}: timing peer and ours, interleaved`);
        [theirs, ours] = timeInterleaved(runPeerCall, runOurs, minReps, minSeconds);
      } else {
        progress(`T=${T}: timing ours (vashista decodeDense)`);
        ours = timeReps(runOurs, null, minReps, minSeconds);
        progress(`T=${T}: timing the peer (tfjs wasm, 3 ops)`);
        theirs = timeReps(runPeerCall, null, minReps, minSeconds);
      }
      /* for reference only: the peer with K and V already in tensors (only q created per call) */
      progress(`T=${T}: timing the peer with resident K, V (reference)`);
      const kt = tf.tensor2d(K, [T, d], 'float32');
      const vt = tf.tensor2d(V, [T, dv], 'float32');
      let resident;
      try {
        resident = timeReps((rep) => peerAttentionResident(tf, kt, vt, qs[rep % STEPS], d, scale), null, minReps, minSeconds);
      } finally {
        kt.dispose();
        vt.dispose();
      }
      if (tf.memory().numTensors !== tensorsBefore) throw new Error(`the peer leaked ${tf.memory().numTensors - tensorsBefore} tensors`);
      rows.push({
        T,
        peer_ms: theirs.medianMs,
        ours_ms: ours.medianMs,
        ratio: theirs.medianMs / ours.medianMs,
        peer_min_ms: theirs.minMs,
        ours_min_ms: ours.minMs,
        peer_reps: theirs.reps,
        ours_reps: ours.reps,
        kv_bytes: T * (d + dv) * 4,
        max_rel_err_peer_vs_ours: peerVsOurs,
        max_elem_rel_err_peer_vs_ours: peerVsOursElem,
        max_rel_err_ours_vs_f64: oursVs64,
        max_rel_err_peer_vs_f64: peerVs64,
        peer_softmax_sum_minus_1: softmaxSumErr,
        peer_resident_ms: resident.medianMs,
        peer_resident_reps: resident.reps,
      });
    } catch (e) {
      rows.push({ T, skipped: `${e.code ? `${e.code}: ` : ''}${e.message ?? e}` });
    } finally {
      cache?.free();
    }
  }
  endProgress();
  return {
    command: 'bench:peer',
    runtime: `node ${process.versions.node}`,
    version: vs.version,
    isa: vs.isa,
    peer: {
      name: 'TensorFlow.js, WebAssembly backend',
      tfjs_core: peer.version.core,
      tfjs_backend_wasm: peer.version.wasm,
      backend: peer.backend,
      binary: peer.binary,
      binary_path: peer.binaryPath,
      simd: peer.simd,
      threads: peer.threads,
      threads_count: peer.threadsCount,
      call: 'tensor2d(K), tensor2d(V), tensor2d(q); matMul(q, K, false, true) * scale; softmax; matMul(p, V); dataSync; dispose',
    },
    ours: { call: 'cache.decodeDense(q, { scale }) on a cache holding K, V (appended once, untimed)' },
    workload: { kind, heads: 1, kv_heads: 1, head_dim: d, value_dim: dv, scale },
    timing: { min_reps: minReps, min_seconds: minSeconds, order: interleave ? 'interleaved' : 'blocked', steps: STEPS },
    target_ratio: 2.5,
    results: rows,
  };
}

const USAGE =
  'usage: npm run bench:peer -- [--T 4K,16K,32K,128K,256K] [--d N --dv N] [--workload needle|gap|uniform] [--seed N]\n  [--reps N] [--min-seconds X] [--interleave] [--isa wasmsimd|scalar] [--json]';

async function main(a) {
  const report = await runPeer(a);
  if (a.json) return printJson(report);
  const { peer: pr, workload: w } = report;
  console.log(`vashista bench:peer (node ${process.versions.node}): vashista ${report.version} isa ${report.isa} vs TensorFlow.js ${pr.tfjs_core} backend '${pr.backend}' (tfjs-backend-wasm ${pr.tfjs_backend_wasm})`);
  console.log(`peer binary: ${pr.binary} (SIMD ${pr.simd ? 'yes' : 'no'}, threads ${pr.threads ? 'yes' : 'no'}, ${pr.threads_count} thread${pr.threads_count === 1 ? '' : 's'}), read from ${pr.binary_path}`);
  console.log(`workload ${w.kind}, d ${w.head_dim}, dv ${w.value_dim}, 1 head; scale 1/sqrt(d); medians (ms) of >= ${report.timing.min_reps} reps and ${report.timing.min_seconds} s, ${report.timing.order}`);
  const p = (s, n) => String(s).padStart(n);
  const g2 = (x) => Number(x.toPrecision(2)).toExponential(1);
  console.log(`\n${p('T', 8)} ${p('peer ms', 10)} ${p('ours ms', 10)} ${p('peer/ours', 10)} ${p('peer vs ours', 13)} ${p('ours vs f64', 12)} ${p('peer vs f64', 12)} ${p('peer ms', 10)} ${p('peer sum p', 11)}`);
  console.log(`${p('', 8)} ${p('', 10)} ${p('', 10)} ${p('', 10)} ${p('(rel, max)', 13)} ${p('(rel, max)', 12)} ${p('(rel, max)', 12)} ${p('resident', 10)} ${p('- 1', 11)}`);
  for (const r of report.results) {
    if (r.skipped) {
      console.log(`${p(r.T, 8)} skipped: ${r.skipped}`);
      continue;
    }
    console.log(
      `${p(r.T, 8)} ${p(r.peer_ms.toFixed(3), 10)} ${p(r.ours_ms.toFixed(3), 10)} ${p(`${r.ratio.toFixed(2)}x`, 10)} ${p(g2(r.max_rel_err_peer_vs_ours), 13)} ${p(g2(r.max_rel_err_ours_vs_f64), 12)} ${p(g2(r.max_rel_err_peer_vs_f64), 12)} ${p(r.peer_resident_ms.toFixed(3), 10)} ${p(g2(r.peer_softmax_sum_minus_1), 11)}`,
    );
  }
  console.log(
    '\npeer: tensors created from K, V, q per call (copied), 3 ops, dataSync, dispose; ours: decodeDense on a resident cache.' +
      '\npeer/ours: peer time / ours (target >= 2.5x). peer vs ours: ||peer - ours|| / ||ours||, max over 16 query steps;' +
      '\nvs f64: against a float64 reference, max over the 16 steps. peer ms resident (for reference, not the target):' +
      '\nthe peer\'s 3 ops on K, V tensors created once (only q per call). peer sum p - 1: the sum of the peer\'s softmax' +
      '\nprobabilities minus 1 (step 0), its float32 normalizer\'s rounding, which its output error follows.',
  );
}

/* Run as a script (not when imported). */
runIfMain(import.meta.url, 'bench:peer', main, { usage: USAGE, switches: SWITCHES });
