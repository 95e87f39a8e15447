// The hand-written TypeScript declarations: `tsc --noEmit` on a typed usage
// file that imports the package by name (so the "exports" map resolves it),
// under a strict configuration and under a minimal one whose lib lacks
// ESNext.Disposable. Needs the dev dependency: npm ci.
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { test } from 'node:test';
import { fileURLToPath } from 'node:url';

const web = fileURLToPath(new URL('..', import.meta.url));
const tsc = fileURLToPath(new URL('../node_modules/typescript/bin/tsc', import.meta.url));

for (const config of ['tsconfig.json', 'tsconfig.minimal.json']) {
  test(`tsc --noEmit -p test/types/${config}`, () => {
    assert.ok(existsSync(tsc), 'typescript is not installed: run `npm ci` in web/');
    const r = spawnSync(process.execPath, [tsc, '--noEmit', '-p', `test/types/${config}`], { cwd: web, encoding: 'utf8' });
    assert.equal(r.status, 0, `tsc failed:\n${r.stdout}${r.stderr}`);
  });
}
