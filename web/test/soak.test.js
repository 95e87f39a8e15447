// The soak (bench/soak.mjs, `npm run soak`) at a tiny size: one cache filled
// from the needle workload, decodes with truncations and re-appends, memory
// bounded, full-coverage sparse decoding matching dense, and the CLI's exit
// status and output. The full run (1M tokens, 100K decodes) is in the README.
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { test } from 'node:test';
import { fileURLToPath } from 'node:url';

import { formatReport, soak } from '../bench/soak.mjs';

test('soak at 20K tokens and 2000 decodes passes every check', async () => {
  const r = await soak({ tokens: 20480, decodes: 2000, checkEvery: 500, sampleEvery: 250 });
  assert.equal(r.pass, true, r.failure);
  assert.equal(r.decodes, 2000);
  assert.equal(r.truncations, 19);
  assert.ok(r.reappended_tokens >= 19);
  assert.ok(r.full_checks >= 4 + 4 + 1, `${r.full_checks} full-coverage checks`);
  assert.ok(r.reproduction_checks >= 4);
  assert.ok(r.max_rel_diff <= r.max_tol);
  assert.ok(r.memory.peak_bytes <= r.memory.limit_bytes);
  assert.ok(r.reserved.peak_bytes <= r.reserved.limit_bytes);
  assert.equal(r.memory.samples, 1 + 2000 / 250);
  assert.match(formatReport(r), /\nPASS$/);
});

test('soak reports a failure (and the CLI exits 1) when a check cannot hold', async () => {
  // a tolerance of 0 cannot hold: the sparse solver's float32 sums differ from dense
  const r = await soak({ tokens: 4096, decodes: 10, tol: 0 });
  assert.equal(r.pass, false);
  assert.match(r.failure, /sparse differs from dense/);
  const script = fileURLToPath(new URL('../bench/soak.mjs', import.meta.url));
  const p = spawnSync(process.execPath, [script, '--tokens', '4K', '--decodes', '10', '--tol', '0', '--quiet'], { encoding: 'utf8' });
  assert.equal(p.status, 1);
  assert.match(p.stdout, /\nFAIL: full-coverage check/);
  const ok = spawnSync(process.execPath, [script, '--tokens', '4K', '--decodes', '300', '--json', '--quiet'], { encoding: 'utf8' });
  assert.equal(ok.status, 0, ok.stderr);
  const j = JSON.parse(ok.stdout);
  assert.equal(j.pass, true);
  assert.equal(j.truncations, 2);
});
