// The REST API: authentication (disabled, missing, wrong, right token), routing (404, 405 with Allow), argument
// decoding from JSON bodies and query strings into admin commands, and the mapping of outcomes to statuses and
// JSON bodies — with an in-test handler standing in for src/node/commands.ts. One test goes through a real
// small-http listener for the errors it answers before any routing (413).
import type { Server } from 'node:net';
import { pino } from 'pino';
import { afterEach, describe, expect, it } from 'vitest';
import { API_ROUTES, httpRequestError, MAX_API_BODY_BYTES, RestApi } from '../../../src/admin/rest-api.ts';
import { SecbeatError } from '../../../src/errors.ts';
import type { AdminRequest } from '../../../src/messages.ts';
import { serveSmallHttp, SMALL_HTTP_DEFAULTS, type SmallRequest, type SmallResponse } from '../../../src/net/small-http.ts';
import { recentSecurityEvents } from '../../../src/telemetry/events.ts';

const TOKEN = 's3cret-token';

interface Harness {
  api: RestApi;
  /** Commands the API asked the handler to run. */
  seen: AdminRequest[];
  call: (method: string, target: string, opts?: { body?: string | Buffer; auth?: string | null }) => Promise<{ status: number; headers: Record<string, string>; json: unknown }>;
}

function harness(opts: { token?: string | undefined; execute?: (req: AdminRequest) => Promise<unknown> } = {}): Harness {
  const seen: AdminRequest[] = [];
  const token = 'token' in opts ? opts.token : TOKEN;
  const api = new RestApi({
    token: () => token,
    execute: (req) => {
      seen.push(req);
      return opts.execute ? opts.execute(req) : Promise.resolve({ ran: req.cmd });
    },
    log: pino({ level: 'silent' }),
  });
  const call: Harness['call'] = async (method, target, { body = '', auth = `Bearer ${TOKEN}` } = {}) => {
    const q = target.indexOf('?');
    const headers = new Map<string, string>(auth === null ? [] : [['authorization', auth]]);
    const req: SmallRequest = {
      method,
      path: q === -1 ? target : target.slice(0, q),
      query: new URLSearchParams(q === -1 ? '' : target.slice(q + 1)),
      headers,
      body: Buffer.from(body),
      remoteAddress: '127.0.0.1',
    };
    const res: SmallResponse = await api.handle(req);
    expect(res.headers?.['content-type']).toBe('application/json');
    return { status: res.status, headers: { ...res.headers }, json: JSON.parse(String(res.body)) };
  };
  return { api, seen, call };
}

const error = (code: string, message: string | RegExp = /./) => ({
  ok: false,
  error: { code, message: typeof message === 'string' ? message : expect.stringMatching(message) },
});

describe('RestApi authentication', () => {
  it('answers 403 on every route while no token is configured', async () => {
    const { call, seen } = harness({ token: undefined });
    const r = await call('GET', '/api/v1/stats');
    expect(r.status).toBe(403);
    expect(r.json).toEqual(error('SECBEAT_ERR_API_DISABLED', /set \[admin\] api_token/));
    expect((await call('GET', '/api/v1/nope')).status).toBe(403);
    expect(seen).toEqual([]);
  });

  it.each([
    ['no header', null, /send Authorization: Bearer <token>/],
    ['another scheme', `Basic ${Buffer.from(`x:${TOKEN}`).toString('base64')}`, /send Authorization/],
    ['a wrong token', 'Bearer s3cret-tokem', /wrong/],
    ['a prefix of the token', 'Bearer s3cret', /wrong/],
    ['an empty token', 'Bearer ', /wrong/],
  ])('answers 401 with WWW-Authenticate for %s, before routing', async (_, auth, message) => {
    const { call, seen } = harness();
    for (const target of ['/api/v1/stats', '/api/v1/no-such-route']) {
      const r = await call('GET', target, { auth });
      expect(r.status).toBe(401);
      expect(r.headers['www-authenticate']).toBe('Bearer realm="secbeat"');
      expect(r.json).toEqual(error('SECBEAT_ERR_API_UNAUTHORIZED', message));
    }
    expect(seen).toEqual([]);
  });

  it('accepts the scheme in any case, reads the token per request (a reload rotates it), and logs refusals as attack events', async () => {
    let token = 'one';
    const api = new RestApi({ token: () => token, execute: () => Promise.resolve('ok'), log: pino({ level: 'silent' }) });
    const req = (auth: string): SmallRequest => ({
      method: 'GET',
      path: '/api/v1/stats',
      query: new URLSearchParams(),
      headers: new Map([['authorization', auth]]),
      body: Buffer.alloc(0),
      remoteAddress: '198.51.100.66',
    });
    expect((await api.handle(req('bearer one'))).status).toBe(200);
    token = 'two';
    expect((await api.handle(req('Bearer one'))).status).toBe(401);
    expect((await api.handle(req('BEARER two'))).status).toBe(200);
    const rejected = recentSecurityEvents(1, 'attack')[0];
    expect(rejected).toMatchObject({ event: 'admin.rejected', code: 'SECBEAT_ERR_API_UNAUTHORIZED', detail: expect.stringContaining('198.51.100.66') });
  });
});

