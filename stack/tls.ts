/**
 * Certificates for the stack's TLS listeners and for tests, made with openssl: a private CA and certificates it signs
 * for loopback (a server's, or a client's for mutual TLS). Keys are unencrypted PKCS#8 PEM, which Kafka's PEM key
 * stores, nginx and Node all read, so no keytool or Java keystore is needed.
 */
import { execFile } from 'node:child_process';
import { mkdir } from 'node:fs/promises';
import { join } from 'node:path';
import { promisify } from 'node:util';

const run = promisify(execFile);

export interface CertificateFiles {
  cert: string;
  key: string;
}

const KEY = ['-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes'];

async function openssl(args: string[]): Promise<void> {
  try {
    await run('openssl', args, { timeout: 30_000 });
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') throw new Error('openssl is not installed (apt-get install openssl)');
    throw new Error(`openssl ${args[0]} failed: ${(error as { stderr?: string }).stderr ?? (error as Error).message}`);
  }
}

/** A new CA in `dir` (`<name>.crt`, `<name>.key`), valid for `days`. */
export async function createCa(dir: string, name: string, days = 30): Promise<CertificateFiles> {
  await mkdir(dir, { recursive: true });
  const files = { cert: join(dir, `${name}.crt`), key: join(dir, `${name}.key`) };
  await openssl(['req', '-x509', ...KEY, '-keyout', files.key, '-out', files.cert, '-days', String(days), '-subj', `/CN=${name}`,
    '-addext', 'basicConstraints=critical,CA:TRUE', '-addext', 'keyUsage=critical,keyCertSign,cRLSign']);
  return files;
}

/**
 * A certificate signed by `ca` for `name`: a server's (valid for 127.0.0.1, ::1 and localhost) or a client's
 * (mutual TLS; `name` becomes the principal's CN).
 */
export async function issueCertificate(ca: CertificateFiles, dir: string, name: string, role: 'server' | 'client', days = 30): Promise<CertificateFiles> {
  await mkdir(dir, { recursive: true });
  const files = { cert: join(dir, `${name}.crt`), key: join(dir, `${name}.key`) };
  const usage = role === 'server'
    ? ['-addext', 'subjectAltName=IP:127.0.0.1,IP:::1,DNS:localhost', '-addext', 'extendedKeyUsage=serverAuth']
    : ['-addext', 'extendedKeyUsage=clientAuth'];
  await openssl(['req', '-x509', '-CA', ca.cert, '-CAkey', ca.key, ...KEY, '-keyout', files.key, '-out', files.cert,
    '-days', String(days), '-subj', `/CN=${name}`, '-addext', 'basicConstraints=CA:FALSE', ...usage]);
  return files;
}
