// Case 13: JWT authorization from a browser (issue #15).  A page of another
// origin opens EventSource(url, {withCredentials: true}) on ringcastd,
// whose [cors] names the page's origin: with the token cookie it reads a
// private topic; without it Chromium sees the 401 and stops for good; and
// a server that allows the origin only through '*' grants no credentials,
// so the browser refuses the stream even with the cookie.  The token is
// signed here (HS256 with node's HMAC) with the server's secret.
//
// The page is on 127.0.0.1 at another port: another origin of the same
// site.  A page on 127.0.0.2 is another site, and Chromium 156 does not
// send third-party cookies even with SameSite=None; Secure (tried: the
// cookie is stored and not sent), so a deployment serves ringcast on the
// application's own site (e.g. events.app.example) or passes the token in
// the URL.

import { execFileSync } from 'node:child_process';
import crypto from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { describe, test, after } from 'node:test';
import { openStream } from '../lib/clients.mjs';
import { expectEvents, until, waitEvents } from '../lib/check.mjs';
import { servePage } from '../lib/page.mjs';
import { RINGCASTCTL, Server, sleep } from '../lib/server.mjs';
import { useServer } from '../lib/suite.mjs';

const SECRET = 'conformance-jwt-secret-of-32-bytes-or-more';
const keyDir = fs.mkdtempSync(path.join(os.tmpdir(), 'ringcast-jwt-'));
const keyFile = path.join(keyDir, 'secret');
fs.writeFileSync(keyFile, `${SECRET}\n`);

const b64 = (x) => Buffer.from(x).toString('base64url');
function sign(claims) {
  const head = b64(JSON.stringify({ alg: 'HS256', typ: 'JWT' }));
  const body = b64(JSON.stringify(claims));
  const sig = crypto.createHmac('sha256', SECRET).update(`${head}.${body}`)
    .digest('base64url');
  return `${head}.${body}.${sig}`;
}

let page;
let srv;
let star;
async function jwtServer(origins) {
  const s = await Server.start({
    auth: { jwt_key_file: keyFile, jwt_algorithms: 'HS256' },
    cors: { allow_origins: origins },
  });
  execFileSync(RINGCASTCTL, ['-f', s.conf, 'topic', 'add', 'priv', '--private'],
    { stdio: ['ignore', 'ignore', 'pipe'], timeout: 10000 });
  return s;
}
const ctx = useServer({}, { setup: async () => {
  page = await servePage('127.0.0.1');
  srv = await jwtServer(page.origin);
  star = await jwtServer('*');
} });
after(async () => {
  await srv?.close();
  await star?.close();
  await page?.close();
  fs.rmSync(keyDir, { recursive: true, force: true });
});

describe('13. JWT: a cookie sent across origins with withCredentials', () => {
  test('chromium: with the cookie, the private topic is read', async () => {
    const token = sign({ exp: Math.floor(Date.now() / 1000) + 600,
      ringcast: { subscribe: ['priv'] } });
    await ctx.env.browser.ctx.addCookies([{ name: 'ringcast_token', value: token,
      url: `${srv.base}/`, sameSite: 'Lax', httpOnly: true }]);
    const s = await openStream('chromium', ctx.env, `${srv.base}/events/priv`,
      { page: page.url, withCredentials: true });
    try {
      await until(() => s.opens.length > 0, 5000,
        () => `chromium: JWT cookie: never opened: ${JSON.stringify(s.errors)}\n${srv.logTail(2000)}`);
      for (let i = 1; i <= 3; i++)
        await srv.publish('priv', `p${i}`);
      await waitEvents(s, 3, 5000, 'JWT cookie');
      expectEvents('chromium', 'JWT cookie', s.datas, ['p1', 'p2', 'p3']);
    } finally {
      await s.close();
      await ctx.env.browser.ctx.clearCookies();
    }
  });

  test("chromium: '*' grants no credentials: the cookie does not open it", async () => {
    const token = sign({ exp: Math.floor(Date.now() / 1000) + 600,
      ringcast: { subscribe: ['priv'] } });
    await ctx.env.browser.ctx.addCookies([{ name: 'ringcast_token', value: token,
      url: `${star.base}/`, sameSite: 'Lax', httpOnly: true }]);
    const s = await openStream('chromium', ctx.env, `${star.base}/events/priv`,
      { page: page.url, withCredentials: true });
    try {
      await until(() => s.errors.length > 0, 5000, () => "chromium: '*': no error");
      await star.publish('priv', 'must not arrive');
      await sleep(1000);
      if (s.opens.length !== 0 || s.events.length !== 0)
        throw new Error(`chromium: '*' with credentials: opens ${s.opens.length}, ` +
            `events ${JSON.stringify(s.events)} (want 0, none)`);
    } finally {
      await s.close();
      await ctx.env.browser.ctx.clearCookies();
    }
  });

  test('chromium: without the cookie, the 401 stops the browser', async () => {
    const s = await openStream('chromium', ctx.env, `${srv.base}/events/priv`,
      { page: page.url, withCredentials: true });
    try {
      await until(() => s.errors.length > 0, 5000, () => 'chromium: no cookie: no error');
      await srv.publish('priv', 'must not arrive');
      await sleep(1500);
      if (s.opens.length !== 0 || s.events.length !== 0 || s.readyState() !== 2)
        throw new Error(`chromium: no cookie: opens ${s.opens.length}, events ` +
            `${JSON.stringify(s.events)}, readyState ${s.readyState()} (want 0, none, 2)`);
      // What stopped it was an answer (the 401), not a network error.
      const m = await srv.request('GET', '/metrics', { admin: true });
      if (!/^ringcast_responses_4xx_total\S* [1-9]/m.test(String(m.body)))
        throw new Error(`chromium: no cookie: no 4xx answered:\n${m.body}`);
    } finally {
      await s.close();
    }
  });
});
