// The package under an older, minimal TypeScript setup (no ESNext.Disposable
// in lib): the declarations must still check, Symbol.dispose included.
import { init, VashistaError } from 'vashista';

export async function run(): Promise<number> {
  const vs = await init({ wasm: new URL('../../dist/vashista.wasm', import.meta.url) });
  const cache = vs.createCache({ heads: 2, headDim: 4 });
  cache.append(new Float32Array(8), new Float32Array(8));
  const r = cache.decode(new Float32Array(8), { pages: 1 });
  cache[Symbol.dispose]();
  try {
    cache.free();
  } catch (e) {
    if (e instanceof VashistaError && e.code === 'E_FREED') return -1;
  }
  return r.output.length + (r.diagnostics[0]?.candidates ?? 0);
}
