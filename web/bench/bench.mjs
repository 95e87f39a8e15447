#!/usr/bin/env node
/*
 * npm run bench: the native `vashista bench` table, measured on the wasm
 * package through its public API (cache.decodeDense / cache.decode, inputs
 * copied in and results copied out, as a user calls them), plus wasm/native
 * time ratios from the native CLI run in the same command on the same
 * workload, configurations and repetition rule.
 *
 * Method (the same as src/cli/main.c, cmd_bench): per T, one cache per page
 * size filled from the seeded workload; 16 query steps, rep i uses step i % 16;
 * one warm-up decode, then repetitions until at least --reps and 0.3 s (at most
 * ~5 s); the median is reported. Certificate and recall statistics are
 * gathered after each timed sparse decode, outside the timing.
 *
 * Usage: node bench/bench.mjs [--T 4K,32K,128K] [--config S:P:Kc[:flat|:tree[E]],...  (default:
 *          the library's defaults, then the seed's 16:64:128)] [--routing flat|tree] [--expand E]
 *          [--d 128 --dv 128 --heads 1 --kv-heads 1] [--workload needle|gap|uniform]
 *          [--margin X --face N --needles N --seed N] [--sink N --recent N --widen N
 *          --tolerance X --scale X] [--solver softmax|eg|fw --eps X --max-iter N
 *          --solver-tol X] [--reps 15] [--isa wasmsimd|scalar]
 *          [--native PATH|none] [--bw-mib 512] [--json]
 *
 * Configurations name their routing as the native CLI's do: S:P:Kc takes
 * --routing / --expand (default: the library's, tree with automatic expand),
 * S:P:Kc:flat and S:P:Kc:tree route flat or tree (automatic expand), and
 * S:P:Kc:treeE tree with E nodes expanded. For tree rows, after the timing
 * (untimed), each of the 16 query steps is also decoded with flat routing and
 * the routed pages compared: same_pages_as_flat is the share of head decodes
 * that routed exactly flat's pages, flat_pages_overlap the mean share of
 * flat's pages that tree routed too (the native CLI reports the same).
 *
 * As a module: `import { parseArgs, runBench } from './bench.mjs'`;
 * runBench(parseArgs(argv)) measures and resolves to { report, ... } where
 * report is the --json document (web/bench/figures.mjs uses it).
 */
import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';

import { init } from '../src/index.js';
import { endProgress, parseCounts, printJson, progress, runIfMain, timeReps } from './common.mjs';

export { parseArgs } from './common.mjs';

const STEPS = 16;

function l2(a, from, to) {
  let s = 0;
  for (let i = from; i < to; i++) s += a[i] * a[i];
  return Math.sqrt(s);
}

const SOLVERS = ['softmax', 'eg', 'fw'];
const ROUTINGS = ['flat', 'tree'];

/**
 * Parses a --config list as the native CLI does: S:P:Kc with an optional
 * :flat, :tree or :treeE suffix. routing null means "from --routing".
 * @returns {{ S: number, P: number, Kc: number, routing: 'flat'|'tree'|null, expand: number }[]}
 */
export function parseConfigs(list) {
  return String(list)
    .split(',')
    .map((c) => {
      const m = /^(\d+):(\d+):(\d+)(?::(flat|tree)(\d+)?)?$/.exec(c.trim());
      const bad = () => new Error(`--config: expected page:pages:candidates[:flat|:tree[E]], e.g. 64:16:128:tree; got '${c}'`);
      if (!m || (m[4] === 'flat' && m[5] !== undefined)) throw bad();
      const [S, P, Kc] = [m[1], m[2], m[3]].map(Number);
      if (!(S >= 1 && S <= 4096 && P >= 1 && P <= 0xffffffff && Kc >= 1 && Kc <= 0xffffffff)) throw bad();
      const expand = m[5] === undefined ? 0 : Number(m[5]);
      if (m[5] !== undefined && !(expand >= 1 && expand <= 0xffffffff)) throw new Error(`--config: bad node count in '${c}'`);
      return { S, P, Kc, routing: m[4] ?? null, expand };
    });
}

/* A configuration as the native CLI takes it (its routing only when it names one). */
export function configArg(c) {
  return `${c.S}:${c.P}:${c.Kc}${c.routing === 'flat' ? ':flat' : c.routing === 'tree' ? `:tree${c.expand || ''}` : ''}`;
}

