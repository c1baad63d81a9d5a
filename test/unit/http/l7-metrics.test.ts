// L7Proxy's batched metrics against real loopback clients: client bytes as on the wire (plain and TLS, open
// and closed connections, never counted twice), TLS handshakes ok and failed (a connection refused before
// its handshake is neither), context-cache lookups and evictions read off the CertificateStore, and the
// scrape hook and drain's last flush.
import { randomBytes } from 'node:crypto';
import { once } from 'node:events';
import { connect as netConnect, type Socket } from 'node:net';
import { connect as tlsConnect, DEFAULT_CIPHERS } from 'node:tls';
import { describe, expect, it, vi } from 'vitest';
import { collectThreadMetrics } from '../../../src/telemetry/metrics.ts';
import { CertificateStore } from '../../../src/tls/cert-store.ts';
import { testCa, testCert } from '../../helpers/certs.ts';
import { startL7Proxy } from '../../helpers/l7-proxy.ts';

const REQUEST = 'GET / HTTP/1.1\r\nHost: a.example\r\n\r\n';

function certificateStore(contextCacheSize: number): CertificateStore {
  const store = new CertificateStore({ minVersion: 'TLSv1.2', maxVersion: 'TLSv1.3', ciphers: DEFAULT_CIPHERS, contextCacheSize }, randomBytes(48));
  store.setDefault(testCert(['default.example']));
  return store;
}

/** Writes one keep-alive request on `socket` and resolves once the origin's "ok" has arrived. */
async function requestOk(socket: Socket): Promise<void> {
  let reply = '';
  const onData = (b: Buffer): void => void (reply += b.toString('latin1'));
  socket.on('data', onData);
  socket.write(REQUEST);
  await vi.waitFor(() => expect(reply).toMatch(/^HTTP\/1\.1 200 [^]*\r\n\r\nok$/));
  socket.off('data', onData);
}

/** A completed TLS handshake for `servername`, then a clean close (end, not destroy: TLS 1.3's client Finished must go out). */
async function handshake(port: number, servername: string): Promise<void> {
  const socket = tlsConnect({ host: '127.0.0.1', port, servername, ca: testCa(), checkServerIdentity: () => undefined });
  await once(socket, 'secureConnect');
  socket.end();
  await once(socket, 'close');
}

