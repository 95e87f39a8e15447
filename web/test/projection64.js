/*
 * Float64 references for the projection solvers (solver 'eg' and 'fw'),
 * written independently of the library: neither shares code nor method with
 * src/solvers.c (exponentiated gradient, Frank-Wolfe).
 *
 *   entropicProjection64: eg over the given keys, in score units,
 *     alpha* = argmin_{simplex} scale/2 ||U alpha - q||^2 + eps sum alpha_i log alpha_i,
 *     by Newton's method on its d-dimensional concave dual
 *       g(lambda) = -eps log sum_i exp(-<k_i, lambda> / eps) - <lambda, q> - ||lambda||^2 / (2 scale),
 *     alpha(lambda) = softmax(-U^T lambda / eps). Weak duality gives a
 *     certificate: F(alpha) - F* <= F(alpha) - g(lambda) =: gap, and the
 *     objective is eps-strongly convex in l1, so ||alpha - alpha*||_1 <= sqrt(2 gap / eps).
 *
 *   hullProjection64: fw's point, p* = argmin_{p in conv(keys)} ||p - q||, by
 *     Wolfe's minimum-norm-point algorithm on the points k_i - q. Certificate:
 *     for x in the hull, ||x - x*||^2 <= ||x||^2 - min_i <x, k_i - q>.
 *
 * Keys: a flat array, token t's key of KV head g at ((t * kvHeads) + g) * d
 * (kvHeads = 1, g = 0 for a plain [T][d] array); only the tokens listed in
 * `tokens` (default: all T) take part.
 */

function gather(keys, T, d, kvHeads, g, tokens) {
  const idx = tokens ?? Array.from({ length: T }, (_, t) => t);
  const n = idx.length;
  const U = new Float64Array(n * d);
  for (let i = 0; i < n; i++) {
    const at = (idx[i] * kvHeads + g) * d;
    for (let j = 0; j < d; j++) U[i * d + j] = keys[at + j];
  }
  return { U, n };
}

/* Solves A x = b (A n x n, row-major, overwritten) by Gaussian elimination with partial pivoting. */
function solve(A, b, n) {
  const x = Float64Array.from(b);
  for (let c = 0; c < n; c++) {
    let p = c;
    for (let r = c + 1; r < n; r++) if (Math.abs(A[r * n + c]) > Math.abs(A[p * n + c])) p = r;
    if (A[p * n + c] === 0) return null;
    if (p !== c) {
      for (let k = 0; k < n; k++) [A[c * n + k], A[p * n + k]] = [A[p * n + k], A[c * n + k]];
      [x[c], x[p]] = [x[p], x[c]];
    }
    for (let r = c + 1; r < n; r++) {
      const f = A[r * n + c] / A[c * n + c];
      if (f === 0) continue;
      for (let k = c; k < n; k++) A[r * n + k] -= f * A[c * n + k];
      x[r] -= f * x[c];
    }
  }
  for (let c = n - 1; c >= 0; c--) {
    let s = x[c];
    for (let k = c + 1; k < n; k++) s -= A[c * n + k] * x[k];
    x[c] = s / A[c * n + c];
  }
  return x;
}

/**
 * The entropic projection (solver 'eg') of query q (d floats) onto the keys,
 * with weights alpha* over `tokens` (default every token).
 * @returns {{ alpha: Float64Array, point: Float64Array, gap: number, l1: number, iterations: number }}
 *   l1: the certified bound on ||alpha - alpha*||_1 (from the duality gap, rounding included)
 */
