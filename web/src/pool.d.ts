/**
 * vashista/pool: one cache split by KV head over worker threads (Web Workers in browsers,
 * worker_threads in Node), one wasm instance per worker, no SharedArrayBuffer. The types are
 * declared in index.d.ts (Pool, PoolOptions, PoolShard).
 *
 *   import { createPool } from 'vashista/pool';
 *   const pool = await createPool({ workers: 2, heads: 32, kvHeads: 8, headDim: 128 });
 *   await pool.append(keys, values);
 *   const { output, diagnostics } = await pool.decode(q, { pages: 16 });
 *   await pool.close();
 */
import type { Pool, PoolOptions } from './index.js';

export type { Pool, PoolOptions, PoolShard } from './index.js';
export { VashistaError } from './index.js';

/**
 * Starts the workers, each with its own instance of the module and an empty cache holding its
 * share of the KV heads. Rejects with the VashistaError createCache or init would throw.
 */
export function createPool(options: PoolOptions): Promise<Pool>;
export default createPool;
