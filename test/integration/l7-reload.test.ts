// Hot reload of L7 routes and certificates on a real node (bin/secbeat run, two worker threads), the issue's
// "hot install / replace / remove at run time with no restart and no failed handshake during a swap": the
// config file is rewritten with a replaced certificate for A, a new domain B (route plus a certificate in
// [tls] certificates_dir) and route C removed, and `secbeat ctl config reload` runs while clients keep
// doing full TLS handshakes and requests. None may fail; afterwards A presents the new certificate, B is
// served, C gets the default certificate and the default backend. A reload with an unusable pair is refused
// and changes nothing. `ctl certs` and GET /api/v1/certificates list what is installed. A default certificate
// renewed in place reaches clients without SNI too.
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { CertificateList } from '../../src/messages.ts';
import { testCert, type TestCert } from '../helpers/certs.ts';
import { startNode, type NodeProcess } from '../helpers/node-process.ts';
import { freePort } from '../helpers/ports.ts';
import { fingerprintOf, handshakeAndGet } from '../helpers/tls-client.ts';

const CLIENTS = 4;
/** Each client stops after this many exchanges, or at the deadline, whichever comes first. */
const MAX_EXCHANGES_PER_CLIENT = 400;
const CLIENT_DEADLINE_MS = 20_000;
/** Exchanges each client still does after the reload has answered, so the loop spans both sides of it. */
const EXCHANGES_AFTER_RELOAD = 10;
const API_TOKEN = 'reload-test-token';

async function originAnswering(text: string): Promise<{ server: Server; port: number }> {
  const server = createServer((_req, res) => res.end(text));
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  return { server, port: (server.address() as { port: number }).port };
}