/* A configuration with its resolved routing, for display: S:P:Kc:flat, S:P:Kc:tree (automatic expand), S:P:Kc:treeE. */
export function configLabel(r) {
  return `${r.page_size}:${r.pages}:${r.candidates}:${r.routing}${r.routing === 'tree' && r.expand ? r.expand : ''}`;
}

/* Measures (native first, then wasm) for the parsed arguments `a`; resolves to
   { report (the --json document), rows, native, nativePath, nativeNote, vs, ... }. */
export async function runBench(a) {
  const vs = await init(a.isa ? { isa: a.isa } : undefined);
  const defaults = vs.decodeDefaults;
  const Ts = parseCounts(a.T ?? '4K,32K,128K');
  const probe = vs.createCache({ heads: 1, headDim: 1 }); /* the library's default page size */
  const defaultPage = probe.config.pageSize;
  probe.free();
  const configs = parseConfigs(a.config ?? `${defaultPage}:${defaults.pages}:${defaults.candidates},16:64:128`);
  const routing = a.routing ?? defaults.routing;
  if (!ROUTINGS.includes(routing)) throw new Error(`--routing: '${routing}' is not flat or tree`);
  const expand = a.expand === undefined ? defaults.expand : Number(a.expand);
  if (!(Number.isInteger(expand) && expand >= 0 && expand <= 0xffffffff)) throw new Error(`--expand: '${a.expand}' is not a count`);
  /* each configuration's resolved routing */
  for (const c of configs) {
    c.routingUsed = c.routing ?? routing;
    c.expandUsed = c.routing ? c.expand : expand;
  }
  const d = Number(a.d ?? 128);
  const dv = Number(a.dv ?? d);
  const heads = Number(a.heads ?? 1);
  const kvHeads = Number(a['kv-heads'] ?? heads);
  const kind = a.workload ?? 'needle';
  const minReps = Number(a.reps ?? 15);
  const bwMib = Number(a['bw-mib'] ?? 512);
  const base = {
    sinkPages: Number(a.sink ?? defaults.sinkPages),
    recentPages: Number(a.recent ?? defaults.recentPages),
    widen: Number(a.widen ?? defaults.widen),
    tolerance: Number(a.tolerance ?? defaults.tolerance),
    scale: Number(a.scale ?? defaults.scale),
  };
  const solver = a.solver ?? defaults.solver;
  if (!SOLVERS.includes(solver)) throw new Error(`--solver: '${solver}' is not softmax, eg or fw`);
  const solverOpts = {
    solver,
    eps: Number(a.eps ?? defaults.eps),
    maxIter: Number(a['max-iter'] ?? defaults.maxIter),
    solverTol: Number(a['solver-tol'] ?? defaults.solverTol),
  };
  const wlOptions = (T) => ({
    kind, T, heads, kvHeads, headDim: d, valueDim: dv,
    ...(a.margin !== undefined ? { margin: Number(a.margin) } : {}),
    ...(a.face !== undefined ? { face: Number(a.face) } : {}),
    ...(a.needles !== undefined ? { needles: Number(a.needles) } : {}),
    ...(a.seed !== undefined ? { seed: BigInt(a.seed) } : {}),
  });

  /* ---- native, first (it also measures the machine's read bandwidth) ---- */
  const repo = fileURLToPath(new URL('../..', import.meta.url));
  const nativePath = a.native === 'none' ? null : (a.native ?? `${repo}build/vashista`);
  let native = null;
  let nativeNote = '';
  if (nativePath && existsSync(nativePath)) {
    progress(`native: ${nativePath} bench ...`);
    const args = ['bench', '--json', '--quiet', '--T', Ts.join(','), '--config', configs.map(configArg).join(','), '--routing', routing, '--expand', String(expand),
      '--d', String(d), '--dv', String(dv), '--heads', String(heads), '--kv-heads', String(kvHeads), '--workload', kind,
      '--reps', String(minReps), '--bw-mib', String(bwMib), '--sink', String(base.sinkPages), '--recent', String(base.recentPages),
      '--widen', String(base.widen), '--tolerance', String(base.tolerance), '--scale', String(base.scale),
      '--solver', solver, '--eps', String(solverOpts.eps), '--max-iter', String(solverOpts.maxIter), '--solver-tol', String(solverOpts.solverTol)];
    for (const k of ['margin', 'face', 'needles', 'seed']) if (a[k] !== undefined) args.push(`--${k}`, String(a[k]));
    const r = spawnSync(nativePath, args, { encoding: 'utf8', maxBuffer: 64 << 20 });
    if (r.status === 0) native = JSON.parse(r.stdout);
    else nativeNote = `native bench failed (exit ${r.status}): ${r.stderr.trim().split('\n').pop()}`;
  } else if (nativePath) nativeNote = `no native CLI at ${nativePath} (build it: cmake -S . -B build && cmake --build build); no wasm/native ratios`;

  /* ---- wasm ---- */
  const rows = [];
  for (const T of Ts) {
    const wl = vs.workload(wlOptions(T));
    const marked = wl.marked();
    const qs = Array.from({ length: STEPS }, (_, s) => wl.queries(s));
    for (const S of [...new Set(configs.map((c) => c.S))]) {
      progress(`wasm: T=${T} S=${S}: building the cache`);
      const cache = vs.createCache({ heads, kvHeads, headDim: d, valueDim: dv, pageSize: S });
      wl.appendTo(cache);
      const denseOut = qs.map((q) => cache.decodeDense(q, { scale: base.scale }));
      progress(`wasm: T=${T} S=${S}: timing dense decode`);
      const dense = timeReps((rep) => cache.decodeDense(qs[rep % STEPS], { scale: base.scale }), null, minReps);
      for (const cfg of configs.filter((c) => c.S === S)) {
        const label = configLabel({ page_size: S, pages: cfg.P, candidates: cfg.Kc, routing: cfg.routingUsed, expand: cfg.expandUsed });
        progress(`wasm: T=${T} S=${S}: timing sparse decode ${label}`);
        const opt = { ...base, ...solverOpts, pages: cfg.P, candidates: cfg.Kc, routing: cfg.routingUsed, expand: cfg.expandUsed };
        const st = { decodes: 0, sumBound: 0, sumRelBound: 0, sumRho: 0, sumCand: 0, sumRouted: 0, maxErr: 0, found: 0, wanted: 0, allFound: 0, fallback: { none: 0, widened: 0, dense: 0 } };
        let last = null;
        const sparse = timeReps(
          (rep) => {
            last = cache.decode(qs[rep % STEPS], opt);
          },
          (rep) => {
            const ref = denseOut[rep % STEPS];
            last.diagnostics.forEach((g, h) => {
              st.decodes++;
              st.sumBound += g.errorBound;
              st.sumRelBound += g.outputNorm > 0 ? g.errorBound / g.outputNorm : Infinity;
              st.sumRho += g.rhoCert;
              st.sumCand += g.candidates;
              st.sumRouted += g.routedPages;
              st.fallback[g.fallback]++;
              let e = 0;
              let r2 = 0;
              for (let j = h * dv; j < (h + 1) * dv; j++) {
                e += (last.output[j] - ref[j]) ** 2;
                r2 += ref[j] * ref[j];
              }
              st.maxErr = Math.max(st.maxErr, r2 > 0 ? Math.sqrt(e / r2) : Math.sqrt(e));
              if (marked.length) {
                const c = new Set(cache.lastCandidates(h));
                const f = marked.filter((t) => c.has(t)).length;
                st.found += f;
                st.wanted += marked.length;
                st.allFound += f === marked.length ? 1 : 0;
              }
            });
          },
          minReps,
        );
        /* tree: the pages flat routing would route, untimed (after the timing, as natively) */
        let same = null;
        let overlap = null;
        if (cfg.routingUsed === 'tree') {
          const flatOpt = { ...opt, routing: 'flat' };
          let nSame = 0;
          let sumOverlap = 0;
          for (let step = 0; step < STEPS; step++) {
            cache.decode(qs[step], opt);
            const tree = Array.from({ length: heads }, (_, h) => cache.lastRoutedPages(h));
            cache.decode(qs[step], flatOpt);
            for (let h = 0; h < heads; h++) {
              const flat = cache.lastRoutedPages(h);
              const t = new Set(tree[h]);
              const both = flat.reduce((n, p) => n + (t.has(p) ? 1 : 0), 0);
              nSame += both === flat.length && tree[h].length === flat.length ? 1 : 0;
              sumOverlap += flat.length ? both / flat.length : 1;
            }
          }
          same = nSame / (STEPS * heads);
          overlap = sumOverlap / (STEPS * heads);
        }
        const nat = native?.results.find(
          (r) => r.T === T && r.page_size === S && r.pages === cfg.P && r.candidates === cfg.Kc && (r.routing ?? 'flat') === cfg.routingUsed && (r.expand ?? 0) === cfg.expandUsed,
        );
        const denseBytes = T * kvHeads * (d + dv) * 4;
        rows.push({
          T, page_size: S, pages: cfg.P, candidates: cfg.Kc, routing: cfg.routingUsed, expand: cfg.expandUsed,
          dense_ms: dense.medianMs, sparse_ms: sparse.medianMs, speedup: dense.medianMs / sparse.medianMs,
          dense_min_ms: dense.minMs, sparse_min_ms: sparse.minMs, dense_reps: dense.reps, sparse_reps: sparse.reps,
          dense_bytes: denseBytes, dense_gbs: denseBytes / (dense.medianMs * 1e-3) / 1e9,
          mean_error_bound: st.sumBound / st.decodes, mean_rel_error_bound: st.sumRelBound / st.decodes,
          mean_rho_cert: st.sumRho / st.decodes, max_rel_err_vs_dense: st.maxErr,
          mean_candidates: st.sumCand / st.decodes, mean_routed_pages: st.sumRouted / st.decodes,
          same_pages_as_flat: same, flat_pages_overlap: overlap,
          recall: st.wanted ? st.found / st.wanted : null, heads_all_recalled: st.wanted ? st.allFound / st.decodes : null,
          fallbacks: st.fallback,
          native_dense_ms: nat?.dense_ms ?? null, native_sparse_ms: nat?.sparse_ms ?? null,
          native_same_pages_as_flat: nat?.same_pages_as_flat ?? null,
          wasm_native_dense: nat ? dense.medianMs / nat.dense_ms : null,
          wasm_native_sparse: nat ? sparse.medianMs / nat.sparse_ms : null,
        });
      }
      cache.free();
    }
  }
  endProgress();

  const bw = native?.read_bandwidth_gbs || 0;
  const report = {
    command: 'bench', runtime: `node ${process.versions.node}`, version: vs.version, isa: vs.isa,
    native_isa: native?.isa ?? null, native_note: nativeNote || null,
    workload: { kind, heads, kv_heads: kvHeads, head_dim: d, value_dim: dv },
    options: {
      sink_pages: base.sinkPages, recent_pages: base.recentPages, solver, widen: base.widen, tolerance: base.tolerance, scale: base.scale,
      routing, expand,
      ...(solver !== 'softmax' ? { eps: solverOpts.eps, max_iter: solverOpts.maxIter, solver_tol: solverOpts.solverTol } : {}),
    },
    read_bandwidth_gbs: bw || null, min_reps: minReps, results: rows,
  };
  return { report, rows, native, nativePath, nativeNote, bw, vs, Ts, kind, d, dv, heads, kvHeads, base, solver, routing, expand, wlOptions };
}

