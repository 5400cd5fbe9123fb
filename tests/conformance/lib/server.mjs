// A real ringcastd for the conformance tests: free loopback ports, a
// temporary directory with its config, ring and catalog, and the process
// control the cases need (stop, SIGKILL, restart on the same ring and ports,
// killing the worker that serves a stream).  Publishes go over HTTP.
// The config layout is the one of tests/integration/ringcast_harness.py.

import { execFileSync, spawn } from 'node:child_process';
import fs from 'node:fs';
import http from 'node:http';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const HERE = path.dirname(fileURLToPath(import.meta.url));
export const RINGCASTD = path.resolve(
    process.env.RINGCASTD ?? path.join(HERE, '..', '..', '..', 'ringcastd'));
export const RINGCASTCTL = path.resolve(
    process.env.RINGCASTCTL ?? path.join(path.dirname(RINGCASTD), 'ringcastctl'));

export const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

export function freePort(host = '127.0.0.1') {
  return new Promise((resolve, reject) => {
    const srv = net.createServer();
    srv.once('error', reject);
    srv.listen(0, host, () => {
      const { port } = srv.address();
      srv.close(() => resolve(port));
    });
  });
}

// Fast timings: a heartbeat each second, a 500 ms retry hint, a ring that
// holds every case's events, two workers as on a small box.
const DEFAULTS = {
  server: { workers: '2', drain_timeout: '3s', reload_spread: '500ms' },
  ring: { size: '4M', slots: '4096' },
  catalog: { map_size: '8M', auto_create_topics: 'yes' },
  publish: { require_token: 'no' },
  stream: { heartbeat: '1s', retry: '500ms' },
  limits: { header_timeout: '2s', max_event_bytes: '128K' },
  log: { target: 'stderr', level: 'debug' },
};

export class Server {
  // sections: { ring: { slots: '16' }, cors: { allow_origins: '...' } }
  constructor(sections = {}) {
    this.sections = sections;
    this.proc = null;
    this.exited = null;
  }

