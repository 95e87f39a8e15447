// The figures command (npm run figures) end to end, in its --quick form: it
// runs the native CLI (bench, leakage) and the wasm bench and writes four
// SVGs and figures.json. Checks that every file is written, that the SVGs are
// self-contained (no external reference), and that the numbers in
// figures.json are measurements, not placeholders: positive times (never
// compared with each other: timing is noise here), and the leakage sweep's fitted slopes
// near -1 with no bound violation (the same property tests/test_solvers.c
// checks in C).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const web = join(dirname(fileURLToPath(import.meta.url)), '..');
const native = join(web, '..', 'build', 'vashista');

test('npm run figures -- --quick writes self-contained SVGs from real measurements', () => {
  assert.ok(existsSync(native), `${native} is missing: build the native CLI first (tests/run.sh does)`);
  const out = mkdtempSync(join(tmpdir(), 'vashista-figures-'));
  try {
    execFileSync(process.execPath, ['bench/figures.mjs', '--quick', '--out', out], {
      cwd: web, stdio: ['ignore', 'ignore', 'pipe'], timeout: 120_000,
    });
    for (const name of ['decode-time.svg', 'heatmap-eg.svg', 'heatmap-fw.svg', 'leakage.svg']) {
      const svg = readFileSync(join(out, name), 'utf8');
      assert.match(svg, /^<svg xmlns="http:\/\/www\.w3\.org\/2000\/svg"/, name);
      assert.match(svg, /<\/svg>\s*$/, name);
      // nothing fetched when the SVG is displayed: no links, images, fonts or styles from elsewhere
      assert.doesNotMatch(svg, /(href|src)\s*=\s*"(https?:|\/\/)|@import|url\(/i, name);
    }
    const f = JSON.parse(readFileSync(join(out, 'figures.json'), 'utf8'));
    assert.equal(f.quick, true);

    const rows = f.decode_time.native.results;
    assert.ok(rows.length > 0);
    for (const r of rows) assert.ok(r.dense_ms > 0 && r.sparse_ms > 0, JSON.stringify(r));

    for (const s of ['eg', 'fw']) {
      const cells = f.heatmaps[s].cells;
      assert.ok(cells.length >= 4, `${s}: ${cells.length} cells`);
      for (const c of cells) assert.ok(c.sparse_ms > 0 && c.dense_ms > 0, JSON.stringify(c));
    }

    assert.equal(f.leakage.bound_violations, 0);
    for (const sw of f.leakage.sweeps) assert.ok(Math.abs(sw.slope + 1) < 0.05, `${sw.varied}: slope ${sw.slope}`);
  } finally {
    rmSync(out, { recursive: true, force: true });
  }
});
