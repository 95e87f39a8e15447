// A small dependency-free static server for the demo: serves the repository
// root on 127.0.0.1 (so /demo/ and /web/ both resolve), with correct MIME
// types (application/wasm for .wasm), refusing paths outside the root.
//
//   node demo/serve.mjs [--port 8080]      (default: an ephemeral port)
//
// As a module: serve({ port, root, onReport, log }) -> { server, url, requests, close }.
// POST /demo-report (the page's ?report=1) goes to onReport(body) when given, else 204.
import { createServer } from 'node:http';
import { readFile, stat } from 'node:fs/promises';
import { extname, join, normalize, sep } from 'node:path';
import { fileURLToPath } from 'node:url';

export const ROOT = fileURLToPath(new URL('..', import.meta.url));
const TYPES = {
  '.html': 'text/html; charset=utf-8', '.js': 'text/javascript; charset=utf-8', '.mjs': 'text/javascript; charset=utf-8',
  '.css': 'text/css; charset=utf-8', '.json': 'application/json', '.wasm': 'application/wasm', '.svg': 'image/svg+xml',
  '.png': 'image/png', '.md': 'text/plain; charset=utf-8', '.ts': 'text/plain; charset=utf-8', '.txt': 'text/plain; charset=utf-8',
};

export function serve({ port = 0, root = ROOT, onReport, log = false } = {}) {
  const base = normalize(root.endsWith(sep) ? root : root + sep);
  const requests = [];
  const server = createServer(async (req, res) => {
    requests.push({ method: req.method, url: req.url, host: req.headers.host });
    if (log) console.error(`${req.method} ${req.url}`);
    let path;
    try {
      path = decodeURIComponent(new URL(req.url, 'http://127.0.0.1').pathname);
    } catch {
      return res.writeHead(400).end();
    }
    if (req.method === 'POST' && path === '/demo-report') {
      let body = '';
      for await (const chunk of req) body += chunk;
      res.writeHead(204).end();
      if (onReport) {
        try { onReport(JSON.parse(body)); } catch (e) { onReport({ ok: false, errors: [`bad report: ${e.message}`] }); }
      }
      return;
    }
    if (req.method !== 'GET' && req.method !== 'HEAD') return res.writeHead(405).end();
    if (path === '/') return res.writeHead(302, { location: '/demo/' }).end();
    let file = normalize(join(base, path));
    if (!(file + sep).startsWith(base) || path.includes('\0')) return res.writeHead(403).end('forbidden');
    try {
      if ((await stat(file)).isDirectory()) {
        if (!path.endsWith('/')) return res.writeHead(301, { location: `${path}/` }).end();
        file = join(file, 'index.html');
      }
      const data = await readFile(file);
      res.writeHead(200, { 'content-type': TYPES[extname(file)] ?? 'application/octet-stream', 'cache-control': 'no-store' });
      res.end(req.method === 'HEAD' ? undefined : data);
    } catch {
      res.writeHead(404).end('not found');
    }
  });
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, '127.0.0.1', () => {
      const url = `http://127.0.0.1:${server.address().port}/demo/`;
      resolve({ server, url, requests, close: () => new Promise((r) => server.close(r)) });
    });
  });
}

if (process.argv[1] && fileURLToPath(import.meta.url) === normalize(process.argv[1])) {
  const i = process.argv.indexOf('--port');
  const port = i >= 0 ? Number(process.argv[i + 1]) : 0;
  const { url } = await serve({ port, log: process.argv.includes('--log') });
  console.log(`vashista demo: ${url}  (127.0.0.1 only; Ctrl-C to stop)`);
}