describe('l7 reload of routes and certificates', () => {
  let dir = '';
  let live = '';
  const origins: Server[] = [];
  let node: NodeProcess;
  let tlsPort = 0;
  let configFile = '';
  let initialExtra = '';
  let certs: Record<'fallback' | 'a1' | 'a2' | 'b' | 'c' | 'stable', TestCert>;
  /** Writes a pair as cert/key files under `name`; returns their paths. */
  const files = (name: string, pem: TestCert): { cert: string; key: string } => {
    writeFileSync(join(dir, `${name}.pem`), pem.cert);
    writeFileSync(join(dir, `${name}.key`), pem.key);
    return { cert: join(dir, `${name}.pem`), key: join(dir, `${name}.key`) };
  };
  const liveCert = (name: string, pem: TestCert): void => {
    mkdirSync(join(live, name), { recursive: true });
    writeFileSync(join(live, name, 'fullchain.pem'), pem.cert);
    writeFileSync(join(live, name, 'privkey.pem'), pem.key);
  };
  const route = (hosts: string[], originPort: number, pair?: { cert: string; key: string }): string =>
    `\n[[l7.routes]]\nhosts = ${JSON.stringify(hosts)}\norigins = ["http://127.0.0.1:${originPort}"]\n` +
    (pair === undefined ? '' : `cert_path = "${pair.cert}"\nkey_path = "${pair.key}"\n`);
  let ports: { one: number; two: number; backend: number };

  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), 'secbeat-l7-reload-'));
    live = join(dir, 'live');
    certs = {
      fallback: testCert(['default.example']),
      a1: testCert(['a.example']),
      a2: testCert(['a.example']),
      b: testCert(['b.example']),
      c: testCert(['c.example']),
      stable: testCert(['stable.example']),
    };
    const [one, two, backend] = await Promise.all([originAnswering('origin one'), originAnswering('origin two'), originAnswering('default backend')]);
    origins.push(one.server, two.server, backend.server);
    ports = { one: one.port, two: two.port, backend: backend.port };
    liveCert('stable.example', certs.stable);
    const fallback = files('default', certs.fallback);
    tlsPort = await freePort();
    initialExtra = `
[tls]
enabled = true
cert_path = "${fallback.cert}"
key_path = "${fallback.key}"
certificates_dir = "${live}"

[l7]
tls_bind_address = "127.0.0.1:${tlsPort}"
${route(['a.example'], ports.one, files('a1', certs.a1))}${route(['stable.example'], ports.one)}${route(['c.example'], ports.one, files('c', certs.c))}`;
    node = await startNode({ mode: 'l7', backendPort: ports.backend, extraToml: initialExtra, env: { SECBEAT_ADMIN__API_TOKEN: API_TOKEN } });
    configFile = join(node.dir, 'node.toml');
  }, 60_000);

  afterAll(async () => {
    await node?.[Symbol.asyncDispose]();
    for (const o of origins) await new Promise<void>((r) => o.close(() => r()));
    rmSync(dir, { recursive: true, force: true });
  });

  const rewriteConfig = (extra: string): void => writeFileSync(configFile, readFileSync(configFile, 'utf8').replace(initialExtra, extra));
  const reload = async (): Promise<{ code: number; result: { ok: boolean; issues: string[] } }> => {
    const { code, stdout } = await node.ctl('--json', 'config', 'reload');
    return { code, result: JSON.parse(stdout) as { ok: boolean; issues: string[] } };
  };

  it('serves the initial certificates', async () => {
    expect((await handshakeAndGet(tlsPort, 'a.example')).fingerprint).toBe(fingerprintOf(certs.a1));
    expect(await handshakeAndGet(tlsPort, 'c.example')).toMatchObject({ fingerprint: fingerprintOf(certs.c), status: 200, body: 'origin one' });
    expect(await handshakeAndGet(tlsPort, 'stable.example')).toMatchObject({ fingerprint: fingerprintOf(certs.stable), status: 200 });
  });

  it('applies a new config under load with no failed handshake or request', { timeout: 60_000 }, async () => {
    // Replaced certificate for A (a new file), B new (route, certificate from the directory), C's route gone.
    liveCert('b.example', certs.b);
    const next = initialExtra
      .replace(route(['c.example'], ports.one, { cert: join(dir, 'c.pem'), key: join(dir, 'c.key') }), route(['b.example'], ports.two))
      .replace(join(dir, 'a1.pem'), join(dir, 'a2.pem'))
      .replace(join(dir, 'a1.key'), join(dir, 'a2.key'));
    files('a2', certs.a2);
    expect(next).not.toBe(initialExtra);

    const failures: string[] = [];
    const seenForA = new Set<string>();
    let exchanges = 0;
    let reloaded = false;
    const client = async (id: number): Promise<void> => {
      const deadline = Date.now() + CLIENT_DEADLINE_MS;
      let afterReload = 0;
      for (let i = 0; i < MAX_EXCHANGES_PER_CLIENT && Date.now() < deadline && afterReload < EXCHANGES_AFTER_RELOAD; i++) {
        if (reloaded) afterReload++;
        const name = (id + i) % 2 === 0 ? 'a.example' : 'stable.example';
        try {
          // Both of A's certificates are valid for it: whichever a thread serves, verification passes.
          const got = await handshakeAndGet(tlsPort, name, { maxVersion: id % 2 === 0 ? 'TLSv1.3' : 'TLSv1.2' });
          if (name === 'a.example') seenForA.add(got.fingerprint);
          if (got.status !== 200 || got.body !== 'origin one') failures.push(`${name}: ${got.status} ${got.body}`);
        } catch (err) {
          failures.push(`${name}: ${(err as Error).message}`);
        }
        exchanges++;
      }
    };
    const clients = Array.from({ length: CLIENTS }, (_, id) => client(id));
    // Let the clients get going on the old config first.
    await expect.poll(() => exchanges, { timeout: 10_000 }).toBeGreaterThan(2 * CLIENTS);
    rewriteConfig(next);
    const { code, result } = await reload();
    reloaded = true;
    await Promise.all(clients);

    expect({ code, result }).toMatchObject({ code: 0, result: { ok: true, issues: [] } });
    expect(failures).toEqual([]);
    expect(seenForA).toEqual(new Set([fingerprintOf(certs.a1), fingerprintOf(certs.a2)]));

    expect((await handshakeAndGet(tlsPort, 'a.example')).fingerprint).toBe(fingerprintOf(certs.a2));
    expect(await handshakeAndGet(tlsPort, 'b.example')).toMatchObject({ fingerprint: fingerprintOf(certs.b), status: 200, body: 'origin two' });
    expect(await handshakeAndGet(tlsPort, 'c.example', { verifyName: false })).toMatchObject({
      fingerprint: fingerprintOf(certs.fallback),
      status: 200,
      body: 'default backend',
    });
    const metrics = await (await fetch(`http://127.0.0.1:${node.metricsPort}/metrics`)).text();
    expect(metrics).toMatch(/^secbeat_tls_handshakes_total\{result="failed"\} 0$/m);
  });

  it('refuses a reload with an unusable certificate and keeps serving the running set', async () => {
    // B's directory certificate with A's key: the pair does not match.
    writeFileSync(join(live, 'b.example', 'privkey.pem'), certs.a2.key);
    try {
      // The admin command worked (exit 0); the reload it reports did not.
      const { result } = await reload();
      expect(result.ok).toBe(false);
      expect(result.issues.join('\n')).toContain(`${join(live, 'b.example', 'fullchain.pem')} (key ${join(live, 'b.example', 'privkey.pem')}): the private key does not belong to the certificate`);
    } finally {
      writeFileSync(join(live, 'b.example', 'privkey.pem'), certs.b.key);
    }
    expect((await handshakeAndGet(tlsPort, 'b.example')).fingerprint).toBe(fingerprintOf(certs.b));
    expect((await handshakeAndGet(tlsPort, 'a.example')).fingerprint).toBe(fingerprintOf(certs.a2));
  });

  it('lists installed certificates through ctl and the REST API, bounded by limit', async () => {
    const { code, stdout } = await node.ctl('--json', 'certs', '--limit', '2');
    expect(code).toBe(0);
    const list = JSON.parse(stdout) as CertificateList;
    expect(list).toMatchObject({ names: 3, certificates: 3 });
    expect(list.expiringFirst).toHaveLength(2);
    expect(list.defaultNotAfterMs).toBeGreaterThan(Date.now());
    const response = await fetch(`http://127.0.0.1:${node.metricsPort}/api/v1/certificates?limit=10`, { headers: { authorization: `Bearer ${API_TOKEN}` } });
    const body = (await response.json()) as { ok: boolean; result: CertificateList };
    expect(body.ok).toBe(true);
    expect(body.result.expiringFirst.map((c) => c.name).sort()).toEqual(['a.example', 'b.example', 'stable.example']);
    const table = await node.ctl('certs');
    expect(table.stdout).toMatch(/^names: 3 {2}certificates: 3 {2}default expires: \d{4}-/);
    expect(table.stdout).toMatch(/^NAME +NOT AFTER$/m);
  });

  it('serves a renewed default certificate to unknown names and to clients that send no SNI', async () => {
    // Renewed in place, as certbot does: same paths, new bytes.
    const renewed = testCert(['default.example']);
    files('default', renewed);
    expect((await reload()).result.ok).toBe(true);
    // Several connections: the kernel spreads them over both threads, and each must have the new one.
    for (let i = 0; i < 6; i++) {
      expect((await handshakeAndGet(tlsPort, 'unknown.example', { verifyName: false })).fingerprint).toBe(fingerprintOf(renewed));
      expect((await handshakeAndGet(tlsPort, '', { verifyName: false })).fingerprint).toBe(fingerprintOf(renewed));
    }
  });
});
