/*
 * vashista/pool: one cache split over N workers (Web Workers in browsers,
 * worker_threads in Node), so that a decode uses N cores.
 *
 *   import { createPool } from 'vashista/pool';
 *   const pool = await createPool({ workers: 2, heads: 32, kvHeads: 8, headDim: 128 });
 *   await pool.append(keys, values);          // [n][kvHeads][headDim], [n][kvHeads][valueDim]
 *   const dense = await pool.decodeDense(q);   // [heads][headDim] -> [heads][valueDim]
 *   const { output, diagnostics } = await pool.decode(q, { pages: 16 });
 *   await pool.truncate(n);
 *   await pool.close();
 *
 * How it works
 *   - The split is by KV head: worker w owns KV heads [g0, g1) (a contiguous,
 *     balanced share; the first kvHeads % workers workers get one more) and
 *     the query heads of those groups, [g0 * group, g1 * group). Each worker
 *     runs its own wasm instance holding a cache of that shape. Query heads
 *     are independent in the library and a group never straddles two workers,
 *     so outputs and diagnostics are bit-identical to one cache holding
 *     everything.
 *   - The .wasm is compiled once, on the calling thread, and the
 *     WebAssembly.Module is posted to every worker (a Module is cloneable in
 *     browsers and Node); workers never fetch anything.
 *   - No SharedArrayBuffer: inputs are copied once (split per worker) and the
 *     copies are transferred; each worker's output is transferred back and
 *     assembled.
 *   - Calls run one at a time, in call order (a queue), so the workers never
 *     see a different sequence of operations.
 *   - Arguments are checked on the calling thread before anything is sent,
 *     with the same codes and messages as Cache (the option checks run on a
 *     small empty cache in a local instance of the module), so that workers do
 *     not diverge on bad input. What only a worker can find (E_NOMEM,
 *     E_CAPACITY, E_RANGE of a query against the stored keys...) comes back as
 *     the same VashistaError; an append that failed in some worker is undone
 *     in the others (truncated back), so a failed call changes nothing.
 */
import { init } from './index.js';
import {
  VashistaError, IS_NODE, MAX_ABS, U32_MAX, checkF32, checkInt, checkKeys, checkObject, compileModule, describe, fail, findBadElement,
  projectionRangeProblem,
} from './internal.js';

export { VashistaError };

/* ---- argument checks (internal.js: the same codes and messages as index.js) -- */

const MAX_ABS_F32 = Math.fround(MAX_ABS); /* what the library compares with */

/* The library's vs_check_finite: -6 if any element is NaN or infinite, else -7
   if any exceeds VS_MAX_ABS, else 0. */
function finiteStatus(a) {
  let big = false;
  for (let i = 0; i < a.length; i++) {
    const v = a[i];
    if (!(Math.abs(v) <= MAX_ABS_F32)) {
      if (!Number.isFinite(v)) return -6;
      big = true;
    }
  }
  return big ? -7 : 0;
}

/* index.js's message for that status: the first offending element. */
function badElement(arrays, status) {
  return (
    findBadElement(arrays, status) ??
    { name: arrays[0][0], message: status === -6 ? 'an input is NaN or infinite' : 'an input is too large in magnitude' }
  );
}

function statusError(status, method, bad) {
  const code = status === -6 ? 'E_NONFINITE' : 'E_RANGE';
  return new VashistaError(code, `pool.${method}: ${bad.message}`, { status, argument: bad.name });
}

/* Errors that name the cache method ("cache.decode: ...") name the pool's. */
function renamed(e) {
  if (!(e instanceof VashistaError) || !e.message.startsWith('cache.')) return e;
  return new VashistaError(e.code, `pool.${e.message.slice(6)}`, { status: e.status, argument: e.argument });
}

/* ---- workers on this platform: which kind, how many, their Node options ---- */

const WEB_WORKERS = typeof globalThis.Worker === 'function';

