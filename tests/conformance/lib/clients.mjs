// The three clients, behind one small interface.  open() returns a stream
// whose `events` fills as the client dispatches them:
//   { listener, type, data, id, t }
// listener is 'onmessage' or the addEventListener type that got it.  Also
// `opens` (times), `errors` ({ t, readyState }), readyState() (0, 1, 2 as
// EventSource has them), and close().
//
//   chromium    EventSource in headless Chromium (Debian's), via playwright-core
//   eventsource the npm package, in this process
//   curl        curl -N; it does not reconnect by itself, so a loop here does
//               what a shell script would: wait the last retry: hint, run curl
//               again with Last-Event-ID, and stop on any status but 200.

import { spawn } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { EventSource } from 'eventsource';
import { chromium } from 'playwright-core';

export const CLIENTS = ['chromium', 'eventsource', 'curl'];
export const CHROMIUM = process.env.CHROMIUM ?? '/usr/bin/chromium';
const CHROMIUM_ARGS = ['--headless', '--no-sandbox', '--disable-gpu',
  '--disable-quic', '--disable-background-networking',
  '--disable-component-update', '--disable-sync', '--no-first-run'];

// One browser per test file, with a fresh profile; args: more command-line
// switches (--ignore-certificate-errors for a self-signed proxy).
export async function launchBrowser({ args = [] } = {}) {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'ringcast-chromium-'));
  const ctx = await chromium.launchPersistentContext(dir, {
    executablePath: CHROMIUM, headless: true, args: [...CHROMIUM_ARGS, ...args],
    timeout: 30000,
  });
  return {
    ctx,
    async close() {
      await ctx.close().catch(() => {});
      fs.rmSync(dir, { recursive: true, force: true });
    },
  };
}

class Stream {
  constructor(client) {
    this.client = client;
    this.events = [];
    this.opens = [];
    this.errors = [];
    this.state = 0;
  }

  readyState() {
    return this.state;
  }

  // Events as "type:data" strings, handy in messages.
  get datas() {
    return this.events.map((e) => e.data);
  }
}

// -- Chromium ---------------------------------------------------------------

// opts.page: URL to load first (default: /healthz of the stream's server, so
// the stream is same-origin); opts.types: addEventListener types to record;
// opts.withCredentials: send cookies across origins.
async function openChromium(env, url, opts) {
  const s = new Stream('chromium');
  const page = await env.browser.ctx.newPage();
  s.page = page;
  page.on('pageerror', (e) => s.errors.push({ t: Date.now(), readyState: -1, message: String(e) }));
  await page.exposeFunction('__rcReport', (kind, rec) => {
    rec.t = Date.now();
    if (kind === 'event')
      s.events.push(rec);
    else if (kind === 'open') {
      s.state = 1;
      s.opens.push(rec.t);
    } else if (kind === 'error') {
      s.state = rec.readyState;
      s.errors.push(rec);
    }
  });
  const pageUrl = opts.page ?? new URL('/healthz', url).href;
  await page.goto(pageUrl, { timeout: 10000 });
  await page.evaluate(({ url, types, withCredentials }) => {
    const es = new EventSource(url, { withCredentials });
    window.__rcES = es;
    const rec = (listener) => (e) => window.__rcReport('event', {
      listener, type: e.type, data: e.data, id: e.lastEventId });
    es.onmessage = rec('onmessage');
    for (const t of types)
      es.addEventListener(t, rec(t));
    es.onopen = () => window.__rcReport('open', {});
    es.onerror = () => window.__rcReport('error', { readyState: es.readyState });
  }, { url, types: opts.types ?? [], withCredentials: !!opts.withCredentials });
  s.readyState = () => s.state;
  s.liveReadyState = () => page.evaluate(() => window.__rcES.readyState);
  s.close = async () => {
    s.state = 2;
    await page.evaluate(() => window.__rcES.close()).catch(() => {});
    await page.close().catch(() => {});
  };
  return s;
}

// -- eventsource (npm) --------------------------------------------------------

// opts.lastEventId: sent as the Last-Event-ID header on the first connect
// (the package sends its own on reconnects).
async function openEventsource(env, url, opts) {
  const s = new Stream('eventsource');
  const first = opts.lastEventId;
  const es = new EventSource(url, {
    fetch: (input, init) => {
      const headers = { ...(init?.headers ?? {}) };
      const has = Object.keys(headers).some((k) => k.toLowerCase() === 'last-event-id');
      if (first !== undefined && !has)
        headers['Last-Event-ID'] = first;
      return fetch(input, { ...init, headers });
    },
  });
  const rec = (listener) => (e) => s.events.push({
    listener, type: e.type, data: e.data, id: e.lastEventId, t: Date.now() });
  es.onmessage = rec('onmessage');
  for (const t of opts.types ?? [])
    es.addEventListener(t, rec(t));
  es.onopen = () => s.opens.push(Date.now());
  es.onerror = (e) => s.errors.push({ t: Date.now(), readyState: es.readyState,
    message: e?.message, code: e?.code });
  s.readyState = () => es.readyState;
  s.close = async () => es.close();
  return s;
}

