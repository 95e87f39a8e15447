/**
 * vashista: sparse-attention decode over paged KV caches kept in WebAssembly
 * linear memory, with a certified bound on the error of every sparse decode.
 *
 * Shapes are row-major Float32Arrays:
 *   keys    [n][kvHeads][headDim]     values [n][kvHeads][valueDim]
 *   q       [heads][headDim]          output [heads][valueDim]
 * Query head h reads KV head h / (heads / kvHeads) (grouped-query attention).
 *
 * Inputs are copied into the module; every returned array is a fresh copy,
 * never a view into wasm memory.
 */

declare global {
  // Symbol.dispose, for TypeScript setups whose lib lacks ESNext.Disposable
  // (the same declaration as lib.esnext.disposable.d.ts, so the two merge).
  interface SymbolConstructor {
    readonly dispose: unique symbol;
  }
}

/** Where the .wasm comes from (default: dist/vashista.wasm next to this module). */
export type WasmSource =
  | ArrayBuffer
  | ArrayBufferView
  | WebAssembly.Module
  | Response
  | PromiseLike<Response | ArrayBuffer | ArrayBufferView | WebAssembly.Module>
  | URL
  | string;

export interface InitOptions {
  /**
   * The module: bytes, a compiled WebAssembly.Module, a Response (or a promise
   * of one, e.g. `fetch(url)`), or a URL / string. Default: the package's own
   * dist/vashista.wasm, found relative to `import.meta.url` (read with fs in
   * Node, fetched in browsers).
   */
  wasm?: WasmSource;
  /** Force a kernel set: 'wasmsimd', 'scalar' or 'auto' (default). */
  isa?: string;
}

/** Stable error codes. */
export type VashistaErrorCode =
  /* from the C library (enum vs_status) */
  | 'E_NULL'
  | 'E_DIM'
  | 'E_HEADS'
  | 'E_PAGE'
  | 'E_LENGTH'
  | 'E_NONFINITE'
  | 'E_RANGE'
  | 'E_NOMEM'
  | 'E_OPTION'
  | 'E_EMPTY'
  | 'E_ISA'
  | 'E_DTYPE'
  | 'E_CAPACITY'
  /* from the JS layer */
  | 'E_TYPE'
  | 'E_FREED'
  | 'E_FOREIGN'
  | 'E_LOAD'
  | 'E_ABI'
  | 'E_TRAP';

/** The only error type thrown by the package (besides TypeError for misuse of internals). */
export class VashistaError extends Error {
  constructor(code: string, message: string, details?: { status?: number; argument?: string; cause?: unknown });
  readonly name: 'VashistaError';
  /** Stable, machine-readable code. */
  readonly code: VashistaErrorCode | string;
  /** The C status (negative), when the error came from the library. */
  readonly status: number | undefined;
  /** The offending argument (e.g. 'keys', 'options.pages'), when known. */
  readonly argument: string | undefined;
}

export interface CacheConfig {
  /** Query heads, 1..1024, a multiple of kvHeads. */
  heads: number;
  /** KV heads (default: heads). */
  kvHeads?: number;
  /** d: 1..512. */
  headDim: number;
  /** dv: 1..512 (default: headDim). */
  valueDim?: number;
  /** Tokens per page, 1..4096 (default: the library's, 32). */
  pageSize?: number;
  dtype?: 'f32';
}

export interface ResolvedCacheConfig {
  readonly heads: number;
  readonly kvHeads: number;
  readonly headDim: number;
  readonly valueDim: number;
  readonly pageSize: number;
  readonly dtype: 'f32';
}

export interface DenseOptions {
  /** Score scale; 0 (default) means 1/sqrt(headDim). */
  scale?: number;
}

/**
 * softmax: exact softmax over the candidates (the drop-in default);
 * eg: entropic projection onto the candidates' convex hull (exponentiated gradient);
 * fw: unregularized projection (Frank-Wolfe).
 */
export type Solver = 'softmax' | 'eg' | 'fw';

/**
 * How pages are routed (besides the sink and recent pages, always routed).
 * tree: a bound for every node of `nodePages` (16) pages, the top-`expand` nodes expanded into
 * their pages, a bound for each of those pages and the top `pages` of them;
 * flat: a bound for every page, then the top `pages`.
 */
export type Routing = 'flat' | 'tree';

