// The package in a real browser: headless Chromium loads test/browser/page.js
// from a local server (127.0.0.1 only), which imports src/index.js as a page
// would, fetches its .wasm relative to import.meta.url, decodes, and posts the
// results back. tests/setup.sh installs Debian's chromium; without it this fails.
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { createServer } from 'node:http';
import { tmpdir } from 'node:os';
import { extname, join, normalize } from 'node:path';
import { test } from 'node:test';
import { fileURLToPath } from 'node:url';

const web = fileURLToPath(new URL('..', import.meta.url));
const chromium = ['chromium', 'chromium-browser', 'google-chrome'].find((c) => spawnSync('which', [c]).status === 0);
const TYPES = { '.js': 'text/javascript', '.html': 'text/html', '.wasm': 'application/wasm' };

test('in headless Chromium: default loader, other sources, decode, errors', { timeout: 120000 }, async () => {
  assert.ok(chromium, 'no Chromium found: run tests/setup.sh (installs Debian chromium)');
  let resolveResult;
  const result = new Promise((resolve) => {
    resolveResult = resolve;
  });
  const server = createServer(async (req, res) => {
    const path = decodeURIComponent(new URL(req.url, 'http://x').pathname);
    if (req.method === 'POST' && path === '/result') {
      let body = '';
      for await (const chunk of req) body += chunk;
      res.end('ok');
      resolveResult(JSON.parse(body));
      return;
    }
    const noMime = path.startsWith('/nomime/');
    const file = normalize(join(web, noMime ? `dist/${path.slice(8)}` : path));
    if (!file.startsWith(web)) return res.writeHead(403).end();
    try {
      const data = await readFile(file);
      res.writeHead(200, { 'content-type': noMime ? 'application/octet-stream' : TYPES[extname(file)] ?? 'application/octet-stream' });
      res.end(data);
    } catch {
      res.writeHead(404).end();
    }
  });
  await new Promise((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address();
  const profile = await mkdtemp(join(tmpdir(), 'vashista-chromium-'));
  const browser = spawn(chromium, ['--headless=new', '--no-sandbox', '--disable-gpu', '--no-first-run', '--disable-dev-shm-usage',
    '--disable-background-networking', '--disable-component-update', '--disable-sync', '--disable-quic',
    `--user-data-dir=${profile}`, `http://127.0.0.1:${port}/test/browser/index.html`], { stdio: 'ignore' });
  try {
    const timer = setTimeout(() => resolveResult({ ok: false, error: 'timed out waiting for the page' }), 90000);
    const body = await result;
    clearTimeout(timer);
    assert.ok(body.ok, body.error);
    const r = body.result;
    assert.equal(r.isa, 'wasmsimd');
    assert.equal(r.length, 4096);
    assert.equal(r.boundHolds, true);
    assert.equal(r.needlesFound, true);
    assert.equal(r.doubleFree, 'E_FREED');
    assert.deepEqual(r.sources, { fetchPromise: true, noMime: true, bytes: true, module: true, url: true });
  } finally {
    const exited = new Promise((resolve) => browser.once('exit', resolve));
    browser.kill();
    await exited;
    server.close();
    await rm(profile, { recursive: true, force: true });
  }
});
