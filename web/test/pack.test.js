// Packaging: `npm pack`, install the tarball into a fresh folder with no
// network (zero runtime dependencies make that possible), import the package
// by name from a script there, and decode.
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { fileURLToPath } from 'node:url';

const web = fileURLToPath(new URL('..', import.meta.url));
const pkg = JSON.parse(readFileSync(join(web, 'package.json'), 'utf8'));

/* npm with no way to reach a registry: offline, and a registry address that refuses. */
function npm(args, cwd, cache) {
  const env = {
    ...process.env,
    npm_config_registry: 'http://127.0.0.1:9/',
    npm_config_cache: cache,
    npm_config_audit: 'false',
    npm_config_fund: 'false',
    npm_config_update_notifier: 'false',
  };
  const r = spawnSync('npm', args, { cwd, env, encoding: 'utf8', shell: process.platform === 'win32' });
  assert.equal(r.status, 0, `npm ${args.join(' ')} failed:\n${r.stdout}\n${r.stderr}`);
  return r.stdout;
}

test('npm pack, offline install into a fresh folder, import by name, decode', () => {
  const dir = mkdtempSync(join(tmpdir(), 'vashista-pack-'));
  try {
    const cache = join(dir, 'npm-cache');
    const packed = JSON.parse(npm(['pack', '--json', '--pack-destination', dir], web, cache));
    const { filename, files } = packed[0];
    assert.equal(filename, `vashista-${pkg.version}.tgz`);
    const paths = files.map((f) => f.path).sort();
    assert.deepEqual(paths, ['README.md', 'dist/vashista.wasm', 'package.json', 'src/index.d.ts', 'src/index.js', 'src/internal.js', 'src/pool-worker.js', 'src/pool.d.ts', 'src/pool.js']);

    const app = join(dir, 'app');
    mkdirSync(app);
    writeFileSync(join(app, 'package.json'), JSON.stringify({ name: 'app', private: true, type: 'module' }));
    npm(['install', '--offline', '--no-package-lock', join(dir, filename)], app, cache);
    const installed = JSON.parse(readFileSync(join(app, 'node_modules', 'vashista', 'package.json'), 'utf8'));
    assert.equal(installed.version, pkg.version);
    assert.equal(installed.dependencies, undefined, 'zero runtime dependencies');

    writeFileSync(
      join(app, 'main.js'),
      `import { init, VashistaError } from 'vashista';
import meta from 'vashista/package.json' with { type: 'json' };
const vs = await init();
const wl = vs.workload({ kind: 'needle', T: 2048, heads: 2, headDim: 64 });
const cache = vs.createCache({ heads: 2, headDim: 64 });
const { keys, values } = wl.tokens(0, 2048);
cache.append(keys, values);
const q = wl.queries();
const dense = cache.decodeDense(q);
const r = cache.decode(q, { pages: 8, candidates: 64 });
let err = 0;
for (let i = 0; i < dense.length; i++) err = Math.max(err, Math.abs(dense[i] - r.output[i]));
cache.free();
let code = null;
try { cache.free(); } catch (e) { code = e instanceof VashistaError ? e.code : String(e); }
console.log(JSON.stringify({ name: meta.name, isa: vs.isa, length: dense.length, err, bound: r.diagnostics[0].errorBound, code }));
`,
    );
    const run = spawnSync(process.execPath, ['main.js'], { cwd: app, encoding: 'utf8' });
    assert.equal(run.status, 0, run.stderr);
    const out = JSON.parse(run.stdout.trim().split('\n').pop());
    assert.equal(out.name, 'vashista');
    assert.equal(out.isa, 'wasmsimd');
    assert.equal(out.length, 128);
    assert.ok(out.err <= out.bound + 1e-6, `sparse vs dense ${out.err} above bound ${out.bound}`);
    assert.equal(out.code, 'E_FREED');
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
