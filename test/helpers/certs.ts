// Test certificates from the openssl CLI (Debian's openssl; Node can parse X.509 but not issue it): one
// throwaway CA per test file, leaf certificates for any names, EC P-256 to keep generation fast.
import { execFileSync } from 'node:child_process';
import { X509Certificate } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { isIP } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll } from 'vitest';
import type { CertificateSet } from '../../src/messages.ts';
import { pairDigest, PemTableBuilder } from '../../src/tls/pem-table.ts';

export interface TestCert {
  cert: Buffer;
  key: Buffer;
}

let ca: { dir: string; cert: string; key: string; pem: Buffer } | null = null;
let serial = 0;

// Vitest gives each test file its own copy of this module (and a worker thread never sees the process exit):
// the CA and the leaves made for a file go when the file's tests are done.
afterAll(() => {
  if (ca !== null) rmSync(ca.dir, { recursive: true, force: true });
  ca = null;
});

function openssl(args: string[]): void {
  execFileSync('openssl', args, { stdio: ['ignore', 'ignore', 'pipe'] });
}

/** The CA's certificate, for clients that should trust the leaves. */
export function testCa(): Buffer {
  if (ca === null) {
    const dir = mkdtempSync(join(tmpdir(), 'secbeat-certs-'));
    const cert = join(dir, 'ca.pem');
    const key = join(dir, 'ca.key');
    openssl(['req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes', '-keyout', key, '-out', cert, '-days', '2', '-subj', '/CN=SecBeat test CA']);
    ca = { dir, cert, key, pem: readFileSync(cert) };
  }
  return ca.pem;
}

/** A leaf for `names` (host names or IP addresses; the first is the CN), signed by the test CA, valid for `days`. */
export function testCert(names: readonly string[], days = 2): TestCert {
  testCa();
  const { dir, cert: caCert, key: caKey } = ca!;
  const id = ++serial;
  const key = join(dir, `${id}.key`);
  const csr = join(dir, `${id}.csr`);
  const cert = join(dir, `${id}.pem`);
  const ext = join(dir, `${id}.ext`);
  writeFileSync(ext, `subjectAltName=${names.map((n) => (isIP(n) ? `IP:${n}` : `DNS:${n}`)).join(',')}\n`);
  openssl(['req', '-new', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes', '-keyout', key, '-out', csr, '-subj', `/CN=${names[0]}`]);
  openssl(['x509', '-req', '-in', csr, '-CA', caCert, '-CAkey', caKey, '-set_serial', String(1000 + id), '-days', String(days), '-extfile', ext, '-out', cert]);
  return { cert: readFileSync(cert), key: readFileSync(key) };
}

/**
 * A certificate set as the main thread hands it to threads (src/tls/certificate-set.ts), from pairs already
 * in memory: `pairs` are served for their `hosts`, `fallback` is the default. Nothing is checked here.
 */
export function certificateSet(fallback: TestCert, pairs: readonly { hosts: readonly string[]; pem: TestCert }[] = []): CertificateSet {
  const table = new PemTableBuilder();
  for (const { pem } of pairs) table.add(pem.cert, pem.key, new X509Certificate(pem.cert).validToDate.getTime(), pairDigest(pem.cert, pem.key));
  return { defaultCert: fallback, table: table.build(pairs.map(({ hosts }) => hosts.map((h) => h.toLowerCase()))) };
}
