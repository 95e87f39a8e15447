// Page routing (DESIGN: vs_routing): 'flat' bounds every page and routes the
// top P; 'tree' bounds every node of vs.nodePages (16) pages, expands the
// top-`expand` nodes into their pages and routes the top P of those. Checked
// on caches built from the package's own workload generators:
//   (a) with expand >= the number of nodes, tree is flat, bit for bit;
//   (b) tree's routed pages: sink and recent pages, plus at most P pages from
//       at most `expand` distinct nodes;
//   (c) the certificate holds against the float64 dense softmax reference of
//       test/helpers.js (errorBound >= ||out - ref||, rhoCert >= the mass off
//       the candidates) with tree routing, over seeded cases;
//   (d) bad routing / expand values throw, naming the option, and the cache
//       keeps working;
//   and the widened retry of a tolerance routes flat.
import assert from 'node:assert/strict';
import { test } from 'node:test';

import { init, VashistaError } from '../src/index.js';
import { autoExpandRule, bitEqual, l2, l2diff, referenceAttention } from './helpers.js';

const vs = await init();
const F = vs.nodePages;

/* A cache filled from a workload, with the tokens kept for the reference. */
function setup(options, pageSize, { keep = true } = {}) {
  const wl = vs.workload(options);
  const c = wl.config;
  const cache = vs.createCache({ heads: c.heads, kvHeads: c.kvHeads, headDim: c.headDim, valueDim: c.valueDim, pageSize });
  const tokens = keep ? wl.tokens(0, c.T) : null;
  if (tokens) cache.append(tokens.keys, tokens.values);
  else wl.appendTo(cache);
  const pages = Math.ceil(c.T / pageSize);
  return { wl, c, cache, pageSize, pages, nodes: Math.ceil(pages / F), ...tokens };
}

/* expand 0: the library's automatic rule (vashista.h) */
const autoExpand = autoExpandRule(F);

/* Everything observable about a decode: output, diagnostics, selections. */
function decodeAll(cache, q, options) {
  const r = cache.decode(q, options);
  const heads = r.diagnostics.length;
  return {
    output: r.output,
    diagnostics: r.diagnostics,
    candidates: Array.from({ length: heads }, (_, h) => Array.from(cache.lastCandidates(h))),
    routed: Array.from({ length: heads }, (_, h) => Array.from(cache.lastRoutedPages(h))),
  };
}

function assertSame(a, b, what) {
  assert.ok(bitEqual(a.output, b.output), `${what}: outputs differ`);
  assert.deepEqual(a.diagnostics, b.diagnostics, `${what}: diagnostics differ`);
  assert.deepEqual(a.candidates, b.candidates, `${what}: candidates differ`);
  assert.deepEqual(a.routed, b.routed, `${what}: routed pages differ`);
}

/*
 * Checks one head's routed pages under tree routing: increasing, every sink
 * and recent page, and besides them at most min(P, middle) pages of at most
 * E distinct nodes (E >= the node count: flat's sink + min(P, middle) +
 * recent). Fewer than min(P, middle) only when the expanded nodes ran out of
 * middle pages, so each node used is then routed whole. Returns the nodes used.
 */
function checkTreePages(routed, { pages: np }, { P, sink: sink0, recent: recent0, E }, where) {
  const sink = Math.min(sink0, np);
  const recent = Math.min(recent0, np - sink);
  const middle = np - sink - recent;
  for (let i = 1; i < routed.length; i++) assert.ok(routed[i] > routed[i - 1], `${where}: not increasing: ${routed}`);
  assert.ok(routed.length === 0 || routed[routed.length - 1] < np, `${where}: page out of range`);
  const set = new Set(routed);
  for (let p = 0; p < sink; p++) assert.ok(set.has(p), `${where}: sink page ${p} not routed`);
  for (let p = np - recent; p < np; p++) assert.ok(set.has(p), `${where}: recent page ${p} not routed`);
  const others = routed.filter((p) => p >= sink && p < np - recent);
  assert.equal(others.length, routed.length - sink - recent, where);
  const nodes = new Set(others.map((p) => Math.floor(p / F)));
  const nn = Math.ceil(np / F);
  if (E >= nn || P >= middle) {
    assert.equal(others.length, Math.min(P, middle), `${where}: ${others.length} routed middle pages`);
    return nodes;
  }
  assert.ok(nodes.size <= E, `${where}: pages of ${nodes.size} nodes routed with expand ${E}: ${others}`);
  assert.ok(others.length <= P, `${where}: ${others.length} middle pages routed, P = ${P}`);
  if (others.length < P) {
    /* the expanded nodes held fewer than P middle pages: every one of them is routed */
    for (const n of nodes)
      for (let p = Math.max(n * F, sink); p < Math.min((n + 1) * F, np - recent); p++)
        assert.ok(set.has(p), `${where}: node ${n} routed in part (${others.length} < P = ${P} pages)`);
  }
  return nodes;
}

