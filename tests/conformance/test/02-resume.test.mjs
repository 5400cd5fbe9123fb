// Cases 5, 8 and 9: a dropped connection resumes with exactly the next
// event; the lastEventId query parameter and the header (which wins); the
// retry: hint sets the reconnect delay.

import { describe, test, before, after } from 'node:test';
import { CLIENTS } from '../lib/clients.mjs';
import { expectEvents, waitEvents } from '../lib/check.mjs';
import { closeAll, subscribeAll, useServer } from '../lib/suite.mjs';

const RETRY_MS = 500;
const ctx = useServer({ stream: { retry: `${RETRY_MS}ms` } });

// Kill (SIGKILL) every worker holding a stream; the master respawns them.
async function dropStreams() {
  const pids = ctx.srv.streamWorkers();
  if (pids.length === 0)
    throw new Error('no worker holds a stream');
  await ctx.srv.killWorkers(pids);
  return pids;
}

describe('5. connection dropped after event N: resume with N+1', () => {
  let streams;
  let dropAt;
  before(async () => {
    const { srv } = ctx;
    srv.topic('drop');
    streams = await subscribeAll(ctx, '/events/drop');
    for (let i = 1; i <= 5; i++)
      await srv.publish('drop', String(i));
    await Promise.all(Object.values(streams).map((s) =>
      waitEvents(s, 5, 5000, 'drop').catch(() => {})));
    dropAt = Date.now();
    await dropStreams();
    for (let i = 6; i <= 10; i++)
      await srv.publish('drop', String(i));
    await Promise.all(Object.values(streams).map((s) =>
      waitEvents(s, 10, 8000, 'drop').catch(() => {})));
  });
  after(() => closeAll(streams));

  for (const client of CLIENTS) {
    test(client, () => {
      const s = streams[client];
      expectEvents(client, 'resume after a dropped connection', s.datas,
          ['1', '2', '3', '4', '5', '6', '7', '8', '9', '10']);
      if (s.opens.length < 2)
        throw new Error(`${client}: resume: the connection was not dropped and ` +
            `reopened (opens ${s.opens.length})`);
    });
  }

  describe('9. retry: is honoured', () => {
    // The server sent retry: 500 on connect; the clients' own default is 3 s.
    for (const client of CLIENTS) {
      test(client, (t) => {
        const s = streams[client];
        const err = s.errors.find((e) => e.t >= dropAt);
        const open = err && s.opens.find((t) => t >= err.t);
        if (!err || !open)
          throw new Error(`${client}: retry: no error-then-open after the drop ` +
              `(errors ${JSON.stringify(s.errors)}, opens ${s.opens})`);
        const delay = open - err.t;
        t.diagnostic(`${client}: reconnected ${delay} ms after the drop`);
        if (delay < RETRY_MS * 0.6 || delay > RETRY_MS + 1500)
          throw new Error(`${client}: retry: reconnected ${delay} ms after the ` +
              `drop; retry: ${RETRY_MS} asks for about ${RETRY_MS} ms`);
      });
    }
  });
});

describe('8. lastEventId query resume; the header wins', () => {
  let ids;
  let byQuery;
  let both;
  before(async () => {
    const { srv } = ctx;
    srv.topic('resume');
    ids = [null];
    for (let i = 1; i <= 6; i++)
      ids.push(await srv.publish('resume', `r${i}`));
    // Every client by the query parameter; reconnects then also carry the
    // Last-Event-ID header, which must win over the URL's stale value.
    byQuery = await subscribeAll(ctx, `/events/resume?lastEventId=${ids[3]}`);
    // Both at once, where a client can send a header on its first connect.
    both = await subscribeAll(ctx, `/events/resume?lastEventId=${ids[1]}`,
        { lastEventId: ids[5] }, ['eventsource', 'curl']);
    await Promise.all(Object.values(byQuery).map((s) =>
      waitEvents(s, 3, 5000, 'query resume').catch(() => {})));
    ids.push(await srv.publish('resume', 'r7'));
    await Promise.all(Object.values(byQuery).map((s) =>
      waitEvents(s, 4, 5000, 'query resume').catch(() => {})));
    await dropStreams();
    ids.push(await srv.publish('resume', 'r8'));
    await Promise.all([...Object.values(byQuery), ...Object.values(both)].map((s) =>
      waitEvents(s, s.client in both && s === both[s.client] ? 3 : 5, 8000,
          'query resume').catch(() => {})));
  });
  after(async () => {
    await closeAll(byQuery);
    await closeAll(both);
  });

  for (const client of CLIENTS) {
    test(`${client}: ?lastEventId= resumes, and reconnects do not replay it again`, () => {
      expectEvents(client, 'lastEventId query resume', byQuery[client].events,
          ['r4', 'r5', 'r6', 'r7', 'r8'].map((data, i) => ({ data, id: ids[4 + i] })));
      if (byQuery[client].opens.length < 2)
        throw new Error(`${client}: query resume: the stream was not dropped and reopened`);
    });
  }
  for (const client of ['eventsource', 'curl']) {
    test(`${client}: Last-Event-ID header wins over ?lastEventId=`, () => {
      expectEvents(client, 'header precedence', both[client].datas, ['r6', 'r7', 'r8']);
    });
  }
});
