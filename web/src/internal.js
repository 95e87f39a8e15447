/*
 * What index.js and pool.js share, written once: the error type, the argument
 * checks (so both report the same codes, arguments and messages) and turning
 * a `wasm` source into a WebAssembly.Module.
 *
 * Internal: shipped in the package ("files") but not in its "exports", so it
 * cannot be imported as 'vashista/internal'; nothing here is a public API.
 */

/* ---- errors ---------------------------------------------------------------- */

/**
 * The one error type of the package. `code` is stable and meant for programs:
 * the C status codes (E_NULL, E_DIM, E_HEADS, E_PAGE, E_LENGTH, E_NONFINITE,
 * E_RANGE, E_NOMEM, E_OPTION, E_EMPTY, E_ISA, E_DTYPE, E_CAPACITY) and the
 * JS-side ones: E_TYPE (an argument of the wrong type), E_FREED (a freed
 * cache), E_FOREIGN (an object from another instance), E_LOAD (the module
 * could not be loaded), E_ABI (the module's struct layout differs from this
 * loader's), E_TRAP (the module trapped; the instance is unusable afterwards).
 */
export class VashistaError extends Error {
  /**
   * @param {string} code
   * @param {string} message
   * @param {{ status?: number, argument?: string, cause?: unknown }} [details]
   */
  constructor(code, message, details = {}) {
    super(message, details.cause !== undefined ? { cause: details.cause } : undefined);
    this.name = 'VashistaError';
    /** @type {string} */
    this.code = code;
    /** @type {number | undefined} the C status, when the error came from the library */
    this.status = details.status;
    /** @type {string | undefined} the name of the offending argument, when known */
    this.argument = details.argument;
  }
}

export function fail(code, argument, message) {
  return new VashistaError(code, message, { argument });
}

/* ---- argument checks ------------------------------------------------------ */

export const U32_MAX = 0xffffffff;

export function describe(x) {
  if (x === null) return 'null';
  if (Array.isArray(x)) return 'an Array';
  if (ArrayBuffer.isView(x)) return `a ${x.constructor.name}`;
  return typeof x === 'object' ? `a ${x.constructor?.name ?? 'object'}` : `${typeof x} ${String(x)}`;
}

export function checkObject(x, name) {
  if (x === undefined) return {};
  if (x === null || typeof x !== 'object' || Array.isArray(x))
    throw fail('E_TYPE', name, `${name} must be an object, got ${describe(x)}`);
  return x;
}

export function checkKeys(obj, allowed, name) {
  for (const k of Object.keys(obj))
    if (!allowed.includes(k))
      throw fail('E_OPTION', `${name}.${k}`, `${name}.${k} is not an option (options: ${allowed.join(', ')})`);
}

/* An integer in min..max: E_TYPE if it is not one, else `code` if out of range. */
export function checkInt(x, name, min, max, code = 'E_OPTION') {
  if (typeof x !== 'number' || !Number.isInteger(x))
    throw fail('E_TYPE', name, `${name} must be an integer, got ${describe(x)}`);
  if (x < min || x > max) throw fail(code, name, `${name} must be in ${min}..${max}, got ${x}`);
  return x;
}

export function checkF32(x, name, multiple, what) {
  if (!(x instanceof Float32Array))
    throw fail('E_TYPE', name, `${name} must be a Float32Array, got ${describe(x)}`);
  if (x.length % multiple !== 0)
    throw fail('E_LENGTH', name, `${name} has ${x.length} elements, not a multiple of ${what} = ${multiple}`);
  return x;
}

/* VS_MAX_ABS: the largest magnitude the library accepts. */
export const MAX_ABS = 1.0e30;

/* Names the first bad element after the library reported NONFINITE (-6) or
   RANGE (-7): { name, message }, or null if no element is. */
export function findBadElement(arrays, status) {
  for (const [name, a] of arrays) {
    for (let i = 0; i < a.length; i++) {
      const v = a[i];
      if (status === -6 && !Number.isFinite(v))
        return { name, message: `${name}[${i}] is ${v} (inputs must be finite)` };
      if (status === -7 && Math.abs(v) > MAX_ABS)
        return { name, message: `${name}[${i}] = ${v} exceeds the largest accepted magnitude 1e30` };
    }
  }
  return null;
}

/* After the library reported RANGE for eg / fw with every element in range:
   a squared norm above the projection solvers' limit (1e15, vashista.h). */
