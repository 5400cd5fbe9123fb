// Case 14 (issue #19): the operator's dashboard on the admin listener, in
// Chromium, against a server under load from the bundled load tool
// (contrib/bench/ringcast-bench, bounded).  The charts must move, and the
// numbers the page shows must agree with /metrics.  A screenshot is kept in
// artifacts/dashboard.png.

import { spawn } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, test } from 'node:test';
import { until } from '../lib/check.mjs';
import { RINGCASTD, sleep } from '../lib/server.mjs';
import { useServer } from '../lib/suite.mjs';

const ARTIFACTS = path.join(path.dirname(fileURLToPath(import.meta.url)), '..', 'artifacts');
const BENCH = path.resolve(process.env.RINGCAST_BENCH ??
    path.join(path.dirname(RINGCASTD), 'contrib', 'bench', 'ringcast-bench'));
const TOKEN = 'conformance-admin-token';
const SUBSCRIBERS = 40;
const ctx = useServer({ server: { admin_token: TOKEN } });

// Prometheus text as { 'name{labels}': value }.
async function metrics() {
  const res = await ctx.srv.request('GET', '/metrics', { admin: true });
  if (res.status !== 200)
    throw new Error(`/metrics answered ${res.status}`);
  const out = {};
  for (const line of res.body.toString().split('\n')) {
    if (!line || line.startsWith('#'))
      continue;
    const at = line.lastIndexOf(' ');
    out[line.slice(0, at)] = Number(line.slice(at + 1));
  }
  return out;
}

const summed = (m, name, label = '') => Object.entries(m)
    .filter(([k]) => k.startsWith(`${name}{`) && k.includes(label))
    .reduce((a, [, v]) => a + v, 0);

// The load tool: SUBSCRIBERS streams of one topic and 300 events/s for
// about 15 s; it exits on its own (-T bounds it) and is killed if not.
function startLoad() {
  if (!fs.existsSync(BENCH))
    throw new Error(`${BENCH}: not built (make builds contrib/bench/ringcast-bench)`);
  const out = [];
  const proc = spawn(BENCH, ['-m', 'fanout', '-h', '127.0.0.1', '-p',
    String(ctx.srv.port), '-n', String(SUBSCRIBERS), '-P', '1', '-e', '4500',
    '-r', '300', '-s', '64', '-t', 'dashboard-load', '-T', '30', '-g', '3'],
  { stdio: ['ignore', 'pipe', 'pipe'] });
  proc.stdout.on('data', (d) => out.push(d));
  proc.stderr.on('data', (d) => out.push(d));
  const done = new Promise((resolve) => proc.once('exit', (code) => resolve(code)));
  return { proc, done, output: () => Buffer.concat(out).toString() };
}

