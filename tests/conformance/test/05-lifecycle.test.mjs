// Case 10: SIGTERM then start, SIGKILL then start, SIGHUP: every client
// sees every event exactly once, in order, across all three.  The daemon
// comes back on the same ports, ring and catalog.

import { describe, test, before, after } from 'node:test';
import { CLIENTS } from '../lib/clients.mjs';
import { expectEvents, range, waitEvents } from '../lib/check.mjs';
import { sleep } from '../lib/server.mjs';
import { closeAll, subscribeAll, useServer } from '../lib/suite.mjs';

const ctx = useServer();

describe('10. SIGTERM+start, SIGKILL+start, SIGHUP: exactly once', () => {
  let streams;
  const steps = [];
  let orphans = [];
  let next = 1;
  const publish = async (n) => {
    for (let i = 0; i < n; i++, next++)
      await ctx.srv.publish('life', String(next));
  };
  const settle = (what) => Promise.all(Object.values(streams).map((s) =>
    waitEvents(s, next - 1, 10000, what).catch(() => {})));

  before(async () => {
    const { srv } = ctx;
    srv.topic('life');
    streams = await subscribeAll(ctx, '/events/life');
    await publish(5);
    await settle('before SIGTERM');

    const term = await srv.stop('SIGTERM', 10000);
    steps.push(`SIGTERM: exit ${JSON.stringify(term)}`);
    await sleep(300);
    await srv.start();
    await publish(5);
    await settle('after SIGTERM and start');

    orphans = await srv.crash();
    steps.push('SIGKILL of the master');
    await sleep(300);
    await srv.start();
    await publish(5);
    await settle('after SIGKILL and start');

    srv.signal('SIGHUP');
    steps.push('SIGHUP');
    await publish(5);
    await sleep(1500); // reload_spread: old workers hand their streams over
    await publish(5);
    await settle('after SIGHUP');
  });
  after(() => closeAll(streams));

  for (const client of CLIENTS) {
    test(client, (t) => {
      const s = streams[client];
      t.diagnostic(`${client}: ${steps.join('; ')}; ${s.opens.length} connections`);
      expectEvents(client, 'restarts and reload', s.datas, range(next - 1));
    });
  }
  test('workers leave within 5 s when the master is SIGKILLed', () => {
    if (orphans.length > 0)
      throw new Error(`workers ${orphans} outlived their master by 5 s`);
  });
  test('SIGTERM exits 0 within drain_timeout', () => {
    if (!steps[0].includes('"code":0'))
      throw new Error(`ringcastd on SIGTERM: ${steps[0]}\n${ctx.srv.logTail(3000)}`);
  });
});

