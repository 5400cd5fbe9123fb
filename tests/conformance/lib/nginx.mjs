// Debian's nginx in front of a ringcastd, as contrib/nginx/ringcast.conf
// sets it up: that file is used as shipped, with only its addresses and
// certificate paths moved to free loopback ports and a temporary directory
// (each such line must be found, so the file and this stay in step).  The
// certificate is self-signed, made here by openssl.  nginx runs in the
// foreground as our child and is stopped by its PID.

import { execFileSync, spawn } from 'node:child_process';
import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { freePort, sleep } from './server.mjs';

const HERE = path.dirname(fileURLToPath(import.meta.url));
export const NGINX = process.env.NGINX ?? '/usr/sbin/nginx';
export const CONTRIB = path.resolve(HERE, '..', '..', '..', 'contrib', 'nginx',
    'ringcast.conf');

// Replace the one occurrence of from in text; throw when it is not there.
function swap(text, from, to) {
  const i = text.indexOf(from);
  if (i < 0 || text.indexOf(from, i + 1) >= 0)
    throw new Error(`${CONTRIB}: expected exactly one '${from.trim()}'; ` +
        'update tests/conformance/lib/nginx.mjs with the file');
  return text.slice(0, i) + to + text.slice(i + from.length);
}

function connectable(port) {
  return new Promise((resolve) => {
    const s = net.connect({ host: '127.0.0.1', port }, () => {
      s.destroy();
      resolve(true);
    });
    s.on('error', () => resolve(false));
  });
}

export class Nginx {
  // upstreamPort: the ringcastd listener nginx proxies to.
  static async start(upstreamPort) {
    const n = new Nginx();
    n.tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'ringcast-nginx-'));
    // Workers run as another user when we are root: let them in.
    fs.chmodSync(n.tmp, 0o755);
    n.tlsPort = await freePort();
    n.httpPort = await freePort();
    n.base = `https://127.0.0.1:${n.tlsPort}`;
    const cert = path.join(n.tmp, 'cert.pem');
    const key = path.join(n.tmp, 'key.pem');
    execFileSync('openssl', ['req', '-x509', '-newkey', 'ec', '-pkeyopt',
      'ec_paramgen_curve:prime256v1', '-nodes', '-days', '2', '-subj',
      '/CN=127.0.0.1', '-addext', 'subjectAltName=IP:127.0.0.1',
      '-keyout', key, '-out', cert], { stdio: 'ignore', timeout: 20000 });
    let site = fs.readFileSync(CONTRIB, 'utf8');
    site = swap(site, 'server 127.0.0.1:8080;',
        `server 127.0.0.1:${upstreamPort};`);
    site = swap(site, 'listen 80;', `listen 127.0.0.1:${n.httpPort};`);
    site = swap(site, '\tlisten [::]:80;\n', '');
    site = swap(site, 'listen 443 ssl http2;',
        `listen 127.0.0.1:${n.tlsPort} ssl http2;`);
    site = swap(site, '\tlisten [::]:443 ssl http2;\n', '');
    site = swap(site, '/etc/ssl/certs/ringcast.pem', cert);
    site = swap(site, '/etc/ssl/private/ringcast.key', key);
    fs.writeFileSync(path.join(n.tmp, 'ringcast.conf'), site);
    const t = (d) => path.join(n.tmp, d);
    n.accessLog = t('access.log');
    n.errorLog = t('error.log');
    fs.writeFileSync(t('nginx.conf'), [
      'daemon off;',
      'worker_processes 1;',
      'worker_shutdown_timeout 2s;',
      `pid ${t('nginx.pid')};`,
      `error_log ${n.errorLog} info;`,
      'events { worker_connections 256; }',
      'http {',
      `  log_format rc '$server_protocol $status $request_uri';`,
      `  access_log ${n.accessLog} rc;`,
      `  client_body_temp_path ${t('body')};`,
      `  proxy_temp_path ${t('proxy')};`,
      `  fastcgi_temp_path ${t('fastcgi')};`,
      `  uwsgi_temp_path ${t('uwsgi')};`,
      `  scgi_temp_path ${t('scgi')};`,
      `  include ${t('ringcast.conf')};`,
      '}', ''].join('\n'));
    const args = ['-p', n.tmp, '-c', t('nginx.conf'), '-e', n.errorLog];
    execFileSync(NGINX, ['-t', '-q', ...args], { stdio: 'pipe', timeout: 10000 });
    n.proc = spawn(NGINX, args, { stdio: 'ignore' });
    n.exited = new Promise((r) => n.proc.once('exit', (code, sig) => r({ code, sig })));
    const deadline = Date.now() + 10000;
    while (!(await connectable(n.tlsPort))) {
      if (n.proc.exitCode !== null || Date.now() > deadline)
        throw new Error(`nginx did not start:\n${n.log()}`);
      await sleep(50);
    }
    return n;
  }

  log() {
    try {
      return fs.readFileSync(this.errorLog, 'utf8').slice(-4000);
    } catch {
      return '';
    }
  }

  // The access log lines: "HTTP/2.0 200 /events/x" each.
  accessLines() {
    try {
      return fs.readFileSync(this.accessLog, 'utf8').split('\n').filter(Boolean);
    } catch {
      return [];
    }
  }

  // nginx's workers (the master's children), by PID.
  workerPids() {
    const pid = this.proc?.pid;
    try {
      return fs.readFileSync(`/proc/${pid}/task/${pid}/children`, 'utf8')
          .split(/\s+/).filter(Boolean).map(Number);
    } catch {
      return [];
    }
  }

  // SIGTERM (nginx's fast shutdown: open streams are cut), SIGKILL to the
  // master and its workers after the bound; then the directory goes.
  async stop(timeoutMs = 8000) {
    if (this.proc && this.proc.exitCode === null && this.proc.signalCode === null) {
      const workers = this.workerPids();
      this.proc.kill('SIGTERM');
      let timer;
      const bound = new Promise((r) => { timer = setTimeout(() => r(null), timeoutMs); });
      if (await Promise.race([this.exited, bound]) === null) {
        for (const pid of workers) {
          try { process.kill(pid, 'SIGKILL'); } catch { /* gone */ }
        }
        this.proc.kill('SIGKILL');
        await this.exited;
      }
      clearTimeout(timer);
    }
    if (!process.env.RINGCAST_KEEP_TMP)
      fs.rmSync(this.tmp, { recursive: true, force: true });
  }
}
