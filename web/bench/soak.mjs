#!/usr/bin/env node
/*
 * npm run soak: the native `vashista soak` (src/cli/main.c, cmd_soak) on the
 * wasm package, through its public API, with the same options, checks and
 * output.
 *
 * One cache is filled from the needle workload up to --tokens, then --decodes
 * sparse decodes run with the default options and fresh queries (decode i uses
 * workload query step i). Every --truncate-every decodes the cache is
 * truncated by a random 1..--max-truncate tokens (mulberry32, seeded as the
 * native run, so both truncate the same amounts) and the same tokens are
 * re-appended from the workload. Checks:
 *   - every decode's output is finite; every head's rhoCert is in [0, 1] and
 *     its errorBound >= 0;
 *   - full coverage (after the fill, every --check-every decodes, around the
 *     first 4 truncations and at the end): a sparse decode with pages >= the
 *     cache's pages and candidates >= its length matches decodeDense within
 *     --tol (relative L2, per head; default 1e-5) and within its errorBound, with rhoCert 0, fallback 'none' and every
 *     token a candidate; at full length, query step 0 must reproduce bit for
 *     bit the sparse and dense outputs it gave after the fill;
 *   - memory: baseline after the fill and the first full-coverage check; every
 *     --sample-every decodes the module's linear memory (vs.memoryBytes) must
 *     stay below baseline + max(5%, 16 MiB) and cache.info().reservedBytes
 *     below baseline + 1% + 64 KiB.
 * Stops at the first failure; exit status 1 if a check failed.
 *
 * Usage: node bench/soak.mjs [--tokens 1M] [--decodes 100K] [--heads 2 --kv-heads 1 --d 64 --dv 64]
 *          [--page S] [--seed N] [--truncate-every 100] [--max-truncate 4096] [--check-every 2000]
 *          [--sample-every 1000] [--tol X] [--isa wasmsimd|scalar] [--json] [--quiet]
 *
 * Also a module: `import { soak } from './bench/soak.mjs'; const r = await soak({ tokens: 20480 });`
 * resolves to the JSON report (r.pass).
 */
import { performance } from 'node:perf_hooks';
import { pathToFileURL } from 'node:url';

import { init } from '../src/index.js';
import { parseArgs } from './common.mjs';

const CHUNK = 16384;

function parseCount(s, name) {
  const m = /^(\d+)([KkMmGg]?)$/.exec(String(s).trim());
  if (!m) throw new Error(`--${name}: '${s}' is not an unsigned integer`);
  const mul = { '': 1, k: 1024, m: 1024 * 1024, g: 1024 * 1024 * 1024 }[m[2].toLowerCase()];
  return Number(m[1]) * mul;
}

/* mulberry32, as soak_rand in src/cli/main.c. */
function mulberry32(seed) {
  let s = seed >>> 0;
  return () => {
    s = (s + 0x6d2b79f5) >>> 0;
    let t = s;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return (t ^ (t >>> 14)) >>> 0;
  };
}

const sameBits = (a, b) => {
  const x = new Uint32Array(a.buffer, a.byteOffset, a.length);
  const y = new Uint32Array(b.buffer, b.byteOffset, b.length);
  return x.length === y.length && x.every((v, i) => v === y[i]);
};

/**
 * Runs the soak. Options (all optional): tokens, decodes, heads, kvHeads, d, dv,
 * page, seed, truncateEvery, maxTruncate, checkEvery, sampleEvery, tol, isa,
 * progress (a function of a string, or null). Resolves to the report object
 * (the --json output); report.pass says whether every check held.
 */