  async init() {
    this.tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'ringcast-conf-'));
    this.port = await freePort();
    this.adminPort = await freePort();
    this.base = `http://127.0.0.1:${this.port}`;
    const s = {};
    for (const [k, v] of Object.entries(DEFAULTS))
      s[k] = { ...v };
    Object.assign(s.server, {
      listen: `127.0.0.1:${this.port}`,
      admin_listen: `127.0.0.1:${this.adminPort}`,
      pidfile: path.join(this.tmp, 'ringcastd.pid'),
    });
    s.ring.path = path.join(this.tmp, 'ring');
    s.catalog.path = path.join(this.tmp, 'catalog');
    for (const [k, v] of Object.entries(this.sections))
      s[k] = { ...(s[k] ?? {}), ...v };
    this.conf = path.join(this.tmp, 'ringcast.conf');
    this.log = path.join(this.tmp, 'ringcastd.log');
    this.config = s;
    this.writeConfig();
    return this;
  }

  writeConfig() {
    const lines = [];
    for (const [name, keys] of Object.entries(this.config)) {
      lines.push(`[${name}]`);
      for (const [k, v] of Object.entries(keys))
        lines.push(`${k} = ${v}`);
    }
    fs.writeFileSync(this.conf, lines.join('\n') + '\n');
  }

  static async start(sections = {}) {
    const srv = new Server(sections);
    await srv.init();
    await srv.start();
    return srv;
  }

  // -- process control --------------------------------------------------

  async start() {
    const err = fs.openSync(this.log, 'a');
    this.proc = spawn(RINGCASTD, ['-d', '-f', this.conf],
        { stdio: ['ignore', 'ignore', err] });
    fs.closeSync(err);
    this.exited = new Promise((resolve) =>
      this.proc.once('exit', (code, sig) => resolve({ code, sig })));
    this.proc.exitInfo = null;
    this.exited.then((info) => { this.proc.exitInfo = info; });
    await this.waitReady();
  }

  async waitReady(timeoutMs = 10000) {
    const deadline = Date.now() + timeoutMs;
    const want = Number(this.config.server.workers);
    while (Date.now() < deadline) {
      if (this.proc.exitInfo)
        throw new Error(`ringcastd exited ${JSON.stringify(this.proc.exitInfo)}:\n${this.logTail()}`);
      try {
        const res = await this.request('GET', '/healthz', { timeoutMs: 1000 });
        if (res.status === 200 && this.workerPids().length >= want)
          return;
      } catch { /* not listening yet */ }
      await sleep(50);
    }
    throw new Error(`ringcastd did not become ready:\n${this.logTail()}`);
  }

  // Wait for the master to exit; SIGKILL it and its workers after the bound.
  async waitExit(timeoutMs) {
    let timer;
    const bound = new Promise((r) => { timer = setTimeout(() => r(null), timeoutMs); });
    const res = await Promise.race([this.exited, bound]);
    clearTimeout(timer);
    if (res !== null)
      return res;
    this.killAll();
    await this.exited;
    return null;
  }

  // SIGTERM (or sig) and wait; null if it had to be killed.
  async stop(sig = 'SIGTERM', timeoutMs = 10000) {
    if (!this.proc || this.proc.exitInfo)
      return this.proc?.exitInfo ?? null;
    const workers = this.workerPids();
    this.proc.kill(sig);
    const res = await this.waitExit(timeoutMs);
    await this.waitGone(workers, 5000, true);
    return res;
  }

  // SIGKILL the master; its workers notice and go (killed after 5 s).
  async crash() {
    const workers = this.workerPids();
    this.proc.kill('SIGKILL');
    await this.exited;
    return this.waitGone(workers, 5000, true);
  }

  killAll() {
    const pids = this.workerPids();
    try { this.proc.kill('SIGKILL'); } catch { /* gone */ }
    for (const pid of pids) {
      try { process.kill(pid, 'SIGKILL'); } catch { /* gone */ }
    }
  }

  // Wait until none of pids exists; SIGKILL survivors after the bound when
  // force, else report them.  Returns the pids that had to be killed.
  async waitGone(pids, timeoutMs, force) {
    const deadline = Date.now() + timeoutMs;
    let alive = pids;
    while (Date.now() < deadline) {
      alive = alive.filter(pidAlive);
      if (alive.length === 0)
        return [];
      await sleep(20);
    }
    if (force) {
      for (const pid of alive) {
        try { process.kill(pid, 'SIGKILL'); } catch { /* gone */ }
      }
    }
    return alive;
  }

  signal(sig) {
    this.proc.kill(sig);
  }

  workerPids() {
    if (!this.proc || this.proc.exitInfo)
      return [];
    const pid = this.proc.pid;
    try {
      // Workers only, by their title: not the archiver (issue #14).
      return fs.readFileSync(`/proc/${pid}/task/${pid}/children`, 'utf8')
          .split(/\s+/).filter(Boolean).map(Number).filter((p) => {
            try {
              return fs.readFileSync(`/proc/${p}/cmdline`).includes('worker');
            } catch {
              return false;
            }
          });
    } catch {
      return [];
    }
  }

  // The workers holding an established connection on the public port
  // (stream subscribers; publishes are answered and closed by then).
  streamWorkers() {
    const inodes = new Set();
    for (const file of ['/proc/net/tcp', '/proc/net/tcp6']) {
      let text;
      try { text = fs.readFileSync(file, 'utf8'); } catch { continue; }
      for (const line of text.split('\n').slice(1)) {
        const f = line.trim().split(/\s+/);
        if (f.length < 10)
          continue;
        const localPort = parseInt(f[1].split(':')[1], 16);
        if (localPort === this.port && f[3] === '01')
          inodes.add(f[9]);
      }
    }
    const out = [];
    for (const pid of this.workerPids()) {
      let fds = [];
      try { fds = fs.readdirSync(`/proc/${pid}/fd`); } catch { continue; }
      for (const fd of fds) {
        let link = '';
        try { link = fs.readlinkSync(`/proc/${pid}/fd/${fd}`); } catch { continue; }
        const m = /^socket:\[(\d+)\]$/.exec(link);
        if (m && inodes.has(m[1])) {
          out.push(pid);
          break;
        }
      }
    }
    return out;
  }

  // SIGKILL workers (the given pids, or one at random) and wait until the
  // master has respawned them all.
  async killWorkers(pids) {
    const before = this.workerPids();
    if (pids === undefined)
      pids = [before[Math.floor(Math.random() * before.length)]];
    for (const pid of pids)
      process.kill(pid, 'SIGKILL');
    await this.waitGone(pids, 3000, false);
    const want = Number(this.config.server.workers);
    const deadline = Date.now() + 15000;
    while (Date.now() < deadline) {
      const now = this.workerPids();
      if (now.length >= want && !now.some((p) => pids.includes(p)))
        return pids;
      await sleep(20);
    }
    throw new Error(`workers ${pids} were not respawned:\n${this.logTail()}`);
  }

  logTail(n = 6000) {
    try {
      const text = fs.readFileSync(this.log, 'utf8');
      return text.slice(-n);
    } catch {
      return '';
    }
  }

  async close() {
    try {
      if (this.proc && !this.proc.exitInfo)
        await this.stop('SIGTERM', 8000);
    } finally {
      if (!process.env.RINGCAST_KEEP_TMP)
        fs.rmSync(this.tmp, { recursive: true, force: true });
    }
  }

  // Create topics with ringcastctl (the daemon sees them at once).
  topic(...names) {
    for (const name of names)
      execFileSync(RINGCASTCTL, ['-f', this.conf, 'topic', 'add', name],
          { stdio: ['ignore', 'ignore', 'pipe'], timeout: 10000 });
  }

  // Publish without a connection: ringcastctl appends to the ring itself
  // (the workers see it within their 100 ms poll).  For a full server, where
  // a POST is rightly refused with 503.
  publishDirect(topic, data) {
    const out = execFileSync(RINGCASTCTL, ['-f', this.conf, 'publish', topic,
      data], { stdio: ['ignore', 'pipe', 'pipe'], timeout: 10000 });
    return out.toString().trim();
  }

  // -- HTTP ---------------------------------------------------------------

  // One request on a fresh connection; resolves { status, headers, body }.
  request(method, urlPath, { headers = {}, body, timeoutMs = 5000,
      admin = false } = {}) {
    return new Promise((resolve, reject) => {
      const req = http.request({
        host: '127.0.0.1', port: admin ? this.adminPort : this.port,
        method, path: urlPath, headers, agent: false,
      }, (res) => {
        const chunks = [];
        res.on('data', (c) => chunks.push(c));
        res.on('end', () => resolve({ status: res.statusCode,
          headers: res.headers, body: Buffer.concat(chunks) }));
        res.on('error', reject);
      });
      req.setTimeout(timeoutMs, () => req.destroy(new Error(`${method} ${urlPath}: timeout`)));
      req.on('error', reject);
      if (body !== undefined)
        req.write(body);
      req.end();
    });
  }

  // POST /publish/topic; the new event's id (a string).  A refused connect
  // (no worker up for an instant) is retried: it cannot have appended.
  async publish(topic, data, { event } = {}) {
    const headers = { 'Content-Type': 'text/plain; charset=utf-8' };
    if (event !== undefined)
      headers['Ringcast-Event'] = event;
    const body = Buffer.isBuffer(data) ? data : Buffer.from(String(data), 'utf8');
    headers['Content-Length'] = String(body.length);
    const deadline = Date.now() + 10000;
    for (;;) {
      let res;
      try {
        res = await this.request('POST', `/publish/${topic}`, { headers, body });
      } catch (e) {
        if (e.code === 'ECONNREFUSED' && Date.now() < deadline) {
          await sleep(20);
          continue;
        }
        throw e;
      }
      if (res.status !== 201)
        throw new Error(`publish ${topic}: ${res.status} ${res.body}`);
      return res.headers['ringcast-event-id'];
    }
  }
}

function pidAlive(pid) {
  try {
    process.kill(pid, 0);
  } catch {
    return false;
  }
  // A zombie is gone for our purposes.
  try {
    const stat = fs.readFileSync(`/proc/${pid}/stat`, 'utf8');
    return !/^\d+ \(.*\) Z/.test(stat);
  } catch {
    return false;
  }
}
