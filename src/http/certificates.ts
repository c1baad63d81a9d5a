// The CertificateStore of L7 mode's TLS listener, built in each thread from the plain settings every thread
// gets (src/http/setup.ts) and brought up to date by each reload (`applyCertificates`). The pairs arrive
// checked by the main thread (src/tls/certificate-set.ts), so a thread builds only the default's context.
import { DEFAULT_CIPHERS } from 'node:tls';
import type { CertificateChanges, CertificateSet, PemPair } from '../messages.ts';
import { CertificateStore } from '../tls/cert-store.ts';

export interface L7TlsSettings {
  listen: { host: string; port: number };
  minVersion: 'TLSv1.2' | 'TLSv1.3';
  ciphers: string | undefined;
  /** 48 bytes, the same in every thread so a session ticket resumes on any of them. */
  ticketKeys: Uint8Array;
  certificates: CertificateSet;
  contextCacheSize: number;
}

/** A store with the settings' certificates. Throws SECBEAT_ERR_TLS_CERT when the default is unusable. */
export function certificateStore(tls: L7TlsSettings): CertificateStore {
  const store = emptyStore(tls);
  applyCertificates(store, tls.certificates);
  return store;
}

/**
 * The main thread's check of what only a secure context can tell: the default pair and the cipher list
 * (the other pairs are checked without one, by the loader).
 */
export function checkDefaultCertificate(tls: L7TlsSettings): void {
  emptyStore({ ...tls, contextCacheSize: 1 }).setDefault(pem(tls.certificates.defaultCert));
}

/** Brings `store` to exactly `set`; pairs with unchanged bytes keep their cached contexts. */
export function applyCertificates(store: CertificateStore, set: CertificateSet): CertificateChanges {
  const before = store.defaultCertificate?.generation;
  const after = store.setDefault(pem(set.defaultCert)).generation;
  return { ...store.replaceAll(set.table), defaultReplaced: after !== before };
}

function emptyStore(tls: L7TlsSettings): CertificateStore {
  return new CertificateStore(
    { minVersion: tls.minVersion, maxVersion: 'TLSv1.3', ciphers: tls.ciphers ?? DEFAULT_CIPHERS, contextCacheSize: tls.contextCacheSize },
    Buffer.from(tls.ticketKeys),
  );
}

function pem(pair: PemPair): { cert: Buffer; key: Buffer } {
  return { cert: Buffer.from(pair.cert), key: Buffer.from(pair.key) };
}
