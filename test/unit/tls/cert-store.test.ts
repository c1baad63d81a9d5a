import { randomBytes, X509Certificate } from 'node:crypto';
import { once } from 'node:events';
import type { AddressInfo } from 'node:net';
import { connect, createServer, type TLSSocket } from 'node:tls';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { CertificateStore, type TlsSettings } from '../../../src/tls/cert-store.ts';
import { certificateSet, testCa, testCert, type TestCert } from '../../helpers/certs.ts';

const SETTINGS: TlsSettings = { minVersion: 'TLSv1.2', maxVersion: 'TLSv1.3', ciphers: 'HIGH:!aNULL', contextCacheSize: 2 };

let a: TestCert;
let b: TestCert;
let wild: TestCert;
let fallback: TestCert;

beforeAll(() => {
  a = testCert(['a.example']);
  b = testCert(['b.example']);
  wild = testCert(['*.w.example']);
  fallback = testCert(['default.example']);
});

/** The CN of the certificate a real handshake gets for `servername`. */
async function servedName(port: number, servername: string): Promise<string> {
  // Name checks are the client's business; here we want to see which certificate came back.
  const socket: TLSSocket = connect({ port, host: '127.0.0.1', servername, ca: testCa(), checkServerIdentity: () => undefined });
  await once(socket, 'secureConnect');
  const cn = socket.getPeerCertificate().subject?.CN;
  socket.destroy();
  return String(cn);
}