export async function soak(opts = {}) {
  const vs = await init(opts.isa ? { isa: opts.isa } : undefined);
  const T = opts.tokens ?? 1 << 20;
  const decodes = opts.decodes ?? 100 * 1024;
  const heads = opts.heads ?? 2;
  const kvHeads = opts.kvHeads ?? 1;
  const d = opts.d ?? 64;
  const dv = opts.dv ?? d;
  const seed = BigInt(opts.seed ?? 1);
  const truncateEvery = opts.truncateEvery ?? 100;
  const maxTruncate = Math.min(opts.maxTruncate ?? 4096, T - 1);
  const checkEvery = opts.checkEvery ?? 2000;
  const sampleEvery = opts.sampleEvery ?? 1000;
  const tol = opts.tol ?? 1e-5;
  const progress = opts.progress ?? (() => {});
  if (!(T >= 2) || !(decodes >= 1) || !(checkEvery >= 1) || !(sampleEvery >= 1) || !(maxTruncate >= 1))
    throw new Error('bad sizes: need tokens >= 2, decodes, check-every, sample-every, max-truncate >= 1');

  const wl = vs.workload({ kind: 'needle', T, heads, kvHeads, headDim: d, valueDim: dv, seed });
  const cache = vs.createCache({ heads, kvHeads, headDim: d, valueDim: dv, ...(opts.page ? { pageSize: opts.page } : {}) });
  const page = cache.config.pageSize;
  const lo = Number(seed & 0xffffffffn);
  const hi = Number((seed >> 32n) & 0xffffffffn);
  const rand = mulberry32((lo ^ hi ^ 0x50a4c0de) >>> 0);
  const defaults = vs.decodeDefaults;

  const st = { checks: 0, reproChecks: 0, maxRel: 0, maxRelBound: 0, maxTol: 0, fail: '' };
  let refOut = null;
  let refDense = null;

  const fullDecode = (step) => {
    const info = cache.info();
    const q = wl.queries(step);
    const r = cache.decode(q, { pages: info.pages, candidates: info.length });
    return { info, r, dense: cache.decodeDense(q) };
  };
  const fullCheck = (step, when) => {
    let { info, r, dense } = fullDecode(step);
    st.checks++;
    const t = tol;
    st.maxTol = Math.max(st.maxTol, t);
    for (let h = 0; h < heads; h++) {
      const g = r.diagnostics[h];
      let e = 0;
      let n = 0;
      let finite = true;
      for (let j = h * dv; j < (h + 1) * dv; j++) {
        const a = r.output[j];
        const b = dense[j];
        finite &&= Number.isFinite(a) && Number.isFinite(b);
        e += (a - b) * (a - b);
        n += b * b;
      }
      const rel = n > 0 ? Math.sqrt(e / n) : Math.sqrt(e);
      if (finite) {
        st.maxRel = Math.max(st.maxRel, rel);
        st.maxRelBound = Math.max(st.maxRelBound, g.errorBound / Math.max(Math.sqrt(n), 1e-30));
      }
      const why = !finite
        ? 'non-finite output'
        : !(rel <= t)
          ? 'sparse differs from dense'
          : !(Math.sqrt(e) <= g.errorBound + 1e-6 * Math.sqrt(n))
            ? '||sparse - dense|| above the error bound'
            : g.rhoCert !== 0
              ? 'rho_cert != 0'
              : g.fallback !== 'none'
                ? 'fallback is not none'
                : g.candidates !== info.length
                  ? 'not every token is a candidate'
                  : !(g.errorBound >= 0)
                    ? 'error bound < 0 or NaN'
                    : null;
      if (why) {
        st.fail =
          `full-coverage check (${when}, length ${info.length}, step ${step}), head ${h}: ${why} (rel diff ${rel.toPrecision(3)}, ` +
          `tol ${t.toPrecision(3)}, rho_cert ${g.rhoCert}, fallback ${g.fallback}, candidates ${g.candidates})`;
        return false;
      }
    }
    if (info.length !== T) return true;
    if (!refOut) {
      if (step !== 0) ({ r, dense } = fullDecode(0));
      refOut = r.output;
      refDense = dense;
      return true;
    }
    ({ r, dense } = fullDecode(0));
    st.reproChecks++;
    if (!sameBits(r.output, refOut) || !sameBits(dense, refDense)) {
      st.fail = `reproduction check (${when}): step 0 at full length no longer gives the ${sameBits(r.output, refOut) ? 'dense' : 'sparse'} output it gave after the fill`;
      return false;
    }
    return true;
  };

  /* ---- fill ---- */
  const tStart = performance.now();
  for (let t = 0; t < T; t += 8 * CHUNK) {
    const end = Math.min(T, t + 8 * CHUNK);
    for (let c = t; c < end; c += CHUNK) wl.appendTo(cache, c, Math.min(CHUNK, end - c));
    progress(`soak: filling the cache, ${end} / ${T} tokens`);
  }
  const fillS = (performance.now() - tStart) / 1e3;
  let failed = !fullCheck(0, 'after the fill');
  const memBase = vs.memoryBytes;
  const resBase = cache.info().reservedBytes;
  const memLimit = memBase + Math.max(0.05 * memBase, 16 * 1048576);
  const resLimit = Math.floor(resBase * 1.01) + 65536;
  let memPeak = memBase;
  let resPeak = resBase;
  let memNow = memBase;
  let resNow = resBase;
  let samples = 1;
  let truncations = 0;
  let retokens = 0;
  let decodeMs = 0;
  let done = 0;

  /* ---- decodes ---- */
  const tLoop = performance.now();
  for (let i = 0; i < decodes && !failed; i++) {
    if (truncateEvery && i > 0 && i % truncateEvery === 0) {
      const n = 1 + (rand() % maxTruncate);
      cache.truncate(T - n);
      truncations++;
      retokens += n;
      if (truncations <= 4 && !fullCheck(i, 'truncated')) {
        failed = true;
        break;
      }
      wl.appendTo(cache, T - n, n);
      if (truncations <= 4 && !fullCheck(i, 're-appended')) {
        failed = true;
        break;
      }
    }
    const q = wl.queries(i);
    const t0 = performance.now();
    const r = cache.decode(q);
    decodeMs += performance.now() - t0;
    done = i + 1;
    const bad = r.output.findIndex((x) => !Number.isFinite(x));
    if (bad >= 0) {
      st.fail = `decode ${i}: non-finite output element ${bad}`;
      failed = true;
      break;
    }
    for (let h = 0; h < heads && !failed; h++) {
      const g = r.diagnostics[h];
      if (!(g.rhoCert >= 0 && g.rhoCert <= 1 && g.errorBound >= 0)) {
        st.fail = `decode ${i}, head ${h}: rho_cert ${g.rhoCert}, error bound ${g.errorBound}`;
        failed = true;
      }
    }
    if (failed) break;
    if (done % checkEvery === 0 && !fullCheck(done, 'periodic')) {
      failed = true;
      break;
    }
    if (done % sampleEvery === 0 || done === decodes) {
      memNow = vs.memoryBytes;
      resNow = cache.info().reservedBytes;
      samples++;
      memPeak = Math.max(memPeak, memNow);
      resPeak = Math.max(resPeak, resNow);
      if (memNow > memLimit) {
        st.fail = `decode ${done}: wasm memory ${(memNow / 1048576).toFixed(1)} MiB above the limit ${(memLimit / 1048576).toFixed(1)} MiB`;
        failed = true;
      } else if (resNow > resLimit) {
        st.fail = `decode ${done}: reserved bytes ${resNow} above the limit ${resLimit}`;
        failed = true;
      }
      progress(`soak: ${done} / ${decodes} decodes, ${truncations} truncations, wasm memory ${(memNow / 1048576).toFixed(1)} MiB, max rel diff ${st.maxRel.toPrecision(3)}`);
    }
  }
  if (!failed && done % checkEvery !== 0) failed = !fullCheck(done, 'at the end');
  const loopS = (performance.now() - tLoop) / 1e3;
  const totalS = (performance.now() - tStart) / 1e3;
  if (!failed && cache.length !== T) {
    st.fail = `final length ${cache.length} != ${T}`;
    failed = true;
  }
  cache.free();

  const report = {
    command: 'soak',
    runtime: `wasm, node ${process.versions.node}`,
    version: vs.version,
    isa: vs.isa,
    shape: { workload: 'needle', tokens: T, heads, kv_heads: kvHeads, head_dim: d, value_dim: dv, page_size: page, seed: Number(seed) },
    options: {
      pages: defaults.pages, candidates: defaults.candidates, sink_pages: defaults.sinkPages, recent_pages: defaults.recentPages,
      truncate_every: truncateEvery, max_truncate: maxTruncate,
      check_every: checkEvery, sample_every: sampleEvery, tol,
    },
    decodes: done,
    truncations,
    reappended_tokens: retokens,
    fill_s: fillS,
    loop_s: loopS,
    time_s: totalS,
    decodes_per_s: done / loopS,
    mean_decode_ms: done ? decodeMs / done : null,
    memory: { kind: 'wasm', baseline_bytes: memBase, limit_bytes: memLimit, peak_bytes: memPeak, final_bytes: memNow, samples },
    reserved: { baseline_bytes: resBase, limit_bytes: resLimit, peak_bytes: resPeak, final_bytes: resNow },
    full_checks: st.checks,
    reproduction_checks: st.reproChecks,
    max_rel_diff: st.maxRel,
    max_tol: st.maxTol,
    max_rel_error_bound: st.maxRelBound,
    pass: !failed,
    ...(failed ? { failure: st.fail } : {}),
  };
  return report;
}