export interface DecodeOptions {
  /** P: pages routed by their score bound, besides sink and recent pages; >= 1. */
  pages?: number;
  /** Kc: candidate tokens kept after exact scoring; >= 1. */
  candidates?: number;
  /** First pages always routed (attention sinks). */
  sinkPages?: number;
  /** Last pages always routed (recency). */
  recentPages?: number;
  /**
   * 'tree' (default) or 'flat'. tree computes a bound for every node of 16 pages (vs.nodePages),
   * expands the top-`expand` nodes into their pages, bounds those pages and routes the top
   * `pages` of them: about pages / 16 + 16 expand bounds instead of one per page. Nodes that
   * were not expanded enter the certificate by their node bound, so errorBound and rhoCert stay
   * guarantees but are looser than with flat routing. With `expand` >= the number of nodes, tree
   * is flat routing (bit-identical results). The widened retry of `tolerance` routes flat.
   */
  routing?: Routing;
  /**
   * tree: nodes expanded into pages, an integer >= 0; 0 (default) means automatic:
   * max(32, ceil(2 pages / 16)) (vashista.h). Ignored by flat routing.
   */
  expand?: number;
  /**
   * Grouped-query attention: the query heads of a KV head share one routing, by their mean
   * query (one routing per KV head instead of per query head). Each head still picks its own
   * candidates by its own exact scores; its certificate raises every routing bound by
   * scale * sum_j |q_j - mean_j| * max|k_j|, so it stays a guarantee, looser the more the
   * heads of a group differ. Default false.
   */
  shareRouting?: boolean;
  /**
   * softmax (default): softmax over the candidates. The projection solvers, in
   * score units (s_i = scale <q, k_i>), over the candidate keys U = [k_i], out = sum alpha_i v_i:
   *   eg: alpha = argmin over the simplex of scale/2 ||U alpha - q||^2 + eps sum alpha_i log alpha_i
   *   fw: alpha = argmin over the simplex of scale/2 ||U alpha - q||^2
   * Deterministic and bit-identical across ISAs.
   */
  solver?: Solver;
  /**
   * 0 (default): off. Else, per head: if errorBound > tolerance * (||out||; for fw ||U alpha||),
   * retry with widen x pages and candidates and flat routing; if still above, fall back to dense (for eg and fw:
   * the same solver over every token, which needs scratch for every token: E_NOMEM is possible).
   */
  tolerance?: number;
  /** Factor applied to pages and candidates on the widened retry, >= 2. */
  widen?: number;
  /** Score scale; 0 means 1/sqrt(headDim). */
  scale?: number;
  /**
   * eg: entropy weight in score units, in [1e-9, 1e9] (as a float32). With eg and fw,
   * eps / scale must be in that range too (E_OPTION otherwise). Default 0.05.
   */
  eps?: number;
  /** eg, fw: cap on solver iterations, an integer >= 1. Default 200. */
  maxIter?: number;
  /**
   * eg: entropic duality gap (KKT residual), fw: Frank-Wolfe duality gap, in score units, at which
   * the solver stops; finite and > 0 (with eg and fw, solverTol / scale must stay a positive float32).
   * Default 1e-6.
   */
  solverTol?: number;
}

export interface DecodeDefaults {
  readonly pages: number;
  readonly candidates: number;
  readonly sinkPages: number;
  readonly recentPages: number;
  readonly routing: Routing;
  readonly expand: number;
  readonly shareRouting: boolean;
  readonly solver: Solver;
  readonly widen: number;
  readonly scale: number;
  readonly tolerance: number;
  readonly eps: number;
  readonly maxIter: number;
  readonly solverTol: number;
}

export type Fallback = 'none' | 'widened' | 'dense';

/**
 * Per query head (the C struct vs_head_diag). "Exact attention" is the same solver over
 * every token of the cache: softmax for softmax; for eg the entropic projection onto the hull
 * of all keys; for fw the projection of q onto the hull of all keys. Bounds hold for the
 * float32 output.
 */
