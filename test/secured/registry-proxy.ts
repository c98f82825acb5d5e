/**
 * The schema registry behind a real reverse proxy: nginx terminating TLS and checking HTTP basic auth, on a free
 * loopback port (test/fixtures/nginx.ts).
 */
import { createHash, randomBytes } from 'node:crypto';
import { mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { CertificateFiles } from '../../stack/tls.ts';
import { startNginx } from '../fixtures/nginx.ts';

export interface RegistryProxy {
  /** The registry's Confluent-compatible API through the proxy (https). */
  url: string;
  stop(): Promise<void>;
}

/** Starts nginx in `dir` in front of `registryUrl`, serving `certificate` and accepting `username` / `password`. */
export async function startRegistryProxy(dir: string, registryUrl: string, certificate: CertificateFiles, username: string, password: string): Promise<RegistryProxy> {
  const upstream = new URL(registryUrl);
  await mkdir(dir, { recursive: true });
  const salt = randomBytes(8);
  const ssha = Buffer.concat([createHash('sha1').update(password).update(salt).digest(), salt]).toString('base64');
  await writeFile(join(dir, 'htpasswd'), `${username}:{SSHA}${ssha}\n`, { mode: 0o600 });
  const { port, stop } = await startNginx(dir, (listen) => `
    listen 127.0.0.1:${listen} ssl;
    ssl_certificate ${certificate.cert};
    ssl_certificate_key ${certificate.key};
    auth_basic "schema registry";
    auth_basic_user_file ${join(dir, 'htpasswd')};
    location / {
      proxy_pass http://${upstream.host};
      proxy_set_header Host $host;
    }`);
  return { url: `https://127.0.0.1:${port}${upstream.pathname}`, stop };
}
