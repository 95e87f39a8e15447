/*
 * vashista: sparse-attention decode over paged KV caches that live in
 * WebAssembly linear memory (DESIGN section 5).
 *
 *   import { init } from 'vashista';
 *   const vs = await init();
 *   const cache = vs.createCache({ heads: 8, kvHeads: 2, headDim: 128, valueDim: 128 });
 *   cache.append(keys, values);
 *   const { output, diagnostics } = cache.decode(q, { pages: 16, candidates: 128 });
 *   cache.free();
 *
 * How it talks to the module
 *   - The module is a standalone vashista.wasm (no Emscripten glue). Its
 *     imports are env.emscripten_notify_memory_growth and a few WASI functions,
 *     answered here: an empty environment, exit as an E_TRAP error, output
 *     discarded.
 *   - Inputs are copied into a malloc'd scratch block that is reused and grown;
 *     results are copied out (slice), so callers never hold a view into wasm
 *     memory. Memory can grow during any call that allocates, which detaches
 *     every typed array on the old buffer: views are re-created from
 *     memory.buffer whenever it changed (Heap.views()).
 *   - Pointers returned by wasm arrive as signed i32: they are read with >>> 0
 *     so addresses above 2 GiB stay correct.
 *   - Arguments are validated here first (types, integer ranges, lengths), so
 *     most mistakes are reported with the argument's name; the C library checks
 *     again and its status codes map to the same VashistaError codes.
 *   - VashistaError, the checks pool.js shares and the loading of the module
 *     (compileModule) are in internal.js.
 */
import {
  VashistaError, U32_MAX, checkF32, checkInt, checkKeys, checkObject, compileModule, describe, fail, findBadElement,
  projectionRangeProblem,
} from './internal.js';

export { VashistaError };

/* ---- errors ---------------------------------------------------------------- */

/** C status codes (vashista.h, enum vs_status) and their stable string codes. */
const STATUS_CODES = Object.freeze({
  [-1]: 'E_NULL',
  [-2]: 'E_DIM',
  [-3]: 'E_HEADS',
  [-4]: 'E_PAGE',
  [-5]: 'E_LENGTH',
  [-6]: 'E_NONFINITE',
  [-7]: 'E_RANGE',
  [-8]: 'E_NOMEM',
  [-9]: 'E_OPTION',
  [-10]: 'E_EMPTY',
  [-11]: 'E_ISA',
  [-12]: 'E_DTYPE',
  [-13]: 'E_CAPACITY',
});

/* ---- argument checks (those pool.js needs too are in internal.js) ---------- */

function checkFloat(x, name, min) {
  if (typeof x !== 'number') throw fail('E_TYPE', name, `${name} must be a number, got ${describe(x)}`);
  if (!Number.isFinite(x) || x < min)
    throw fail('E_OPTION', name, `${name} must be finite and >= ${min}, got ${x}`);
  if (Math.fround(x) === Infinity) throw fail('E_OPTION', name, `${name} does not fit a float32, got ${x}`);
  return x;
}

function checkPositive(x, name) {
  if (typeof x !== 'number') throw fail('E_TYPE', name, `${name} must be a number, got ${describe(x)}`);
  if (!Number.isFinite(x) || !(Math.fround(x) > 0) || Math.fround(x) === Infinity)
    throw fail('E_OPTION', name, `${name} must be finite and > 0 (as a float32), got ${x}`);
  return x;
}

/* The projection solvers' entropy weight: [1e-9, 1e9] as a float32 (vashista.h). */
const EPS_MIN = Math.fround(1e-9);
const EPS_MAX = Math.fround(1e9);

function checkEps(x, name) {
  if (typeof x !== 'number') throw fail('E_TYPE', name, `${name} must be a number, got ${describe(x)}`);
  const f = Math.fround(x);
  if (!(f >= EPS_MIN && f <= EPS_MAX)) throw fail('E_OPTION', name, `${name} must be in [1e-9, 1e9] (as a float32), got ${x}`);
  return x;
}

/* eg, fw work in the keys' units: eps / scale and solverTol / scale must stay
   in range too (vs_decode refuses them otherwise; named here). */
function checkProjectionUnits(eps, solverTol, scale, headDim) {
  const sc = scale === 0 ? Math.fround(1 / Math.sqrt(headDim)) : Math.fround(scale);
  const e = Math.fround(eps) / sc;
  if (!(e >= EPS_MIN && e <= EPS_MAX))
    throw fail('E_OPTION', 'options.eps', `options.eps / scale = ${e} must be in [1e-9, 1e9] for the eg and fw solvers (eps ${eps}, scale ${sc})`);
  const t = Math.fround(solverTol) / sc;
  if (!(t > 0 && t < 3.0e38) || !(Math.fround(t) > 0))
    throw fail('E_OPTION', 'options.solverTol', `options.solverTol / scale = ${t} must be a positive float32 for the eg and fw solvers (solverTol ${solverTol}, scale ${sc})`);
}

function checkExactF32(x, name, length, what) {
  if (!(x instanceof Float32Array))
    throw fail('E_TYPE', name, `${name} must be a Float32Array, got ${describe(x)}`);
  if (x.length !== length)
    throw fail('E_LENGTH', name, `${name} must have ${what} = ${length} elements, got ${x.length}`);
  return x;
}

/* ---- the module's memory --------------------------------------------------- */

class Heap {
  /** @param {WebAssembly.Memory} memory */
  constructor(memory) {
    this.memory = memory;
    this.buffer = null;
    this.views();
  }
  /* Typed arrays over the current buffer, rebuilt after any growth. */
  views() {
    const buffer = this.memory.buffer;
    if (buffer !== this.buffer) {
      this.buffer = buffer;
      this.u8 = new Uint8Array(buffer);
      this.u32 = new Uint32Array(buffer);
      this.f32 = new Float32Array(buffer);
      this.f64 = new Float64Array(buffer);
    }
    return this;
  }
  cstring(ptr) {
    const u8 = this.views().u8;
    let end = ptr;
    while (u8[end] !== 0) end++;
    return new TextDecoder().decode(u8.subarray(ptr, end));
  }
}

