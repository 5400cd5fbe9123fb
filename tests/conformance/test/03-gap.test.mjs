// Case 7: a resume point that was evicted, is garbage, or is from the future
// (another ring) keeps the stream open: first `ringcast-gap` with the first
// ID the server can deliver, then the replay of what is retained, then live
// events.  Chromium cannot send Last-Event-ID on a first connect, so it
// gives the resume point in the lastEventId query parameter.

import { describe, test, before, after } from 'node:test';
import { CLIENTS } from '../lib/clients.mjs';
import { expectEvents, waitData, waitEvents } from '../lib/check.mjs';
import { sleep } from '../lib/server.mjs';
import { closeAll, subscribeAll, useServer } from '../lib/suite.mjs';

// 16 slots: only the newest 16 events are kept.
const PUBLISHED = 40;
const ids = [];      // every event of the topic, in order
const datas = {};    // id -> data
const ctx = useServer({ ring: { size: '64K', slots: '16' },
  limits: { max_event_bytes: '4K' } }, { setup: async ({ srv }) => {
  srv.topic('tiny');
  for (let i = 1; i <= PUBLISHED; i++) {
    ids.push(await srv.publish('tiny', `t${i}`));
    datas[ids.at(-1)] = `t${i}`;
  }
} });

const RESUME = {
  expired: () => ids[1],
  garbage: () => 'not-a-number',
  future: () => String(BigInt(ids.at(-1)) + 1000000n),
};

for (const [kind, resumeId] of Object.entries(RESUME)) {
  describe(`7. ${kind} Last-Event-ID: gap, then replay, stream stays open`, () => {
    let streams;
    let live;
    before(async () => {
      const id = resumeId();
      // Chromium by the query parameter, the others by the header.
      streams = await subscribeAll(ctx, '/events/tiny', (client) => ({
        types: ['ringcast-gap'],
        ...(client === 'chromium' ? {} : { lastEventId: id }),
      }), ['eventsource', 'curl']);
      Object.assign(streams, await subscribeAll(ctx,
          `/events/tiny?lastEventId=${encodeURIComponent(id)}`,
          { types: ['ringcast-gap'] }, ['chromium']));
      await Promise.all(Object.values(streams).map((s) =>
        waitEvents(s, 2, 5000, `${kind} id`).catch(() => {})));
      await sleep(200);
      live = await ctx.srv.publish('tiny', `live-${kind}`);
      ids.push(live);
      datas[live] = `live-${kind}`;
      await Promise.all(Object.values(streams).map((s) =>
        waitData(s, `live-${kind}`, 5000, `${kind} id`).catch(() => {})));
      await sleep(200);
    });
    after(() => closeAll(streams));

    for (const client of CLIENTS) {
      test(client, () => {
        const s = streams[client];
        const got = s.events;
        const gap = got[0];
        if (!gap || gap.type !== 'ringcast-gap' || gap.listener !== 'ringcast-gap')
          throw new Error(`${client}: ${kind} id: first event should be ringcast-gap ` +
              `to its listener, got ${JSON.stringify(gap)}`);
        const first = ids.indexOf(gap.data);
        if (first < 0)
          throw new Error(`${client}: ${kind} id: ringcast-gap names ${gap.data}, ` +
              `not one of the published ids ${ids[0]}..${ids.at(-1)}`);
        if (first <= 1)
          throw new Error(`${client}: ${kind} id: ringcast-gap names ${gap.data}, ` +
              `but the 16-slot ring cannot still hold the events after ${ids[1]}`);
        // Everything from there on, the live event last.
        const upto = ids.indexOf(live);
        expectEvents(client, `${kind} id replay`, got.slice(1), ids.slice(first, upto + 1)
            .map((id) => ({ type: 'message', id, data: datas[id] })));
        if (s.readyState() !== 1 || s.opens.length !== 1)
          throw new Error(`${client}: ${kind} id: the stream did not stay open ` +
              `(readyState ${s.readyState()}, opens ${s.opens.length})`);
      });
    }
  });
}
