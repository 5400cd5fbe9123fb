// Case 6: 1,000 events published while workers are killed at random
// moments; every client sees exactly 1..1000, in order, once.

import { describe, test, before, after } from 'node:test';
import { CLIENTS } from '../lib/clients.mjs';
import { expectEvents, range, waitEvents } from '../lib/check.mjs';
import { closeAll, subscribeAll, useServer } from '../lib/suite.mjs';

const N = 1000;
const KILLS = 8;
const ctx = useServer();

// A small seeded generator, so a failing run can be repeated with
// RINGCAST_SEED.
function random(seed) {
  let x = seed >>> 0 || 1;
  return () => {
    x ^= x << 13; x >>>= 0;
    x ^= x >>> 17;
    x ^= x << 5; x >>>= 0;
    return x / 2 ** 32;
  };
}

describe('6. 1000 events with random worker kills: exactly 1..1000 once', () => {
  let streams;
  const seed = Number(process.env.RINGCAST_SEED ?? (Date.now() % 1000000));
  const killed = [];
  before(async () => {
    const { srv } = ctx;
    const rnd = random(seed);
    const at = new Set();
    while (at.size < KILLS)
      at.add(1 + Math.floor(rnd() * (N - 1)));
    srv.topic('many');
    streams = await subscribeAll(ctx, '/events/many');
    let respawned = Promise.resolve();
    for (let i = 1; i <= N; i++) {
      await srv.publish('many', String(i));
      if (at.has(i)) {
        // One worker at a time: the other keeps serving.
        await respawned;
        const pids = srv.workerPids();
        const pid = pids[Math.floor(rnd() * pids.length)];
        killed.push(`${pid} after ${i}`);
        respawned = srv.killWorkers([pid]);
      }
    }
    await respawned;
    await Promise.all(Object.values(streams).map((s) =>
      waitEvents(s, N, 30000, 'random drops').catch(() => {})));
  });
  after(() => closeAll(streams));

  for (const client of CLIENTS) {
    test(client, (t) => {
      const s = streams[client];
      t.diagnostic(`${client}: seed ${seed}, killed ${killed.join(', ')}; ` +
          `${s.opens.length} connections`);
      expectEvents(client, `1000 events with random drops (seed ${seed})`, s.datas, range(N));
    });
  }
});