async function defaultWorkers() {
  const n = globalThis.navigator?.hardwareConcurrency;
  if (Number.isInteger(n) && n > 0) return n;
  if (IS_NODE) {
    const os = await import('node:os');
    return typeof os.availableParallelism === 'function' ? os.availableParallelism() : Math.max(1, os.cpus().length);
  }
  return 1;
}

/* The parent's Node options for a worker, without those about the main script
   (--input-type, --eval, --print), which a worker rejects. */
function nodeExecArgv() {
  const out = [];
  const a = process.execArgv;
  for (let i = 0; i < a.length; i++) {
    const x = a[i];
    if (x === '--input-type' || x === '-e' || x === '--eval' || x === '-p' || x === '--print' || x === '-pe') i++;
    else if (!/^--(input-type|eval|print)=/.test(x)) out.push(x);
  }
  return out;
}

/* ---- one worker --------------------------------------------------------------- */

/** Rebuilds an error a worker sent (VashistaError with its code, or a plain Error). */
function revive(err) {
  if (err?.vashista) return new VashistaError(err.code, err.message, { status: err.status, argument: err.argument });
  const e = new Error(err?.message ?? String(err));
  if (err?.name) e.name = err.name;
  return e;
}

class Channel {
  /**
   * @param {number} index
   * @param {(channel: Channel, error: VashistaError) => void} onDeath
   */
  constructor(index, onDeath) {
    this.index = index;
    this.onDeath = onDeath;
    this.nextId = 1;
    /** @type {Map<number, { resolve: (v: any) => void, reject: (e: any) => void }>} */
    this.pending = new Map();
    this.dead = null;
    this.closing = false;
    this.handle = null;
    this.ready = new Promise((resolve, reject) => {
      this.readyResolve = resolve;
      this.readyReject = reject;
    });
  }

  async start() {
    const onMessage = (m) => this.message(m);
    const onError = (message) => this.died(`worker ${this.index} failed: ${message}`);
    if (WEB_WORKERS) {
      /* written out for bundlers, which recognize new Worker(new URL('...', import.meta.url)) */
      const w = new Worker(new URL('./pool-worker.js', import.meta.url), { type: 'module', name: `vashista-pool-${this.index}` });
      w.onmessage = (ev) => onMessage(ev.data);
      w.onmessageerror = () => onError('a message could not be deserialized');
      w.onerror = (ev) => {
        ev.preventDefault?.();
        onError(ev.message || 'an uncaught error (or the worker script could not be loaded)');
      };
      this.handle = { post: (m, t) => w.postMessage(m, t), terminate: async () => w.terminate() };
    } else {
      const { Worker: NodeWorker } = await import('node:worker_threads');
      const url = new URL('./pool-worker.js', import.meta.url);
      const execArgv = nodeExecArgv();
      let w;
      if (execArgv.length === process.execArgv.length) w = new NodeWorker(url); /* inherits them, as Node does */
      else {
        try {
          w = new NodeWorker(url, { execArgv });
        } catch (e) {
          if (/** @type {any} */ (e)?.code !== 'ERR_WORKER_INVALID_EXEC_ARGV') throw e;
          w = new NodeWorker(url, { execArgv: [] });
        }
      }
      w.on('message', onMessage);
      w.on('messageerror', () => onError('a message could not be deserialized'));
      w.on('error', (e) => onError(e?.message ?? String(e)));
      w.on('exit', (code) => onError(`exited with code ${code}`));
      this.handle = { post: (m, t) => w.postMessage(m, t), terminate: () => w.terminate() };
    }
    await this.ready;
  }

  message(m) {
    if (m?.ready) {
      this.readyResolve();
      return;
    }
    const p = this.pending.get(m?.id);
    if (!p) return;
    this.pending.delete(m.id);
    if (m.ok) p.resolve(m.result);
    else p.reject(revive(m.error));
  }

  died(message) {
    if (this.dead || this.closing) return;
    this.dead = new VashistaError('E_TRAP', `vashista pool: ${message}`);
    this.readyReject(this.dead);
    for (const p of this.pending.values()) p.reject(this.dead);
    this.pending.clear();
    this.onDeath(this, this.dead);
  }