describe('CertificateStore', () => {
  it('picks exact name, then wildcard one label up, then the default', () => {
    const store = new CertificateStore(SETTINGS, randomBytes(48));
    store.install('a.example', a);
    store.install('*.w.example', wild);
    expect(store.contextFor('a.example')).toBeDefined();
    expect(store.contextFor('A.Example.')).toBe(store.contextFor('a.example'));
    expect(store.contextFor('x.w.example')).toBeDefined();
    expect(store.contextFor('y.x.w.example')).toBeUndefined();
    expect(store.contextFor('b.example')).toBeUndefined();
    store.setDefault(fallback);
    expect(store.contextFor('b.example')).toBeDefined();
    expect(store.contextFor(undefined)).toBe(store.contextFor('b.example'));
    expect(store.stats.unknownName).toBe(5);
  });

  it('keeps at most contextCacheSize contexts and rebuilds evicted ones on demand', () => {
    const store = new CertificateStore(SETTINGS, randomBytes(48));
    store.install('a.example', a);
    store.install('b.example', b);
    store.install('*.w.example', wild);
    expect(store.cachedContexts).toBe(2);
    expect(store.stats.evictions).toBe(1);
    const misses = store.stats.misses;
    expect(store.contextFor('a.example')).toBeDefined();
    expect(store.stats.misses).toBe(misses + 1);
    expect(store.contextFor('a.example')).toBeDefined();
    expect(store.stats.hits).toBe(1);
    expect(store.cachedContexts).toBe(2);
  });

  it('refuses a certificate that does not cover the name, a mismatched key and bad names, changing nothing', () => {
    const store = new CertificateStore(SETTINGS, randomBytes(48));
    expect(() => store.install('b.example', a)).toThrow(/does not cover b\.example/);
    expect(() => store.install('a.example', { cert: a.cert, key: b.key })).toThrow(/rejected/);
    expect(() => store.install('a..example', a)).toThrow(/not a host name/);
    expect(() => store.install('a.example', { cert: Buffer.from('junk'), key: a.key })).toThrow(/rejected/);
    expect(store.size).toBe(0);
  });

  it('reports expiry and bumps the generation on replace', () => {
    const store = new CertificateStore(SETTINGS, randomBytes(48));
    const first = store.install('a.example', a);
    expect(first.notAfterMs).toBeGreaterThan(Date.now() + 86_400_000);
    const second = store.install('a.example', testCert(['a.example'], 10));
    expect(second.generation).toBeGreaterThan(first.generation);
    expect(second.notAfterMs - first.notAfterMs).toBeGreaterThan(7 * 86_400_000);
    expect(store.remove('a.example')).toBe(true);
    expect(store.get('a.example')).toBeUndefined();
  });

  describe('replaceAll: sets the main thread checked', () => {
    it('installs every name of the table without building a context; contexts come on first use', () => {
      const store = new CertificateStore(SETTINGS, randomBytes(48));
      const changes = store.replaceAll(certificateSet(fallback, [{ hosts: ['a.example'], pem: a }, { hosts: ['*.w.example'], pem: wild }]).table);
      expect(changes).toEqual({ installed: 2, replaced: 0, removed: 0, unchanged: 0 });
      expect(store.size).toBe(2);
      expect(store.cachedContexts).toBe(0);
      expect(store.contextFor('x.w.example')).toBeDefined();
      expect(store.stats.misses).toBe(1);
      expect(store.get('a.example')?.notAfterMs).toBe(new X509Certificate(a.cert).validToDate.getTime());
    });

    it('leaves unchanged pairs and their warm contexts alone, replaces changed ones, removes missing ones', () => {
      const store = new CertificateStore({ ...SETTINGS, contextCacheSize: 10 }, randomBytes(48));
      store.replaceAll(certificateSet(fallback, [{ hosts: ['a.example'], pem: a }, { hosts: ['b.example'], pem: b }, { hosts: ['*.w.example'], pem: wild }]).table);
      store.install('manual.example', testCert(['manual.example']));
      const aContext = store.contextFor('a.example');
      store.contextFor('b.example');
      const before = { a: store.get('a.example')!.generation, b: store.get('b.example')!.generation, misses: store.stats.misses };
      // A new table (new shared memory): a's bytes again, a new certificate for b, a new name, no *.w.example.
      const b2 = testCert(['b.example']);
      const changes = store.replaceAll(certificateSet(fallback, [{ hosts: ['a.example'], pem: a }, { hosts: ['b.example', 'c.example'], pem: b2 }]).table);
      expect(changes).toEqual({ installed: 1, replaced: 1, removed: 2, unchanged: 1 });
      expect(store.get('a.example')!.generation).toBe(before.a);
      expect(store.contextFor('a.example')).toBe(aContext);
      expect(store.stats.misses).toBe(before.misses);
      expect(store.get('b.example')!.generation).toBeGreaterThan(before.b);
      expect(store.contextFor('b.example')).toBeDefined();
      expect(store.stats.misses).toBe(before.misses + 1);
      for (const gone of ['x.w.example', 'manual.example']) expect(store.contextFor(gone)).toBeUndefined();
      expect(store.size).toBe(3);
    });

    it('keeps the default, context included, when it is set again with the same bytes', () => {
      const store = new CertificateStore(SETTINGS, randomBytes(48));
      const first = store.setDefault(fallback);
      const context = store.contextFor(undefined);
      expect(store.setDefault({ cert: Buffer.from(fallback.cert), key: Buffer.from(fallback.key) }).generation).toBe(first.generation);
      expect(store.contextFor(undefined)).toBe(context);
      expect(store.setDefault(a).generation).toBeGreaterThan(first.generation);
    });
  });

  describe('behind a real TLS server', () => {
    const store = new CertificateStore(SETTINGS, randomBytes(48));
    const server = createServer({ SNICallback: store.sniCallback, ...fallback });
    let port = 0;
    beforeAll(async () => {
      store.install('a.example', a);
      store.install('*.w.example', wild);
      store.setDefault(fallback);
      server.on('secureConnection', (s) => s.end());
      server.listen(0, '127.0.0.1');
      await once(server, 'listening');
      port = (server.address() as AddressInfo).port;
    });
    afterAll(() => server.close());

    it('serves each name its certificate', async () => {
      expect(await servedName(port, 'a.example')).toBe('a.example');
      expect(await servedName(port, 'q.w.example')).toBe('*.w.example');
      expect(await servedName(port, 'nobody.example')).toBe('default.example');
    });

    it('a replaced certificate is served by the next handshake, with no restart', async () => {
      store.install('b.example', b);
      expect(await servedName(port, 'b.example')).toBe('b.example');
      store.install('a.example', testCert(['a.example', 'b.example']));
      store.remove('b.example');
      expect(await servedName(port, 'b.example')).toBe('default.example');
    });

    it('a replaced set is served by the next handshake', async () => {
      store.replaceAll(certificateSet(fallback, [{ hosts: ['b.example'], pem: b }]).table);
      expect(await servedName(port, 'b.example')).toBe('b.example');
      expect(await servedName(port, 'a.example')).toBe('default.example');
    });

    it('resumes sessions with the shared ticket keys, across stores with the same keys', async () => {
      const keys = randomBytes(48);
      const s1 = new CertificateStore(SETTINGS, keys);
      const s2 = new CertificateStore(SETTINGS, keys);
      for (const s of [s1, s2]) s.install('a.example', a);
      const servers = [s1, s2].map((s) => createServer({ SNICallback: s.sniCallback, ...fallback, ticketKeys: keys }).on('secureConnection', (c) => c.end()));
      const ports: number[] = [];
      for (const srv of servers) {
        srv.listen(0, '127.0.0.1');
        await once(srv, 'listening');
        ports.push((srv.address() as AddressInfo).port);
      }
      try {
        const first = connect({ port: ports[0]!, host: '127.0.0.1', servername: 'a.example', ca: testCa(), maxVersion: 'TLSv1.2' });
        const [session] = (await once(first, 'session')) as [Buffer];
        first.destroy();
        const second = connect({ port: ports[1]!, host: '127.0.0.1', servername: 'a.example', ca: testCa(), session, maxVersion: 'TLSv1.2' });
        await once(second, 'secureConnect');
        expect(second.isSessionReused()).toBe(true);
        second.destroy();
      } finally {
        for (const srv of servers) srv.close();
      }
    });
  });
});