export function entropicProjection64({ keys, T, d, kvHeads = 1, g = 0, tokens, q, scale, eps }) {
  const { U, n } = gather(keys, T, d, kvHeads, g, tokens);
  const qd = Float64Array.from(q);
  const lam = new Float64Array(d);
  const z = new Float64Array(n);
  const alpha = new Float64Array(n);
  const mean = new Float64Array(d);

  /* alpha(lambda), U alpha, and g(lambda) */
  const evalDual = (l) => {
    let zmax = -Infinity;
    for (let i = 0; i < n; i++) {
      let s = 0;
      for (let j = 0; j < d; j++) s += U[i * d + j] * l[j];
      z[i] = -s / eps;
      if (z[i] > zmax) zmax = z[i];
    }
    let Z = 0;
    for (let i = 0; i < n; i++) Z += (alpha[i] = Math.exp(z[i] - zmax));
    for (let i = 0; i < n; i++) alpha[i] /= Z;
    mean.fill(0);
    for (let i = 0; i < n; i++) if (alpha[i] > 0) for (let j = 0; j < d; j++) mean[j] += alpha[i] * U[i * d + j];
    let lq = 0;
    let ll = 0;
    for (let j = 0; j < d; j++) {
      lq += l[j] * qd[j];
      ll += l[j] * l[j];
    }
    const lse = zmax + Math.log(Z);
    return { value: -eps * lse - lq - ll / (2 * scale), mag: eps * Math.abs(lse) + Math.abs(lq) + ll / (2 * scale) };
  };
  /* the primal objective at alpha (as left by evalDual) */
  const primal = () => {
    let r2 = 0;
    for (let j = 0; j < d; j++) r2 += (mean[j] - qd[j]) ** 2;
    let ent = 0;
    for (let i = 0; i < n; i++) if (alpha[i] > 0) ent += alpha[i] * Math.log(alpha[i]);
    return { value: (scale / 2) * r2 + eps * ent, mag: (scale / 2) * r2 + eps * Math.abs(ent) };
  };

  let cur = evalDual(lam);
  let iterations = 0;
  const grad = new Float64Array(d);
  const H = new Float64Array(d * d);
  const trial = new Float64Array(d);
  for (; iterations < 500; iterations++) {
    /* gradient U alpha - q - lambda / scale; Hessian -(Cov_alpha(U) / eps + I / scale) */
    for (let j = 0; j < d; j++) grad[j] = mean[j] - qd[j] - lam[j] / scale;
    H.fill(0);
    for (let i = 0; i < n; i++) {
      if (alpha[i] === 0) continue;
      for (let a = 0; a < d; a++) {
        const ua = (U[i * d + a] - mean[a]) * alpha[i];
        if (ua === 0) continue;
        for (let b = 0; b < d; b++) H[a * d + b] += (ua * (U[i * d + b] - mean[b])) / eps;
      }
    }
    for (let a = 0; a < d; a++) H[a * d + a] += 1 / scale;
    const step = solve(H, grad, d); /* ascent direction (-Hessian)^-1 grad */
    if (!step) break;
    let slope = 0;
    for (let j = 0; j < d; j++) slope += step[j] * grad[j];
    if (!(slope > 0)) break;
    /* backtracking (Armijo) on g */
    let t = 1;
    let next = null;
    for (let k = 0; k < 60; k++, t /= 2) {
      for (let j = 0; j < d; j++) trial[j] = lam[j] + t * step[j];
      const v = evalDual(trial);
      if (v.value >= cur.value + 1e-4 * t * slope) {
        next = v;
        break;
      }
    }
    if (!next) {
      evalDual(lam); /* restore alpha and mean for lambda */
      break;
    }
    lam.set(trial);
    cur = next;
    const p = primal();
    if (p.value - cur.value <= 1e-15 * (p.mag + cur.mag)) break;
  }
  evalDual(lam);
  const p = primal();
  /* the gap, plus a generous allowance for its float64 rounding */
  const gap = Math.max(0, p.value - cur.value) + 1e-13 * (p.mag + cur.mag);
  return { alpha: Float64Array.from(alpha), point: Float64Array.from(mean), gap, l1: Math.sqrt((2 * gap) / eps), iterations };
}

/**
 * The projection of q onto the convex hull of the keys (solver 'fw''s point),
 * by Wolfe's minimum-norm-point algorithm.
 * @returns {{ point: Float64Array, weights: Map<number, number>, err: number, iterations: number }}
 *   err: the certified bound on ||point - p*||_2 (rounding included)
 */
