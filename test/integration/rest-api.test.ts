// A real node (bin/secbeat run) with an API token from the environment, called with node:http over loopback:
// /health and /metrics need no token, /api/v1/* does (401 without, 403 on a node without a token); an
// emergency CIDR block through the API refuses a TCP client of 127.0.0.1 on every thread, shows up in
// `secbeat ctl cidr list` (one implementation behind both) and in the attack events collected from every
// thread; unblocking lets the client through again.
import { request } from 'node:http';
import { afterEach, describe, expect, it } from 'vitest';
import { roundTrip, startEchoServer } from '../helpers/echo-server.ts';
import { startNode, type NodeProcess } from '../helpers/node-process.ts';

const TOKEN = 'it-token-0123456789';

const disposables: AsyncDisposable[] = [];
afterEach(async () => {
  for (const d of disposables.reverse()) await d[Symbol.asyncDispose]();
  disposables.length = 0;
});

async function setup(env: Record<string, string> = {}): Promise<NodeProcess> {
  const echo = await startEchoServer();
  disposables.push(echo);
  const node = await startNode({ backendPort: echo.port, env });
  disposables.push(node);
  return node;
}

interface Reply {
  status: number;
  headers: Record<string, string | string[] | undefined>;
  body: string;
  json: { ok: boolean; result?: unknown; error?: { code: string; message: string } } | null;
}

/** One request on its own connection (agent: false, so nothing stays open when the node stops). */
function call(node: NodeProcess, method: string, path: string, opts: { token?: string | null; body?: unknown } = {}): Promise<Reply> {
  const token = opts.token === undefined ? TOKEN : opts.token;
  const body = opts.body === undefined ? undefined : JSON.stringify(opts.body);
  return new Promise((resolve, reject) => {
    const req = request(
      {
        host: '127.0.0.1',
        port: node.metricsPort,
        method,
        path,
        agent: false,
        timeout: 10_000,
        headers: {
          ...(token === null ? {} : { authorization: `Bearer ${token}` }),
          ...(body === undefined ? {} : { 'content-type': 'application/json', 'content-length': Buffer.byteLength(body) }),
        },
      },
      (res) => {
        let text = '';
        res.setEncoding('utf8');
        res.on('data', (c: string) => (text += c));
        res.on('end', () => {
          const isJson = String(res.headers['content-type']).startsWith('application/json');
          resolve({ status: res.statusCode ?? 0, headers: res.headers, body: text, json: isJson ? (JSON.parse(text) as Reply['json']) : null });
        });
      },
    );
    req.on('timeout', () => req.destroy(new Error(`${method} ${path} timed out`)));
    req.on('error', reject);
    req.end(body);
  });
}

/** True when every attempt was refused: closed without an echo. */
async function refused(port: number): Promise<boolean> {
  const attempts = await Promise.allSettled(Array.from({ length: 10 }, () => roundTrip(port, Buffer.from('x'), 2_000)));
  return attempts.every((a) => a.status === 'rejected' || a.value.length === 0);
}