  /** Sends one operation; resolves to the worker's result. */
  call(op, args, transfer = []) {
    if (this.dead) return Promise.reject(this.dead);
    const id = this.nextId++;
    return new Promise((resolve, reject) => {
      this.pending.set(id, { resolve, reject });
      try {
        this.handle.post({ id, op, args }, transfer);
      } catch (e) {
        this.pending.delete(id);
        reject(e);
      }
    });
  }

  async terminate() {
    this.closing = true;
    this.readyResolve?.();
    if (this.handle) await this.handle.terminate();
  }
}

/* ---- the pool ---------------------------------------------------------------------- */

const POOL_OPTION_NAMES = ['workers', 'heads', 'kvHeads', 'headDim', 'valueDim', 'pageSize', 'dtype', 'wasm', 'isa'];
const CACHE_FIELDS = ['heads', 'kvHeads', 'headDim', 'valueDim', 'pageSize', 'dtype'];
const poolToken = Symbol('vashista.pool');

/** [{ kvHeads: [g0, g1], heads: [h0, h1] }] for `workers` shares of `kvHeads`. */
function split(kvHeads, heads, workers) {
  const group = heads / kvHeads;
  const base = Math.floor(kvHeads / workers);
  const extra = kvHeads % workers;
  const shards = [];
  let g0 = 0;
  for (let w = 0; w < workers; w++) {
    const g1 = g0 + base + (w < extra ? 1 : 0);
    shards.push(Object.freeze({ kvHeads: Object.freeze([g0, g1]), heads: Object.freeze([g0 * group, g1 * group]) }));
    g0 = g1;
  }
  return Object.freeze(shards);
}

/* Splits rows [n][rowLen] into the column ranges of each shard (copies). */
function splitRows(src, n, rowLen, ranges) {
  if (ranges.length === 1) return [src.slice()];
  return ranges.map(([from, to]) => {
    const len = to - from;
    const out = new Float32Array(n * len);
    for (let t = 0, s = from, d = 0; t < n; t++, s += rowLen, d += len) out.set(src.subarray(s, s + len), d);
    return out;
  });
}

/**
 * A cache split by KV head over worker threads. Create with createPool().
 * Every method returns a promise; calls run one at a time, in call order.
 */
class Pool {
  #shadow;
  #channels;
  #shards;
  #length = 0;
  /** @type {Promise<unknown>} */
  #queue = Promise.resolve();
  /** @type {Promise<void> | null} */
  #closing = null;
  /** @type {VashistaError | null} */
  #broken = null;

  /** @internal */
  constructor(token, vs, shadow, channels, shards, isa) {
    if (token !== poolToken) throw new TypeError('use createPool() to create a pool');
    this.#shadow = shadow;
    this.#channels = channels;
    this.#shards = shards;
    /** The shape of the whole cache (pageSize resolved), as cache.config. */
    this.config = shadow.config;
    /** Number of workers. */
    this.workers = channels.length;
    /** Worker w holds KV heads shards[w].kvHeads = [g0, g1) and query heads shards[w].heads = [h0, h1). */
    this.shards = shards;
    /** The decode option defaults (vs.decodeDefaults). */
    this.decodeDefaults = vs.decodeDefaults;
    /** Library version of the workers' module. */
    this.version = vs.version;
    /** The kernel set the workers use: 'wasmsimd' or 'scalar'. */
    this.isa = isa;
    for (const c of channels) c.onDeath = (_, error) => this.#breaks(error);
  }