export function hullProjection64({ keys, T, d, kvHeads = 1, g = 0, tokens, q }) {
  const { U, n } = gather(keys, T, d, kvHeads, g, tokens);
  const P = new Float64Array(n * d); /* P_i = k_i - q: the min-norm point of their hull */
  let R2 = 0;
  let first = 0;
  let firstNorm = Infinity;
  for (let i = 0; i < n; i++) {
    let s = 0;
    for (let j = 0; j < d; j++) {
      P[i * d + j] = U[i * d + j] - q[j];
      s += P[i * d + j] ** 2;
    }
    R2 = Math.max(R2, s);
    if (s < firstNorm) [firstNorm, first] = [s, i];
  }
  const dot = (x, i) => {
    let s = 0;
    for (let j = 0; j < d; j++) s += x[j] * P[i * d + j];
    return s;
  };
  const combine = (S, w) => {
    const x = new Float64Array(d);
    for (let k = 0; k < S.length; k++) for (let j = 0; j < d; j++) x[j] += w[k] * P[S[k] * d + j];
    return x;
  };
  /* the point of aff{P_i : i in S} nearest the origin: weights summing to 1 */
  const affine = (S) => {
    const m = S.length;
    const A = new Float64Array((m + 1) * (m + 1));
    const b = new Float64Array(m + 1);
    const s = R2 > 0 ? R2 : 1; /* balance the bordered system */
    for (let a = 0; a < m; a++) {
      for (let c = 0; c < m; c++) {
        let v = 0;
        for (let j = 0; j < d; j++) v += P[S[a] * d + j] * P[S[c] * d + j];
        A[a * (m + 1) + c] = v / s;
      }
      A[a * (m + 1) + m] = 1;
      A[m * (m + 1) + a] = 1;
    }
    b[m] = 1;
    const x = solve(A, b, m + 1);
    return x && x.subarray(0, m).every(Number.isFinite) ? Array.from(x.subarray(0, m)) : null;
  };

  let S = [first];
  let w = [1];
  let x = combine(S, w);
  let iterations = 0;
  for (; iterations < 100000; iterations++) {
    let xx = 0;
    for (let j = 0; j < d; j++) xx += x[j] * x[j];
    let m = Infinity;
    let jmin = -1;
    for (let i = 0; i < n; i++) {
      const v = dot(x, i);
      if (v < m) [m, jmin] = [v, i];
    }
    if (xx - m <= 1e-15 * R2 || S.includes(jmin)) break;
    const S1 = [...S, jmin];
    let w1 = [...w, 0];
    let ok = true;
    for (;;) {
      /* minor cycle: move toward the affine minimizer, dropping points that reach 0 */
      const v = affine(S1);
      if (!v) {
        ok = false;
        break;
      }
      if (v.every((vi) => vi > 0)) {
        w1 = v;
        break;
      }
      let theta = Infinity;
      let kmin = -1;
      for (let k = 0; k < v.length; k++) {
        if (v[k] > 0) continue;
        const t = w1[k] / (w1[k] - v[k]);
        if (t < theta) [theta, kmin] = [t, k];
      }
      w1 = w1.map((wk, k) => theta * v[k] + (1 - theta) * wk);
      w1[kmin] = 0; /* the point that reached the boundary leaves */
      for (let k = w1.length - 1; k >= 0; k--)
        if (!(w1[k] > 0)) {
          S1.splice(k, 1);
          w1.splice(k, 1);
        }
      const sum = w1.reduce((a, b) => a + b, 0);
      w1 = w1.map((wk) => wk / sum);
    }
    if (!ok) break;
    const x1 = combine(S1, w1);
    let x1x1 = 0;
    for (let j = 0; j < d; j++) x1x1 += x1[j] * x1[j];
    if (!(x1x1 < xx)) break; /* no progress left in float64 */
    S = S1;
    w = w1;
    x = x1;
  }
  /* certificate */
  let xx = 0;
  for (let j = 0; j < d; j++) xx += x[j] * x[j];
  let m = Infinity;
  for (let i = 0; i < n; i++) m = Math.min(m, dot(x, i));
  const gap = Math.max(0, xx - m) + 1e-14 * (R2 + xx);
  const point = new Float64Array(d);
  for (let j = 0; j < d; j++) point[j] = x[j] + q[j];
  const weights = new Map();
  const idx = tokens ?? null;
  S.forEach((i, k) => weights.set(idx ? idx[i] : i, w[k]));
  return { point, weights, err: Math.sqrt(gap), iterations };
}