/** The text report, line for line as `vashista soak` prints it. */
export function formatReport(r) {
  const MiB = 1048576;
  /* printf's %.3g */
  const g3 = (x) => {
    if (!Number.isFinite(x) || x === 0) return String(x);
    const e = Math.floor(Math.log10(Math.abs(Number(x.toPrecision(3)))));
    if (e < -4 || e >= 3) {
      const [m, ex] = x.toExponential(2).split('e');
      const mm = m.includes('.') ? m.replace(/0+$/, '').replace(/\.$/, '') : m;
      const n = Number(ex);
      return `${mm}e${n < 0 ? '-' : '+'}${String(Math.abs(n)).padStart(2, '0')}`;
    }
    return String(Number(x.toPrecision(3)));
  };
  const s = r.shape;
  const o = r.options;
  const m = r.memory;
  const z = r.reserved;
  return [
    `vashista soak: ${r.runtime}, isa ${r.isa}, needle workload, ${s.tokens} tokens, heads ${s.heads}/${s.kv_heads}, d ${s.head_dim}, dv ${s.value_dim}, page ${s.page_size}, seed ${s.seed}`,
    `decode options: library defaults (pages ${o.pages}, candidates ${o.candidates}, sink ${o.sink_pages}, recent ${o.recent_pages})`,
    `fill:           ${s.tokens} tokens in ${r.fill_s.toFixed(2)} s`,
    `decodes:        ${r.decodes} in ${r.loop_s.toFixed(2)} s (${Math.round(r.decodes_per_s)}/s including checks and truncations; sparse decode ${(r.mean_decode_ms ?? 0).toFixed(3)} ms mean)`,
    `truncations:    ${r.truncations} of 1..${o.max_truncate} tokens every ${o.truncate_every} decodes, ${r.reappended_tokens} tokens re-appended`,
    `wasm memory:    baseline ${(m.baseline_bytes / MiB).toFixed(1)} MiB, peak ${(m.peak_bytes / MiB).toFixed(1)} MiB, final ${(m.final_bytes / MiB).toFixed(1)} MiB (limit ${(m.limit_bytes / MiB).toFixed(1)} MiB, ${m.samples} samples)`,
    `reserved bytes: baseline ${z.baseline_bytes}, peak ${z.peak_bytes}, final ${z.final_bytes} (limit ${z.limit_bytes})`,
    `full coverage:  ${r.full_checks} checks vs dense: max rel diff ${g3(r.max_rel_diff)} (tol ${g3(r.max_tol)}), max error bound ${g3(r.max_rel_error_bound)} (rel)`,
    `reproduction:   ${r.reproduction_checks} checks: step 0 at full length bit-identical to after the fill`,
    `total time:     ${r.time_s.toFixed(2)} s`,
    r.pass ? 'PASS' : `FAIL: ${r.failure}`,
  ].join('\n');
}