export interface HeadDiagnostics {
  /** Pages scored exactly (sink + recent + top-P, distinct). */
  routedPages: number;
  /** |C|: tokens attended. */
  candidates: number;
  fallback: Fallback;
  /** Solver iterations (softmax: 1; eg, fw: at most maxIter, 0 if the start met solverTol). */
  iterations: number;
  /** exp(entropy(alpha)) over the candidates. */
  effectiveSupport: number;
  /**
   * Delta, in score units, between the face I (faceSize tokens) and every other token
   * (Infinity when I is every token). softmax: I = C, a certified lower bound on
   * min_{i in C} s_i - max_{j not in C} s_j. eg, fw: the KKT multiplier gap at the returned
   * alpha, min_{i in I} a_i - max_{j not in I} a_j over the adjusted scores
   * a_i = scale <k_i, q - U alpha> (tokens outside C bounded by exact scores and page bounds).
   */
  gap: number;
  /**
   * The face theorem's bound on the mass off I, at most 1: softmax (T - |C|) / |C| exp(-gap),
   * eg (T - |I|) / |I| exp(-gap / (2 eps)) (1 if it stopped at maxIter), fw 0 (its alpha is
   * exactly 0 off I).
   */
  leakageBound: number;
  /**
   * Certified bound on the mass exact attention puts outside the candidates (softmax, eg);
   * fw: 1 (its exact weights need not be unique: errorBound certifies its point instead);
   * 0 when every token is a candidate.
   */
  rhoCert: number;
  /**
   * Certified bound, float rounding included: softmax, eg: ||output - exact output||_2 for this
   * head; fw: ||U alpha - p*||_2, p* the projection of q onto the hull of every key (the
   * output's weights are not unique, its point is).
   */
  errorBound: number;
  /** ||output||_2 for this head. */
  outputNorm: number;
  /** Solver residual in score units (softmax: 0; eg: entropic duality gap; fw: Frank-Wolfe gap). */
  residual: number;
  /**
   * |I|, the face: softmax the candidates (= candidates); fw the support of alpha; eg the face
   * read off its multipliers (every candidate when none is separated).
   */
  faceSize: number;
}

export interface DecodeResult {
  /** [heads][valueDim]. */
  output: Float32Array;
  /** One entry per query head. */
  diagnostics: HeadDiagnostics[];
}

export interface CacheInfo {
  heads: number;
  kvHeads: number;
  headDim: number;
  valueDim: number;
  pageSize: number;
  dtype: 'f32';
  length: number;
  pages: number;
  /** Bytes of keys and values stored (pages in use). */
  kvBytes: number;
  /** Bytes of page summaries in use. */
  summaryBytes: number;
  /** Everything the cache holds, including capacity and scratch. */
  reservedBytes: number;
}

/** A paged KV cache in the module's memory. Free it with free() (or `using`). */
export interface Cache {
  readonly config: ResolvedCacheConfig;
  /** Tokens stored. */
  readonly length: number;
  /** True once free() was called. */
  readonly freed: boolean;
  /** Appends n tokens (copied). On error nothing is appended. */
  append(keys: Float32Array, values: Float32Array): void;
  /** Exact softmax attention over every token: [heads][valueDim]. */
  decodeDense(q: Float32Array, options?: DenseOptions): Float32Array;
  /** Sparse decode with per-head certified error bounds. */
  decode(q: Float32Array, options?: DecodeOptions): DecodeResult;
  /**
   * The candidate tokens of the last successful decode() for query head `head`
   * (increasing; every token for a head that fell back to dense; empty after
   * an append or a truncate that changed the cache).
   */
  lastCandidates(head: number): Uint32Array;
  /** The pages routed by the last successful decode() for query head `head` (increasing). */
  lastRoutedPages(head: number): Uint32Array;
  /** Keeps the first n tokens (n <= length). */
  truncate(n: number): void;
  info(): CacheInfo;
  /** Frees the cache; using it again, or a second free(), throws E_FREED. */
  free(): void;
  /** Frees the cache if it is not freed yet (for `using`). */
  [Symbol.dispose](): void;
}

export type WorkloadKind = 'gap' | 'needle' | 'uniform';

export interface WorkloadOptions {
  kind: WorkloadKind;
  /** Tokens (default 4096). */
  T?: number;
  heads?: number;
  /** Default: heads. */
  kvHeads?: number;
  headDim?: number;
  /** Default: headDim. */
  valueDim?: number;
  /** gap: planted face size. */
  face?: number;
  /** needle: number of needles. */
  needles?: number;
  /** gap: the margin Delta; needle: needle strength (score units). */
  margin?: number;
  /** 64-bit seed. */
  seed?: number | bigint;
}

export interface WorkloadConfig {
  readonly kind: WorkloadKind;
  readonly T: number;
  readonly heads: number;
  readonly kvHeads: number;
  readonly headDim: number;
  readonly valueDim: number;
  readonly face: number;
  readonly needles: number;
  readonly margin: number;
  readonly seed: bigint;
}

/** A seeded synthetic workload (the same floats as the native CLI's). */
export interface Workload {
  readonly config: WorkloadConfig;
  /** Tokens [start, start + n). */
  tokens(start: number, n: number): { keys: Float32Array; values: Float32Array };
  /** Generates tokens [start, start + n) straight into a cache (defaults: from cache.length to T). */
  appendTo(cache: Cache, start?: number, n?: number): void;
  /** Queries [heads][headDim] for decode step `step` (default 0). */
  queries(step?: number): Float32Array;
  /** Planted positions (gap: the face; needle: the needles; uniform: none), increasing. */
  marked(): Uint32Array;
}

