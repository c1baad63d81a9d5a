// Acceptance test of hot certificate changes on L7 mode's TLS listener (the L7 issue: "install / replace /
// remove at run time with no restart and no failed handshake during a swap"). Four clients loop through full
// handshakes (no session resumption), one HTTP/1.1 request each, while the certificate of one name is
// replaced again and again and another name is removed and installed back. No handshake and no request may
// fail, and a handshake during which nothing changed must present what the last change installed.
import { randomBytes, X509Certificate } from 'node:crypto';
import { DEFAULT_CIPHERS } from 'node:tls';
import { beforeAll, describe, expect, it } from 'vitest';
import { CertificateStore } from '../../../src/tls/cert-store.ts';
import { testCert, type TestCert } from '../../helpers/certs.ts';
import { startL7Proxy } from '../../helpers/l7-proxy.ts';
import { fingerprintOf as fingerprint, handshakeAndGet } from '../../helpers/tls-client.ts';

const CLIENTS = 4;
const HANDSHAKES_PER_CLIENT = 100;
/** A change (replace one name, remove or re-install the other) after every this many completed handshakes. */
const CHANGE_EVERY = 20;
const SWAPPED = 'swap.example';
const TOGGLED = 'other.example';

let swapA: TestCert;
let swapB: TestCert;
let swapC: TestCert;
let other: TestCert;
let fallback: TestCert;

beforeAll(() => {
  // Two certificates for the same name from the same CA: only serial and key tell them apart.
  swapA = testCert([SWAPPED]);
  swapB = testCert([SWAPPED]);
  swapC = testCert([SWAPPED]);
  other = testCert([TOGGLED]);
  fallback = testCert(['default.example']);
});

describe('hot certificate changes on the L7 TLS listener', () => {
  it('replaces and removes certificates under load with no failed handshake or request', { timeout: 60_000 }, async () => {
    // A one-entry context cache: most handshakes also rebuild a context lazily, the path a swap invalidates.
    const store = new CertificateStore({ minVersion: 'TLSv1.2', maxVersion: 'TLSv1.3', ciphers: DEFAULT_CIPHERS, contextCacheSize: 1 }, randomBytes(48));
    store.setDefault(fallback);
    store.install(SWAPPED, swapA);
    store.install(TOGGLED, other);
    await using l7 = await startL7Proxy(store);

    /** What a handshake starting now must be presented, per name. */
    const current = new Map([
      [SWAPPED, fingerprint(swapA)],
      [TOGGLED, fingerprint(other)],
    ]);
    const allowed = new Map([
      [SWAPPED, new Set([fingerprint(swapA), fingerprint(swapB)])],
      [TOGGLED, new Set([fingerprint(other), fingerprint(fallback)])],
    ]);
    let changes = 0;
    let removals = 0;
    function change(): void {
      changes++;
      const next = changes % 2 === 1 ? swapB : swapA;
      store.install(SWAPPED, next);
      current.set(SWAPPED, fingerprint(next));
      if (store.remove(TOGGLED)) {
        removals++;
        current.set(TOGGLED, fingerprint(fallback));
      } else {
        store.install(TOGGLED, other);
        current.set(TOGGLED, fingerprint(other));
      }
    }

    const failures: string[] = [];
    const presented = new Map<string, Set<string>>([
      [SWAPPED, new Set()],
      [TOGGLED, new Set()],
    ]);
    let completed = 0;
    let spanningAChange = 0;
    async function client(id: number): Promise<void> {
      // Half the clients stop at TLS 1.2, whose handshake takes one more round trip than 1.3's.
      const maxVersion = id % 2 === 0 ? 'TLSv1.3' : 'TLSv1.2';
      for (let i = 0; i < HANDSHAKES_PER_CLIENT; i++) {
        const name = (id + i) % 2 === 0 ? SWAPPED : TOGGLED;
        const changesBefore = changes;
        const expected = current.get(name);
        try {
          // TOGGLED is answered with the default certificate while removed: its name is not checked.
          const got = await handshakeAndGet(l7.tlsPort, name, { maxVersion, verifyName: name !== TOGGLED });
          presented.get(name)!.add(got.fingerprint);
          if (got.status !== 200) failures.push(`${name}: status ${got.status}`);
          if (!allowed.get(name)!.has(got.fingerprint)) failures.push(`${name}: unexpected certificate ${got.serial}`);
          if (changes !== changesBefore) spanningAChange++;
          // Nothing changed while this handshake ran: its SNI lookup saw the current certificate.
          else if (got.fingerprint !== expected) failures.push(`${name}: stale certificate ${got.serial} after change ${changes}`);
        } catch (err) {
          failures.push(`${name} (${maxVersion}): ${(err as Error).message}`);
        }
        if (++completed % CHANGE_EVERY === 0) change();
      }
    }
    await Promise.all(Array.from({ length: CLIENTS }, (_, id) => client(id)));

    const handshakes = CLIENTS * HANDSHAKES_PER_CLIENT;
    expect(failures).toEqual([]);
    expect(completed).toBe(handshakes);
    expect(changes).toBe(handshakes / CHANGE_EVERY);
    expect(removals).toBe(changes / 2);
    // Every change landed while other clients were mid-exchange, and both sides of every swap were served.
    expect(spanningAChange).toBeGreaterThan(0);
    expect(presented.get(SWAPPED)).toEqual(allowed.get(SWAPPED));
    expect(presented.get(TOGGLED)).toEqual(allowed.get(TOGGLED));

    // After a replace, the next handshake presents the new certificate: a third one, never served before.
    store.install(SWAPPED, swapC);
    const after = await handshakeAndGet(l7.tlsPort, SWAPPED, { maxVersion: 'TLSv1.3' });
    expect(after.fingerprint).toBe(fingerprint(swapC));
    expect(after.serial).toBe(new X509Certificate(swapC.cert).serialNumber);

    // The server saw the same: every handshake completed, none failed, every request answered by the origin.
    expect(await l7.counter('secbeat_tls_handshakes_total', { result: 'ok' })).toBe(handshakes + 1);
    expect(await l7.counter('secbeat_tls_handshakes_total', { result: 'failed' })).toBe(0);
    expect(await l7.counter('secbeat_requests_total', { mode: 'l7', status_class: '2xx' })).toBe(handshakes + 1);
  });
});
