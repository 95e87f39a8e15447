// npm run bench (bench/bench.mjs): its --config syntax is the native CLI's
// (S:P:Kc, S:P:Kc:flat, S:P:Kc:tree, S:P:Kc:treeE), and a tiny run reports
// each row's routing, compares tree rows with flat routing, and pairs every
// wasm row with the native CLI's row of the same configuration and routing.
import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { test } from 'node:test';
import { fileURLToPath } from 'node:url';

import { configArg, parseConfigs, runBench } from '../bench/bench.mjs';

const native = fileURLToPath(new URL('../../build/vashista', import.meta.url));

test('bench --config: S:P:Kc with an optional :flat, :tree or :treeE routing', () => {
  const got = parseConfigs('64:16:128,64:16:128:flat,64:16:128:tree,16:64:128:tree8');
  assert.deepEqual(got, [
    { S: 64, P: 16, Kc: 128, routing: null, expand: 0 },
    { S: 64, P: 16, Kc: 128, routing: 'flat', expand: 0 },
    { S: 64, P: 16, Kc: 128, routing: 'tree', expand: 0 },
    { S: 16, P: 64, Kc: 128, routing: 'tree', expand: 8 },
  ]);
  assert.deepEqual(got.map(configArg), ['64:16:128', '64:16:128:flat', '64:16:128:tree', '16:64:128:tree8']);
  for (const bad of ['64:16', '64:16:128:', '64:16:128:flat3', '64:16:128:tree0', '64:16:128:hnsw', '0:16:128', '64:0:128', '64:16:128:tree:flat', 'a:b:c'])
    assert.throws(() => parseConfigs(bad), /--config/, bad);
});

test('bench: routing per row, tree rows compared with flat, native rows matched by routing', async () => {
  const withNative = existsSync(native);
  const { report, rows } = await runBench({
    T: '2K', config: '16:4:32:flat,16:4:32:tree1,16:4:32', reps: '1', 'bw-mib': '0', routing: 'flat', native: withNative ? native : 'none',
  });
  assert.equal(report.options.routing, 'flat');
  assert.deepEqual(rows.map((r) => [r.routing, r.expand]), [['flat', 0], ['tree', 1], ['flat', 0]]);
  for (const r of rows) {
    assert.ok(r.dense_ms > 0 && r.sparse_ms > 0, JSON.stringify(r));
    if (r.routing === 'flat') assert.equal(r.same_pages_as_flat, null);
    else assert.ok(r.same_pages_as_flat >= 0 && r.same_pages_as_flat <= 1 && r.flat_pages_overlap > 0 && r.flat_pages_overlap <= 1, JSON.stringify(r));
    if (withNative) {
      assert.ok(r.native_sparse_ms > 0, `no native row for ${r.routing}`);
      /* the native CLI compared its tree row with flat routing too: the same pages, as the same library */
      if (r.routing === 'tree') assert.equal(r.native_same_pages_as_flat, r.same_pages_as_flat);
    }
  }
  /* 128 pages = 8 nodes, one expanded: tree keeps to one node's pages besides sink and recent */
  assert.ok(rows[1].mean_routed_pages <= 2 + 4, `tree1 routed ${rows[1].mean_routed_pages} pages`);
  assert.ok(rows[1].flat_pages_overlap < 1, 'tree with one node expanded should differ from flat somewhere');
});