describe('14. dashboard', () => {
  test('chromium: the charts move under load and agree with /metrics', async (t) => {
    const load = startLoad();
    const page = await ctx.env.browser.ctx.newPage();
    const base = `http://127.0.0.1:${ctx.srv.adminPort}`;
    try {
      // Without the token: 401, the page is not served.
      const denied = await page.goto(`${base}/`, { timeout: 10000 });
      if (denied.status() !== 401)
        throw new Error(`chromium: dashboard: GET / without the token answered ${denied.status()}`);

      await page.setViewportSize({ width: 1280, height: 1000 });
      const res = await page.goto(`${base}/?token=${TOKEN}`, { timeout: 10000 });
      if (res.status() !== 200 || !/text\/html/.test(res.headers()['content-type']))
        throw new Error(`chromium: dashboard: GET / answered ${res.status()}`);
      const dash = () => page.evaluate(() => {
        const d = window.ringcastDashboard;
        const data = (c, i) => (c ? c.data.datasets[i].data : null);
        return {
          snapshots: d.snapshots, last: d.last, hasChart: typeof Chart !== 'undefined',
          published: data(d.charts.events, 0), delivered: data(d.charts.events, 1),
          streams: data(d.charts.streams, 0),
          text: Object.fromEntries(['state', 'published-rate', 'delivered-rate',
            'streams', 'published-total', 'delivered-total', 'ring-fill',
            'oldest-age', 'history-lag', 'archiver-lag', 'cluster']
              .map((id) => [id, document.getElementById(id).textContent])),
          topics: [...document.querySelectorAll('#topics tbody tr')]
              .map((tr) => [...tr.cells].map((c) => c.textContent)),
          workers: document.querySelectorAll('#workers tbody tr').length,
        };
      });

      // The charts move: publish and delivery rates above zero, the
      // load's subscribers among the open streams.
      await until(async () => {
        const d = await dash();
        return d.hasChart && d.published.filter((v) => v > 0).length >= 2 &&
            d.delivered.some((v) => v > 0) &&
            d.streams.some((v) => v >= SUBSCRIBERS);
      }, 20000, () => `chromium: dashboard: the charts did not move; load: ${load.output()}`);
      let d = await dash();
      if (d.text.state !== 'live')
        throw new Error(`chromium: dashboard: feed state '${d.text.state}'`);
      if (d.topics.length === 0 || d.topics[0][0] !== 'dashboard-load' ||
          Number(d.topics[0][1]) !== SUBSCRIBERS)
        throw new Error(`chromium: dashboard: busiest topics ${JSON.stringify(d.topics)}`);
      if (d.workers !== 2)
        throw new Error(`chromium: dashboard: ${d.workers} worker rows`);
      if (!/^[0-9,]+( \(map full\))?$/.test(d.text['history-lag']))
        throw new Error(`chromium: dashboard: history shows '${d.text['history-lag']}'`);
      if (!/^[0-9,]+ events$/.test(d.text['archiver-lag']))
        throw new Error(`chromium: dashboard: archiver lag shows '${d.text['archiver-lag']}'`);

      // Under load, what the page shows lies between two scrapes around it.
      const before = await metrics();
      const seen = d.snapshots;
      await until(async () => (await dash()).snapshots >= seen + 2, 5000,
          () => 'chromium: dashboard: no new snapshot');
      d = await dash();
      const after = await metrics();
      const shown = Number(d.text['published-total'].replace(/,/g, ''));
      const lo = summed(before, 'ringcast_events_published_total');
      const hi = summed(after, 'ringcast_events_published_total');
      if (!(lo <= shown && shown <= hi))
        throw new Error(`chromium: dashboard: ${shown} published shown, /metrics said ${lo} then ${hi}`);
      const streams = summed(after, 'ringcast_connections', 'kind="stream"');
      if (Number(d.text.streams.replace(/,/g, '')) !== streams)
        throw new Error(`chromium: dashboard: ${d.text.streams} streams shown, /metrics says ${streams}`);

      fs.mkdirSync(ARTIFACTS, { recursive: true });
      const shot = path.join(ARTIFACTS, 'dashboard.png');
      await page.screenshot({ path: shot, fullPage: true });
      t.diagnostic(`screenshot: ${shot} (${JSON.stringify(d.text)})`);

      // Once the load is over, the totals are exact.
      let timer;
      const code = await Promise.race([load.done,
        new Promise((r) => { timer = setTimeout(() => r('timeout'), 40000); })]);
      clearTimeout(timer);
      if (code !== 0)
        throw new Error(`load tool: ${code}: ${load.output()}`);
      await sleep(300);
      const m = await metrics();
      const want = summed(m, 'ringcast_events_published_total');
      const delivered = summed(m, 'ringcast_frames_delivered_total');
      let x;
      await until(async () => {
        x = await dash();
        return x.last.counters.events_published === want &&
            x.text['published-total'] === want.toLocaleString('en-US') &&
            x.text['delivered-total'] === delivered.toLocaleString('en-US');
      }, 5000, () => `chromium: dashboard: shows ${JSON.stringify(x.text)}, /metrics ${want} published, ${delivered} delivered`);
    } finally {
      await page.close();
      if (load.proc.exitCode === null)
        load.proc.kill('SIGKILL');
    }
  });
});
