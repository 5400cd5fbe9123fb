// Fixtures shared by the test files: one ringcastd and one Chromium per
// file, and every client subscribed at once.

import { after, before } from 'node:test';
import { CLIENTS, launchBrowser, openStream } from './clients.mjs';
import { until } from './check.mjs';
import { Server } from './server.mjs';

// Start a server (with config sections) and a browser before the file's
// tests, stop both after; the returned object fills in before().  setup(ctx)
// runs in the same hook (Node 20 may not order two root-level hooks).
export function useServer(sections = {}, { browser = true, setup } = {}) {
  const ctx = { srv: null, env: {} };
  before(async () => {
    ctx.srv = await Server.start(sections);
    if (browser)
      ctx.env.browser = await launchBrowser();
    await setup?.(ctx);
  });
  after(async () => {
    await ctx.env.browser?.close();
    await ctx.srv?.close();
  });
  return ctx;
}

// Every client in clients subscribed to path (e.g. '/events/t?lastEventId=3')
// and open.  opts: options for every client, or a function client -> options.
export async function subscribeAll(ctx, path, opts = {}, clients = CLIENTS) {
  const streams = {};
  await Promise.all(clients.map(async (client) => {
    const o = typeof opts === 'function' ? opts(client) : opts;
    streams[client] = await openStream(client, ctx.env, `${ctx.srv.base}${path}`, o);
  }));
  for (const s of Object.values(streams))
    await until(() => s.opens.length > 0, 5000, () =>
      `${s.client}: ${path}: never opened; errors ${JSON.stringify(s.errors)}`);
  return streams;
}

export async function closeAll(streams) {
  await Promise.all(Object.values(streams ?? {}).map((s) => s.close()));
}
