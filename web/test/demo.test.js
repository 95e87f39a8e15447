// The offline demo (demo/) in headless Chromium: demo/serve.mjs serves the
// repository on 127.0.0.1, the page auto-runs a small configuration in its
// Web Worker (?auto=1&report=1&...) and POSTs what it displays back; the
// numbers must equal this process's own run of the package (same wasm, same
// seed: bit-equal), every request must have gone to 127.0.0.1, and the page
// must have seen no errors. Saves a screenshot to web/test-artifacts/.
// tests/setup.sh installs Debian's chromium; without it this fails.
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import { mkdir, mkdtemp, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { init } from '../src/index.js';
import { serve } from '../../demo/serve.mjs';
import { configFrom, decodeOptions } from '../../demo/shared.js';

const artifacts = fileURLToPath(new URL('../test-artifacts/', import.meta.url));
const chromium = ['chromium', 'chromium-browser', 'google-chrome'].find((c) => spawnSync('which', [c]).status === 0);
const FLAGS = ['--headless=new', '--no-sandbox', '--disable-gpu', '--no-first-run', '--disable-dev-shm-usage',
  '--disable-background-networking', '--disable-component-update', '--disable-sync', '--disable-quic', '--window-size=1280,900'];
const QUERY = 'T=4096&heads=4&kvHeads=2&d=64&pageSize=32&P=8&Kc=64&workload=needle&seed=7&tolerance=0';
/* JSON round trip, as the page's numbers went through it (Infinity -> null, -0 -> 0) */
const viaJson = (x) => JSON.parse(JSON.stringify(x));

/* the same decode with eg and fw (no heatmap: quicker) */
const QUERY_EG = 'T=3000&heads=2&kvHeads=1&d=16&pageSize=16&P=8&Kc=64&workload=needle&seed=3&tolerance=0&solver=eg&eps=0.2&maxIter=300&solverTol=1e-7&heatmap=0';
const QUERY_FW = 'T=3000&heads=2&kvHeads=1&d=16&pageSize=16&P=8&Kc=64&workload=gap&seed=4&tolerance=0.05&solver=fw&routing=flat&heatmap=0';

async function nodeReference(query = QUERY) {
  const cfg = configFrom(new URLSearchParams(query));
  const vs = await init();
  const wl = vs.workload({ kind: cfg.workload, T: cfg.T, heads: cfg.heads, kvHeads: cfg.kvHeads, headDim: cfg.d, valueDim: cfg.d, seed: cfg.seed });
  const cache = vs.createCache({ heads: cfg.heads, kvHeads: cfg.kvHeads, headDim: cfg.d, valueDim: cfg.d, pageSize: cfg.pageSize });
  for (let s = 0; s < cfg.T; s += 1000) wl.appendTo(cache, s, Math.min(1000, cfg.T - s)); /* chunking differs from the page's on purpose */
  const q = wl.queries(0);
  const dense = cache.decodeDense(q);
  const r = cache.decode(q, decodeOptions(cfg));
  const out = { dense: Array.from(dense), sparse: Array.from(r.output), diagnostics: r.diagnostics,
    candidates: Array.from(cache.lastCandidates(0)), routedPages: Array.from(cache.lastRoutedPages(0)), isa: vs.isa, options: decodeOptions(cfg) };
  cache.free();
  return viaJson(out);
}

/* Chromium with --remote-debugging-pipe: DevTools protocol messages, NUL-terminated JSON, on fds 3 (in) and 4 (out). */
function runChromium(args, timeoutMs) {
  const child = spawn(chromium, [...args, '--remote-debugging-pipe'], { stdio: ['ignore', 'ignore', 'ignore', 'pipe', 'pipe'] });
  const exited = new Promise((resolve) => child.once('exit', resolve));
  const timer = setTimeout(() => child.kill(), timeoutMs);
  let id = 0;
  let buffered = '';
  const pending = new Map();
  const listeners = [];
  child.stdio[4].on('data', (chunk) => {
    buffered += chunk.toString('utf8');
    let end;
    while ((end = buffered.indexOf('\0')) >= 0) {
      const msg = JSON.parse(buffered.slice(0, end));
      buffered = buffered.slice(end + 1);
      if (msg.method) for (const f of listeners) f(msg);
      const p = pending.get(msg.id);
      if (p) {
        pending.delete(msg.id);
        if (msg.error) p.reject(new Error(JSON.stringify(msg.error)));
        else p.resolve(msg.result);
      }
    }
  });
  child.stdio[3].on('error', () => {});
  const send = (method, params = {}, sessionId) => new Promise((resolve, reject) => {
    pending.set(++id, { resolve, reject });
    child.stdio[3].write(JSON.stringify({ id, method, params, ...(sessionId ? { sessionId } : {}) }) + '\0');
  });
  /* events (messages with a method), including those of attached sessions (msg.sessionId) */
  const onEvent = (f) => listeners.push(f);
  return { child, send, onEvent, exited: exited.finally(() => clearTimeout(timer)) };
}

async function attachPage(browser) {
  const { targetInfos } = await browser.send('Target.getTargets');
  const page = targetInfos.find((t) => t.type === 'page');
  const { sessionId } = await browser.send('Target.attachToTarget', { targetId: page.targetId, flatten: true });
  return sessionId;
}

async function screenshot(browser, file, sessionId) {
  sessionId ??= await attachPage(browser);
  await browser.send('Emulation.setDeviceMetricsOverride', { width: 1280, height: 900, deviceScaleFactor: 1, mobile: false }, sessionId);
  const { data } = await browser.send('Page.captureScreenshot', { format: 'png', captureBeyondViewport: true,
    clip: { x: 0, y: 0, width: 1280, height: 1500, scale: 1 } }, sessionId);
  await writeFile(file, Buffer.from(data, 'base64'));
}

/* The numbers the page shows: bit-equal to the Node run (same wasm, same seed). */
function checkShown(r, expected, { T = 4096, kvHeads = 2, needles = true } = {}) {
  assert.equal(r.config.T, T);
  assert.equal(r.config.kvHeads, kvHeads);
  assert.deepEqual(r.config.options, expected.options);
  /* the numbers shown: bit-equal to the Node run (same wasm, same seed) */
  assert.deepEqual(r.dense, expected.dense);
  assert.deepEqual(r.sparse, expected.sparse);
  assert.deepEqual(r.candidates, expected.candidates);
  assert.deepEqual(r.routedPages, expected.routedPages);
  assert.equal(r.diagnostics.length, expected.diagnostics.length);
  r.diagnostics.forEach((d, h) => {
    const { trueError, denseNorm, referenceBound, ...fromWasm } = d;
    assert.deepEqual(fromWasm, expected.diagnostics[h], `diagnostics of head ${h}`);
    assert.ok(Number.isFinite(denseNorm) && denseNorm > 0, `head ${h}: reference norm ${denseNorm}`);
    /* softmax: against the dense decode; eg: against eg over every token (within its own bound);
       fw: none shown (it certifies its point, not its output) */
    if (expected.options.solver === 'fw') assert.equal(trueError, null, `head ${h}: fw shows no true error`);
    else assert.ok(trueError <= d.errorBound + referenceBound, `head ${h}: the certified bound holds (${trueError} <= ${d.errorBound} + ${referenceBound})`);
  });
  /* the table shows one row per head plus the header, and the fallback column matches */
  assert.equal(r.table.length, 1 + expected.diagnostics.length);
  assert.deepEqual(r.table.slice(1).map((row) => row[1]), expected.diagnostics.map((d) => d.fallback));
  if (needles) assert.equal(r.markedFound > 0, true, 'some needles among the candidates');
}

test('demo page in headless Chromium: same numbers as the Node API, local requests only, no errors', { timeout: 60000 }, async () => {
  assert.ok(chromium, 'no Chromium found: run tests/setup.sh (installs Debian chromium)');
  const expected = await nodeReference();
  let gotReport;
  const report = new Promise((resolve) => { gotReport = resolve; });
  const srv = await serve({ onReport: (body) => gotReport(body) });
  const origin = new URL(srv.url).origin;
  const profile = await mkdtemp(join(tmpdir(), 'vashista-demo-'));
  const url = `${srv.url}?auto=1&report=1&${QUERY}`;
  const browser = runChromium([...FLAGS, `--user-data-dir=${profile}`, url], 45000);
  try {
    const timer = setTimeout(() => gotReport({ ok: false, errors: ['timed out waiting for the page'] }), 40000);
    const body = await Promise.race([report, browser.exited.then(() => report)]);
    clearTimeout(timer);
    assert.deepEqual(body.errors, [], 'the page saw errors');
    assert.ok(body.ok, 'the page reported no result');
    const r = body.result;
    checkShown(r, expected);
    assert.equal(r.config.options.routing, 'tree', 'the page routes by tree by default');
    /* requests: the server saw the page, module, worker and wasm; the page and worker fetched only from this origin */
    const paths = srv.requests.map((q) => new URL(q.url, origin).pathname);
    for (const p of ['/demo/', '/demo/app.js', '/demo/worker.js', '/demo/shared.js', '/web/src/index.js', '/web/dist/vashista.wasm'])
      assert.ok(paths.includes(p), `the server served ${p}`);
    for (const q of srv.requests) assert.equal(q.host, new URL(origin).host);
    for (const name of [...body.resources, ...r.workerResources]) assert.equal(new URL(name).origin, origin, `request to ${name}`);
    assert.ok(body.heatmap && body.heatmap.ms.length > 0, 'the heatmap ran');
    /* the page as it stands now (results, latency chart, heatmap), as an artifact */
    await mkdir(artifacts, { recursive: true });
    const png = join(artifacts, 'demo.png');
    await screenshot(browser, png);
    assert.ok((await stat(png)).size > 10000, 'screenshot written');
  } finally {
    browser.child.kill();
    await browser.exited;
    await rm(profile, { recursive: true, force: true, maxRetries: 10, retryDelay: 100 });
    await srv.close();
  }
});

for (const [solver, query] of [['eg', QUERY_EG], ['fw', QUERY_FW]]) {
  test(`demo page with solver ${solver}: same numbers as the Node API, the solver's weights drawn, no errors`, { timeout: 60000 }, async () => {
    assert.ok(chromium, 'no Chromium found: run tests/setup.sh (installs Debian chromium)');
    const expected = await nodeReference(query);
    assert.equal(expected.options.solver, solver);
    assert.equal(expected.options.routing, solver === 'fw' ? 'flat' : 'tree', 'the routing selector reaches the options');
    let gotReport;
    const report = new Promise((resolve) => { gotReport = resolve; });
    const srv = await serve({ onReport: (body) => gotReport(body) });
    const profile = await mkdtemp(join(tmpdir(), `vashista-demo-${solver}-`));
    const browser = runChromium([...FLAGS, `--user-data-dir=${profile}`, `${srv.url}?auto=1&report=1&${query}`], 45000);
    try {
      const timer = setTimeout(() => gotReport({ ok: false, errors: ['timed out waiting for the page'] }), 40000);
      const body = await Promise.race([report, browser.exited.then(() => report)]);
      clearTimeout(timer);
      assert.deepEqual(body.errors, [], 'the page saw errors');
      assert.ok(body.ok, 'the page reported no result');
      const r = body.result;
      checkShown(r, expected, { T: 3000, kvHeads: 1, needles: solver === 'eg' });
      assert.ok(r.sparseView, `the ${solver} weights are drawn`);
      assert.ok(r.diagnostics.every((d) => d.faceSize >= 1 && d.faceSize <= d.candidates));
      assert.ok(Number.isFinite(r.relError), 'a true relative error against the solver over every token');
      /* the diagnostics table has the face column */
      assert.ok(r.table[0].includes('face'), `table header ${r.table[0]}`);
      assert.equal(body.heatmap, null, 'no heatmap asked for');
      await mkdir(artifacts, { recursive: true });
      const png = join(artifacts, `demo-${solver}.png`);
      await screenshot(browser, png);
      assert.ok((await stat(png)).size > 10000, 'screenshot written');
    } finally {
      browser.child.kill();
      await browser.exited;
      await rm(profile, { recursive: true, force: true, maxRetries: 10, retryDelay: 100 });
      await srv.close();
    }
  });
}

/*
 * The single-file build (demo/build-single.mjs: everything inlined, wasm as
 * base64) opened from disk. A file:// page cannot POST, so its report is read
 * over DevTools (window.__vashistaReport); the page, its worker and their
 * console and network activity are watched through the same pipe.
 */
test('single-file demo from file:// in headless Chromium: same numbers, no http, no errors', { timeout: 60000 }, async () => {
  assert.ok(chromium, 'no Chromium found: run tests/setup.sh (installs Debian chromium)');
  const { buildSingle } = await import('../../demo/build-single.mjs');
  const { out } = await buildSingle();
  const expected = await nodeReference();
  const profile = await mkdtemp(join(tmpdir(), 'vashista-demo-file-'));
  const browser = runChromium([...FLAGS, `--user-data-dir=${profile}`, 'about:blank'], 45000);
  const problems = [];
  const requested = [];
  browser.onEvent((m) => {
    const p = m.params;
    if (m.method === 'Runtime.exceptionThrown') problems.push(`exception: ${p.exceptionDetails.exception?.description ?? p.exceptionDetails.text}`);
    else if (m.method === 'Runtime.consoleAPICalled' && (p.type === 'error' || p.type === 'assert'))
      problems.push(`console.${p.type}: ${p.args.map((a) => a.value ?? a.description).join(' ')}`);
    else if (m.method === 'Log.entryAdded' && p.entry.level === 'error') problems.push(`log: ${p.entry.text} ${p.entry.url ?? ''}`);
    else if (m.method === 'Network.requestWillBeSent') requested.push(p.request.url);
    else if (m.method === 'Network.loadingFailed') problems.push(`load failed: ${p.errorText} (${p.type})`);
    else if (m.method === 'Target.attachedToTarget') {
      /* the decoding worker: watch it too, then let it start */
      const s = p.sessionId;
      Promise.all(['Runtime.enable', 'Log.enable', 'Network.enable'].map((x) => browser.send(x, {}, s).catch(() => {})))
        .then(() => browser.send('Runtime.runIfWaitingForDebugger', {}, s)).catch(() => {});
    }
  });
  try {
    const page = await attachPage(browser);
    for (const m of ['Runtime.enable', 'Log.enable', 'Network.enable', 'Page.enable']) await browser.send(m, {}, page);
    await browser.send('Target.setAutoAttach', { autoAttach: true, waitForDebuggerOnStart: true, flatten: true }, page);
    const url = `${pathToFileURL(out).href}?auto=1&report=1&${QUERY}`;
    await browser.send('Page.navigate', { url }, page);
    let body;
    for (const deadline = Date.now() + 40000; !body && Date.now() < deadline;) {
      const { result } = await browser.send('Runtime.evaluate', { expression: 'window.__vashistaReport', returnByValue: true }, page);
      if (result.type === 'object') body = result.value;
      else await new Promise((r) => setTimeout(r, 100));
    }
    assert.ok(body, `timed out waiting for the page (seen: ${problems.join('; ') || 'no errors'})`);
    assert.deepEqual(body.errors, [], 'the page saw errors');
    assert.deepEqual(problems, [], 'console, exceptions or failed loads in the page or its worker');
    assert.ok(body.ok, 'the page reported no result');
    assert.equal(body.location, url);
    const r = body.result;
    checkShown(r, expected);
    assert.ok(body.heatmap && body.heatmap.ms.length > 0, 'the heatmap ran');
    /* nothing left the file: only file:, blob: and data: URLs, in the page, the worker and DevTools' view of the network */
    const urls = [...requested, ...body.resources, ...r.workerResources];
    assert.ok(requested.includes(url), 'DevTools saw the page load');
    assert.ok(urls.some((u) => u.startsWith('blob:')), 'the modules came from Blob URLs');
    for (const u of urls) assert.ok(/^(file|blob|data):/.test(u), `request to ${u}`);
    await mkdir(artifacts, { recursive: true });
    const png = join(artifacts, 'demo-file.png');
    await screenshot(browser, png, page);
    assert.ok((await stat(png)).size > 10000, 'screenshot written');
  } finally {
    browser.child.kill();
    await browser.exited;
    await rm(profile, { recursive: true, force: true, maxRetries: 10, retryDelay: 100 });
  }
});