describe('RestApi routing and arguments', () => {
  it.each([
    ['GET', '/api/v1/stats', '', { cmd: 'node.stats' }],
    ['GET', '/api/v1/events', '', { cmd: 'events.list', type: 'all', limit: 100 }],
    ['GET', '/api/v1/events?type=attack&limit=5', '', { cmd: 'events.list', type: 'attack', limit: 5 }],
    ['GET', '/api/v1/certificates', '', { cmd: 'certs.list', limit: 100 }],
    ['GET', '/api/v1/certificates?limit=20', '', { cmd: 'certs.list', limit: 20 }],
    ['POST', '/api/v1/reload', '', { cmd: 'config.reload' }],
    ['POST', '/api/v1/reload', '{}', { cmd: 'config.reload' }],
    ['GET', '/api/v1/block-ip', '', { cmd: 'block.list' }],
    ['POST', '/api/v1/block-ip', '{"ip":"203.0.113.9","duration":600}', { cmd: 'block.add', ip: '203.0.113.9', durationSec: 600 }],
    ['POST', '/api/v1/block-ip?ip=2001:db8::1&duration=60', '', { cmd: 'block.add', ip: '2001:db8::1', durationSec: 60 }],
    ['DELETE', '/api/v1/block-ip', '{"ip":"203.0.113.9"}', { cmd: 'block.remove', ip: '203.0.113.9' }],
    ['DELETE', '/api/v1/block-ip?ip=203.0.113.9', '', { cmd: 'block.remove', ip: '203.0.113.9' }],
    ['GET', '/api/v1/emergency-block', '', { cmd: 'cidr.list' }],
    ['POST', '/api/v1/emergency-block', '{"cidr":"203.0.113.0/24"}', { cmd: 'cidr.block', cidr: '203.0.113.0/24' }],
    ['POST', '/api/v1/emergency-block', '{"cidr":"2001:db8::/32","duration":3600}', { cmd: 'cidr.block', cidr: '2001:db8::/32', durationSec: 3600 }],
    ['DELETE', '/api/v1/emergency-block?cidr=203.0.113.0/24', '', { cmd: 'cidr.unblock', cidr: '203.0.113.0/24' }],
    ['GET', '/api/v1/domains?limit=5', '', { cmd: 'domains.list', limit: 5 }],
    ['POST', '/api/v1/domains', '{"domains":[{"host":"shop.example","origins":["http://10.0.0.5:8080"]}]}', { cmd: 'domains.upsert', domains: [{ host: 'shop.example', origins: ['http://10.0.0.5:8080'] }] }],
    ['DELETE', '/api/v1/domains', '{"hosts":["shop.example"]}', { cmd: 'domains.remove', hosts: ['shop.example'] }],
    ['POST', '/api/v1/domains/compact', '', { cmd: 'domains.compact' }],
    ['GET', '/api/v1/policy?limit=3', '', { cmd: 'policy.list', limit: 3 }],
    ['POST', '/api/v1/policy', '{"kind":"block","entries":[{"cidr":"203.0.113.0/24"}]}', { cmd: 'policy.upsert', kind: 'block', entries: [{ cidr: '203.0.113.0/24' }] }],
    ['DELETE', '/api/v1/policy', '{"kind":"rule","names":["100"]}', { cmd: 'policy.remove', kind: 'rule', names: ['100'] }],
  ])('%s %s %s runs %j', async (method, target, body, command) => {
    const { call, seen } = harness();
    const r = await call(method, target, { body });
    expect(r).toMatchObject({ status: 200, json: { ok: true, result: { ran: command.cmd } } });
    expect(r.headers['cache-control']).toBe('no-store');
    expect(seen).toEqual([{ ...command, id: 1 }]);
  });

  it('covers every route in the table above', () => {
    const tested = new Set(['GET /api/v1/stats', 'GET /api/v1/events', 'GET /api/v1/certificates', 'POST /api/v1/reload', 'GET /api/v1/block-ip', 'POST /api/v1/block-ip', 'DELETE /api/v1/block-ip', 'POST /api/v1/domains/compact']);
    for (const p of ['GET', 'POST', 'DELETE']) tested.add(`${p} /api/v1/emergency-block`).add(`${p} /api/v1/domains`).add(`${p} /api/v1/policy`);
    expect(new Set(API_ROUTES.map((r) => `${r.method} ${r.path}`))).toEqual(tested);
  });

  it('answers 404 for an unknown route and 405 with Allow for a known path with another method', async () => {
    const { call, seen } = harness();
    expect(await call('GET', '/api/v1/frobnicate')).toMatchObject({ status: 404, json: error('SECBEAT_ERR_API_NOT_FOUND', /no route \/api\/v1\/frobnicate/) });
    expect(await call('GET', '/api/v2/stats')).toMatchObject({ status: 404 });
    const r = await call('PUT', '/api/v1/emergency-block');
    expect(r).toMatchObject({ status: 405, json: error('SECBEAT_ERR_API_METHOD_NOT_ALLOWED', '/api/v1/emergency-block accepts GET, POST, DELETE') });
    expect(r.headers['allow']).toBe('GET, POST, DELETE');
    expect(seen).toEqual([]);
  });

  it.each([
    ['not JSON', 'POST', '/api/v1/block-ip', '{"ip":', 'SECBEAT_ERR_API_MALFORMED', /must be a JSON object/],
    ['a JSON array', 'POST', '/api/v1/block-ip', '["203.0.113.9"]', 'SECBEAT_ERR_API_MALFORMED', /must be a JSON object/],
    ['invalid UTF-8', 'POST', '/api/v1/block-ip', Buffer.from([0x7b, 0x22, 0xff, 0x22, 0x7d]), 'SECBEAT_ERR_API_MALFORMED', /in UTF-8/],
    ['a missing argument', 'POST', '/api/v1/block-ip', '{}', 'SECBEAT_ERR_ADMIN_INVALID_ARGS', /^ip: Invalid input/],
    ['an unknown argument', 'POST', '/api/v1/block-ip', '{"ip":"203.0.113.9","ttl":5}', 'SECBEAT_ERR_ADMIN_INVALID_ARGS', /unknown argument "ttl"; POST \/api\/v1\/block-ip takes ip, duration/],
    ['a file to reload', 'POST', '/api/v1/reload', '{"file":"/etc/passwd"}', 'SECBEAT_ERR_ADMIN_INVALID_ARGS', /unknown argument "file"; .* takes no arguments/],
    ['a zero duration, named as the route names it', 'POST', '/api/v1/block-ip', '{"ip":"203.0.113.9","duration":0}', 'SECBEAT_ERR_ADMIN_INVALID_ARGS', /^duration: Too small/],
    ['a duration as text in JSON', 'POST', '/api/v1/block-ip', '{"ip":"203.0.113.9","duration":"60"}', 'SECBEAT_ERR_ADMIN_INVALID_ARGS', /^duration: Invalid input: expected number, received string/],
    ['a limit that is not a number', 'GET', '/api/v1/events?limit=ten', '', 'SECBEAT_ERR_ADMIN_INVALID_ARGS', /^limit: Invalid input: expected number/],
    ['an unknown event type', 'GET', '/api/v1/events?type=scary', '', 'SECBEAT_ERR_ADMIN_INVALID_ARGS', /^type: Invalid option/],
    ['a repeated query argument', 'DELETE', '/api/v1/block-ip?ip=1.2.3.4&ip=5.6.7.8', '', 'SECBEAT_ERR_ADMIN_INVALID_ARGS', /ip: given more than once/],
    ['a body and a query string', 'POST', '/api/v1/block-ip?duration=5', '{"ip":"203.0.113.9"}', 'SECBEAT_ERR_ADMIN_INVALID_ARGS', /not both/],
    ['an address that is not one', 'POST', '/api/v1/block-ip', '{"ip":"300.1.1.1"}', 'SECBEAT_ERR_ADMIN_INVALID_ARGS', /^ip: Invalid input/],
    ['a network without a prefix', 'POST', '/api/v1/emergency-block', '{"cidr":"203.0.113.0"}', 'SECBEAT_ERR_ADMIN_INVALID_ARGS', /^cidr: expected a network like/],
  ])('answers 400 for %s', async (_, method, target, body, code, message) => {
    const { call, seen } = harness();
    const r = await call(method, target, { body });
    expect(r).toMatchObject({ status: 400, json: error(code, message) });
    expect(seen).toEqual([]);
  });
});