test('vs.nodePages and the routing defaults come from the module', () => {
  assert.equal(vs.nodePages, 16);
  assert.equal(vs.decodeDefaults.routing, 'tree');
  assert.equal(vs.decodeDefaults.expand, 0);
});

test('(a) tree with expand >= the number of nodes is flat routing, bit for bit', () => {
  let compared = 0;
  for (const [T, pageSize, heads, kvHeads, seed] of [[20000, 8, 4, 2, 1], [9000, 4, 2, 1, 2], [5000, 32, 3, 3, 3]]) {
    const env = setup({ kind: 'needle', T, heads, kvHeads, headDim: 32, valueDim: 24, seed }, pageSize, { keep: false });
    for (let step = 0; step < 3; step++) {
      const q = env.wl.queries(step);
      for (const base of [{ pages: 8, candidates: 64 }, { pages: 40, candidates: 200, sinkPages: 2, recentPages: 3 }, { pages: 3, candidates: 16, sinkPages: 0, recentPages: 0 }]) {
        const flat = decodeAll(env.cache, q, { ...base, routing: 'flat' });
        for (const expand of [env.nodes, env.nodes + 1, 2 ** 32 - 1]) {
          assertSame(decodeAll(env.cache, q, { ...base, routing: 'tree', expand }), flat, `T ${T} S ${pageSize} step ${step} ${JSON.stringify(base)} expand ${expand}`);
          compared++;
        }
        /* flat ignores expand */
        assertSame(decodeAll(env.cache, q, { ...base, routing: 'flat', expand: 1 }), flat, 'flat with expand 1');
      }
    }
    env.cache.free();
  }
  /* a cache of as many nodes as the automatic expand's least value: it covers them, so the default is flat too */
  const least = autoExpand(1);
  const small = setup({ kind: 'needle', T: least * F * 16 - 5, heads: 2, headDim: 16, seed: 4 }, 16, { keep: false });
  assert.equal(small.nodes, least);
  const q = small.wl.queries(0);
  assertSame(decodeAll(small.cache, q, { pages: 4, candidates: 32 }), decodeAll(small.cache, q, { pages: 4, candidates: 32, routing: 'flat' }), `default routing on ${least} nodes`);
  small.cache.free();
  assert.equal(compared, 3 * 3 * 3 * 3);
});

test('(b) tree routes sink and recent pages and pages of at most `expand` nodes', () => {
  const env = setup({ kind: 'needle', T: 40000, heads: 4, kvHeads: 2, headDim: 32, valueDim: 16, seed: 11 }, 8, { keep: false });
  assert.ok(env.nodes > 300);
  const seen = { heads: 0, partial: 0, differs: 0, found: 0, wanted: 0 };
  const marked = env.wl.marked();
  for (let step = 0; step < 4; step++) {
    const q = env.wl.queries(step);
    for (const o of [
      { pages: 16, candidates: 128 },
      { pages: 16, candidates: 128, expand: 1 },
      { pages: 24, candidates: 64, expand: 2, sinkPages: 3, recentPages: 2 },
      { pages: 5, candidates: 32, expand: 3, sinkPages: 0, recentPages: 0 },
      { pages: 100, candidates: 256, expand: 4, sinkPages: 20, recentPages: 20 },
      { pages: 64, candidates: 128 },
    ]) {
      const r = decodeAll(env.cache, q, { ...o, routing: 'tree' });
      const flat = decodeAll(env.cache, q, { ...o, routing: 'flat' });
      const E = o.expand || autoExpand(o.pages);
      const spec = { P: o.pages, sink: o.sinkPages ?? vs.decodeDefaults.sinkPages, recent: o.recentPages ?? vs.decodeDefaults.recentPages, E };
      for (let h = 0; h < r.routed.length; h++) {
        const where = `step ${step} head ${h} ${JSON.stringify(o)}`;
        const nodes = checkTreePages(r.routed[h], env, spec, where);
        assert.ok(nodes.size >= 1, where);
        assert.equal(r.diagnostics[h].routedPages, r.routed[h].length, where);
        assert.equal(r.diagnostics[h].fallback, 'none', where);
        /* the candidates are tokens of the routed pages */
        const pages = new Set(r.routed[h]);
        for (const t of r.candidates[h]) assert.ok(pages.has(Math.floor(t / env.pageSize)), `${where}: candidate ${t} outside the routed pages`);
        seen.heads++;
        if (r.routed[h].length < flat.routed[h].length) seen.partial++;
        if (r.routed[h].join() !== flat.routed[h].join()) seen.differs++;
        const cand = new Set(r.candidates[h]);
        seen.found += marked.filter((t) => cand.has(t)).length;
        seen.wanted += marked.length;
      }
    }
  }
  /* not vacuous: tree took its own route (fewer pages, or other pages) for some heads */
  assert.ok(seen.partial > 0 && seen.differs > 0, JSON.stringify(seen));
  env.cache.free();
});

