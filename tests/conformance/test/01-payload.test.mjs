// Cases 1-4: payload round-trip, named events, one-by-one delivery and
// invisible heartbeats.  Each scenario runs once with every client
// subscribed at the same time; each client's result is its own test.

import { after, before, describe, test } from 'node:test';
import { CLIENTS } from '../lib/clients.mjs';
import { expectEvents, waitEvents } from '../lib/check.mjs';
import { sleep } from '../lib/server.mjs';
import { closeAll, subscribeAll, useServer } from '../lib/suite.mjs';

const ctx = useServer();
const subscribe = (topic, opts) => subscribeAll(ctx, `/events/${topic}`, opts);

// Published bytes and what EventSource hands back.  CR and CRLF line ends
// arrive as LF: SSE has no way to carry a CR (ringcastd(8), "Frames").
const PAYLOADS = [
  ['LF line ends', 'line one\nline two\nline three', 'line one\nline two\nline three'],
  ['CRLF line ends', 'crlf one\r\ncrlf two', 'crlf one\ncrlf two'],
  ['lone CR line ends', 'cr one\rcr two', 'cr one\ncr two'],
  ['mixed line ends and blank lines', 'a\r\n\rb\n\nc', 'a\n\nb\n\nc'],
  ['a trailing LF', 'ends with LF\n', 'ends with LF\n'],
  ['a trailing CRLF', 'ends with CRLF\r\n', 'ends with CRLF\n'],
  ['leading spaces', '  two spaces\n one space\n\ttab', '  two spaces\n one space\n\ttab'],
  ['empty data', '', ''],
  ['only a line end', '\n', '\n'],
  ['UTF-8 and emoji', 'grüße, 日本語, Ωμέγα, 🎉👍🏽 🇺🇦', 'grüße, 日本語, Ωμέγα, 🎉👍🏽 🇺🇦'],
  ['colons', 'key: value: more\n:leading colon\ndata: not a field\nid: 999', 'key: value: more\n:leading colon\ndata: not a field\nid: 999'],
  ['64 KiB on one line', 'x'.repeat(65535) + 'y', 'x'.repeat(65535) + 'y'],
  ['64 KiB of lines', ('0123456789abcdef'.repeat(4) + '\n').repeat(1008), ('0123456789abcdef'.repeat(4) + '\n').repeat(1008)],
];

describe('1. payload round-trip', () => {
  let streams;
  const ids = [];
  before(async () => {
    ctx.srv.topic('payload');
    streams = await subscribe('payload');
    for (const [, body] of PAYLOADS)
      ids.push(await ctx.srv.publish('payload', body));
    await Promise.all(Object.values(streams).map((s) =>
      waitEvents(s, PAYLOADS.length, 10000, 'payload round-trip').catch(() => {})));
  });
  after(() => closeAll(streams));

  for (const client of CLIENTS) {
    test(client, () => {
      expectEvents(client, 'payload round-trip', streams[client].events,
          PAYLOADS.map(([name, , data], i) => ({ type: 'message', data, id: ids[i] })));
    });
  }
  test('ids are the ones the publishes returned, increasing', () => {
    for (let i = 1; i < ids.length; i++)
      if (!(BigInt(ids[i]) > BigInt(ids[i - 1])))
        throw new Error(`publish ids not increasing: ${ids}`);
  });
});

describe('2. named events reach their listener, not onmessage', () => {
  let streams;
  const TYPES = ['greeting', 'custom.type:v2'];
  before(async () => {
    ctx.srv.topic('named');
    streams = await subscribe('named', { types: TYPES });
    await ctx.srv.publish('named', 'hello', { event: 'greeting' });
    await ctx.srv.publish('named', 'plain');
    await ctx.srv.publish('named', 'odd name', { event: 'custom.type:v2' });
    await ctx.srv.publish('named', 'unheard', { event: 'nobody-listens' });
    await ctx.srv.publish('named', 'explicit', { event: 'message' });
    await Promise.all(Object.values(streams).map((s) =>
      waitEvents(s, 4, 5000, 'named events').catch(() => {})));
    await sleep(200); // room for a wrong extra dispatch to show
  });
  after(() => closeAll(streams));

  for (const client of CLIENTS) {
    test(client, () => {
      // curl has no listeners: every event is there, with its type.
      const expected = [
        { listener: 'greeting', type: 'greeting', data: 'hello' },
        { listener: 'onmessage', type: 'message', data: 'plain' },
        { listener: 'custom.type:v2', type: 'custom.type:v2', data: 'odd name' },
        ...(client === 'curl'
          ? [{ listener: 'nobody-listens', type: 'nobody-listens', data: 'unheard' }] : []),
        { listener: 'onmessage', type: 'message', data: 'explicit' },
      ];
      expectEvents(client, 'named events', streams[client].events, expected);
    });
  }
});

describe('3. events arrive one by one', () => {
  const N = 25;
  let streams;
  const late = {}; // client -> first event not received before the next publish
  before(async () => {
    ctx.srv.topic('onebyone');
    streams = await subscribe('onebyone');
    for (let i = 1; i <= N; i++) {
      await ctx.srv.publish('onebyone', String(i));
      await Promise.all(CLIENTS.map(async (client) => {
        if (late[client])
          return;
        try {
          await waitEvents(streams[client], i, 3000, 'one by one');
        } catch (e) {
          late[client] = `event ${i} not received within 3 s of its publish ` +
              `(before event ${i + 1} was published): ${e.message}`;
        }
      }));
    }
  });
  after(() => closeAll(streams));

  for (const client of CLIENTS) {
    test(client, () => {
      if (late[client])
        throw new Error(`${client}: one by one: ${late[client]}`);
      expectEvents(client, 'one by one', streams[client].datas,
          Array.from({ length: N }, (_, i) => String(i + 1)));
    });
  }
});

describe('4. heartbeats are invisible', () => {
  let streams;
  before(async () => {
    ctx.srv.topic('quiet');
    streams = await subscribe('quiet');
    await sleep(2600); // heartbeat = 1s: at least two go by
    await ctx.srv.publish('quiet', 'after the silence');
    await Promise.all(Object.values(streams).map((s) =>
      waitEvents(s, 1, 5000, 'heartbeats').catch(() => {})));
    await sleep(300);
  });
  after(() => closeAll(streams));

  for (const client of CLIENTS) {
    test(client, () => {
      const s = streams[client];
      expectEvents(client, 'heartbeats', s.events, [{ type: 'message', data: 'after the silence' }]);
      if (s.errors.length > 0 || s.opens.length !== 1)
        throw new Error(`${client}: heartbeats: the stream was not steady: ` +
            `${s.opens.length} opens, errors ${JSON.stringify(s.errors)}`);
      if (client === 'curl' && s.comments.length < 2)
        throw new Error(`curl: heartbeats: expected at least 2 comment lines on the wire ` +
            `in 2.6 s with heartbeat = 1s, saw ${JSON.stringify(s.comments)}`);
    });
  }
});