  #breaks(error) {
    this.#broken ??= error;
  }

  /** Tokens stored (as of the last call that completed). */
  get length() {
    return this.#length;
  }

  /** True once close() was called. */
  get closed() {
    return this.#closing !== null;
  }

  #live(method) {
    if (this.#closing) throw fail('E_FREED', 'pool', `pool.${method}(): the pool was closed`);
  }

  /* Runs task after every earlier call has settled. */
  #enqueue(task) {
    const run = () => {
      if (this.#broken)
        throw new VashistaError('E_TRAP', `the pool is unusable after an earlier failure: ${this.#broken.message}`, { cause: this.#broken });
      return task();
    };
    const p = this.#queue.then(run, run);
    this.#queue = p.catch(() => {});
    return p;
  }

  /* Every worker's result, or the error of the first worker (in head order) that failed. */
  async #all(results) {
    const settled = await Promise.allSettled(results);
    const failed = settled.find((r) => r.status === 'rejected');
    for (const r of settled) if (r.status === 'rejected' && r.reason?.code === 'E_TRAP') this.#breaks(r.reason);
    return { settled, failed: failed ? renamed(/** @type {PromiseRejectedResult} */ (failed).reason) : null };
  }

  /**
   * Appends n tokens: keys [n][kvHeads][headDim], values [n][kvHeads][valueDim].
   * The inputs are copied (split per worker) before this returns. If any
   * worker fails (E_NOMEM, E_CAPACITY), the others are truncated back: nothing
   * is appended.
   * @param {Float32Array} keys
   * @param {Float32Array} values
   * @returns {Promise<void>}
   */
  async append(keys, values) {
    this.#live('append');
    const { kvHeads, headDim, valueDim } = this.config;
    checkF32(keys, 'keys', kvHeads * headDim, 'kvHeads * headDim');
    checkF32(values, 'values', kvHeads * valueDim, 'kvHeads * valueDim');
    const n = keys.length / (kvHeads * headDim);
    const nv = values.length / (kvHeads * valueDim);
    if (n !== nv) throw fail('E_LENGTH', 'values', `keys hold ${n} tokens but values hold ${nv}`);
    if (n === 0) return this.#enqueue(() => {});
    const st = finiteStatus(keys) || finiteStatus(values);
    if (st) throw statusError(st, 'append', badElement([['keys', keys], ['values', values]], st));
    const ks = splitRows(keys, n, kvHeads * headDim, this.#shards.map((s) => [s.kvHeads[0] * headDim, s.kvHeads[1] * headDim]));
    const vs = splitRows(values, n, kvHeads * valueDim, this.#shards.map((s) => [s.kvHeads[0] * valueDim, s.kvHeads[1] * valueDim]));
    return this.#enqueue(async () => {
      const before = this.#length;
      const { settled, failed } = await this.#all(
        this.#channels.map((c, w) => c.call('append', { keys: ks[w], values: vs[w] }, [ks[w].buffer, vs[w].buffer])),
      );
      if (!failed) {
        this.#length = before + n;
        return;
      }
      /* undo it where it worked */
      const undo = await this.#all(settled.map((r, w) => (r.status === 'fulfilled' ? this.#channels[w].call('truncate', { n: before }) : null)));
      if (undo.failed)
        this.#breaks(new VashistaError('E_TRAP', `an append failed (${failed.message}) and could not be undone: ${undo.failed.message}`));
      throw failed;
    });
  }

  /**
   * Dense attention over every token: Float32Array [heads][valueDim].
   * @param {Float32Array} q [heads][headDim]
   * @param {{ scale?: number }} [options]
   * @returns {Promise<Float32Array>}
   */
  async decodeDense(q, options) {
    this.#live('decodeDense');
    const o = snapshot(options);
    const pending = this.#check((c) => c.decodeDense(q, o), q);
    const qs = this.#splitQuery(q);
    return this.#enqueue(async () => {
      this.#checkNow(pending, 'decodeDense');
      const { settled, failed } = await this.#all(this.#channels.map((c, w) => c.call('decodeDense', { q: qs[w], options: o }, [qs[w].buffer])));
      if (failed) throw failed;
      return this.#gather(settled.map((r) => /** @type {PromiseFulfilledResult<Float32Array>} */ (r).value));
    });
  }

  /**
   * Sparse decode, as cache.decode: { output: [heads][valueDim], diagnostics: one per query head }.
   * @param {Float32Array} q [heads][headDim]
   * @param {object} [options] DecodeOptions; missing fields take decodeDefaults
   */
  async decode(q, options) {
    this.#live('decode');
    const o = snapshot(options);
    const pending = this.#check((c) => c.decode(q, o), q);
    const qs = this.#splitQuery(q);
    const qFull = q.slice(); /* for naming a query an E_RANGE is about */
    return this.#enqueue(async () => {
      this.#checkNow(pending, 'decode');
      const { settled, failed } = await this.#all(this.#channels.map((c, w) => c.call('decode', { q: qs[w], options: o }, [qs[w].buffer])));
      if (failed) {
        const solver = o?.solver ?? this.decodeDefaults.solver;
        if (failed.status === -7 && solver !== 'softmax') {
          const bad = projectionRangeProblem(qFull, this.config.heads, this.config.headDim);
          throw new VashistaError('E_RANGE', `pool.decode: ${bad.message}`, { status: -7, argument: bad.name });
        }
        throw failed;
      }
      const parts = settled.map((r) => /** @type {PromiseFulfilledResult<any>} */ (r).value);
      return { output: this.#gather(parts.map((p) => p.output)), diagnostics: parts.flatMap((p) => p.diagnostics) };
    });
  }

  /*
   * The checks that do not depend on what the pool holds, now, with Cache's
   * codes and messages: the call on the local empty cache validates every
   * option and q's type and length, then fails with E_EMPTY. Returns what is
   * left for when the call runs: that E_EMPTY (thrown if the pool is empty
   * then) and q's E_NONFINITE / E_RANGE (after it, as the library orders them).
   */
  #check(call, q) {
    let empty = null;
    try {
      call(this.#shadow);
    } catch (e) {
      if (!(e instanceof VashistaError) || e.code !== 'E_EMPTY') throw renamed(e);
      empty = renamed(e);
    }
    if (!empty) throw new VashistaError('E_TRAP', 'internal: the validation cache is not empty');
    const st = finiteStatus(q);
    return { empty, st, bad: st ? badElement([['q', q]], st) : null };
  }

  #checkNow(pending, method) {
    if (this.#length === 0) throw pending.empty;
    if (pending.st) throw statusError(pending.st, method, pending.bad);
  }

  #splitQuery(q) {
    const d = this.config.headDim;
    return this.#shards.map((s) => q.slice(s.heads[0] * d, s.heads[1] * d));
  }

  #gather(outputs) {
    const dv = this.config.valueDim;
    const out = new Float32Array(this.config.heads * dv);
    outputs.forEach((o, w) => out.set(o, this.#shards[w].heads[0] * dv));
    return out;
  }

  /**
   * The candidate tokens of the last successful decode() for query head
   * `head` (as cache.lastCandidates; after a failed call they may be empty).
   * @param {number} head
   * @returns {Promise<Uint32Array>}
   */
  async lastCandidates(head) {
    return this.#selection('lastCandidates', head);
  }

  /**
   * The pages routed by the last successful decode() for query head `head`
   * (as cache.lastRoutedPages; after a failed call they may be empty).
   * @param {number} head
   * @returns {Promise<Uint32Array>}
   */
  async lastRoutedPages(head) {
    return this.#selection('lastRoutedPages', head);
  }

  #selection(method, head) {
    this.#live(method);
    checkInt(head, 'head', 0, this.config.heads - 1, 'E_HEADS');
    const w = this.#shards.findIndex((s) => head >= s.heads[0] && head < s.heads[1]);
    return this.#enqueue(async () => {
      try {
        return await this.#channels[w].call(method, { head: head - this.#shards[w].heads[0] });
      } catch (e) {
        throw renamed(e);
      }
    });
  }

  /**
   * Keeps the first n tokens (n <= length).
   * @param {number} n
   * @returns {Promise<void>}
   */
  async truncate(n) {
    this.#live('truncate');
    checkInt(n, 'n', 0, U32_MAX);
    return this.#enqueue(async () => {
      if (n > this.#length)
        throw new VashistaError('E_LENGTH', `pool.truncate: n = ${n} is past the end (length ${this.#length})`, { status: -5, argument: 'n' });
      const { failed } = await this.#all(this.#channels.map((c) => c.call('truncate', { n })));
      if (failed) {
        this.#breaks(failed);
        throw failed;
      }
      this.#length = n;
    });
  }

  /**
   * Terminates the workers once the calls made before it have settled.
   * Calls made afterwards reject with E_FREED; closing again returns the
   * same promise.
   * @returns {Promise<void>}
   */
  close() {
    this.#closing ??= this.#queue.then(async () => {
      await Promise.allSettled(this.#channels.map((c) => c.terminate()));
      if (!this.#shadow.freed) this.#shadow.free();
    });
    return this.#closing;
  }
}

