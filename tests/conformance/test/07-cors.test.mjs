// Case 12: CORS.  A page served on 127.0.0.2 reads a stream on 127.0.0.1:
// allowed when [cors] allow_origins names the page's origin (and a
// reconnect, which carries Last-Event-ID, still resumes exactly), blocked
// without it; the Last-Event-ID preflight is answered.

import { describe, test, before, after } from 'node:test';
import { openStream } from '../lib/clients.mjs';
import { expectEvents, until, waitEvents } from '../lib/check.mjs';
import { servePage } from '../lib/page.mjs';
import { Server, sleep } from '../lib/server.mjs';
import { useServer } from '../lib/suite.mjs';

let page;
let allowed;
const ctx = useServer({}, { setup: async (c) => {
  page = await servePage('127.0.0.2');
  allowed = await Server.start({ cors: { allow_origins: `http://example.invalid, ${page.origin}` } });
} });
after(async () => {
  await allowed?.close();
  await page?.close();
});

describe('12. CORS', () => {
  test('chromium: an allowed origin reads the stream, and resumes after a drop', async () => {
    allowed.topic('cors');
    const s = await openStream('chromium', ctx.env, `${allowed.base}/events/cors`, { page: page.url });
    try {
      await until(() => s.opens.length > 0, 5000, () => `chromium: CORS allowed: never opened: ${JSON.stringify(s.errors)}`);
      for (let i = 1; i <= 3; i++)
        await allowed.publish('cors', `c${i}`);
      await waitEvents(s, 3, 5000, 'CORS allowed');
      await allowed.killWorkers(allowed.streamWorkers());
      for (let i = 4; i <= 5; i++)
        await allowed.publish('cors', `c${i}`);
      await waitEvents(s, 5, 8000, 'CORS allowed, after the drop').catch(() => {});
      await sleep(200);
      expectEvents('chromium', 'CORS allowed origin', s.datas, ['c1', 'c2', 'c3', 'c4', 'c5']);
      if (s.opens.length < 2)
        throw new Error('chromium: CORS allowed: the stream was not dropped and reopened');
    } finally {
      await s.close();
    }
  });

  test('chromium: an origin not allowed is blocked', async () => {
    const { srv } = ctx; // allow_origins is empty here
    srv.topic('cors');
    const s = await openStream('chromium', ctx.env, `${srv.base}/events/cors`, { page: page.url });
    try {
      await until(() => s.errors.length > 0, 5000, () => 'chromium: CORS blocked: no error');
      await srv.publish('cors', 'must not arrive');
      await sleep(700);
      if (s.opens.length !== 0 || s.events.length !== 0 || s.readyState() !== 2)
        throw new Error(`chromium: CORS blocked: opens ${s.opens.length}, events ` +
            `${JSON.stringify(s.events)}, readyState ${s.readyState()} (want 0, none, 2)`);
    } finally {
      await s.close();
    }
  });

  test('the Last-Event-ID preflight is answered for an allowed origin', async () => {
    const res = await allowed.request('OPTIONS', '/events/cors', { headers: {
      Origin: page.origin,
      'Access-Control-Request-Method': 'GET',
      'Access-Control-Request-Headers': 'last-event-id',
    } });
    const h = res.headers;
    if (res.status < 200 || res.status > 299)
      throw new Error(`preflight: status ${res.status}`);
    if (h['access-control-allow-origin'] !== page.origin)
      throw new Error(`preflight: Access-Control-Allow-Origin ${h['access-control-allow-origin']}, want ${page.origin}`);
    if (!/(^|,)\s*last-event-id\s*(,|$)/i.test(h['access-control-allow-headers'] ?? ''))
      throw new Error(`preflight: Access-Control-Allow-Headers ${h['access-control-allow-headers']} lacks Last-Event-ID`);
    if (!/\bGET\b/.test(h['access-control-allow-methods'] ?? ''))
      throw new Error(`preflight: Access-Control-Allow-Methods ${h['access-control-allow-methods']} lacks GET`);
  });

  test('the preflight of an origin not allowed grants nothing', async () => {
    const res = await ctx.srv.request('OPTIONS', '/events/cors', { headers: {
      Origin: page.origin,
      'Access-Control-Request-Method': 'GET',
      'Access-Control-Request-Headers': 'last-event-id',
    } });
    if (res.headers['access-control-allow-origin'] !== undefined)
      throw new Error(`preflight: origin not allowed, yet Access-Control-Allow-Origin ${res.headers['access-control-allow-origin']}`);
  });

  test('a browser preflight from the page (fetch with Last-Event-ID) succeeds', async () => {
    const p = await ctx.env.browser.ctx.newPage();
    try {
      await p.goto(page.url);
      const out = await p.evaluate(async (url) => {
        try {
          const ctl = new AbortController();
          const res = await fetch(url, { headers: { 'Last-Event-ID': '1' }, signal: ctl.signal });
          const status = res.status;
          ctl.abort();
          return { status };
        } catch (e) {
          return { error: String(e) };
        }
      }, `${allowed.base}/events/cors`);
      if (out.status !== 200)
        throw new Error(`chromium fetch with Last-Event-ID across origins: ${JSON.stringify(out)}`);
    } finally {
      await p.close();
    }
  });
});
