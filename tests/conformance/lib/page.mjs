// A tiny static page server, so Chromium can load a page from another
// origin than the ringcastd it reads (CORS, and connection caps that a
// same-origin page load would use up).

import http from 'node:http';

// Serve html at / on host (a free port); resolves { origin, url, close }.
export function servePage(host = '127.0.0.1', html = '<!doctype html><title>client</title><p>client page</p>') {
  return new Promise((resolve, reject) => {
    const srv = http.createServer((req, res) => {
      if (req.url !== '/') {
        res.writeHead(404).end();
        return;
      }
      res.writeHead(200, { 'Content-Type': 'text/html; charset=utf-8' }).end(html);
    });
    srv.once('error', reject);
    srv.listen(0, host, () => {
      const origin = `http://${host}:${srv.address().port}`;
      resolve({
        origin,
        url: `${origin}/`,
        close: () => new Promise((r) => {
          srv.closeAllConnections?.();
          srv.close(() => r());
        }),
      });
    });
  });
}