test('(c) tree routing: the certificate holds against the float64 dense reference', (t) => {
  const kinds = ['needle', 'gap', 'uniform'];
  let cases = 0;
  let heads = 0;
  let treeHeads = 0;
  let leaked = 0;
  for (let seed = 1; seed <= 36; seed++) {
    const kind = kinds[seed % 3];
    const pageSize = [2, 4, 8, 16][seed % 4];
    const [hq, hkv] = [[1, 1], [2, 1], [4, 2], [3, 3]][Math.floor(seed / 3) % 4];
    const d = [8, 16, 32][seed % 3];
    /* enough pages for more nodes than any expand below */
    const T = 64 * F * pageSize + ((seed * 977) % (F * pageSize));
    const env = setup({ kind, T, heads: hq, kvHeads: hkv, headDim: d, valueDim: 12, seed }, pageSize);
    const { c } = env;
    const q = env.wl.queries(seed % 5);
    const ref = referenceAttention({ keys: env.keys, values: env.values, T: c.T, heads: c.heads, kvHeads: c.kvHeads, d: c.headDim, dv: c.valueDim, q });
    const P = [1, 4, 16, 48][seed % 4];
    const options = {
      routing: 'tree', pages: P, candidates: [8, 32, 128][seed % 3], expand: [0, 1, 2, 3, 5][seed % 5],
      sinkPages: seed % 3, recentPages: (seed >> 1) % 3,
    };
    const E = options.expand || autoExpand(P);
    assert.ok(E < env.nodes, 'tree routing is in effect');
    const r = decodeAll(env.cache, q, options);
    for (let h = 0; h < c.heads; h++) {
      const where = `seed ${seed} ${kind} T ${T} S ${pageSize} head ${h} ${JSON.stringify(options)}`;
      const dg = r.diagnostics[h];
      checkTreePages(r.routed[h], env, { P, sink: options.sinkPages, recent: options.recentPages, E }, where);
      const lo = h * c.valueDim;
      const hi = lo + c.valueDim;
      const err = l2diff(r.output.subarray(lo, hi), ref.subarray(lo, hi));
      assert.ok(err <= dg.errorBound + 1e-12 * l2(ref, lo, hi), `${where}: ||out - ref|| = ${err} above errorBound ${dg.errorBound}`);
      /* the dense mass outside the candidates */
      const g = Math.floor(h / (c.heads / c.kvHeads));
      const s = new Float64Array(c.T);
      let max = -Infinity;
      for (let tk = 0; tk < c.T; tk++) {
        let dot = 0;
        for (let j = 0; j < d; j++) dot += q[h * d + j] * env.keys[(tk * c.kvHeads + g) * d + j];
        s[tk] = dot / Math.sqrt(d);
        max = Math.max(max, s[tk]);
      }
      let z = 0;
      let inside = 0;
      const cand = new Set(r.candidates[h]);
      for (let tk = 0; tk < c.T; tk++) {
        const w = Math.exp(s[tk] - max);
        z += w;
        if (cand.has(tk)) inside += w;
      }
      const rho = Math.max(0, 1 - inside / z);
      assert.ok(rho <= dg.rhoCert + 1e-12, `${where}: off-candidate mass ${rho} above rhoCert ${dg.rhoCert}`);
      assert.ok(rho <= dg.leakageBound * (1 + 2 ** -23) + 1e-12, `${where}: off-candidate mass ${rho} above leakageBound ${dg.leakageBound}`);
      heads++;
      if (r.routed[h].length < env.pages) treeHeads++;
      if (rho > 1e-6) leaked++;
    }
    env.cache.free();
    cases++;
  }
  t.diagnostic(`${cases} cases, ${heads} heads, ${treeHeads} routed partially, ${leaked} with off-candidate mass > 1e-6`);
  assert.equal(cases, 36);
  assert.equal(treeHeads, heads);
  assert.ok(leaked >= heads / 4, `only ${leaked} of ${heads} heads left mass out: the check is nearly vacuous`);
});