/* WASI / env imports: just enough for a library that never prints or exits. */
function makeImports(module, state) {
  const ENOSYS = 52;
  const provided = {
    env: {
      emscripten_notify_memory_growth: () => {
        state.heap?.views();
      },
    },
    wasi_snapshot_preview1: {
      environ_sizes_get: (countPtr, sizePtr) => {
        const u32 = state.heap.views().u32;
        u32[(countPtr >>> 0) >>> 2] = 0;
        u32[(sizePtr >>> 0) >>> 2] = 0;
        return 0;
      },
      environ_get: () => 0,
      proc_exit: (code) => {
        throw new VashistaError('E_TRAP', `the wasm module called exit(${code})`);
      },
      fd_write: (fd, iovs, iovsLen, nwrittenPtr) => {
        /* discard output, report it written */
        const u32 = state.heap.views().u32;
        let n = 0;
        for (let i = 0; i < iovsLen; i++) n += u32[((iovs >>> 0) >>> 2) + 2 * i + 1];
        u32[(nwrittenPtr >>> 0) >>> 2] = n;
        return 0;
      },
      fd_close: () => 0,
      fd_seek: () => ENOSYS,
      clock_time_get: () => ENOSYS,
    },
  };
  const imports = {};
  for (const { module: mod, name, kind } of WebAssembly.Module.imports(module)) {
    imports[mod] ??= {};
    const fn = provided[mod]?.[name];
    if (fn) imports[mod][name] = fn;
    else if (kind === 'function')
      imports[mod][name] = () => {
        throw new VashistaError('E_TRAP', `the wasm module called ${mod}.${name}, which this loader does not provide`);
      };
    else throw new VashistaError('E_LOAD', `the wasm module imports a ${kind} ${mod}.${name}; this loader provides none`);
  }
  return imports;
}

/* ---- struct layouts (every field 4 bytes unless noted) ---------------------- */

/* The sizes and offsets wasm/abi.c reports, in its order; checked at init. */
const ABI_LAYOUT = {
  /* sizeof, then the offset of every field, in declaration order */
  config: [24, 0, 4, 8, 12, 16, 20],
  options: [56, 0, 4, 8, 12, 16, 20, 24, 28, 32, 36, 40, 44, 48, 52],
  diag: [48, 0, 4, 8, 12, 16, 20, 24, 28, 32, 36, 40, 44],
  info: [56, 24, 28, 32, 40, 48], /* length, pages, then three doubles */
  workload: [44, 0, 4, 8, 12, 16, 20, 24, 28, 32, 36, 40],
  scalars: [4, 4], /* sizeof(size_t), sizeof(void *) */
  constants: [16], /* VS_NODE_PAGES */
};
const ABI = Object.values(ABI_LAYOUT).flat();
const DIAG_BYTES = 48;

/* Slots of the instance's fixed argument block (malloc'd once, 8-aligned):
   offsets in bytes; init checks that every struct fits its slot. */
const ARG_CONFIG = 0; /* vs_cache_config */
const ARG_OPTIONS = 64; /* vs_decode_options */
const ARG_OUT = 160; /* out-parameters: pointer / size_t / count */
const ARG_INFO = 176; /* vs_cache_info (8-aligned: doubles) */
const ARG_WORKLOAD = 256; /* vs_workload */
const ARG_STRING = 352; /* a short C string (ISA names) */
const ARGS_BYTES = 512;
const SLOT_BYTES = { config: ARG_OPTIONS - ARG_CONFIG, options: ARG_OUT - ARG_OPTIONS, info: ARG_WORKLOAD - ARG_INFO, workload: ARG_STRING - ARG_WORKLOAD };

const FALLBACK = ['none', 'widened', 'dense'];
const SOLVERS = Object.freeze({ softmax: 0, eg: 1, fw: 2 });
const ROUTINGS = Object.freeze({ flat: 0, tree: 1 });
/** Pages per tree-routing node (VS_NODE_PAGES; checked against the module at init). */
const NODE_PAGES = ABI_LAYOUT.constants[0];
const WORKLOAD_KINDS = Object.freeze({ gap: 0, needle: 1, uniform: 2 });
const DTYPES = Object.freeze({ f32: 0 });

/* Scratch blocks above this size are released after the call that needed them. */
const SCRATCH_KEEP = 32 * 1024 * 1024;

const registryToken = Symbol('vashista.internal');

/* ---- the instance ------------------------------------------------------------ */

class Engine {
  constructor(instance, state) {
    this.x = /** @type {any} */ (instance.exports);
    this.heap = state.heap;
    this.broken = null;
    this.scratchPtr = 0;
    this.scratchBytes = 0;
    /** the library's decode option defaults, camelCase (set by init) */
    this.decodeDefaults = null;
    this.args = this.malloc(ARGS_BYTES, 'the argument block');
    this.caches = new FinalizationRegistry((ptr) => {
      if (!this.broken) this.x.vs_cache_free(ptr);
    });
  }

  /* Calls an export; a trap poisons the instance (its heap may be inconsistent). */
  call(name, ...args) {
    if (this.broken) throw new VashistaError('E_TRAP', `the wasm instance is unusable after an earlier trap: ${this.broken}`);
    try {
      return this.x[name](...args);
    } catch (e) {
      if (e instanceof WebAssembly.RuntimeError) {
        this.broken = `${name}: ${e.message}`;
        throw new VashistaError('E_TRAP', `the wasm module trapped in ${name}: ${e.message}`, { cause: e });
      }
      throw e;
    }
  }

  malloc(bytes, what) {
    const ptr = this.call('malloc', bytes) >>> 0;
    if (ptr === 0) throw new VashistaError('E_NOMEM', `out of memory allocating ${bytes} bytes for ${what}`);
    return ptr;
  }

