// The CertificateStore of L7 mode's TLS listener, built in each thread from the plain settings every thread
// gets (src/http/setup.ts), and once on the main thread before any (src/node/l7-settings.ts), so a thread
// never meets a certificate the store refuses.
import { DEFAULT_CIPHERS } from 'node:tls';
import { CertificateStore } from '../tls/cert-store.ts';

export interface PemPair {
  cert: Uint8Array;
  key: Uint8Array;
}

export interface L7TlsSettings {
  listen: { host: string; port: number };
  minVersion: 'TLSv1.2' | 'TLSv1.3';
  ciphers: string | undefined;
  /** 48 bytes, the same in every thread so a session ticket resumes on any of them. */
  ticketKeys: Uint8Array;
  defaultCert: PemPair;
  /** Per-route certificates, installed under each of the route's hosts. */
  certs: { hosts: string[]; pem: PemPair }[];
  contextCacheSize: number;
}

/** Throws SECBEAT_ERR_TLS_CERT for the first certificate the store refuses. */
export function certificateStore(tls: L7TlsSettings): CertificateStore {
  const store = new CertificateStore(
    { minVersion: tls.minVersion, maxVersion: 'TLSv1.3', ciphers: tls.ciphers ?? DEFAULT_CIPHERS, contextCacheSize: tls.contextCacheSize },
    Buffer.from(tls.ticketKeys),
  );
  store.setDefault(pem(tls.defaultCert));
  for (const { hosts, pem: pair } of tls.certs) for (const host of hosts) store.install(host, pem(pair));
  return store;
}

function pem(pair: PemPair): { cert: Buffer; key: Buffer } {
  return { cert: Buffer.from(pair.cert), key: Buffer.from(pair.key) };
}
