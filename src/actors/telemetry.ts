// The telemetry actor serves /metrics and /health on the [metrics] address and samples process CPU and
// memory. A scrape merges the main thread's registry with every worker thread's (collected through the
// runtime's control channel), so each metric is exported once for the node.
import { createServer, type Server } from 'node:http';
import { SecbeatError, assertNever } from '../errors.ts';
import type { TelemetryMsg } from '../messages.ts';
import type { Behavior } from '../runtime/actor.ts';
import { aggregateMetrics, metrics, type MetricsJson } from '../telemetry/metrics.ts';

export interface TelemetryInput {
  /** null = no HTTP listener (metrics disabled); the actor still samples. */
  listen: { host: string; port: number } | null;
  sampleIntervalMs: number;
  /** Registries of every thread, this one included. */
  collect: () => Promise<MetricsJson[]>;
}

interface TelemetryState {
  server: Server | null;
  lastCpu: NodeJS.CpuUsage;
  lastAt: number;
  sampleIntervalMs: number;
}

export const telemetry: Behavior<TelemetryState, TelemetryMsg, TelemetryInput> = {
  name: 'telemetry',
  async init(ctx, input) {
    const server = input.listen ? await serveMetrics(input.listen, input.collect) : null;
    if (server) ctx.log.info({ address: server.address() }, 'metrics listener ready');
    ctx.schedule(input.sampleIntervalMs, { type: 'telemetry.sample' });
    return { server, lastCpu: process.cpuUsage(), lastAt: ctx.clock.now(), sampleIntervalMs: input.sampleIntervalMs };
  },
  receive(state, msg, ctx) {
    switch (msg.type) {
      case 'telemetry.sample': {
        const now = ctx.clock.now();
        const cpu = process.cpuUsage();
        const usedUs = cpu.user - state.lastCpu.user + (cpu.system - state.lastCpu.system);
        const wallMs = Math.max(1, now - state.lastAt);
        metrics().cpuUsage.set((usedUs / 1000 / wallMs) * 100);
        const mem = process.memoryUsage();
        metrics().memoryUsage.set({ kind: 'rss' }, mem.rss);
        metrics().memoryUsage.set({ kind: 'heap_used' }, mem.heapUsed);
        metrics().memoryUsage.set({ kind: 'external' }, mem.external);
        ctx.schedule(state.sampleIntervalMs, { type: 'telemetry.sample' });
        return { ...state, lastCpu: cpu, lastAt: now };
      }
      default:
        // A one-member union narrows only the discriminant.
        return assertNever(msg.type);
    }
  },
  async stop(state) {
    const server = state.server;
    if (server) await new Promise<void>((resolve) => server.close(() => resolve()));
  },
};

async function serveMetrics(listen: { host: string; port: number }, collect: () => Promise<MetricsJson[]>): Promise<Server> {
  const server = createServer((req, res) => {
    if (req.method !== 'GET') {
      res.writeHead(405, { allow: 'GET' }).end();
      return;
    }
    if (req.url === '/health') {
      res.writeHead(200, { 'content-type': 'application/json' }).end('{"status":"ok"}');
      return;
    }
    if (req.url !== '/metrics') {
      res.writeHead(404).end();
      return;
    }
    collect()
      .then(aggregateMetrics)
      .then(
        ({ contentType, body }) => res.writeHead(200, { 'content-type': contentType }).end(body),
        () => res.writeHead(500).end(),
      );
  });
  server.keepAliveTimeout = 5_000;
  server.headersTimeout = 10_000;
  server.requestTimeout = 10_000;
  await new Promise<void>((resolve, reject) => {
    server.once('error', (err) => reject(new SecbeatError('SECBEAT_ERR_METRICS_LISTEN', `cannot listen on ${listen.host}:${listen.port}: ${err.message}`, { cause: err })));
    server.listen({ host: listen.host, port: listen.port }, () => resolve());
  });
  return server;
}
