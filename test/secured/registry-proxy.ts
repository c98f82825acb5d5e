/**
 * The schema registry behind a real reverse proxy: nginx (Debian's package) terminating TLS and checking HTTP basic
 * auth, on a free loopback port, with its own configuration in a temporary directory. Started and stopped by the
 * test, never as a system service.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { existsSync } from 'node:fs';
import { mkdir, readFile, writeFile } from 'node:fs/promises';
import { userInfo } from 'node:os';
import { connect } from 'node:net';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { freePort } from '../../stack/ports.ts';
import type { CertificateFiles } from '../../stack/tls.ts';

const NGINX = process.env.NGINX_PATH ?? '/usr/sbin/nginx';

export interface RegistryProxy {
  /** The registry's Confluent-compatible API through the proxy (https). */
  url: string;
  stop(): Promise<void>;
}

/** Starts nginx in `dir` in front of `registryUrl`, serving `certificate` and accepting `username` / `password`. */
export async function startRegistryProxy(dir: string, registryUrl: string, certificate: CertificateFiles, username: string, password: string): Promise<RegistryProxy> {
  if (!existsSync(NGINX)) throw new Error(`nginx is not installed at ${NGINX} (apt-get install nginx, or set NGINX_PATH)`);
  const upstream = new URL(registryUrl);
  const port = await freePort();
  await mkdir(join(dir, 'temp'), { recursive: true });
  const salt = randomBytes(8);
  const ssha = Buffer.concat([createHash('sha1').update(password).update(salt).digest(), salt]).toString('base64');
  await writeFile(join(dir, 'htpasswd'), `${username}:{SSHA}${ssha}\n`, { mode: 0o600 });
  const temp = (name: string) => `${name}_temp_path ${join(dir, 'temp', name)};`;
  await writeFile(join(dir, 'nginx.conf'), `
daemon off;
# Started as root, nginx would run its workers as nobody, who cannot read the password file in a private temp dir.
${process.getuid?.() === 0 ? `user ${userInfo().username};` : ''}
worker_processes 1;
pid ${join(dir, 'nginx.pid')};
error_log ${join(dir, 'error.log')} warn;
events { worker_connections 64; }
http {
  access_log off;
  ${['client_body', 'proxy', 'fastcgi', 'uwsgi', 'scgi'].map(temp).join('\n  ')}
  server {
    listen 127.0.0.1:${port} ssl;
    ssl_certificate ${certificate.cert};
    ssl_certificate_key ${certificate.key};
    auth_basic "schema registry";
    auth_basic_user_file ${join(dir, 'htpasswd')};
    location / {
      proxy_pass http://${upstream.host};
      proxy_set_header Host $host;
    }
  }
}
`);
  const nginx: ChildProcess = spawn(NGINX, ['-p', dir, '-e', join(dir, 'error.log'), '-c', join(dir, 'nginx.conf')], { stdio: 'ignore' });
  const exited = new Promise<void>((resolve) => nginx.once('exit', () => resolve()));
  const stop = async () => {
    if (nginx.exitCode === null && nginx.signalCode === null) nginx.kill('SIGQUIT');
    await Promise.race([exited, sleep(5000)]);
    if (nginx.exitCode === null && nginx.signalCode === null) nginx.kill('SIGKILL');
  };
  for (let waited = 0; !(await listening(port)); waited += 100) {
    if (nginx.exitCode !== null || waited > 10_000) {
      await stop();
      const log = await readFile(join(dir, 'error.log'), 'utf8').catch(() => '');
      throw new Error(`nginx did not start on 127.0.0.1:${port}: ${log.trim().split('\n').slice(-3).join('\n')}`);
    }
    await sleep(100);
  }
  return { url: `https://127.0.0.1:${port}${upstream.pathname}`, stop };
}

function listening(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = connect(port, '127.0.0.1');
    socket.once('connect', () => { socket.destroy(); resolve(true); });
    socket.once('error', () => resolve(false));
  });
}
