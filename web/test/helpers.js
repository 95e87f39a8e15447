/*
 * Test helpers, independent of the library: a seeded PRNG and the float64
 * dense attention reference every quality check measures against.
 */
import { readFileSync } from 'node:fs';

/** A seeded PRNG (mulberry32) with uniform and normal draws. */
export function rng(seed) {
  let s = seed >>> 0;
  const next = () => {
    s = (s + 0x6d2b79f5) >>> 0;
    let t = s;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
  const normal = () => {
    const u = Math.max(next(), 1e-300);
    return Math.sqrt(-2 * Math.log(u)) * Math.cos(2 * Math.PI * next());
  };
  return {
    uniform: next,
    normal,
    /** Float32Array of n N(0, sigma^2) draws. */
    normals(n, sigma = 1) {
      const a = new Float32Array(n);
      for (let i = 0; i < n; i++) a[i] = sigma * normal();
      return a;
    },
  };
}

/**
 * Dense attention in float64: out[h][j] = sum_t softmax_t(scale <q_h, k_{t,g}>) v_{t,g,j},
 * g = h / (heads / kvHeads). keys [T][kvHeads][d], values [T][kvHeads][dv], q [heads][d].
 * scale 0 means 1/sqrt(d).
 */
export function referenceAttention({ keys, values, T, heads, kvHeads, d, dv, q, scale = 0 }) {
  const s = scale > 0 ? scale : 1 / Math.sqrt(d);
  const group = heads / kvHeads;
  const out = new Float64Array(heads * dv);
  const scores = new Float64Array(T);
  for (let h = 0; h < heads; h++) {
    const g = Math.floor(h / group);
    let max = -Infinity;
    for (let t = 0; t < T; t++) {
      let dot = 0;
      const k = (t * kvHeads + g) * d;
      for (let j = 0; j < d; j++) dot += q[h * d + j] * keys[k + j];
      scores[t] = s * dot;
      if (scores[t] > max) max = scores[t];
    }
    let z = 0;
    for (let t = 0; t < T; t++) {
      scores[t] = Math.exp(scores[t] - max);
      z += scores[t];
    }
    for (let t = 0; t < T; t++) {
      const w = scores[t] / z;
      const v = (t * kvHeads + g) * dv;
      for (let j = 0; j < dv; j++) out[h * dv + j] += w * values[v + j];
    }
  }
  return out;
}

/** ||a - b||_2 over elements [from, to). */
export function l2diff(a, b, from = 0, to = a.length) {
  let s = 0;
  for (let i = from; i < to; i++) s += (a[i] - b[i]) ** 2;
  return Math.sqrt(s);
}

/** ||a||_2 over elements [from, to). */
export function l2(a, from = 0, to = a.length) {
  let s = 0;
  for (let i = from; i < to; i++) s += a[i] ** 2;
  return Math.sqrt(s);
}

/** True when two Float32Arrays hold the same bits (so -0 != +0, NaN == NaN of the same payload). */
export function bitEqual(a, b) {
  if (a.length !== b.length) return false;
  const x = new Uint32Array(a.buffer, a.byteOffset, a.length);
  const y = new Uint32Array(b.buffer, b.byteOffset, b.length);
  for (let i = 0; i < x.length; i++) if (x[i] !== y[i]) return false;
  return true;
}

/** Random cache contents of n tokens for a shape. */
export function randomTokens(r, n, { kvHeads, headDim, valueDim }) {
  return { keys: r.normals(n * kvHeads * headDim), values: r.normals(n * kvHeads * valueDim) };
}

/**
 * The automatic `expand` of tree routing (options.expand = 0), as
 * src/include/vashista.h documents it: max(M, ceil(2 P / VS_NODE_PAGES)).
 * Read from the header so that the tests follow the library's rule.
 * @returns {(P: number) => number}
 */
export function autoExpandRule(nodePages = 16) {
  const header = readFileSync(new URL('../../src/include/vashista.h', import.meta.url), 'utf8');
  const m = /0 means automatic:\s*max\((\d+),\s*ceil\(2 P \/ VS_NODE_PAGES\)\)/.exec(header);
  if (!m) throw new Error('vashista.h no longer documents the automatic expand as max(M, ceil(2 P / VS_NODE_PAGES)): update autoExpandRule');
  const least = Number(m[1]);
  return (P) => Math.max(least, Math.ceil((2 * P) / nodePages));
}
