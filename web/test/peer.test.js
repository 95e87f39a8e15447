// npm run bench:peer (bench/peer.mjs) compares vashista's dense decode with
// TensorFlow.js's wasm backend (devDependencies). These tests prove that the
// benchmark compares the same computation and that the peer loads offline:
//   - the peer loads from node_modules with no network: global fetch and
//     every TCP connect are refused and recorded, and none is attempted;
//   - it runs the SIMD binary, single-threaded, like vashista's module;
//   - the peer's timed call (three ops on tensors made from K, V, q) and
//     cache.decodeDense agree with a float64 reference (test/helpers.js) to
//     1e-5 relative, and the peer leaks no tensor;
//   - a tiny runPeer reports every row (no timing assertions).
import assert from 'node:assert/strict';
import { createRequire } from 'node:module';
import net from 'node:net';
import { dirname, join } from 'node:path';
import { test } from 'node:test';

import { loadPeer, parseArgs, peerAttention, runPeer } from '../bench/peer.mjs';
import { init } from '../src/index.js';
import { l2, l2diff, referenceAttention, rng } from './helpers.js';

/* No network from here on: record and refuse any fetch or TCP connection. */
const attempts = [];
globalThis.fetch = async (url) => {
  attempts.push(`fetch ${url}`);
  throw new Error(`network access in a test: fetch ${url}`);
};
const connect = net.Socket.prototype.connect;
net.Socket.prototype.connect = function (...args) {
  attempts.push(`connect ${JSON.stringify(args[0])}`);
  throw new Error('network access in a test: connect');
};
test.after(() => {
  net.Socket.prototype.connect = connect;
});

test('the peer (tfjs wasm backend) loads from node_modules with no network: SIMD, single-threaded', async () => {
  const listeners = () => ['uncaughtException', 'unhandledRejection'].map((ev) => process.listenerCount(ev));
  const before = listeners();
  const peer = await loadPeer();
  assert.deepEqual(attempts, [], 'the peer tried the network');
  assert.deepEqual(listeners(), before, 'Emscripten\'s process handlers are left installed');
  assert.equal(peer.backend, 'wasm');
  assert.equal(peer.version.core, '4.22.0');
  assert.equal(peer.version.wasm, '4.22.0');
  const dir = dirname(createRequire(import.meta.url).resolve('@tensorflow/tfjs-backend-wasm'));
  /* a module with one SIMD128 instruction (i32x4.splat), as tfjs and wasm-feature-detect test */
  const simd = WebAssembly.validate(new Uint8Array([0, 97, 115, 109, 1, 0, 0, 0, 1, 4, 1, 96, 0, 0, 3, 2, 1, 0, 10, 9, 1, 7, 0, 65, 0, 253, 15, 26, 11]));
  assert.equal(peer.simd, simd);
  assert.equal(peer.threads, false, 'the peer should run single-threaded, as vashista does');
  assert.equal(peer.threadsCount, 1);
  const binary = simd ? 'tfjs-backend-wasm-simd.wasm' : 'tfjs-backend-wasm.wasm';
  assert.equal(peer.binary, binary);
  assert.deepEqual(peer.wasmReads, [join(dir, binary)], 'the binary is read from the package in node_modules');
});

test('the peer\'s 3-op attention and decodeDense agree with a float64 reference (T 1000, d 64)', async () => {
  const { tf } = await loadPeer();
  const vs = await init();
  const [T, d, dv] = [1000, 64, 64];
  const scale = 1 / Math.sqrt(d);
  const r = rng(20240611);
  const keys = r.normals(T * d);
  const values = r.normals(T * dv);
  const cache = vs.createCache({ heads: 1, kvHeads: 1, headDim: d, valueDim: dv });
  try {
    cache.append(keys, values);
    const tensors = tf.memory().numTensors;
    let worstPeer = 0;
    let worstOurs = 0;
    for (let i = 0; i < 8; i++) {
      /* from flat to peaked softmax: q scaled up to 4x */
      const q = r.normals(d, 1 + i / 2);
      const ref = referenceAttention({ keys, values, T, heads: 1, kvHeads: 1, d, dv, q, scale });
      const theirs = peerAttention(tf, keys, values, q, T, d, dv, scale);
      const ours = cache.decodeDense(q, { scale });
      assert.equal(theirs.length, dv);
      assert.equal(ours.length, dv);
      worstPeer = Math.max(worstPeer, l2diff(theirs, ref) / l2(ref));
      worstOurs = Math.max(worstOurs, l2diff(ours, ref) / l2(ref));
    }
    assert.ok(worstPeer <= 1e-5, `peer vs float64: ${worstPeer}`);
    assert.ok(worstOurs <= 1e-5, `decodeDense vs float64: ${worstOurs}`);
    assert.equal(tf.memory().numTensors, tensors, 'the peer\'s call leaks tensors');
  } finally {
    cache.free();
  }
  assert.deepEqual(attempts, [], 'the peer tried the network');
});

test('runPeer: tiny runs, blocked and interleaved, report the peer, its binary, and every row', async () => {
  assert.deepEqual(parseArgs(['--T', '4K,16K', '--interleave', '--json']), { T: '4K,16K', interleave: true, json: true });
  const blocked = await runPeer({ T: '512,1000', d: '32', reps: '3', 'min-seconds': '0.02' });
  const interleaved = await runPeer({ T: '1000', d: '32', reps: '3', 'min-seconds': '0.02', interleave: true });
  assert.equal(blocked.timing.order, 'blocked');
  assert.equal(interleaved.timing.order, 'interleaved');
  for (const report of [blocked, interleaved]) {
    assert.equal(report.peer.backend, 'wasm');
    assert.match(report.peer.binary, /^tfjs-backend-wasm(-simd)?\.wasm$/);
    assert.equal(report.peer.threads, false);
  }
  assert.deepEqual(blocked.results.map((row) => row.T), [512, 1000]);
  for (const row of [...blocked.results, ...interleaved.results]) {
    assert.equal(row.skipped, undefined, JSON.stringify(row));
    assert.ok(row.peer_ms > 0 && row.ours_ms > 0 && row.ratio > 0 && row.peer_resident_ms > 0, JSON.stringify(row));
    assert.ok(row.max_rel_err_peer_vs_ours <= 1e-5, JSON.stringify(row));
    assert.ok(row.max_rel_err_ours_vs_f64 <= 1e-5 && row.max_rel_err_peer_vs_f64 <= 1e-5, JSON.stringify(row));
    assert.ok(Math.abs(row.peer_softmax_sum_minus_1) <= 1e-5, JSON.stringify(row));
  }
  assert.deepEqual(attempts, [], 'the peer tried the network');
});
