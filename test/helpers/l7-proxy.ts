// An L7Proxy assembled from its parts, for tests that must hold one of them (the CertificateStore above all:
// certificates installed, replaced and removed while clients connect), in front of an origin that answers
// "ok"; both on loopback ports, closed on dispose.
import { createServer, type Server } from 'node:http';
import { createIpSetState, SharedIpSetWriter } from '../../src/blocklist/shared-ip-set.ts';
import { L7Proxy, type L7Limits } from '../../src/http/proxy.ts';
import { RouteTable } from '../../src/http/routes.ts';
import { Upstreams } from '../../src/http/upstream.ts';
import { CidrSet } from '../../src/net/cidr.ts';
import { ConnLimits, createConnLimitsState } from '../../src/proxy/conn-limits.ts';
import { rootLogger } from '../../src/telemetry/log.ts';
import { createMetrics, type Metrics } from '../../src/telemetry/metrics.ts';
import type { CertificateStore } from '../../src/tls/cert-store.ts';

export interface TestL7Proxy extends AsyncDisposable {
  proxy: L7Proxy;
  port: number;
  /** 0 without certificates. */
  tlsPort: number;
  metrics: Metrics;
  blockList: SharedIpSetWriter;
  /** One series of a counter, after flushing the proxy's batched counts; 0 when the series does not exist. */
  counter(name: string, labels?: Record<string, string>): Promise<number>;
}

/**
 * With `certs`, a TLS listener too, serving that store's certificates; `limits` override the defaults below;
 * `answerAfterMs` delays the origin's answer (requests still in flight when a client gives up).
 */
export async function startL7Proxy(certs: CertificateStore | null, limits: Partial<L7Limits> = {}, answerAfterMs = 0): Promise<TestL7Proxy> {
  const origin: Server = createServer((_req, res) => (answerAfterMs > 0 ? setTimeout(() => res.end('ok'), answerAfterMs) : res.end('ok')));
  await new Promise<void>((resolve) => origin.listen(0, '127.0.0.1', resolve));
  const originPort = (origin.address() as { port: number }).port;
  const metrics = createMetrics();
  const blockList = new SharedIpSetWriter(createIpSetState(64));
  const proxy = new L7Proxy({
    listen: { host: '127.0.0.1', port: 0 },
    tls: certs === null ? null : { listen: { host: '127.0.0.1', port: 0 }, certs, minVersion: 'TLSv1.2', ciphers: undefined },
    routes: new RouteTable([], [`http://127.0.0.1:${originPort}`]),
    upstreams: new Upstreams({ connectTimeoutMs: 1_000, headersTimeoutMs: 5_000, bodyTimeoutMs: 5_000, connectionsPerOrigin: 8, ejectAfterFailures: 2, ejectMs: 60_000, originCa: null, verifyOrigins: true }),
    trustedProxies: new CidrSet([]),
    proxyProtocol: false,
    waf: null,
    rateLimit: null,
    limits: {
      headerTimeoutMs: 5_000,
      requestTimeoutMs: 10_000,
      keepAliveTimeoutMs: 5_000,
      maxHeaderBytes: 8_192,
      maxHeaders: 50,
      maxBodyBytes: 0,
      maxRequestsPerConnection: 0,
      maxConcurrentStreams: 100,
      minBodyRate: 1_024,
      h2ResetBurst: 200,
      h2ResetRate: 20,
      ...limits,
    },
    connLimits: new ConnLimits(createConnLimitsState({ threads: 1, maxConnections: 1_000, perIpMaxConnections: 0 }), 0),
    blockList,
    metrics,
    log: rootLogger(),
    threadName: 'test',
  });
  const { port } = await proxy.listen();
  return {
    proxy,
    port,
    tlsPort: proxy.tlsPort,
    metrics,
    blockList,
    async counter(name, labels = {}) {
      proxy.flushMetrics();
      const metric = (await metrics.registry.getMetricsAsJSON()).find((m) => m.name === name);
      return metric?.values.find((v) => Object.entries(labels).every(([k, value]) => v.labels[k] === value))?.value ?? 0;
    },
    async [Symbol.asyncDispose]() {
      await proxy.close();
      origin.closeAllConnections();
      await new Promise<void>((resolve) => origin.close(() => resolve()));
    },
  };
}
