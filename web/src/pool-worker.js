/*
 * One worker of vashista/pool (src/pool.js): a Web Worker (module type) in
 * browsers, a worker_threads Worker in Node. It holds one instance of the
 * module (from the WebAssembly.Module the pool posts: nothing is fetched) and
 * one cache with its share of the KV heads, and runs the operations it is
 * sent, one at a time, in order.
 *
 * Protocol: the worker posts { ready: true } once it listens. Requests are
 * { id, op, args }; answers { id, ok: true, result } or
 * { id, ok: false, error: { vashista, name, code, message, status, argument } }.
 * Outputs are transferred, not copied.
 */
import { VashistaError, init } from './index.js';

const WEB = typeof globalThis.WorkerGlobalScope !== 'undefined' && typeof globalThis.postMessage === 'function';
const port = WEB ? null : (await import('node:worker_threads')).parentPort;

/** @type {(message: unknown, transfer?: Transferable[]) => void} */
const post = WEB ? (m, t = []) => globalThis.postMessage(m, t) : (m, t = []) => port?.postMessage(m, /** @type {any} */ (t));

/** @type {any} */
let cache = null;

function serialize(e) {
  if (e instanceof VashistaError)
    return { vashista: true, name: e.name, code: e.code, message: e.message, status: e.status, argument: e.argument };
  return { vashista: false, name: e?.name ?? 'Error', message: e?.message ?? String(e) };
}

async function run(op, args) {
  switch (op) {
    case 'init': {
      const vs = await init(args.isa === undefined ? { wasm: args.module } : { wasm: args.module, isa: args.isa });
      cache = vs.createCache(args.config);
      return { result: { isa: vs.isa, version: vs.version } };
    }
    case 'append':
      cache.append(args.keys, args.values);
      return { result: null };
    case 'truncate':
      cache.truncate(args.n);
      return { result: null };
    case 'decodeDense': {
      const out = cache.decodeDense(args.q, args.options);
      return { result: out, transfer: [out.buffer] };
    }
    case 'decode': {
      const r = cache.decode(args.q, args.options);
      return { result: r, transfer: [r.output.buffer] };
    }
    case 'lastCandidates':
    case 'lastRoutedPages': {
      const idx = cache[op](args.head);
      return { result: idx, transfer: [idx.buffer] };
    }
    case 'info':
      return { result: { ...cache.info(), length: cache.length } };
    default:
      throw new Error(`vashista pool worker: unknown operation '${op}'`);
  }
}

async function onMessage(m) {
  const { id, op, args } = m ?? {};
  try {
    const { result, transfer } = await run(op, args ?? {});
    post({ id, ok: true, result }, transfer);
  } catch (e) {
    post({ id, ok: false, error: serialize(e) });
  }
}

if (WEB) globalThis.onmessage = (/** @type {MessageEvent} */ ev) => onMessage(ev.data);
else port?.on('message', onMessage);
post({ ready: true });