if (typeof Symbol.asyncDispose === 'symbol') {
  /* `await using pool = await createPool(...)`: closes at scope exit. */
  Object.defineProperty(Pool.prototype, Symbol.asyncDispose, {
    value: function asyncDispose() {
      return this.close();
    },
    writable: true,
    configurable: true,
  });
}

/* Options are read once (getters included) and that copy is checked and sent. */
function snapshot(options) {
  return options !== null && typeof options === 'object' && !Array.isArray(options) && !ArrayBuffer.isView(options) ? { ...options } : options;
}

/**
 * Starts `workers` workers, each with its own instance of the module and its
 * share of the KV heads, and an empty cache of the given shape.
 * @param {{ workers?: number, heads: number, kvHeads?: number, headDim: number, valueDim?: number, pageSize?: number,
 *           dtype?: 'f32', wasm?: unknown, isa?: string }} options
 * @returns {Promise<Pool>}
 */
export async function createPool(options) {
  if (options === undefined) throw fail('E_TYPE', 'options', 'createPool(options): options (heads, headDim...) are required');
  const o = { ...checkObject(options, 'options') };
  checkKeys(o, POOL_OPTION_NAMES, 'options');
  if (o.workers !== undefined) checkInt(o.workers, 'options.workers', 1, 1024);
  if (o.isa !== undefined && typeof o.isa !== 'string')
    throw fail('E_TYPE', 'options.isa', `options.isa must be a string, got ${describe(o.isa)}`);

  const module = await compileModule(o.wasm, 'createPool');
  /* a local instance: checks the isa and the shape, and later every call's options */
  const vs = await init(o.isa === undefined ? { wasm: module } : { wasm: module, isa: o.isa });
  const config = {};
  for (const k of CACHE_FIELDS) if (o[k] !== undefined) config[k] = o[k];
  let shadow;
  try {
    shadow = vs.createCache(/** @type {any} */ (config));
  } catch (e) {
    /* createCache names config.heads...: here they are options.heads... */
    if (!(e instanceof VashistaError)) throw e;
    const message = e.message.replace(/\bconfig\./g, 'options.').replace(/^vs\.createCache:/, 'createPool:');
    throw new VashistaError(e.code, message, { status: e.status, argument: e.argument?.replace(/^config\b/, 'options') });
  }
  const c = shadow.config;
  const workers = o.workers ?? Math.min(c.kvHeads, await defaultWorkers());
  try {
    checkInt(workers, 'options.workers', 1, c.kvHeads);
  } catch (e) {
    shadow.free();
    throw e;
  }
  const shards = split(c.kvHeads, c.heads, workers);
  const channels = shards.map((_, w) => new Channel(w, () => {}));
  let isa = vs.isa;
  try {
    await Promise.all(channels.map((ch) => ch.start()));
    const infos = await Promise.all(
      channels.map((ch, w) => {
        const s = shards[w];
        const cfg = { heads: s.heads[1] - s.heads[0], kvHeads: s.kvHeads[1] - s.kvHeads[0], headDim: c.headDim, valueDim: c.valueDim, pageSize: c.pageSize, dtype: c.dtype };
        return ch.call('init', { module, isa: o.isa, config: cfg });
      }),
    );
    isa = infos[0].isa;
  } catch (e) {
    await Promise.allSettled(channels.map((ch) => ch.terminate()));
    shadow.free();
    throw renamed(e);
  }
  return new Pool(poolToken, vs, shadow, channels, shards, isa);
}

export default createPool;
