// Case 11: a permanent error (unknown topic: 404) stops every client for
// good; a soft reject (server full: 200, retry:, a comment, a clean end)
// keeps it retrying until it gets in.  Chromium reads from a page of
// another origin, so that the page load takes no connection of the cap.

import http from 'node:http';
import { describe, test, before, after } from 'node:test';
import { CLIENTS } from '../lib/clients.mjs';
import { expectEvents, until, waitEvents } from '../lib/check.mjs';
import { servePage } from '../lib/page.mjs';
import { sleep } from '../lib/server.mjs';
import { closeAll, subscribeAll, useServer } from '../lib/suite.mjs';

const CAP = 3;
// auto_create_topics = yes would create any topic a client subscribes to
// (issue #14): the 404 case needs a catalog that says no.
const ctx = useServer({ limits: { max_connections: String(CAP) },
  cors: { allow_origins: '*' }, catalog: { auto_create_topics: 'no' } });
let page;

before(async () => {
  page = await servePage('127.0.0.1');
});
after(() => page?.close());

const opts = (client) => (client === 'chromium' ? { page: page.url } : {});

// Open a stream from here and keep it: one connection of the cap.  (Runs
// before any client has idle keep-alive connections: one accepted under the
// cap may carry a stream later, rightly, since it is already counted.)
function hold(srv, topic) {
  return new Promise((resolve, reject) => {
    const req = http.get({ host: '127.0.0.1', port: srv.port, path: `/events/${topic}`,
      agent: false }, (res) => {
      if (res.statusCode !== 200) {
        reject(new Error(`hold: ${res.statusCode}`));
        return;
      }
      res.once('data', (chunk) => {
        if (String(chunk).includes('server full'))
          reject(new Error('hold: soft-rejected; a connection is left from before'));
        else
          resolve(req);
      });
    });
    req.on('error', reject);
  });
}

describe('11. server full: a soft reject keeps the client retrying, then it gets in', () => {
  let streams;
  let holds = [];
  let rejected;
  before(async () => {
    const { srv } = ctx;
    srv.topic('full');
    for (let i = 0; i < CAP; i++)
      holds.push(await hold(srv, 'full'));
    const { openStream } = await import('../lib/clients.mjs');
    streams = {};
    for (const client of CLIENTS)
      streams[client] = await openStream(client, ctx.env,
          `${srv.base}/events/full`, opts(client));
    // Each is told "server full" (200, retry:, a clean end).
    await Promise.all(Object.values(streams).map((s) =>
      until(() => s.errors.length > 0, 5000, () => `${s.client}: not rejected`).catch(() => {})));
    rejected = Object.fromEntries(Object.entries(streams).map(([c, s]) =>
      [c, { errors: s.errors.length, state: s.readyState() }]));
    for (const h of holds)
      h.destroy();
    holds = [];
    // The hint is 5 s plus up to 5 s of jitter.
    await Promise.all(Object.values(streams).map((s) =>
      until(() => s.readyState() === 1 && s.opens.length >= 2, 12000,
          () => `${s.client}: never got in`).catch(() => {})));
    // Full again (the three clients hold the cap): a POST would get 503.
    srv.publishDirect('full', 'made it');
    await Promise.all(Object.values(streams).map((s) =>
      waitEvents(s, 1, 5000, 'soft reject').catch(() => {})));
  });
  after(async () => {
    for (const h of holds)
      h.destroy();
    await closeAll(streams);
  });

  for (const client of CLIENTS) {
    test(client, () => {
      const s = streams[client];
      const r = rejected[client];
      if (r.errors < 1 || r.state === 2)
        throw new Error(`${client}: soft reject: expected a retrying client ` +
            `(readyState 0) after the reject, got ${JSON.stringify(r)}`);
      if (client === 'curl' && !s.comments.some((c) => c.includes('server full')))
        throw new Error(`curl: soft reject: no comment naming the reason: ${JSON.stringify(s.comments)}`);
      expectEvents(client, 'soft reject then success', s.datas, ['made it']);
    });
  }
});

describe('11. unknown topic (404) stops the client', () => {
  let streams = {};
  before(async () => {
    const { openStream } = await import('../lib/clients.mjs');
    for (const client of CLIENTS)
      streams[client] = await openStream(client, ctx.env,
          `${ctx.srv.base}/events/no-such-topic`, opts(client));
    await Promise.all(Object.values(streams).map((s) =>
      until(() => s.errors.length > 0, 5000, () => `${s.client}: no error`).catch(() => {})));
    await sleep(1500); // three times retry: a retrying client would be back
  });
  after(() => closeAll(streams));

  for (const client of CLIENTS) {
    test(client, () => {
      const s = streams[client];
      if (s.opens.length !== 0 || s.events.length !== 0)
        throw new Error(`${client}: 404: opened ${s.opens.length} times, ` +
            `${s.events.length} events`);
      if (s.errors.length !== 1 || s.readyState() !== 2)
        throw new Error(`${client}: 404: expected one error and readyState CLOSED (2), ` +
            `got errors ${JSON.stringify(s.errors)}, readyState ${s.readyState()}`);
    });
  }
});