describe('REST API', () => {
  it('blocks a CIDR, refuses its clients, lists attack events, unblocks; /api needs the token, /health and /metrics do not', async () => {
    const node = await setup({ SECBEAT_ADMIN__API_TOKEN: TOKEN });

    expect(await call(node, 'GET', '/health', { token: null })).toMatchObject({ status: 200, body: '{"status":"ok"}' });
    const metrics = await call(node, 'GET', '/metrics', { token: null });
    expect(metrics.status).toBe(200);
    expect(metrics.body).toContain('secbeat_');

    const anonymous = await call(node, 'GET', '/api/v1/stats', { token: null });
    expect(anonymous).toMatchObject({ status: 401, json: { ok: false, error: { code: 'SECBEAT_ERR_API_UNAUTHORIZED' } } });
    expect(anonymous.headers['www-authenticate']).toBe('Bearer realm="secbeat"');
    expect(await call(node, 'GET', '/api/v1/stats', { token: 'guess' })).toMatchObject({ status: 401 });

    const stats = await call(node, 'GET', '/api/v1/stats');
    expect(stats).toMatchObject({ status: 200, json: { ok: true, result: { region: 'test', node: 'it-node', mode: 'tcp', threads: 3 } } });

    expect((await roundTrip(node.port, Buffer.from('before'))).toString()).toBe('before');
    const blocked = await call(node, 'POST', '/api/v1/emergency-block', { body: { cidr: '127.0.0.0/8', duration: 600 } });
    expect(blocked).toMatchObject({ status: 200, json: { ok: true, result: { cidr: '127.0.0.0/8', expiresAt: expect.any(Number) } } });
    expect(await refused(node.port)).toBe(true);

    const listed = await call(node, 'GET', '/api/v1/emergency-block');
    expect(listed.json?.result).toEqual({ blocked: [{ cidr: '127.0.0.0/8', expiresAt: expect.any(Number) }], capacity: 1024 });
    const ctl = await node.ctl('--json', 'cidr', 'list');
    expect(ctl.code).toBe(0);
    expect(JSON.parse(ctl.stdout)).toEqual(listed.json?.result);

    // Refusals are logged on the worker threads; the main thread collects them with its own events.
    const events = await call(node, 'GET', '/api/v1/events?type=attack&limit=50');
    expect(events.status).toBe(200);
    const list = (events.json?.result as { events: { event: string; thread: string; at: number; [k: string]: unknown }[] }).events;
    expect(list).toContainEqual(expect.objectContaining({ event: 'cidr.blocked', cidr: '127.0.0.0/8', durationSec: 600, source: 'api', thread: 'main' }));
    expect(list).toContainEqual(expect.objectContaining({ event: 'admin.rejected', code: 'SECBEAT_ERR_API_UNAUTHORIZED', thread: 'main' }));
    const refusals = list.filter((e) => e.event === 'conn.refused');
    expect(refusals.length).toBeGreaterThan(0);
    expect(refusals.every((e) => e['reason'] === 'blocklist' && e['clientIp'] === '127.0.0.1' && /^w\d$/.test(e.thread))).toBe(true);
    expect(list.map((e) => e.at)).toEqual(list.map((e) => e.at).sort((a, b) => a - b));
    const human = await node.ctl('events', '--type', 'attack');
    expect(human.stdout).toMatch(/conn\.refused\s+mode=tcp reason=blocklist clientIp=127\.0\.0\.1/);

    const unblocked = await call(node, 'DELETE', '/api/v1/emergency-block', { body: { cidr: '127.0.0.0/8' } });
    expect(unblocked).toMatchObject({ status: 200, json: { ok: true, result: { cidr: '127.0.0.0/8', removed: true } } });
    expect((await roundTrip(node.port, Buffer.from('after'))).toString()).toBe('after');
    const all = await call(node, 'GET', '/api/v1/events?limit=5');
    expect(all.json?.result).toMatchObject({ events: expect.arrayContaining([expect.objectContaining({ event: 'cidr.unblocked', source: 'api' })]) });

    // Exact addresses through the same API; the DELETE takes its argument from the query string too.
    expect(await call(node, 'POST', '/api/v1/block-ip', { body: { ip: '127.0.0.1' } })).toMatchObject({ status: 200, json: { ok: true } });
    expect(await refused(node.port)).toBe(true);
    expect(await call(node, 'DELETE', '/api/v1/block-ip?ip=127.0.0.1')).toMatchObject({ status: 200, json: { result: { ip: '127.0.0.1', removed: true } } });
    expect((await roundTrip(node.port, Buffer.from('again'))).toString()).toBe('again');

    expect(await call(node, 'POST', '/api/v1/reload')).toMatchObject({ status: 200, json: { ok: true, result: { ok: true } } });
    expect(await call(node, 'POST', '/api/v1/emergency-block', { body: { cidr: '127.0.0.1/8' } })).toMatchObject({
      status: 400,
      json: { error: { code: 'SECBEAT_ERR_ADMIN_INVALID_ARGS', message: expect.stringContaining('the network is 127.0.0.0/8') } },
    });
    expect(await call(node, 'GET', '/api/v1/nothing')).toMatchObject({ status: 404, json: { error: { code: 'SECBEAT_ERR_API_NOT_FOUND' } } });
    expect(await call(node, 'PATCH', '/api/v1/block-ip')).toMatchObject({ status: 405, headers: { allow: 'GET, POST, DELETE' } });
    expect(node.proc.exitCode).toBeNull();
  });

  it('answers 403 on /api while no token is configured, and keeps serving /health', async () => {
    const node = await setup();
    expect(await call(node, 'GET', '/api/v1/stats')).toMatchObject({ status: 403, json: { ok: false, error: { code: 'SECBEAT_ERR_API_DISABLED' } } });
    expect(await call(node, 'GET', '/health', { token: null })).toMatchObject({ status: 200 });
  });
});