test('a tolerance retry routes flat: a widened head equals a flat decode with widened sizes', () => {
  const env = setup({ kind: 'gap', T: 30000, heads: 4, kvHeads: 2, headDim: 16, valueDim: 16, seed: 21 }, 8, { keep: false });
  let widened = 0;
  for (let step = 0; step < 4; step++) {
    const q = env.wl.queries(step);
    const base = { pages: 4, candidates: 32, widen: 8, routing: 'tree', expand: 1 };
    const first = decodeAll(env.cache, q, { ...base, tolerance: 0 });
    /* a tolerance between the tree decode's bound and the widened flat one's, per run */
    const wide = decodeAll(env.cache, q, { ...base, routing: 'flat', pages: 32, candidates: 256, tolerance: 0 });
    const rel = (x, h) => x.diagnostics[h].errorBound / x.diagnostics[h].outputNorm;
    const tol = Math.max(...first.diagnostics.map((_, h) => rel(wide, h))) * 1.01;
    const r = decodeAll(env.cache, q, { ...base, tolerance: tol });
    for (let h = 0; h < r.routed.length; h++) {
      const dg = r.diagnostics[h];
      if (dg.fallback !== 'widened') continue;
      widened++;
      const where = `step ${step} head ${h}`;
      const dv = env.c.valueDim;
      assert.ok(bitEqual(r.output.subarray(h * dv, (h + 1) * dv), wide.output.subarray(h * dv, (h + 1) * dv)), `${where}: widened output differs from flat`);
      assert.deepEqual({ ...dg, fallback: 'none' }, wide.diagnostics[h], where);
      assert.deepEqual(r.routed[h], wide.routed[h], `${where}: routed pages`);
      assert.deepEqual(r.candidates[h], wide.candidates[h], `${where}: candidates`);
    }
  }
  assert.ok(widened >= 4, `only ${widened} widened heads`);
  env.cache.free();
});

test('(d) bad routing or expand: E_TYPE / E_OPTION naming the option, and the cache keeps working', () => {
  const env = setup({ kind: 'needle', T: 6000, heads: 2, kvHeads: 1, headDim: 16, seed: 5 }, 4, { keep: false });
  const q = env.wl.queries(0);
  const good = { pages: 6, candidates: 40, expand: 2 };
  const before = decodeAll(env.cache, q, good);
  const bad = [
    ['routing', 'Tree', 'E_OPTION'], ['routing', 'FLAT', 'E_OPTION'], ['routing', '', 'E_OPTION'], ['routing', 'hnsw', 'E_OPTION'],
    ['routing', 'toString', 'E_OPTION'], ['routing', '__proto__', 'E_OPTION'],
    ['routing', 0, 'E_TYPE'], ['routing', 1, 'E_TYPE'], ['routing', null, 'E_TYPE'], ['routing', true, 'E_TYPE'], ['routing', {}, 'E_TYPE'], ['routing', ['tree'], 'E_TYPE'],
    ['expand', -1, 'E_OPTION'], ['expand', 2 ** 32, 'E_OPTION'], ['expand', -0.5, 'E_TYPE'], ['expand', 1.5, 'E_TYPE'],
    ['expand', NaN, 'E_TYPE'], ['expand', Infinity, 'E_TYPE'], ['expand', '2', 'E_TYPE'], ['expand', null, 'E_TYPE'], ['expand', 2n, 'E_TYPE'], ['expand', true, 'E_TYPE'],
  ];
  for (const [key, value, code] of bad) {
    for (const options of [{ ...good, [key]: value }, { [key]: value }]) {
      const what = `${key} = ${typeof value === 'bigint' ? `${value}n` : JSON.stringify(value)}`;
      assert.throws(
        () => env.cache.decode(q, options),
        (e) => {
          assert.ok(e instanceof VashistaError, what);
          assert.equal(e.code, code, `${what}: ${e.message}`);
          assert.equal(e.argument, `options.${key}`, what);
          assert.ok(e.message.includes(`options.${key}`), `${what}: ${e.message}`);
          return true;
        },
      );
    }
    /* the failed call changed nothing: the last selection is still there */
    for (let h = 0; h < 2; h++) assert.deepEqual(Array.from(env.cache.lastRoutedPages(h)), before.routed[h], `after ${key} = ${String(value)}`);
  }
  /* the extreme good values are accepted */
  decodeAll(env.cache, q, { ...good, expand: 0 });
  decodeAll(env.cache, q, { ...good, expand: 2 ** 32 - 1 });
  assertSame(decodeAll(env.cache, q, good), before, 'after the bad calls');
  env.cache.free();
});