const USAGE =
  'usage: npm run bench -- [--T 4K,32K,128K] [--config S:P:Kc[:flat|:tree[E]],...] [--routing flat|tree --expand E]\n' +
  '  [--d N --dv N --heads N --kv-heads N]\n' +
  '  [--workload needle|gap|uniform] [--margin X --face N --needles N --seed N]\n' +
  '  [--sink N --recent N --widen N --tolerance X --scale X]\n' +
  '  [--solver softmax|eg|fw --eps X --max-iter N --solver-tol X] [--reps N] [--isa wasmsimd|scalar]\n' +
  '  [--native PATH|none] [--bw-mib N] [--json]';

async function main(a) {
  const { report, rows, native, nativePath, nativeNote, bw, vs, Ts, kind, d, dv, heads, kvHeads, base, solver, routing, expand, wlOptions } = await runBench(a);
  if (a.json) return printJson(report);
  const wl0 = vs.workload(wlOptions(Ts[0])).config;
  const planted = kind === 'uniform' ? '' : ` (margin ${wl0.margin}, ${kind === 'gap' ? `${wl0.face} face tokens` : `${wl0.needles} needles`})`;
  console.log(`vashista bench (wasm, node ${process.versions.node}): isa ${vs.isa}, workload ${kind}${planted}, d ${d}, dv ${dv}, heads ${heads}/${kvHeads}, seed ${wl0.seed}`);
  console.log(
    `options: solver ${solver}, routing ${routing}${routing === 'tree' ? ` (expand ${expand || 'auto'})` : ''} unless a configuration names one, sink pages ${base.sinkPages}, recent pages ${base.recentPages}, tolerance ${base.tolerance}; times are medians (ms) through the JS API`,
  );
  if (native) console.log(`native: ${nativePath}, isa ${native.isa}, same run${bw ? `; machine read bandwidth ${bw.toFixed(1)} GB/s (1 thread)` : ''}`);
  else console.log(nativeNote);
  const p = (s, w) => String(s).padStart(w);
  console.log(
    `\n${p('T', 9)} ${p('S:P:Kc:routing', 18)} ${p('dense ms', 10)} ${p('sparse ms', 10)} ${p('speedup', 9)} ${p('dense', 8)} ${p('of bw', 6)} ${p('err bound', 11)} ${p('vs dense', 10)} ${p('recall', 8)} ${p('fallback', 9)} ${p('= flat', 9)}` +
      (native ? ` ${p('native', 10)} ${p('native', 10)} ${p('wasm/nat', 9)} ${p('wasm/nat', 9)}` : ''),
  );
  console.log(
    `${p('', 9)} ${p('', 18)} ${p('', 10)} ${p('', 10)} ${p('', 9)} ${p('GB/s', 8)} ${p('', 6)} ${p('(rel, mean)', 11)} ${p('(rel,max)', 10)} ${p('', 8)} ${p('w/d', 9)} ${p('pages', 9)}` +
      (native ? ` ${p('dense ms', 10)} ${p('sparse ms', 10)} ${p('dense', 9)} ${p('sparse', 9)}` : ''),
  );
  const g3 = (x) => (x === null || x === undefined ? '-' : Number(x.toPrecision(3)).toString());
  for (const r of rows) {
    const frac = bw ? `${Math.round((100 * r.dense_gbs) / bw)}%` : '-';
    const rec = r.recall === null ? '-' : `${(100 * r.recall).toFixed(1)}%`;
    const same = r.same_pages_as_flat === null ? '-' : `${Math.round(100 * r.same_pages_as_flat)}/${Math.round(100 * r.flat_pages_overlap)}%`;
    console.log(
      `${p(r.T, 9)} ${p(configLabel(r), 18)} ${p(r.dense_ms.toFixed(4), 10)} ${p(r.sparse_ms.toFixed(4), 10)} ${p(`${r.speedup.toFixed(1)}x`, 9)} ${p(r.dense_gbs.toFixed(2), 8)} ${p(frac, 6)} ${p(g3(r.mean_rel_error_bound), 11)} ${p(g3(r.max_rel_err_vs_dense), 10)} ${p(rec, 8)} ${p(`${r.fallbacks.widened}/${r.fallbacks.dense}`, 9)} ${p(same, 9)}` +
        (native ? ` ${p(r.native_dense_ms?.toFixed(4) ?? '-', 10)} ${p(r.native_sparse_ms?.toFixed(4) ?? '-', 10)} ${p(r.wasm_native_dense ? `${r.wasm_native_dense.toFixed(2)}x` : '-', 9)} ${p(r.wasm_native_sparse ? `${r.wasm_native_sparse.toFixed(2)}x` : '-', 9)}` : ''),
    );
  }
  console.log(
    '\nerr bound: error_bound / ||out|| of the timed sparse decodes; vs dense: ||sparse - dense|| / ||dense||' +
      `\nagainst this build's dense decode; recall: ${kind === 'gap' ? 'face' : 'needle'} recall (planted tokens among the candidates).` +
      '\n= flat pages (tree rows): head decodes that routed exactly flat routing\'s pages / the share of flat\'s' +
      '\nrouted pages that tree routed too (16 query steps, untimed).' +
      (native ? '\nwasm/nat: wasm time / native time for the same decode (1.00x = as fast as native; target <= 1.5x).' : ''),
  );
}

/* Run as a script (not when imported). */
runIfMain(import.meta.url, 'bench', main, { usage: USAGE });