export function projectionRangeProblem(q, heads, headDim) {
  for (let h = 0; h < heads; h++) {
    let qq = 0;
    for (let j = 0; j < headDim; j++) qq += q[h * headDim + j] * q[h * headDim + j];
    if (qq > Math.fround(1e15) * 0.999)
      return { name: 'q', message: `||q[${h}]||^2 = ${qq} is too large for the eg and fw solvers (at most about 1e15)` };
  }
  return {
    name: 'cache',
    message: 'the keys are too large: for the eg and fw solvers the bound on ||k||^2 must stay below about 1e15 (or scale * |q|.|k| could overflow)',
  };
}

/* ---- loading ------------------------------------------------------------------ */

export const IS_NODE = typeof process !== 'undefined' && !!process.versions?.node;

/** The package's own dist/vashista.wasm, compiled once (for init() and createPool() alike).
 *  @type {Promise<WebAssembly.Module> | null} */
let defaultModule = null;

async function readFileUrl(url) {
  const { readFile } = await import('node:fs/promises');
  return readFile(url);
}

async function compileResponse(response) {
  if (!response.ok)
    throw new VashistaError('E_LOAD', `could not load the wasm module: HTTP ${response.status} for ${response.url}`);
  const type = response.headers.get('content-type') || '';
  if (typeof WebAssembly.compileStreaming === 'function' && type.split(';')[0].trim() === 'application/wasm')
    return WebAssembly.compileStreaming(response);
  return WebAssembly.compile(await response.arrayBuffer());
}

/* A file: URL is read from disk in Node, anything else fetched. Without fetch()
   this throws at once, so that the message names the caller's entry point and
   is never the cached default module's outcome. */
function compileUrl(url, entry) {
  if (url.protocol === 'file:' && IS_NODE) return readFileUrl(url).then((bytes) => WebAssembly.compile(bytes));
  if (typeof fetch !== 'function')
    throw new VashistaError('E_LOAD', `cannot load ${url.href}: no fetch() here; pass ${entry}({ wasm: bytes })`);
  return fetch(url).then(compileResponse);
}

function resolveString(s) {
  try {
    return new URL(s); /* absolute URL */
  } catch {
    /* relative: a path in Node, relative to the document in a browser */
  }
  if (IS_NODE) {
    return import('node:url').then(async ({ pathToFileURL }) => {
      const { resolve } = await import('node:path');
      return pathToFileURL(resolve(s));
    });
  }
  const base = globalThis.document?.baseURI ?? globalThis.location?.href;
  if (!base) throw new VashistaError('E_LOAD', `cannot resolve the relative wasm location '${s}'`, { argument: 'wasm' });
  return new URL(s, base);
}

async function compileSource(source, entry) {
  if (source === undefined || source === null) {
    const url = new URL('../dist/vashista.wasm', import.meta.url);
    defaultModule ??= compileUrl(url, entry).catch((e) => {
      defaultModule = null;
      throw e;
    });
    return defaultModule;
  }
  if (source instanceof WebAssembly.Module) return source;
  if (source instanceof ArrayBuffer || ArrayBuffer.isView(source)) return WebAssembly.compile(source);
  if (typeof Response !== 'undefined' && source instanceof Response) return compileResponse(source);
  if (source instanceof URL) return compileUrl(source, entry);
  if (typeof source === 'string') return compileUrl(await resolveString(source), entry);
  if (typeof (/** @type {any} */ (source).then) === 'function') return compileSource(await source, entry);
  throw fail('E_TYPE', 'wasm', `options.wasm must be bytes, a WebAssembly.Module, a Response, a URL or a string, got ${describe(source)}`);
}

/**
 * Turns any `wasm` source init() and createPool() accept into a compiled
 * module: bytes, a WebAssembly.Module, a Response (or a promise of one), a
 * URL or a string (a path in Node, relative to the document in a browser);
 * undefined or null: the package's dist/vashista.wasm (read from disk in
 * Node, fetched in browsers; compiled once and reused). Rejects with E_TYPE
 * for anything else and E_LOAD for whatever fails on the way.
 * @param {unknown} source
 * @param {'init' | 'createPool'} entry the function the source was given to (named in a hint)
 * @returns {Promise<WebAssembly.Module>}
 */
export async function compileModule(source, entry) {
  try {
    return await compileSource(source, entry);
  } catch (e) {
    if (e instanceof VashistaError) throw e;
    throw new VashistaError('E_LOAD', `could not load the wasm module: ${e?.message ?? e}`, { cause: e, argument: 'wasm' });
  }
}