/** One instance of the module (its own memory, caches and scratch). */
export interface Vashista {
  /** "MAJOR.MINOR.PATCH". */
  readonly version: string;
  readonly versionNumber: number;
  /** The kernel set in use: 'wasmsimd' or 'scalar'. */
  readonly isa: string;
  /** Bytes of the module's linear memory (grows, never shrinks). */
  readonly memoryBytes: number;
  readonly decodeDefaults: DecodeDefaults;
  /** Pages per node of tree routing (VS_NODE_PAGES, 16). */
  readonly nodePages: number;
  /** Forces a kernel set ('wasmsimd', 'scalar', 'auto'); results are bit-identical across them. */
  setIsa(name: string): void;
  createCache(config: CacheConfig): Cache;
  workload(options: WorkloadOptions): Workload;
}

/** Loads and instantiates the module. Each call gives an independent instance. */
export function init(options?: InitOptions | WasmSource): Promise<Vashista>;
export default init;

/* ---- vashista/pool: one cache split over worker threads --------------------------- */

declare global {
  // Symbol.asyncDispose, for setups whose lib lacks ESNext.Disposable (merges with it).
  interface SymbolConstructor {
    readonly asyncDispose: unique symbol;
  }
}

/** Options of createPool() (exported by 'vashista/pool'): the cache's shape, plus where and how to run. */
export interface PoolOptions extends CacheConfig {
  /**
   * Workers, 1..kvHeads. Default: min(kvHeads, navigator.hardwareConcurrency, or in Node
   * os.availableParallelism()).
   */
  workers?: number;
  /**
   * The module, as init() takes it. It is compiled once on the calling thread and the
   * WebAssembly.Module is posted to every worker (default: the package's dist/vashista.wasm).
   */
  wasm?: WasmSource;
  /** Kernel set of every worker: 'wasmsimd', 'scalar' or 'auto' (default). */
  isa?: string;
}

/** What one worker holds: KV heads [g0, g1) and the query heads of those groups, [h0, h1). */
export interface PoolShard {
  readonly kvHeads: readonly [number, number];
  readonly heads: readonly [number, number];
}

/**
 * A cache split by KV head over worker threads (Web Workers, or worker_threads in Node), one
 * wasm instance per worker. Results are bit-identical to one Cache holding everything. Every
 * method returns a promise; calls run one at a time, in call order, and inputs are copied
 * before the call returns. A failed call changes nothing (an append that failed in one worker
 * is undone in the others). Close it with close() (or `await using`), or Node stays alive.
 */
export interface Pool {
  /** The shape of the whole cache (pageSize resolved). */
  readonly config: ResolvedCacheConfig;
  /** Number of workers. */
  readonly workers: number;
  /** One entry per worker, in head order. */
  readonly shards: readonly PoolShard[];
  /** Tokens stored, as of the last call that completed. */
  readonly length: number;
  /** True once close() was called. */
  readonly closed: boolean;
  readonly decodeDefaults: DecodeDefaults;
  /** Library version of the workers' module. */
  readonly version: string;
  /** The workers' kernel set: 'wasmsimd' or 'scalar'. */
  readonly isa: string;
  /** Appends n tokens, as cache.append (keys [n][kvHeads][headDim], values [n][kvHeads][valueDim]). */
  append(keys: Float32Array, values: Float32Array): Promise<void>;
  /** Exact softmax attention over every token: [heads][valueDim]. */
  decodeDense(q: Float32Array, options?: DenseOptions): Promise<Float32Array>;
  /** Sparse decode with per-head certified error bounds, as cache.decode. */
  decode(q: Float32Array, options?: DecodeOptions): Promise<DecodeResult>;
  /** As cache.lastCandidates (may be empty after a failed call). */
  lastCandidates(head: number): Promise<Uint32Array>;
  /** As cache.lastRoutedPages (may be empty after a failed call). */
  lastRoutedPages(head: number): Promise<Uint32Array>;
  /** Keeps the first n tokens (n <= length). */
  truncate(n: number): Promise<void>;
  /**
   * Terminates the workers once the calls made before it have settled; later calls reject
   * with E_FREED. Closing again returns the same promise.
   */
  close(): Promise<void>;
  /** close(), for `await using`. */
  [Symbol.asyncDispose](): Promise<void>;
}