describe('RestApi outcomes', () => {
  it('passes a command’s own client error through as 400', async () => {
    const { call } = harness({ execute: () => Promise.reject(new SecbeatError('SECBEAT_ERR_ADMIN_INVALID_ARGS', 'cidr: 10.0.0.1/8 has host bits set')) });
    expect(await call('POST', '/api/v1/emergency-block', { body: '{"cidr":"10.0.0.1/8"}' })).toMatchObject({
      status: 400,
      json: error('SECBEAT_ERR_ADMIN_INVALID_ARGS', 'cidr: 10.0.0.1/8 has host bits set'),
    });
  });

  it('answers 503 for an unavailable node part and 500 for a bug, with a log reference and no internals', async () => {
    const timeout = harness({ execute: () => Promise.reject(new SecbeatError('SECBEAT_ERR_ASK_TIMEOUT', 'thread w1 did not answer events.list within 5000 ms')) });
    const busy = await timeout.call('GET', '/api/v1/events');
    expect(busy).toMatchObject({ status: 503, json: error('SECBEAT_ERR_ASK_TIMEOUT', /^no reply before the ask deadline \(ref [0-9a-f]{8} in the node's log\)$/) });
    const bug = harness({ execute: () => Promise.reject(new TypeError('cannot read properties of undefined (reading "secretField")')) });
    const r = await bug.call('GET', '/api/v1/stats');
    expect(r).toMatchObject({ status: 500, json: error('SECBEAT_ERR_INTERNAL', /^internal error \(ref [0-9a-f]{8} in the node's log\)$/) });
    expect(JSON.stringify(r.json)).not.toContain('secretField');
    const unencodable = harness({ execute: () => Promise.resolve({ big: 1n }) });
    expect(await unencodable.call('GET', '/api/v1/stats')).toMatchObject({ status: 500, json: error('SECBEAT_ERR_INTERNAL') });
  });

  it('answers a reload that kept the running config with 422 and the issues', async () => {
    const { call } = harness({ execute: () => Promise.resolve({ ok: false, issues: ['node.toml:3:1 server.mode: Invalid option'], version: 1 }) });
    expect(await call('POST', '/api/v1/reload')).toMatchObject({
      status: 422,
      json: { ...error('SECBEAT_ERR_CONFIG_INVALID', 'node.toml:3:1 server.mode: Invalid option'), result: { ok: false, version: 1 } },
    });
    const ok = harness({ execute: () => Promise.resolve({ ok: true, issues: [], version: 2 }) });
    expect(await ok.call('POST', '/api/v1/reload')).toMatchObject({ status: 200, json: { ok: true, result: { ok: true, version: 2 } } });
  });
});

describe('the management listener’s own refusals', () => {
  let server: Server | null = null;
  afterEach(async () => {
    const s = server;
    server = null;
    if (s) await new Promise<void>((r) => s.close(() => r()));
  });

  it('answers a body over the API limit with 413 in the API’s JSON shape', async () => {
    server = await serveSmallHttp({ host: '127.0.0.1', port: 0 }, () => ({ status: 200 }), { ...SMALL_HTTP_DEFAULTS, maxBodyBytes: MAX_API_BODY_BYTES }, httpRequestError);
    const { port } = server.address() as { port: number };
    const res = await fetch(`http://127.0.0.1:${port}/api/v1/block-ip`, { method: 'POST', body: 'x'.repeat(MAX_API_BODY_BYTES + 1) });
    expect(res.status).toBe(413);
    expect(await res.json()).toEqual(error('SECBEAT_ERR_HTTP_REQUEST', new RegExp(`body larger than ${MAX_API_BODY_BYTES} bytes`)));
  });
});