  /* A scratch block of at least `bytes`, 8-aligned (malloc), reused between calls. */
  scratch(bytes) {
    if (bytes > this.scratchBytes) {
      const want = Math.max(bytes, Math.min(2 * this.scratchBytes, SCRATCH_KEEP), 64 * 1024);
      if (this.scratchPtr) this.call('free', this.scratchPtr);
      this.scratchPtr = 0;
      this.scratchBytes = 0;
      this.scratchPtr = this.malloc(want, 'input and output buffers');
      this.scratchBytes = want;
    }
    return this.scratchPtr;
  }

  releaseLargeScratch() {
    if (this.scratchBytes > SCRATCH_KEEP) {
      this.call('free', this.scratchPtr);
      this.scratchPtr = 0;
      this.scratchBytes = 0;
    }
  }

  strerror(status) {
    return this.heap.cstring(this.call('vs_strerror', status) >>> 0);
  }

  /* A VashistaError for a C status. */
  statusError(status, fn, argument, detail) {
    const code = STATUS_CODES[status] ?? `E_STATUS_${-status}`;
    const text = detail ?? this.strerror(status);
    return new VashistaError(code, `${fn}: ${text}`, { status, argument });
  }

  writeString(s, what) {
    const bytes = new TextEncoder().encode(s);
    if (bytes.length >= ARGS_BYTES - ARG_STRING) throw fail('E_OPTION', what, `${what} is too long`);
    const u8 = this.heap.views().u8;
    u8.set(bytes, this.args + ARG_STRING);
    u8[this.args + ARG_STRING + bytes.length] = 0;
    return this.args + ARG_STRING;
  }
}

/* ---- caches ------------------------------------------------------------------ */

/** @type {(cache: Cache, engine: Engine, method: string) => number} */
let pointerOf;

/**
 * A paged KV cache inside the module's memory. Create with vs.createCache().
 */
class Cache {
  #engine;
  #ptr;
  #config;

  /** @internal */
  constructor(token, engine, ptr, config) {
    if (token !== registryToken) throw new TypeError('use vs.createCache() to create a cache');
    this.#engine = engine;
    this.#ptr = ptr;
    this.#config = config;
    engine.caches.register(this, ptr, this);
  }