async function main() {
  const a = parseArgs(process.argv.slice(2), ['json', 'help', 'quiet']);
  if (a.help) {
    console.log(
      'usage: npm run soak -- [--tokens 1M] [--decodes 100K] [--heads 2 --kv-heads 1 --d 64 --dv 64] [--page S]\n' +
        '  [--seed N] [--truncate-every 100] [--max-truncate 4096] [--check-every 2000] [--sample-every 1000]\n' +
        '  [--tol X] [--isa wasmsimd|scalar] [--json] [--quiet]\n' +
        'The native `vashista soak` on the wasm package; see the top of bench/soak.mjs.',
    );
    return;
  }
  const known = ['tokens', 'decodes', 'heads', 'kv-heads', 'd', 'dv', 'page', 'seed', 'truncate-every', 'max-truncate',
    'check-every', 'sample-every', 'tol', 'isa', 'json', 'quiet'];
  for (const k of Object.keys(a)) if (!known.includes(k)) throw new Error(`unknown option --${k}`);
  const num = (k) => (a[k] === undefined ? undefined : parseCount(a[k], k));
  const tty = process.stderr.isTTY;
  let last = 0;
  const progress = a.quiet
    ? null
    : (s) => {
        const t = performance.now();
        if (t - last < (tty ? 200 : 2000)) return;
        last = t;
        process.stderr.write(tty ? `\r\x1b[K${s}` : `${s}\n`);
      };
  const r = await soak({
    tokens: num('tokens'), decodes: num('decodes'), heads: num('heads'), kvHeads: num('kv-heads'), d: num('d'), dv: num('dv'),
    page: num('page'), seed: a.seed === undefined ? undefined : BigInt(a.seed), truncateEvery: num('truncate-every'),
    maxTruncate: num('max-truncate'), checkEvery: num('check-every'), sampleEvery: num('sample-every'),
    tol: a.tol === undefined ? undefined : Number(a.tol), isa: a.isa, progress,
  });
  if (tty && !a.quiet) process.stderr.write('\r\x1b[K');
  if (a.json) console.log(JSON.stringify(r, null, 2));
  else console.log(formatReport(r));
  if (!r.pass) process.exitCode = 1;
}

if (process.argv[1] && import.meta.url === pathToFileURL(process.argv[1]).href) {
  main().catch((e) => {
    console.error(`soak: ${e.message}`);
    process.exitCode = 1;
  });
}
