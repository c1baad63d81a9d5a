// L7 mode's per-thread settings, derived once from config on the main thread: addresses, limits, routes,
// and the PEM bytes of every certificate (read here, so worker threads open no files). Every certificate is
// installed once into a throwaway store here, so a key that does not match or a certificate that does not
// cover its route's hosts stops the start (and validate-config) with the store's own message. The same settings go to every thread, ticket keys included, so a TLS session resumes
// on whichever thread the kernel hands the next connection to.
import { randomBytes } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { resolve } from 'node:path';
import { SecbeatError } from '../errors.ts';
import { parseHostPort, type Config } from '../config/schema.ts';
import { certificateStore, type L7TlsSettings, type PemPair } from '../http/certificates.ts';
import type { L7Settings } from '../http/setup.ts';

/** Secure contexts kept warm per thread; each is ~40 KB (docs/rationale.md). */
const TLS_CONTEXT_CACHE_SIZE = 1_000;
const TICKET_KEYS_BYTES = 48;

export function l7Settings(config: Readonly<Config>, cwd: string): L7Settings {
  const { server, tls, l7 } = config;
  const listen = address(server.bind_address, 'server.bind_address');
  const backend = address(server.backend_address, 'server.backend_address');
  const read = (file: string): Uint8Array => readFileSync(resolve(cwd, file));
  const pair = (cert: string, key: string): PemPair => ({ cert: read(cert), key: read(key) });
  const tlsSettings: L7TlsSettings | null =
      tls.enabled && tls.cert_path !== undefined && tls.key_path !== undefined
        ? {
            listen: address(l7.tls_bind_address, 'l7.tls_bind_address'),
            minVersion: tls.min_version,
            ciphers: tls.ciphers,
            ticketKeys: randomBytes(TICKET_KEYS_BYTES),
            defaultCert: pair(tls.cert_path, tls.key_path),
            certs: l7.routes.flatMap((r) =>
              r.cert_path !== undefined && r.key_path !== undefined ? [{ hosts: r.hosts, pem: pair(r.cert_path, r.key_path) }] : [],
            ),
            contextCacheSize: TLS_CONTEXT_CACHE_SIZE,
          }
        : null;
  if (tlsSettings !== null) certificateStore({ ...tlsSettings, contextCacheSize: 1 });
  return {
    listen,
    tls: tlsSettings,
    routes: l7.routes.map((r) => ({ hosts: r.hosts, origins: r.origins })),
    defaultOrigins: [`http://${backend.host.includes(':') ? `[${backend.host}]` : backend.host}:${backend.port}`],
    trustedProxies: l7.trusted_proxies,
    proxyProtocol: l7.proxy_protocol,
    limits: {
      headerTimeoutMs: l7.header_timeout_ms,
      requestTimeoutMs: l7.request_timeout_ms,
      keepAliveTimeoutMs: l7.keepalive_timeout_ms,
      maxHeaderBytes: l7.max_header_bytes,
      maxHeaders: l7.max_headers,
      maxBodyBytes: l7.max_body_bytes,
      maxRequestsPerConnection: l7.max_requests_per_connection,
      maxConcurrentStreams: l7.max_concurrent_streams,
    },
    upstream: {
      connectTimeoutMs: server.connect_timeout_ms,
      headersTimeoutMs: l7.upstream_timeout_ms,
      bodyTimeoutMs: server.idle_timeout_ms,
      connectionsPerOrigin: l7.upstream_connections,
      ejectAfterFailures: l7.eject_after_failures,
      ejectMs: l7.eject_ms,
    },
  };
}

function address(text: string, key: string): { host: string; port: number } {
  const parsed = parseHostPort(text);
  if (parsed === null) throw new SecbeatError('SECBEAT_ERR_CONFIG_INVALID', `${key} must be host:port`);
  return parsed;
}
