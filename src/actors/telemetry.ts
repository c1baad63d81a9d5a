// The telemetry actor serves the management listener on the [metrics] address — /metrics and /health without
// a token, the REST API under /api/ with one (src/admin/rest-api.ts) — and samples process CPU and memory. A
// scrape merges the main thread's registry with every worker thread's (collected through the runtime's control
// channel), so each metric is exported once for the node.
import type { Server } from 'node:net';
import { API_PREFIX, httpRequestError, MAX_API_BODY_BYTES, RestApi, type RestApiOptions } from '../admin/rest-api.ts';
import { SecbeatError, assertNever } from '../errors.ts';
import type { TelemetryMsg } from '../messages.ts';
import { serveSmallHttp, SMALL_HTTP_DEFAULTS, type SmallRequest, type SmallResponse } from '../net/small-http.ts';
import type { Behavior } from '../runtime/actor.ts';
import { aggregateMetrics, metrics, type MetricsJson } from '../telemetry/metrics.ts';

export interface TelemetryInput {
  /** null = no HTTP listener (metrics disabled); the actor still samples. */
  listen: { host: string; port: number } | null;
  sampleIntervalMs: number;
  /** Registries of every thread, this one included. */
  collect: () => Promise<MetricsJson[]>;
  /** The REST API's token and command handler. */
  api: Omit<RestApiOptions, 'log'>;
}

interface TelemetryState {
  server: Server | null;
  api: RestApi;
  lastCpu: NodeJS.CpuUsage;
  lastAt: number;
  sampleIntervalMs: number;
}

export const telemetry: Behavior<TelemetryState, TelemetryMsg, TelemetryInput> = {
  name: 'telemetry',
  async init(ctx, input) {
    const api = new RestApi({ ...input.api, log: ctx.log });
    const server = input.listen ? await serveManagement(input.listen, input.collect, api) : null;
    if (server) ctx.log.info({ address: server.address(), api: input.api.token() !== undefined }, 'metrics listener ready');
    ctx.schedule(input.sampleIntervalMs, { type: 'telemetry.sample' });
    return { server, api, lastCpu: process.cpuUsage(), lastAt: ctx.clock.now(), sampleIntervalMs: input.sampleIntervalMs };
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
    state.api.close();
  },
};

async function serveManagement(listen: { host: string; port: number }, collect: () => Promise<MetricsJson[]>, api: RestApi): Promise<Server> {
  const handle = async (req: SmallRequest): Promise<SmallResponse> => {
    // Prometheus scrapes and load-balancer health checks carry no token; the API always needs one.
    if (req.path.startsWith(API_PREFIX)) return api.handle(req);
    if (req.method !== 'GET' && req.method !== 'HEAD') return { status: 405, headers: { allow: 'GET, HEAD' } };
    if (req.path === '/health') return { status: 200, headers: { 'content-type': 'application/json' }, body: '{"status":"ok"}' };
    if (req.path !== '/metrics') return { status: 404 };
    const { contentType, body } = await aggregateMetrics(await collect());
    return { status: 200, headers: { 'content-type': contentType }, body };
  };
  try {
    return await serveSmallHttp(listen, handle, { ...SMALL_HTTP_DEFAULTS, maxBodyBytes: MAX_API_BODY_BYTES }, httpRequestError);
  } catch (err) {
    throw new SecbeatError('SECBEAT_ERR_METRICS_LISTEN', `cannot listen on ${listen.host}:${listen.port}: ${(err as Error).message}`, { cause: err });
  }
}