// -- curl -N ------------------------------------------------------------------

// The event stream interpretation of the HTML standard (9.2.6), for curl's
// output: line ends CRLF, LF or CR; fields; dispatch on a blank line.
export class SSEParser {
  constructor(handlers) {
    this.h = handlers;
    this.decoder = new TextDecoder('utf-8');
    this.buf = '';
    this.first = true;
    this.data = [];
    this.type = '';
    this.lastId = handlers.lastId ?? '';
  }

  feed(bytes, end = false) {
    this.buf += this.decoder.decode(bytes, { stream: !end });
    if (this.first && this.buf.length > 0) {
      if (this.buf[0] === '\ufeff')
        this.buf = this.buf.slice(1);
      this.first = false;
    }
    let start = 0;
    for (;;) {
      let i = start;
      while (i < this.buf.length && this.buf[i] !== '\n' && this.buf[i] !== '\r')
        i++;
      if (i >= this.buf.length)
        break;
      if (this.buf[i] === '\r' && i + 1 === this.buf.length && !end)
        break; // a CR at the end: wait to see whether LF follows
      const line = this.buf.slice(start, i);
      start = i + (this.buf[i] === '\r' && this.buf[i + 1] === '\n' ? 2 : 1);
      this.line(line);
    }
    this.buf = this.buf.slice(start);
  }

  line(line) {
    if (line === '') {
      if (this.data.length > 0)
        this.h.event({ type: this.type || 'message', data: this.data.join('\n'),
          id: this.lastId });
      this.data = [];
      this.type = '';
      return;
    }
    if (line[0] === ':') {
      this.h.comment?.(line.slice(1));
      return;
    }
    const colon = line.indexOf(':');
    const field = colon === -1 ? line : line.slice(0, colon);
    let value = colon === -1 ? '' : line.slice(colon + 1);
    if (value[0] === ' ')
      value = value.slice(1);
    if (field === 'data')
      this.data.push(value);
    else if (field === 'event')
      this.type = value;
    else if (field === 'id' && !value.includes('\0'))
      this.lastId = value;
    else if (field === 'retry' && /^[0-9]+$/.test(value))
      this.h.retry?.(Number(value));
  }
}

// opts.lastEventId: Last-Event-ID header of the first run; opts.reconnect
// (default true).
async function openCurl(env, url, opts) {
  const s = new Stream('curl');
  s.comments = [];
  s.retries = [];
  s.statuses = [];
  s.runs = 0;
  let lastId = opts.lastEventId;
  let retryMs = 3000;
  let closed = false;
  let child = null;
  let timer = null;

  const run = () => {
    if (closed)
      return;
    s.runs++;
    s.state = 0;
    const args = ['-sS', '-N', '-i', '--no-buffer', '-H', 'Accept: text/event-stream'];
    if (lastId !== undefined)
      args.push('-H', `Last-Event-ID: ${lastId}`);
    args.push(url);
    child = spawn('curl', args, { stdio: ['ignore', 'pipe', 'pipe'] });
    let head = Buffer.alloc(0);
    let status = 0;
    let parser = null;
    child.stdout.on('data', (chunk) => {
      if (parser) {
        parser.feed(chunk);
        return;
      }
      head = Buffer.concat([head, chunk]);
      const end = head.indexOf('\r\n\r\n');
      if (end === -1)
        return;
      status = Number(/^HTTP\/[0-9.]+ (\d+)/.exec(head.toString('latin1'))?.[1] ?? 0);
      s.statuses.push(status);
      if (status === 200) {
        s.state = 1;
        s.opens.push(Date.now());
      }
      parser = new SSEParser({
        lastId: lastId ?? '',
        event: (ev) => {
          if (status !== 200)
            return;
          lastId = ev.id;
          s.events.push({ listener: ev.type === 'message' ? 'onmessage' : ev.type,
            type: ev.type, data: ev.data, id: ev.id, t: Date.now() });
        },
        comment: (c) => s.comments.push(c),
        retry: (ms) => { retryMs = ms; s.retries.push(ms); },
      });
      parser.feed(head.subarray(end + 4));
    });
    child.on('close', () => {
      child = null;
      if (closed)
        return;
      // No answer (refused, reset): try again; an answer but 200: stop.
      const final = status !== 0 && status !== 200;
      s.state = final || opts.reconnect === false ? 2 : 0;
      s.errors.push({ t: Date.now(), readyState: s.state, status });
      if (s.state === 0)
        timer = setTimeout(run, retryMs);
    });
  };
  run();
  s.readyState = () => s.state;
  s.close = async () => {
    closed = true;
    s.state = 2;
    clearTimeout(timer);
    if (child) {
      const c = child;
      const gone = new Promise((r) => c.once('close', r));
      c.kill('SIGTERM');
      await gone;
    }
  };
  return s;
}

const OPENERS = { chromium: openChromium, eventsource: openEventsource, curl: openCurl };

// env: { browser } (from launchBrowser) for chromium.
export function openStream(client, env, url, opts = {}) {
  return OPENERS[client](env, url, opts);
}