describe('L7Proxy metrics', () => {
  it('counts client bytes as on the wire, open connections at flush and closed ones once', async () => {
    await using l7 = await startL7Proxy(null);
    const client = netConnect(l7.port, '127.0.0.1');
    await once(client, 'connect');
    await requestOk(client);
    // Open: what has moved so far.
    expect(await l7.counter('secbeat_l7_bytes_total', { direction: 'in' })).toBe(client.bytesWritten);
    expect(await l7.counter('secbeat_l7_bytes_total', { direction: 'out' })).toBe(client.bytesRead);
    await requestOk(client);
    client.end();
    await vi.waitFor(() => expect(l7.proxy.stats().active).toBe(0));
    // Closed: the rest, and what was flushed while open is not added again.
    expect(await l7.counter('secbeat_l7_bytes_total', { direction: 'in' })).toBe(client.bytesWritten);
    expect(await l7.counter('secbeat_l7_bytes_total', { direction: 'out' })).toBe(client.bytesRead);
    expect(l7.proxy.stats()).toMatchObject({ bytesIn: client.bytesWritten, bytesOut: client.bytesRead });
    // A proxy without TLS exports no handshake series.
    const handshakes = (await l7.metrics.registry.getMetricsAsJSON()).find((m) => m.name === 'secbeat_tls_handshakes_total');
    expect(handshakes?.values).toEqual([]);
  });

  it('counts TLS connections by their raw bytes, records and handshake included', async () => {
    const store = certificateStore(10);
    store.install('a.example', testCert(['a.example']));
    await using l7 = await startL7Proxy(store);
    const raw = netConnect(l7.tlsPort, '127.0.0.1');
    const client = tlsConnect({ socket: raw, servername: 'a.example', ca: testCa(), ALPNProtocols: ['http/1.1'] });
    await once(client, 'secureConnect');
    await requestOk(client);
    client.end();
    await vi.waitFor(() => expect(l7.proxy.stats().active).toBe(0));
    expect(await l7.counter('secbeat_l7_bytes_total', { direction: 'in' })).toBe(raw.bytesWritten);
    expect(await l7.counter('secbeat_l7_bytes_total', { direction: 'out' })).toBe(raw.bytesRead);
    expect(raw.bytesRead).toBeGreaterThan(client.bytesRead);
  });

  it('counts completed and failed handshakes, but not a connection refused before its handshake', async () => {
    const store = certificateStore(10);
    store.install('a.example', testCert(['a.example']));
    await using l7 = await startL7Proxy(store);
    await handshake(l7.tlsPort, 'a.example');
    await handshake(l7.tlsPort, 'a.example');
    await vi.waitFor(async () => expect(await l7.counter('secbeat_tls_handshakes_total', { result: 'ok' })).toBe(2));
    // Plain HTTP to the TLS port: a failed handshake.
    const plain = netConnect(l7.tlsPort, '127.0.0.1', () => plain.write(REQUEST));
    plain.on('error', () => {});
    await once(plain, 'close');
    await vi.waitFor(async () => expect(await l7.counter('secbeat_tls_handshakes_total', { result: 'failed' })).toBe(1));
    // Refused at accept (reset before a byte of TLS is read): counted as a refusal only.
    l7.blockList.add('127.0.0.1', null);
    await expect(handshake(l7.tlsPort, 'a.example')).rejects.toThrow(/ECONNRESET/);
    l7.blockList.remove('127.0.0.1');
    // A later completed handshake orders this check after whatever the refused socket's end reported.
    await handshake(l7.tlsPort, 'a.example');
    await vi.waitFor(async () => expect(await l7.counter('secbeat_tls_handshakes_total', { result: 'ok' })).toBe(3));
    expect(l7.proxy.stats().refused).toBe(1);
    expect(await l7.counter('secbeat_tls_handshakes_total', { result: 'failed' })).toBe(1);
  });

  it('reads context-cache hits, misses and evictions off the CertificateStore', async () => {
    const store = certificateStore(1);
    store.install('a.example', testCert(['a.example']));
    store.install('b.example', testCert(['b.example'])); // evicts a.example's context (one entry)
    await using l7 = await startL7Proxy(store);
    await handshake(l7.tlsPort, 'b.example'); // hit
    await handshake(l7.tlsPort, 'a.example'); // miss: built, evicting b.example's
    await handshake(l7.tlsPort, 'a.example'); // hit
    await handshake(l7.tlsPort, 'unknown.example'); // default certificate: no cache lookup
    const expected = { hit: 2, miss: 1, evictions: 2 };
    // Twice: each read flushes, and a flush adds only what grew since the previous one.
    for (let i = 0; i < 2; i++) {
      expect(await l7.counter('secbeat_tls_context_cache_lookups_total', { result: 'hit' })).toBe(expected.hit);
      expect(await l7.counter('secbeat_tls_context_cache_lookups_total', { result: 'miss' })).toBe(expected.miss);
      expect(await l7.counter('secbeat_tls_context_cache_evictions_total')).toBe(expected.evictions);
    }
    expect(store.stats).toMatchObject({ hits: expected.hit, misses: expected.miss, evictions: expected.evictions });
  });

  it('flushes before every scrape of the thread while listening, and one last time when drained', async () => {
    await using l7 = await startL7Proxy(null);
    const bytesIn = async (): Promise<number> => (await l7.metrics.registry.getMetricsAsJSON()).find((m) => m.name === 'secbeat_l7_bytes_total')?.values.find((v) => v.labels['direction'] === 'in')?.value ?? 0;
    const client = netConnect(l7.port, '127.0.0.1');
    client.on('error', () => {});
    await once(client, 'connect');
    await requestOk(client);
    expect(await bytesIn()).toBe(0);
    await collectThreadMetrics();
    expect(await bytesIn()).toBe(client.bytesWritten);
    // More bytes on the still-open connection, then a drain that closes it: the drain flushes them.
    await requestOk(client);
    await l7.proxy.drain(0);
    expect(await bytesIn()).toBe(client.bytesWritten);
  });
});