  #live(method) {
    if (this.#ptr === 0) {
      const what = method === 'length' ? 'cache.length' : `cache.${method}()`;
      throw fail('E_FREED', 'cache', `${what}: the cache was freed`);
    }
    return this.#ptr;
  }

  static {
    /* the cache's C pointer, for Workload.appendTo (not part of the API) */
    pointerOf = (cache, engine, method) => {
      if (engine !== cache.#engine)
        throw fail('E_FOREIGN', 'cache', `${method}: the cache belongs to another vashista instance`);
      if (cache.#ptr === 0) throw fail('E_FREED', 'cache', `${method}: the cache was freed`);
      return cache.#ptr;
    };
  }

  /** The shape this cache was created with (pageSize resolved). */
  get config() {
    return this.#config;
  }

  /** True once free() has been called. */
  get freed() {
    return this.#ptr === 0;
  }

  /** Tokens stored. */
  get length() {
    const e = this.#engine;
    const ptr = this.#live('length');
    const st = e.call('vs_cache_length', ptr, e.args + ARG_OUT);
    if (st) throw e.statusError(st, 'cache.length');
    return e.heap.views().u32[(e.args + ARG_OUT) >>> 2];
  }

  /**
   * Appends n tokens: keys [n][kvHeads][headDim], values [n][kvHeads][valueDim].
   * The inputs are copied. On error nothing is appended.
   * @param {Float32Array} keys
   * @param {Float32Array} values
   */
  append(keys, values) {
    const e = this.#engine;
    const ptr = this.#live('append');
    const { kvHeads, headDim, valueDim } = this.#config;
    checkF32(keys, 'keys', kvHeads * headDim, 'kvHeads * headDim');
    checkF32(values, 'values', kvHeads * valueDim, 'kvHeads * valueDim');
    const n = keys.length / (kvHeads * headDim);
    const nv = values.length / (kvHeads * valueDim);
    if (n !== nv)
      throw fail('E_LENGTH', 'values', `keys hold ${n} tokens but values hold ${nv}`);
    if (n === 0) return;
    const kBytes = keys.length * 4;
    const base = e.scratch(kBytes + values.length * 4);
    const f32 = e.heap.views().f32;
    f32.set(keys, base >>> 2);
    f32.set(values, (base + kBytes) >>> 2);
    const st = e.call('vs_cache_append', ptr, base, keys.length, base + kBytes, values.length);
    e.releaseLargeScratch();
    if (st) {
      const bad = st === -6 || st === -7 ? findBadElement([['keys', keys], ['values', values]], st) : null;
      throw e.statusError(st, 'cache.append', bad?.name, bad?.message);
    }
  }

  /**
   * Dense attention over every token: Float32Array [heads][valueDim].
   * @param {Float32Array} q [heads][headDim]
   * @param {{ scale?: number }} [options] scale 0 (default) means 1/sqrt(headDim)
   */
  decodeDense(q, options) {
    const e = this.#engine;
    const ptr = this.#live('decodeDense');
    const o = checkObject(options, 'options');
    checkKeys(o, ['scale'], 'options');
    const scale = o.scale === undefined ? 0 : checkFloat(o.scale, 'options.scale', 0);
    const { heads, headDim, valueDim } = this.#config;
    checkExactF32(q, 'q', heads * headDim, 'heads * headDim');
    const outCount = heads * valueDim;
    const base = e.scratch(q.length * 4 + outCount * 4);
    const outPtr = base + q.length * 4;
    e.heap.views().f32.set(q, base >>> 2);
    const st = e.call('vs_decode_dense', ptr, base, q.length, scale, outPtr, outCount);
    if (st) {
      const bad = st === -6 || st === -7 ? findBadElement([['q', q]], st) : null;
      throw e.statusError(st, 'cache.decodeDense', bad?.name ?? (st === -10 ? 'cache' : undefined), bad?.message);
    }
    return e.heap.views().f32.slice(outPtr >>> 2, (outPtr >>> 2) + outCount);
  }

  /**
   * Sparse decode with a certified error bound per head.
   * @param {Float32Array} q [heads][headDim]
   * @param {object} [options] see index.d.ts (DecodeOptions); missing fields take vs.decodeDefaults
   */
  decode(q, options) {
    const e = this.#engine;
    const ptr = this.#live('decode');
    const o = checkObject(options, 'options');
    checkKeys(o, DECODE_OPTION_NAMES, 'options');
    const { heads, headDim, valueDim } = this.#config;
    const d = e.decodeDefaults;
    const pages = o.pages === undefined ? d.pages : checkInt(o.pages, 'options.pages', 1, U32_MAX);
    const candidates = o.candidates === undefined ? d.candidates : checkInt(o.candidates, 'options.candidates', 1, U32_MAX);
    const sinkPages = o.sinkPages === undefined ? d.sinkPages : checkInt(o.sinkPages, 'options.sinkPages', 0, U32_MAX);
    const recentPages = o.recentPages === undefined ? d.recentPages : checkInt(o.recentPages, 'options.recentPages', 0, U32_MAX);
    const widen = o.widen === undefined ? d.widen : checkInt(o.widen, 'options.widen', 2, U32_MAX);
    const scale = o.scale === undefined ? d.scale : checkFloat(o.scale, 'options.scale', 0);
    const tolerance = o.tolerance === undefined ? d.tolerance : checkFloat(o.tolerance, 'options.tolerance', 0);
    const eps = o.eps === undefined ? d.eps : checkEps(o.eps, 'options.eps');
    const maxIter = o.maxIter === undefined ? d.maxIter : checkInt(o.maxIter, 'options.maxIter', 1, U32_MAX);
    const solverTol = o.solverTol === undefined ? d.solverTol : checkPositive(o.solverTol, 'options.solverTol');
    let solver = SOLVERS[d.solver];
    if (o.solver !== undefined) {
      if (typeof o.solver !== 'string') throw fail('E_TYPE', 'options.solver', `options.solver must be a string, got ${describe(o.solver)}`);
      if (!Object.hasOwn(SOLVERS, o.solver))
        throw fail('E_OPTION', 'options.solver', `options.solver '${o.solver}' is not available (available: ${Object.keys(SOLVERS).join(', ')})`);
      solver = SOLVERS[o.solver];
    }
    let routing = ROUTINGS[d.routing];
    if (o.routing !== undefined) {
      if (typeof o.routing !== 'string') throw fail('E_TYPE', 'options.routing', `options.routing must be a string, got ${describe(o.routing)}`);
      if (!Object.hasOwn(ROUTINGS, o.routing))
        throw fail('E_OPTION', 'options.routing', `options.routing must be 'flat' or 'tree', got '${o.routing}'`);
      routing = ROUTINGS[o.routing];
    }
    const expand = o.expand === undefined ? d.expand : checkInt(o.expand, 'options.expand', 0, U32_MAX);
    let shareRouting = d.shareRouting;
    if (o.shareRouting !== undefined) {
      if (typeof o.shareRouting !== 'boolean')
        throw fail('E_TYPE', 'options.shareRouting', `options.shareRouting must be a boolean, got ${describe(o.shareRouting)}`);
      shareRouting = o.shareRouting;
    }
    if (solver !== SOLVERS.softmax) checkProjectionUnits(eps, solverTol, scale, headDim);
    checkExactF32(q, 'q', heads * headDim, 'heads * headDim');

    const outCount = heads * valueDim;
    const qBytes = q.length * 4;
    const outBytes = outCount * 4;
    const base = e.scratch(qBytes + outBytes + heads * DIAG_BYTES);
    const outPtr = base + qBytes;
    const diagPtr = outPtr + outBytes;
    const opt = e.args + ARG_OPTIONS;
    let { u32, f32 } = e.heap.views();
    f32.set(q, base >>> 2);
    u32[(opt >>> 2) + 0] = pages;
    u32[(opt >>> 2) + 1] = candidates;
    u32[(opt >>> 2) + 2] = sinkPages;
    u32[(opt >>> 2) + 3] = recentPages;
    u32[(opt >>> 2) + 4] = solver;
    u32[(opt >>> 2) + 5] = widen;
    f32[(opt >>> 2) + 6] = scale;
    f32[(opt >>> 2) + 7] = tolerance;
    f32[(opt >>> 2) + 8] = eps;
    u32[(opt >>> 2) + 9] = maxIter;
    f32[(opt >>> 2) + 10] = solverTol;
    u32[(opt >>> 2) + 11] = routing;
    u32[(opt >>> 2) + 12] = expand;
    u32[(opt >>> 2) + 13] = shareRouting ? 1 : 0;
    const st = e.call('vs_decode', ptr, base, q.length, opt, outPtr, outCount, diagPtr, heads);
    if (st) {
      let bad = st === -6 || st === -7 ? findBadElement([['q', q]], st) : null;
      if (st === -7 && !bad && solver !== SOLVERS.softmax) bad = projectionRangeProblem(q, heads, headDim);
      let detail = bad?.message;
      if (st === -9) {
        /* everything JS can check was checked: name what the library was given */
        const given = { pages, candidates, sinkPages, recentPages, solver: o.solver ?? d.solver, widen, scale, tolerance, eps, maxIter, solverTol,
          routing: o.routing ?? d.routing, expand, shareRouting };
        detail = `${e.strerror(st)}: the library rejected ${JSON.stringify(given)}`;
      }
      throw e.statusError(st, 'cache.decode', bad?.name ?? (st === -10 ? 'cache' : st === -9 ? 'options' : undefined), detail);
    }
    ({ u32, f32 } = e.heap.views()); /* decode may have grown memory */
    const output = f32.slice(outPtr >>> 2, (outPtr >>> 2) + outCount);
    const diagnostics = new Array(heads);
    for (let h = 0; h < heads; h++) {
      const w = (diagPtr >>> 2) + h * (DIAG_BYTES >>> 2);
      diagnostics[h] = {
        routedPages: u32[w],
        candidates: u32[w + 1],
        fallback: FALLBACK[u32[w + 2]] ?? `unknown(${u32[w + 2]})`,
        iterations: u32[w + 3],
        effectiveSupport: f32[w + 4],
        gap: f32[w + 5],
        leakageBound: f32[w + 6],
        rhoCert: f32[w + 7],
        errorBound: f32[w + 8],
        outputNorm: f32[w + 9],
        residual: f32[w + 10],
        faceSize: u32[w + 11],
      };
    }
    return { output, diagnostics };
  }

  /**
   * The candidate tokens of the last successful decode() for query head
   * `head`, increasing (every token for a head that fell back to dense;
   * empty after an append or a truncate that changed the cache).
   * @param {number} head
   * @returns {Uint32Array}
   */
  lastCandidates(head) {
    return this.#selection('vs_decode_candidates', 'lastCandidates', head);
  }

  /**
   * The pages routed by the last successful decode() for query head `head`,
   * increasing (every page for a head that fell back to dense).
   * @param {number} head
   * @returns {Uint32Array}
   */
  lastRoutedPages(head) {
    return this.#selection('vs_decode_routed_pages', 'lastRoutedPages', head);
  }

  #selection(fn, method, head) {
    const e = this.#engine;
    const ptr = this.#live(method);
    checkInt(head, 'head', 0, this.#config.heads - 1, 'E_HEADS');
    const countAt = e.args + ARG_OUT;
    let st = e.call(fn, ptr, head, 0, 0, countAt);
    if (st) throw e.statusError(st, `cache.${method}`, 'head');
    const count = e.heap.views().u32[countAt >>> 2];
    if (count === 0) return new Uint32Array(0);
    const base = e.scratch(count * 4);
    st = e.call(fn, ptr, head, base, count, countAt);
    if (st) throw e.statusError(st, `cache.${method}`, 'head');
    const out = e.heap.views().u32.slice(base >>> 2, (base >>> 2) + count);
    e.releaseLargeScratch();
    return out;
  }

  /**
   * Keeps the first n tokens (n <= length).
   * @param {number} n
   */
  truncate(n) {
    const e = this.#engine;
    const ptr = this.#live('truncate');
    checkInt(n, 'n', 0, U32_MAX);
    const st = e.call('vs_cache_truncate', ptr, n);
    if (st) {
      if (st === -5) throw e.statusError(st, 'cache.truncate', 'n', `n = ${n} is past the end (length ${this.length})`);
      throw e.statusError(st, 'cache.truncate', 'n');
    }
  }

  /** Sizes and memory use (vs_cache_info). */
  info() {
    const e = this.#engine;
    const ptr = this.#live('info');
    const at = e.args + ARG_INFO;
    const st = e.call('vs_cache_get_info', ptr, at);
    if (st) throw e.statusError(st, 'cache.info');
    const { u32, f64 } = e.heap.views();
    const w = at >>> 2;
    return {
      heads: u32[w],
      kvHeads: u32[w + 1],
      headDim: u32[w + 2],
      valueDim: u32[w + 3],
      pageSize: u32[w + 4],
      dtype: 'f32',
      length: u32[w + 6],
      pages: u32[w + 7],
      kvBytes: f64[(at + 32) >>> 3],
      summaryBytes: f64[(at + 40) >>> 3],
      reservedBytes: f64[(at + 48) >>> 3],
    };
  }

  /** Frees the cache. Using it afterwards, or freeing it again, throws E_FREED. */
  free() {
    const ptr = this.#live('free');
    this.#engine.caches.unregister(this);
    this.#ptr = 0;
    this.#engine.call('vs_cache_free', ptr);
  }
}

if (typeof Symbol.dispose === 'symbol') {
  /* `using cache = vs.createCache(...)`: frees at scope exit (no-op if already freed). */
  Object.defineProperty(Cache.prototype, Symbol.dispose, {
    value: function dispose() {
      if (!this.freed) this.free();
    },
    writable: true,
    configurable: true,
  });
}

const DECODE_OPTION_NAMES = ['pages', 'candidates', 'sinkPages', 'recentPages', 'solver', 'widen', 'scale', 'tolerance', 'eps', 'maxIter', 'solverTol', 'routing', 'expand', 'shareRouting'];
const CACHE_OPTION_NAMES = ['heads', 'kvHeads', 'headDim', 'valueDim', 'pageSize', 'dtype'];
const WORKLOAD_OPTION_NAMES = ['kind', 'T', 'heads', 'kvHeads', 'headDim', 'valueDim', 'face', 'needles', 'margin', 'seed'];

/* ---- workloads ------------------------------------------------------------------ */

/**
 * A seeded synthetic workload (DESIGN section 6): the same floats as the
 * native CLI and tests. Create with vs.workload().
 */
class Workload {
  #engine;
  #fields;

  /** @internal */
  constructor(token, engine, fields, config) {
    if (token !== registryToken) throw new TypeError('use vs.workload() to create a workload');
    this.#engine = engine;
    this.#fields = fields;
    /** The resolved parameters. */
    this.config = config;
  }

  #write() {
    const e = this.#engine;
    const at = e.args + ARG_WORKLOAD;
    const { u32, f32 } = e.heap.views();
    const f = this.#fields;
    const w = at >>> 2;
    u32[w] = f.kind;
    u32[w + 1] = f.T;
    u32[w + 2] = f.heads;
    u32[w + 3] = f.kvHeads;
    u32[w + 4] = f.headDim;
    u32[w + 5] = f.valueDim;
    u32[w + 6] = f.face;
    u32[w + 7] = f.needles;
    f32[w + 8] = f.margin;
    u32[w + 9] = f.seedLo;
    u32[w + 10] = f.seedHi;
    return at;
  }

  #range(start, n, method) {
    checkInt(start, 'start', 0, U32_MAX);
    checkInt(n, 'n', 0, U32_MAX);
    if (start + n > this.config.T)
      throw fail('E_LENGTH', 'n', `${method}: tokens [${start}, ${start + n}) run past T = ${this.config.T}`);
  }

  /**
   * Tokens [start, start + n): { keys: [n][kvHeads][headDim], values: [n][kvHeads][valueDim] }.
   * @param {number} start
   * @param {number} n
   */
  tokens(start, n) {
    this.#range(start, n, 'workload.tokens');
    const e = this.#engine;
    const { kvHeads, headDim, valueDim } = this.config;
    const kc = n * kvHeads * headDim;
    const vc = n * kvHeads * valueDim;
    const base = e.scratch((kc + vc) * 4);
    const st = e.call('vs_workload_tokens', this.#write(), start, n, base, base + kc * 4);
    if (st) throw e.statusError(st, 'workload.tokens');
    const f32 = e.heap.views().f32;
    const keys = f32.slice(base >>> 2, (base >>> 2) + kc);
    const values = f32.slice((base >>> 2) + kc, (base >>> 2) + kc + vc);
    e.releaseLargeScratch();
    return { keys, values };
  }

  /**
   * Generates tokens [start, start + n) straight into a cache, in chunks,
   * without copying them through JS. Defaults: start = cache.length, n = T - start.
   * @param {Cache} cache
   * @param {number} [start]
   * @param {number} [n]
   */
  appendTo(cache, start, n) {
    if (!(cache instanceof Cache)) throw fail('E_TYPE', 'cache', `cache must be a Cache, got ${describe(cache)}`);
    const e = this.#engine;
    const ptr = pointerOf(cache, e, 'workload.appendTo');
    const c = cache.config;
    if (c.kvHeads !== this.config.kvHeads || c.headDim !== this.config.headDim || c.valueDim !== this.config.valueDim)
      throw fail('E_LENGTH', 'cache', 'workload.appendTo: the cache and the workload have different kvHeads, headDim or valueDim');
    if (start === undefined) start = cache.length;
    if (n === undefined) n = this.config.T - (typeof start === 'number' ? start : 0);
    this.#range(start, n, 'workload.appendTo');
    const row = c.kvHeads * (c.headDim + c.valueDim) * 4;
    const chunk = Math.max(1, Math.floor((8 * 1024 * 1024) / row));
    for (let done = 0; done < n; ) {
      const m = Math.min(chunk, n - done);
      const base = e.scratch(m * row);
      const kc = m * c.kvHeads * c.headDim;
      let st = e.call('vs_workload_tokens', this.#write(), start + done, m, base, base + kc * 4);
      if (st) throw e.statusError(st, 'workload.appendTo');
      st = e.call('vs_cache_append', ptr, base, kc, base + kc * 4, m * c.kvHeads * c.valueDim);
      if (st) throw e.statusError(st, 'workload.appendTo');
      done += m;
    }
  }

  /**
   * Queries [heads][headDim] for decode step `step` (0 is the usual one).
   * @param {number} [step]
   */
  queries(step = 0) {
    checkInt(step, 'step', 0, U32_MAX);
    const e = this.#engine;
    const count = this.config.heads * this.config.headDim;
    const base = e.scratch(count * 4);
    const st = e.call('vs_workload_queries', this.#write(), step, base);
    if (st) throw e.statusError(st, 'workload.queries');
    return e.heap.views().f32.slice(base >>> 2, (base >>> 2) + count);
  }

  /** The planted positions (gap: the face; needle: the needles; uniform: none), increasing. */
  marked() {
    const e = this.#engine;
    const countAt = e.args + ARG_OUT;
    let st = e.call('vs_workload_marked', this.#write(), 0, 0, countAt);
    if (st) throw e.statusError(st, 'workload.marked');
    const count = e.heap.views().u32[countAt >>> 2];
    const base = e.scratch(Math.max(4, count * 4));
    st = e.call('vs_workload_marked', this.#write(), base, count, countAt);
    if (st) throw e.statusError(st, 'workload.marked');
    return e.heap.views().u32.slice(base >>> 2, (base >>> 2) + count);
  }
}

/* ---- the public entry point ---------------------------------------------------- */

/**
 * One instance of the module: its own memory, caches and scratch.
 */
class Vashista {
  #engine;

  /** @internal */
  constructor(token, engine) {
    if (token !== registryToken) throw new TypeError('use init() to create an instance');
    this.#engine = engine;
    const x = engine.x;
    const heap = engine.heap;
    /** Library version "MAJOR.MINOR.PATCH". */
    this.version = heap.cstring(x.vs_version_string() >>> 0);
    /** MAJOR * 10000 + MINOR * 100 + PATCH. */
    this.versionNumber = x.vs_version_number();
    /** The decode option defaults of this build (vs_decode_options_default). */
    this.decodeDefaults = engine.decodeDefaults;
    /** Pages per node of tree routing (VS_NODE_PAGES). */
    this.nodePages = NODE_PAGES;
    Object.freeze(this);
  }

  /** The kernel set in use: 'wasmsimd' or 'scalar'. */
  get isa() {
    const e = this.#engine;
    return e.heap.cstring(e.call('vs_isa_name') >>> 0);
  }

  /**
   * Forces a kernel set ('wasmsimd', 'scalar' or 'auto'); results are
   * bit-identical across them, so this is for tests and measurements.
   * @param {string} name
   */
  setIsa(name) {
    if (typeof name !== 'string') throw fail('E_TYPE', 'name', `name must be a string, got ${describe(name)}`);
    const e = this.#engine;
    const st = e.call('vs_set_isa', e.writeString(name, 'name'));
    if (st) throw e.statusError(st, 'vs.setIsa', 'name', `unknown or unsupported instruction set '${name}'`);
  }

  /** Bytes of the module's linear memory (it grows, never shrinks). */
  get memoryBytes() {
    return this.#engine.heap.memory.buffer.byteLength;
  }

  /**
   * Creates an empty cache.
   * @param {{ heads: number, kvHeads?: number, headDim: number, valueDim?: number, pageSize?: number, dtype?: 'f32' }} config
   */
  createCache(config) {
    const e = this.#engine;
    if (config === undefined) throw fail('E_TYPE', 'config', 'createCache(config): config is required');
    const c = checkObject(config, 'config');
    checkKeys(c, CACHE_OPTION_NAMES, 'config');
    const heads = checkInt(c.heads, 'config.heads', 1, 1024, 'E_HEADS');
    const kvHeads = c.kvHeads === undefined ? heads : checkInt(c.kvHeads, 'config.kvHeads', 1, 1024, 'E_HEADS');
    if (heads % kvHeads !== 0)
      throw fail('E_HEADS', 'config.kvHeads', `config.heads (${heads}) must be a multiple of config.kvHeads (${kvHeads})`);
    const headDim = checkInt(c.headDim, 'config.headDim', 1, 512, 'E_DIM');
    const valueDim = c.valueDim === undefined ? headDim : checkInt(c.valueDim, 'config.valueDim', 1, 512, 'E_DIM');
    const pageSize = c.pageSize === undefined ? 0 : checkInt(c.pageSize, 'config.pageSize', 1, 4096, 'E_PAGE');
    const dtype = c.dtype === undefined ? 'f32' : c.dtype;
    if (typeof dtype !== 'string') throw fail('E_TYPE', 'config.dtype', `config.dtype must be a string, got ${describe(dtype)}`);
    if (!Object.hasOwn(DTYPES, dtype))
      throw fail('E_DTYPE', 'config.dtype', `config.dtype '${dtype}' is not supported (supported: ${Object.keys(DTYPES).join(', ')})`);

    const at = e.args + ARG_CONFIG;
    const u32 = e.heap.views().u32;
    const w = at >>> 2;
    u32[w] = heads;
    u32[w + 1] = kvHeads;
    u32[w + 2] = headDim;
    u32[w + 3] = valueDim;
    u32[w + 4] = pageSize;
    u32[w + 5] = DTYPES[dtype];
    let st = e.call('vs_cache_create', at, e.args + ARG_OUT);
    if (st) throw e.statusError(st, 'vs.createCache', 'config');
    const ptr = e.heap.views().u32[(e.args + ARG_OUT) >>> 2];
    /* the resolved page size (0 means the library's default) */
    st = e.call('vs_cache_get_info', ptr, e.args + ARG_INFO);
    if (st) {
      e.call('vs_cache_free', ptr);
      throw e.statusError(st, 'vs.createCache', 'config');
    }
    const resolvedPageSize = e.heap.views().u32[((e.args + ARG_INFO) >>> 2) + 4];
    const frozen = Object.freeze({ heads, kvHeads, headDim, valueDim, pageSize: resolvedPageSize, dtype });
    return new Cache(registryToken, e, ptr, frozen);
  }

  /**
   * A seeded workload generator, the same as the native CLI's.
   * @param {{ kind: 'gap'|'needle'|'uniform', T?: number, heads?: number, kvHeads?: number, headDim?: number,
   *           valueDim?: number, face?: number, needles?: number, margin?: number, seed?: number|bigint }} options
   */
  workload(options) {
    const e = this.#engine;
    if (options === undefined) throw fail('E_TYPE', 'options', 'workload(options): options.kind is required');
    const o = checkObject(options, 'options');
    checkKeys(o, WORKLOAD_OPTION_NAMES, 'options');
    if (typeof o.kind !== 'string') throw fail('E_TYPE', 'options.kind', `options.kind must be 'gap', 'needle' or 'uniform', got ${describe(o.kind)}`);
    if (!Object.hasOwn(WORKLOAD_KINDS, o.kind))
      throw fail('E_OPTION', 'options.kind', `options.kind must be 'gap', 'needle' or 'uniform', got '${o.kind}'`);
    const kind = WORKLOAD_KINDS[o.kind];

    /* defaults from the library */
    const at = e.args + ARG_WORKLOAD;
    e.call('vs_workload_default', at, kind);
    let { u32, f32 } = e.heap.views();
    const w = at >>> 2;
    const d = {
      T: u32[w + 1], heads: u32[w + 2], kvHeads: u32[w + 3], headDim: u32[w + 4], valueDim: u32[w + 5],
      face: u32[w + 6], needles: u32[w + 7], margin: f32[w + 8], seedLo: u32[w + 9], seedHi: u32[w + 10],
    };
    const pick = (k, min, max) => (o[k] === undefined ? d[k] : checkInt(o[k], `options.${k}`, min, max));
    const fields = {
      kind,
      T: pick('T', 1, U32_MAX),
      heads: pick('heads', 1, U32_MAX),
      kvHeads: o.kvHeads === undefined && o.heads !== undefined ? o.heads : pick('kvHeads', 1, U32_MAX),
      headDim: pick('headDim', 1, U32_MAX),
      valueDim: o.valueDim === undefined && o.headDim !== undefined ? o.headDim : pick('valueDim', 1, U32_MAX),
      face: pick('face', 1, U32_MAX),
      needles: pick('needles', 1, U32_MAX),
      margin: o.margin === undefined ? d.margin : checkFloat(o.margin, 'options.margin', -3.4e38),
      seedLo: d.seedLo,
      seedHi: d.seedHi,
    };
    let seed = BigInt(d.seedLo) + (BigInt(d.seedHi) << 32n);
    if (o.seed !== undefined) {
      if (typeof o.seed === 'number') {
        if (!Number.isSafeInteger(o.seed) || o.seed < 0)
          throw fail('E_OPTION', 'options.seed', `options.seed must be a non-negative safe integer or a bigint, got ${o.seed}`);
        seed = BigInt(o.seed);
      } else if (typeof o.seed === 'bigint') {
        if (o.seed < 0n || o.seed >= 1n << 64n)
          throw fail('E_OPTION', 'options.seed', 'options.seed must be in 0..2^64-1');
        seed = o.seed;
      } else throw fail('E_TYPE', 'options.seed', `options.seed must be a number or a bigint, got ${describe(o.seed)}`);
      fields.seedLo = Number(seed & 0xffffffffn);
      fields.seedHi = Number(seed >> 32n);
    }
    ({ u32, f32 } = e.heap.views());
    u32[w + 1] = fields.T;
    u32[w + 2] = fields.heads;
    u32[w + 3] = fields.kvHeads;
    u32[w + 4] = fields.headDim;
    u32[w + 5] = fields.valueDim;
    u32[w + 6] = fields.face;
    u32[w + 7] = fields.needles;
    f32[w + 8] = fields.margin;
    u32[w + 9] = fields.seedLo;
    u32[w + 10] = fields.seedHi;
    const st = e.call('vs_workload_check', at);
    if (st) throw e.statusError(st, 'vs.workload', 'options');
    const config = Object.freeze({
      kind: o.kind, T: fields.T, heads: fields.heads, kvHeads: fields.kvHeads, headDim: fields.headDim,
      valueDim: fields.valueDim, face: fields.face, needles: fields.needles, margin: fields.margin, seed,
    });
    return new Workload(registryToken, e, fields, config);
  }
}

function isWasmSource(x) {
  return (
    x instanceof WebAssembly.Module ||
    x instanceof ArrayBuffer ||
    ArrayBuffer.isView(x) ||
    x instanceof URL ||
    typeof x === 'string' ||
    (typeof Response !== 'undefined' && x instanceof Response) ||
    (x !== null && typeof x === 'object' && typeof x.then === 'function')
  );
}

/**
 * Loads and instantiates the module. Each call gives an independent instance
 * (its own memory); the default module is compiled once and reused.
 * @param {{ wasm?: ArrayBuffer | ArrayBufferView | WebAssembly.Module | Response | PromiseLike<Response> | URL | string, isa?: string }
 *         | ArrayBuffer | ArrayBufferView | WebAssembly.Module | Response | PromiseLike<Response> | URL | string} [options]
 * @returns {Promise<Vashista>}
 */
export async function init(options) {
  const o = isWasmSource(options) ? { wasm: options } : checkObject(options, 'options');
  checkKeys(o, ['wasm', 'isa'], 'options');
  if (o.isa !== undefined && typeof o.isa !== 'string')
    throw fail('E_TYPE', 'options.isa', `options.isa must be a string, got ${describe(o.isa)}`);
  const module = await compileModule(o.wasm, 'init');
  const state = { heap: null };
  let instance;
  try {
    instance = await WebAssembly.instantiate(module, makeImports(module, state));
  } catch (e) {
    if (e instanceof VashistaError) throw e;
    throw new VashistaError('E_LOAD', `could not instantiate the wasm module: ${e?.message ?? e}`, { cause: e });
  }
  const x = /** @type {any} */ (instance.exports);
  if (!(x.memory instanceof WebAssembly.Memory) || typeof x.vs_cache_create !== 'function' || typeof x.malloc !== 'function')
    throw new VashistaError('E_LOAD', 'this wasm module is not a vashista build (missing memory, malloc or vs_* exports)');
  state.heap = new Heap(x.memory);
  if (typeof x._initialize === 'function') x._initialize(); /* reactor: run the C constructors */

  const engine = new Engine(instance, state);

  /* The struct layout must be the one this loader writes and reads. */
  if (typeof x.vs_wasm_abi !== 'function') throw new VashistaError('E_ABI', 'the wasm module lacks vs_wasm_abi()');
  const abiAt = engine.scratch(ABI.length * 4 + 64);
  const n = x.vs_wasm_abi(abiAt, ABI.length);
  const got = Array.from(state.heap.views().u32.subarray(abiAt >>> 2, (abiAt >>> 2) + Math.min(n, ABI.length)));
  if (n !== ABI.length || got.some((v, i) => v !== ABI[i]))
    throw new VashistaError('E_ABI', `the wasm module's struct layout [${got}] differs from this loader's [${ABI}]`);
  for (const slot of Object.keys(SLOT_BYTES))
    if (ABI_LAYOUT[slot][0] > SLOT_BYTES[slot])
      throw new VashistaError('E_ABI', `internal: vs ${slot} struct does not fit its argument slot`);

  const optAt = engine.args + ARG_OPTIONS;
  engine.call('vs_decode_options_default', optAt);
  const { u32, f32 } = state.heap.views();
  const w = optAt >>> 2;
  engine.decodeDefaults = Object.freeze({
    pages: u32[w],
    candidates: u32[w + 1],
    sinkPages: u32[w + 2],
    recentPages: u32[w + 3],
    solver: Object.keys(SOLVERS).find((k) => SOLVERS[k] === u32[w + 4]) ?? 'softmax',
    widen: u32[w + 5],
    scale: f32[w + 6],
    tolerance: f32[w + 7],
    eps: f32[w + 8],
    maxIter: u32[w + 9],
    solverTol: f32[w + 10],
    routing: Object.keys(ROUTINGS).find((k) => ROUTINGS[k] === u32[w + 11]) ?? 'flat',
    expand: u32[w + 12],
    shareRouting: u32[w + 13] !== 0,
  });

  const vs = new Vashista(registryToken, engine);
  if (o.isa !== undefined) vs.setIsa(o.isa);
  return vs;
}

export default init;
