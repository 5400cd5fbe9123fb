// Case 13: behind nginx (issue #18).  Chromium opens ten EventSources on
// one page.  Over HTTP/2 through nginx (contrib/nginx/ringcast.conf as
// shipped, TLS with a self-signed certificate) all ten are live and get
// every event exactly; over HTTP/1.1 straight to ringcastd the browser's
// six connections per origin leave the seventh and later waiting, so the
// first result is the proxy's doing.  Also through nginx: a Last-Event-ID
// resume is exact, and /metrics is not there.

import { describe, test, before, after } from 'node:test';
import http2 from 'node:http2';
import { launchBrowser, SSEParser } from '../lib/clients.mjs';
import { expectEvents, until } from '../lib/check.mjs';
import { Nginx } from '../lib/nginx.mjs';
import { Server, sleep } from '../lib/server.mjs';

const N = 10;
let srv;
let proxy;
let browser;

before(async () => {
  srv = await Server.start({ server: { trusted_proxies: '127.0.0.1, ::1' } });
  proxy = await Nginx.start(srv.port);
  browser = await launchBrowser({ args: ['--ignore-certificate-errors'] });
});
after(async () => {
  await browser?.close();
  await proxy?.stop();
  await srv?.close();
});

// A page loaded from pageUrl with N EventSources on streamUrl.
async function openPage(pageUrl, streamUrl) {
  const page = await browser.ctx.newPage();
  await page.goto(pageUrl, { timeout: 10000 });
  await page.evaluate(({ url, n }) => {
    window.__rc = [];
    for (let i = 0; i < n; i++) {
      const rec = { events: [], opens: 0, es: new EventSource(url) };
      rec.es.onmessage = (e) => rec.events.push({ data: e.data, id: e.lastEventId });
      rec.es.onopen = () => { rec.opens++; };
      window.__rc.push(rec);
    }
  }, { url: streamUrl, n: N });
  return page;
}

// Each EventSource: { state (readyState), opens, events }.
function states(page) {
  return page.evaluate(() => window.__rc.map((r) => ({
    state: r.es.readyState, opens: r.opens, events: r.events })));
}

const summary = (got) => got.map((s, i) =>
  `#${i + 1}: readyState ${s.state}, ${s.opens} opens, ${s.events.length} events`).join('; ');

async function publishAll(topic, n) {
  const want = [];
  for (let i = 1; i <= n; i++)
    want.push({ data: `${topic}-${i}`, id: await srv.publish(topic, `${topic}-${i}`) });
  return want;
}

describe('13. behind nginx', () => {
  test('over HTTP/2 through nginx, ten EventSources on one page are all live and exact', async () => {
    srv.topic('h2');
    const page = await openPage(`${proxy.base}/healthz`, `${proxy.base}/events/h2`);
    let got;
    try {
      const proto = await page.evaluate(() =>
        performance.getEntriesByType('navigation')[0].nextHopProtocol);
      if (proto !== 'h2')
        throw new Error(`the page came over ${proto}, not h2: nginx did not negotiate HTTP/2`);
      await until(async () => (got = await states(page)).every((s) => s.state === 1),
          10000, () => `not all ${N} open over HTTP/2: ${summary(got)}`);
      const want = await publishAll('h2', 5);
      await until(async () => (got = await states(page)).every((s) => s.events.length >= 5),
          10000, () => `not all ${N} got 5 events: ${summary(got)}`);
      await sleep(300);
      got = await states(page);
      got.forEach((s, i) => expectEvents(`chromium EventSource #${i + 1}`,
          'HTTP/2 through nginx', s.events, want));
      if (!got.every((s) => s.opens === 1 && s.state === 1))
        throw new Error(`a stream dropped or reconnected: ${summary(got)}`);
    } finally {
      await page.close();
    }
    // nginx logs each stream when the page closes it: all were HTTP/2.
    let lines;
    await until(() => (lines = proxy.accessLines().filter((l) => l.endsWith(' /events/h2'))).length >= N,
        5000, () => `nginx logged ${lines.length} of ${N} streams: ${proxy.accessLines().join(' | ')}`);
    if (!lines.every((l) => l.startsWith('HTTP/2.0 ')))
      throw new Error(`a stream did not go over HTTP/2: ${lines.join(' | ')}`);
  });

  test('over HTTP/1.1 straight to ringcastd, the seventh EventSource waits', async () => {
    srv.topic('h1');
    const page = await openPage(`${srv.base}/healthz`, `${srv.base}/events/h1`);
    let got;
    try {
      await until(async () => (got = await states(page)).filter((s) => s.state === 1).length >= 6,
          10000, () => `six did not open over HTTP/1.1: ${summary(got)}`);
      const want = await publishAll('h1', 3);
      await until(async () => (got = await states(page)).filter((s) => s.events.length >= 3).length >= 6,
          10000, () => `the six open ones did not get 3 events: ${summary(got)}`);
      // Several heartbeats and retry hints later, still six.
      await sleep(2500);
      got = await states(page);
      const live = got.filter((s) => s.state === 1);
      const waiting = got.filter((s) => s.state === 0 && s.opens === 0 && s.events.length === 0);
      if (live.length !== 6 || waiting.length !== N - 6)
        throw new Error(`want 6 live and ${N - 6} waiting: ${summary(got)}`);
      if (got[6].state !== 0 || got[6].opens !== 0)
        throw new Error(`the seventh is not the one waiting: ${summary(got)}`);
      live.forEach((s, i) => expectEvents(`chromium EventSource (live #${i + 1})`,
          'HTTP/1.1 direct', s.events, want));
    } finally {
      await page.close();
    }
  });

  test('through nginx, Last-Event-ID resumes exactly and /metrics is not there', async () => {
    srv.topic('resume');
    const want = await publishAll('resume', 4);
    const client = http2.connect(proxy.base, { rejectUnauthorized: false });
    client.on('error', () => {});
    try {
      const events = [];
      const parser = new SSEParser({ event: (e) => events.push({ data: e.data, id: e.id }) });
      const req = client.request({ ':path': '/events/resume', 'last-event-id': want[1].id });
      let status;
      req.on('response', (h) => { status = h[':status']; });
      req.on('data', (b) => parser.feed(b));
      req.on('error', () => {});
      await until(() => events.length >= 2, 5000,
          () => `status ${status}; events ${JSON.stringify(events)}`);
      want.push({ data: 'resume-5', id: await srv.publish('resume', 'resume-5') });
      await until(() => events.length >= 3, 5000, () => `live event: ${JSON.stringify(events)}`);
      await sleep(200);
      expectEvents('http2 client', 'Last-Event-ID through nginx', events,
          [want[2], want[3], want[4]]);
      req.close();
      const m = client.request({ ':path': '/metrics' });
      const mstatus = await new Promise((resolve, reject) => {
        m.on('response', (h) => resolve(h[':status']));
        m.on('error', reject);
        m.end();
      });
      m.close();
      if (mstatus !== 404)
        throw new Error(`/metrics through nginx: status ${mstatus}, want 404`);
    } finally {
      client.close();
      client.destroy();
    }
  });
});