test('shareRouting: the heads of a KV head route the same pages, by their mean query, and the certificate holds', () => {
  let heads = 0;
  let differs = 0;
  for (let seed = 1; seed <= 12; seed++) {
    const pageSize = [2, 4, 8][seed % 3];
    const [hq, hkv] = [[4, 2], [6, 2], [4, 1]][seed % 3];
    const d = [8, 16][seed % 2];
    const T = 40 * F * pageSize + ((seed * 577) % (F * pageSize));
    const env = setup({ kind: ['needle', 'gap', 'uniform'][seed % 3], T, heads: hq, kvHeads: hkv, headDim: d, valueDim: 6, seed }, pageSize);
    const { c } = env;
    /* heads that differ: the workload's query plus per-head noise */
    const q = env.wl.queries(0);
    let x = seed * 2654435761 >>> 0;
    for (let i = 0; i < q.length; i++) {
      x = (x * 1664525 + 1013904223) >>> 0;
      q[i] += ((x / 2 ** 32) - 0.5) * 2;
    }
    const ref = referenceAttention({ keys: env.keys, values: env.values, T: c.T, heads: c.heads, kvHeads: c.kvHeads, d: c.headDim, dv: c.valueDim, q });
    const options = { routing: ['tree', 'flat'][seed % 2], pages: 4, candidates: 32, expand: 2 };
    const own = decodeAll(env.cache, q, options);
    const shared = decodeAll(env.cache, q, { ...options, shareRouting: true });
    const group = c.heads / c.kvHeads;
    for (let h = 0; h < c.heads; h++) {
      const where = `seed ${seed} head ${h} ${JSON.stringify(options)}`;
      const dg = shared.diagnostics[h];
      assert.deepEqual(shared.routed[h], shared.routed[h - (h % group)], `${where}: a group routes once`);
      if (JSON.stringify(shared.routed[h]) !== JSON.stringify(own.routed[h])) differs++;
      const lo = h * c.valueDim;
      const err = l2diff(shared.output.subarray(lo, lo + c.valueDim), ref.subarray(lo, lo + c.valueDim));
      assert.ok(err <= dg.errorBound + 1e-12 * l2(ref, lo, lo + c.valueDim), `${where}: ||out - ref|| = ${err} above errorBound ${dg.errorBound}`);
      heads++;
    }
    env.cache.free();
  }
  assert.ok(differs >= heads / 4, `the shared routing differed from the heads' own in only ${differs} of ${heads} heads`);
});

test('shareRouting must be a boolean; the defaults do not share', () => {
  const env = setup({ kind: 'needle', T: 500, heads: 2, kvHeads: 1, headDim: 8, valueDim: 4, seed: 3 }, 4);
  assert.equal(vs.decodeDefaults.shareRouting, false);
  const q = env.wl.queries(0);
  for (const bad of [1, 'yes', null])
    assert.throws(() => env.cache.decode(q, { shareRouting: bad }), (e) => e instanceof VashistaError && e.code === 'E_TYPE' && e.argument === 'options.shareRouting');
  assert.equal(env.cache.decode(q, { shareRouting: true }).output.length, 2 * 4);
  env.cache.free();
});
