// Case 13: the demo page at / ([server] demo = yes) shows live events in
// Chromium.  A screenshot is kept in artifacts/demo.png.

import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, test } from 'node:test';
import { until } from '../lib/check.mjs';
import { useServer } from '../lib/suite.mjs';

const ARTIFACTS = path.join(path.dirname(fileURLToPath(import.meta.url)), '..', 'artifacts');
const ctx = useServer({ server: { demo: 'yes' } });

describe('13. demo page', () => {
  test('chromium: #count increases and .event lines appear', async (t) => {
    const page = await ctx.env.browser.ctx.newPage();
    try {
      await page.setViewportSize({ width: 900, height: 640 });
      const res = await page.goto(`${ctx.srv.base}/`, { timeout: 10000 });
      if (res.status() !== 200 || !/text\/html/.test(res.headers()['content-type']))
        throw new Error(`chromium: demo: GET / answered ${res.status()} ${res.headers()['content-type']}`);
      const count = () => page.evaluate(() => Number(document.getElementById('count').textContent));
      const lines = () => page.locator('#log .event').count();
      // The clock ticks once a second.
      await until(async () => (await count()) >= 1, 5000, () => 'chromium: demo: #count stayed 0');
      const first = await count();
      await until(async () => (await count()) >= first + 2, 5000,
          () => `chromium: demo: #count did not increase from ${first}`);
      const n = await lines();
      if (n < 3)
        throw new Error(`chromium: demo: ${n} .event lines after 3 events`);
      const state = await page.locator('#state').textContent();
      if (state !== 'open')
        throw new Error(`chromium: demo: connection state '${state}'`);
      const top = await page.locator('#log .event').first().textContent();
      const last = await page.locator('#last').textContent();
      if (!top.startsWith(`${last} clock `))
        throw new Error(`chromium: demo: newest line '${top}' is not the clock event ${last}`);
      fs.mkdirSync(ARTIFACTS, { recursive: true });
      const shot = path.join(ARTIFACTS, 'demo.png');
      await page.screenshot({ path: shot, fullPage: true });
      t.diagnostic(`screenshot: ${shot} (count ${await count()}, newest '${top}')`);
    } finally {
      await page.close();
    }
  });
});
