// A typed use of the package, checked by `tsc -p test/types` (test/types.test.js).
// It imports the package by name, so the "exports" map and its "types"
// condition are what resolve it. Lines marked @ts-expect-error must fail to
// type-check: they pin down that wrong usage is rejected.
import init, { init as namedInit, VashistaError } from 'vashista';
import type {
  Cache,
  DecodeOptions,
  DecodeResult,
  Fallback,
  HeadDiagnostics,
  Routing,
  Vashista,
  Workload,
  VashistaErrorCode,
} from 'vashista';

export async function example(bytes: Uint8Array): Promise<number> {
  const vs: Vashista = await init();
  const other = await namedInit({ wasm: bytes, isa: 'scalar' });
  await init(fetch('/vashista.wasm'));
  await init(new URL('https://example.invalid/vashista.wasm'));
  const isa: string = vs.isa;
  const version: string = vs.version;

  const cache: Cache = vs.createCache({ heads: 8, kvHeads: 2, headDim: 64, valueDim: 64, pageSize: 32, dtype: 'f32' });
  const wl: Workload = vs.workload({ kind: 'needle', T: 1024, heads: 8, kvHeads: 2, headDim: 64, seed: 7n });
  const { keys, values } = wl.tokens(0, 512);
  cache.append(keys, values);
  wl.appendTo(cache);
  const n: number = cache.length;
  const q: Float32Array = wl.queries();
  const dense: Float32Array = cache.decodeDense(q, { scale: 0.125 });

  const opts: DecodeOptions = { pages: 16, candidates: 128, sinkPages: 1, recentPages: 1, solver: 'softmax', tolerance: 1e-3, widen: 4 };
  const r: DecodeResult = cache.decode(q, opts);
  cache.decode(q, { solver: 'eg', eps: 0.05, maxIter: 100, solverTol: 1e-6 });
  cache.decode(q, { solver: 'fw', maxIter: 50 });
  const routing: Routing = vs.decodeDefaults.routing;
  cache.decode(q, { routing, expand: 4 });
  cache.decode(q, { routing: 'flat' });
  const nodePages: number = vs.nodePages;
  const expand: number = vs.decodeDefaults.expand;
  void nodePages;
  void expand;
  const picked: Uint32Array = cache.lastCandidates(0);
  const routed: Uint32Array = cache.lastRoutedPages(0);
  void picked;
  void routed;
  const out: Float32Array = r.output;
  const d0: HeadDiagnostics | undefined = r.diagnostics[0];
  const fb: Fallback | undefined = d0?.fallback;
  const bound: number = d0?.errorBound ?? 0;
  const face: number = d0?.faceSize ?? 0;
  void face;

  // @ts-expect-error solver must be one of the known names
  cache.decode(q, { solver: 'adam' });
  // @ts-expect-error routing must be 'flat' or 'tree'
  cache.decode(q, { routing: 'hnsw' });
  // @ts-expect-error nodePages is read-only
  vs.nodePages = 8;
  // @ts-expect-error keys must be a Float32Array
  cache.append([1, 2, 3], values);
  // @ts-expect-error dtype is 'f32' only
  vs.createCache({ heads: 1, headDim: 4, dtype: 'f16' });
  // @ts-expect-error length is read-only
  cache.length = 3;

  cache.truncate(256);
  const info = cache.info();
  {
    using scoped = vs.createCache({ heads: 1, headDim: 8 });
    scoped.append(new Float32Array(8), new Float32Array(8));
  }
  try {
    cache.free();
    cache.free();
  } catch (e) {
    if (e instanceof VashistaError) {
      const code: VashistaErrorCode | string = e.code;
      const arg: string | undefined = e.argument;
      void code;
      void arg;
    }
  }
  void other; void isa; void version; void dense; void out; void fb; void bound; void info; void wl.marked();
  return n;
}
