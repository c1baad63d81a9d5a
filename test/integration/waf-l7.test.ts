// The WAF as phases of a real L7 node (bin/secbeat run, two worker threads, the OWASP CRS from Debian's
// modsecurity-crs at paranoia level 1, a local rules file): benign requests reach the origin; attacks in the
// query and in a form body are refused 403 with an error id, logged as one security event each (rule ids,
// anomaly score, category) and counted; a route in detection mode lets the same attack through and logs it;
// a route with the WAF off neither refuses nor logs; a reload swaps the local rules with no restart.
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { createServer, request, type Server } from 'node:http';
import { connect as connectHttp2 } from 'node:http2';
import { connect } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { testCa, testCert } from '../helpers/certs.ts';
import { solveChallengePage } from '../helpers/challenge-page.ts';
import { startNode, type NodeProcess } from '../helpers/node-process.ts';
import { freePort } from '../helpers/ports.ts';

const API_TOKEN = 'waf-test-token';
const SQLI = "/search?q=1'%20or%20'1'='1";

interface Reply {
  status: number;
  body: string;
  errorId: string | undefined;
}

function send(port: number, host: string, path: string, method = 'GET', body?: string, cookie?: string): Promise<Reply> {
  return new Promise((resolve, reject) => {
    const headers: Record<string, string> = { host, 'user-agent': 'Mozilla/5.0 (X11; Linux x86_64) waf-test', accept: 'text/html' };
    if (cookie !== undefined) headers['cookie'] = cookie;
    if (body !== undefined) {
      headers['content-type'] = 'application/x-www-form-urlencoded';
      headers['content-length'] = String(Buffer.byteLength(body));
    }
    const req = request({ host: '127.0.0.1', port, method, path, headers, agent: false }, (res) => {
      let text = '';
      res.setEncoding('latin1');
      res.on('data', (c: string) => (text += c));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body: text, errorId: res.headers['x-secbeat-error-id'] as string | undefined }));
    });
    req.on('error', reject);
    req.end(body);
  });
}

/** Writes `text` on a new connection and reads until the node closes it (or 5 s pass). */
function rawExchange(port: number, text: string): Promise<string> {
  return new Promise((resolve, reject) => {
    const socket = connect(port, '127.0.0.1', () => socket.write(text));
    let received = '';
    const timer = setTimeout(() => socket.destroy(), 5_000);
    socket.setEncoding('latin1');
    socket.on('data', (chunk: string) => (received += chunk));
    socket.on('close', () => {
      clearTimeout(timer);
      resolve(received);
    });
    socket.on('error', reject);
  });
}

interface WafEvent {
  event: string;
  action: string;
  mode: string;
  category: string;
  domain: string;
  uri: string;
  ruleIds: number[];
  shadowRuleIds: number[];
  anomalyScore: number;
  interruptedBy: number | null;
}

describe('WAF in L7 mode', () => {
  let dir = '';
  let origin: Server;
  let node: NodeProcess;
  let rulesFile = '';
  let originRequests = 0;
  let tlsPort = 0;
  let lastBodyBytes = 0;

  const events = async (): Promise<WafEvent[]> => {
    const res = await fetch(`http://127.0.0.1:${node.metricsPort}/api/v1/events?type=attack&limit=200`, { headers: { authorization: `Bearer ${API_TOKEN}` } });
    const body = (await res.json()) as { result: { events: WafEvent[] } };
    return body.result.events.filter((e) => e.event === 'waf.match');
  };
  const metric = async (pattern: RegExp): Promise<number> => {
    const text = await (await fetch(`http://127.0.0.1:${node.metricsPort}/metrics`)).text();
    const line = text.split('\n').find((l) => pattern.test(l));
    return line === undefined ? 0 : Number(line.split(' ').at(-1));
  };
  const localRule = (word: string): string =>
    `SecRule ARGS:secret "@streq ${word}" "id:10001,phase:2,deny,status:403,log,msg:'local rule',tag:'attack-custom'"\n`;

  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), 'secbeat-waf-'));
    rulesFile = join(dir, 'local.conf');
    writeFileSync(rulesFile, localRule('letmein'));
    const policyFile = join(dir, 'policy.json');
    writeFileSync(
      policyFile,
      JSON.stringify({
        rules: [
          { id: 10100, name: 'WordPress login probe', pattern: '^/wp-(?:admin|login)', targets: ['path'], action: 'block', severity: 'warning', domains: ['shop.example'] },
          { id: 10200, name: 'Trial rule', pattern: '^/trial-probe', targets: ['path'], action: 'block' },
          { id: 10300, name: 'Login challenge', pattern: '^/login', targets: ['path'], action: 'challenge' },
        ],
        exclusions: [{ rule_ids: [10001], path: '/admin-tools', parameter: 'secret' }],
        allowlist: [{ path: '/healthz', domains: ['shop.example'] }],
        rule_modes: [{ rule_ids: [10200], mode: 'detection' }],
      }),
    );
    origin = createServer((req, res) => {
      originRequests++;
      let bytes = 0;
      req.on('data', (chunk: Buffer) => (bytes += chunk.length));
      req.on('end', () => {
        lastBodyBytes = bytes;
        res.end('ok');
      });
    });
    await new Promise<void>((r) => origin.listen(0, '127.0.0.1', r));
    const originPort = (origin.address() as { port: number }).port;
    const cert = testCert(['shop.example']);
    writeFileSync(join(dir, 'shop.pem'), cert.cert);
    writeFileSync(join(dir, 'shop.key'), cert.key);
    tlsPort = await freePort();
    const route = (host: string, mode?: string): string =>
      `\n[[l7.routes]]\nhosts = ["${host}"]\norigins = ["http://127.0.0.1:${originPort}"]\n${mode === undefined ? '' : `waf_mode = "${mode}"\n`}`;
    node = await startNode({
      mode: 'l7',
      backendPort: originPort,
      env: { SECBEAT_ADMIN__API_TOKEN: API_TOKEN },
      extraToml: `
[tls]
enabled = true
cert_path = "${join(dir, 'shop.pem')}"
key_path = "${join(dir, 'shop.key')}"

[l7]
tls_bind_address = "127.0.0.1:${tlsPort}"

[waf]
enabled = true
mode = "blocking"
paranoia_level = 1
rules_path = "${rulesFile}"
policy_path = "${policyFile}"
${route('shop.example')}${route('shadow.example', 'detection')}${route('off.example', 'off')}`,
    });
  }, 60_000);

  afterAll(async () => {
    await node?.[Symbol.asyncDispose]();
    await new Promise<void>((r) => origin?.close(() => r()));
    rmSync(dir, { recursive: true, force: true });
  });

  it('passes benign requests to the origin', async () => {
    expect(await send(node.port, 'shop.example', '/products?category=books&page=2&sort=price&q=hello')).toMatchObject({ status: 200, body: 'ok' });
    const form = Array.from({ length: 20 }, (_, i) => `field${i}=${'value'.repeat(4)}${i}`).join('&');
    expect(await send(node.port, 'shop.example', '/checkout', 'POST', form)).toMatchObject({ status: 200, body: 'ok' });
    expect((await events()).filter((e) => e.domain === 'shop.example')).toEqual([]);
  });

  it('refuses SQL injection in the query with 403 and logs one event with the CRS rule ids', async () => {
    const before = originRequests;
    const reply = await send(node.port, 'shop.example', SQLI);
    expect(reply.status).toBe(403);
    expect(reply.errorId).toMatch(/^[0-9a-f]+$/);
    expect(reply.body).toContain(reply.errorId);
    expect(originRequests).toBe(before);
    const blocked = (await events()).filter((e) => e.domain === 'shop.example' && e.action === 'blocked');
    expect(blocked).toHaveLength(1);
    expect(blocked[0]).toMatchObject({ mode: 'blocking', category: 'sqli', interruptedBy: 949110 });
    expect(blocked[0]!.ruleIds).toEqual(expect.arrayContaining([942100, 949110]));
    expect(blocked[0]!.anomalyScore).toBeGreaterThanOrEqual(5);
    expect(await metric(/^secbeat_waf_detections_total\{.*category="sqli".*mode="blocking"/)).toBeGreaterThanOrEqual(1);
    expect(await metric(/^secbeat_attacks_blocked_total\{.*reason="waf_sqli"/)).toBeGreaterThanOrEqual(1);
  });

  it('refuses cross-site scripting in a form body', async () => {
    const reply = await send(node.port, 'shop.example', '/comment', 'POST', 'name=bob&text=%3Cscript%3Ealert(document.cookie)%3C%2Fscript%3E');
    expect(reply.status).toBe(403);
    const xss = (await events()).filter((e) => e.category === 'xss');
    expect(xss.length).toBeGreaterThanOrEqual(1);
  });

  it('inspects the first bytes of a body larger than inspect_body_bytes, and streams the rest on', async () => {
    const attack = 'q=1%27%20or%20%271%27%3D%271&pad=';
    const pad = 'x'.repeat(200_000);
    expect((await send(node.port, 'shop.example', '/upload', 'POST', `${attack}${pad}`)).status).toBe(403);
    // In detection mode the same body goes on to the origin whole: the inspected head, then the rest.
    expect(await send(node.port, 'shadow.example', '/upload', 'POST', `${attack}${pad}`)).toMatchObject({ status: 200, body: 'ok' });
    expect(lastBodyBytes).toBe(attack.length + pad.length);
    expect(await metric(/^secbeat_waf_partial_bodies_total/)).toBeGreaterThanOrEqual(2);
  });

  it('inspects HTTP/2 requests as HTTP/1.1 ones: the query, the form body, and benign traffic passes', async () => {
    const session = connectHttp2(`https://shop.example:${tlsPort}`, { ca: testCa(), host: '127.0.0.1', port: tlsPort, servername: 'shop.example' });
    const h2 = (path: string, body?: string): Promise<{ status: number; text: string }> =>
      new Promise((resolve, reject) => {
        const headers: Record<string, string> = { ':path': path, ':method': body === undefined ? 'GET' : 'POST', 'user-agent': 'Mozilla/5.0 waf-test', accept: 'text/html' };
        if (body !== undefined) headers['content-type'] = 'application/x-www-form-urlencoded';
        const stream = session.request(headers);
        let status = 0;
        let text = '';
        stream.on('response', (h) => (status = Number(h[':status'])));
        stream.setEncoding('latin1');
        stream.on('data', (c: string) => (text += c));
        stream.on('end', () => resolve({ status, text }));
        stream.on('error', reject);
        stream.end(body);
      });
    try {
      expect(await h2('/products?page=2&q=hello')).toEqual({ status: 200, text: 'ok' });
      expect(await h2('/comment', 'name=bob&text=hello+there')).toEqual({ status: 200, text: 'ok' });
      expect((await h2(SQLI)).status).toBe(403);
      expect((await h2('/comment', 'name=bob&text=%3Cscript%3Ealert(document.cookie)%3C%2Fscript%3E')).status).toBe(403);
      // A refused body larger than the stream and connection windows leaves the connection usable.
      const attack = `q=1%27%20or%20%271%27%3D%271&pad=${'x'.repeat(1_000_000)}`;
      expect((await h2('/upload', attack)).status).toBe(403);
      expect(await h2('/products?page=3')).toEqual({ status: 200, text: 'ok' });
    } finally {
      session.close();
    }
    const h2Events = (await events()).filter((e) => e.domain === 'shop.example' && e.action === 'blocked' && (e.uri === SQLI || e.uri === '/comment'));
    expect(h2Events.map((e) => e.category)).toEqual(expect.arrayContaining(['sqli', 'xss']));
  });

  it('inspects upgrade and CONNECT requests too: an attack in an upgrade is refused, CONNECT gets 405', async () => {
    const upgrade = (path: string) =>
      rawExchange(node.port, `GET ${path} HTTP/1.1\r\nHost: shop.example\r\nUser-Agent: waf-test\r\nAccept: */*\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n\r\n`);
    expect(await upgrade(SQLI)).toMatch(/^HTTP\/1\.1 403 /);
    const blocked = (await events()).filter((e) => e.domain === 'shop.example' && e.action === 'blocked' && e.uri === SQLI);
    expect(blocked.length).toBeGreaterThanOrEqual(2);
    // CRS refuses the method where the WAF blocks (911100: CONNECT is not an allowed method). Elsewhere a
    // reverse proxy opens no tunnels (405), and a target that is no host:port is malformed (400).
    const connect = (host: string, target: string) => rawExchange(node.port, `CONNECT ${target} HTTP/1.1\r\nHost: ${host}\r\nUser-Agent: waf-test\r\nAccept: */*\r\n\r\n`);
    expect(await connect('shop.example', 'origin.example:443')).toMatch(/^HTTP\/1\.1 403 /);
    expect(await connect('off.example', 'origin.example:443')).toMatch(/^HTTP\/1\.1 405 /);
    expect(await connect('off.example', 'origin.example')).toMatch(/^HTTP\/1\.1 400 /);
  });

  it('answers the request before bytes that are no request, then 400', async () => {
    // A GET declaring no body, followed by a form: the GET is answered, then the stray bytes fail.
    const reply = await rawExchange(node.port, 'GET / HTTP/1.1\r\nHost: shop.example\r\nUser-Agent: waf-test\r\nAccept: */*\r\n\r\nhi=test\r\n');
    expect(reply).toMatch(/^HTTP\/1\.1 200 [^]*\r\n\r\nokHTTP\/1\.1 400 /);
  });

  it('lets an attack through on a route in detection mode, and logs it', async () => {
    expect(await send(node.port, 'shadow.example', SQLI)).toMatchObject({ status: 200, body: 'ok' });
    const detected = (await events()).filter((e) => e.domain === 'shadow.example' && e.uri.startsWith('/search'));
    expect(detected).toHaveLength(1);
    expect(detected[0]).toMatchObject({ action: 'detected', mode: 'detection', category: 'sqli' });
    expect(await metric(/^secbeat_waf_detections_total\{.*category="sqli".*mode="detection"/)).toBeGreaterThanOrEqual(1);
  });

  it('neither refuses nor logs on a route with the WAF off', async () => {
    expect(await send(node.port, 'off.example', SQLI)).toMatchObject({ status: 200, body: 'ok' });
    expect((await events()).filter((e) => e.domain === 'off.example')).toEqual([]);
  });

  it('applies the JSON policy: custom rules per domain, exclusions by path and parameter, the allowlist', async () => {
    const custom = await send(node.port, 'shop.example', '/wp-login.php');
    expect(custom.status).toBe(403);
    expect((await events()).find((e) => e.ruleIds.includes(10100))).toMatchObject({ category: 'custom', action: 'blocked' });
    // The custom rule names shop.example only.
    expect((await send(node.port, 'off.example', '/wp-login.php')).status).toBe(200);
    expect((await send(node.port, 'shadow.example', '/wp-login.php')).status).toBe(200);
    // Rule 10001 no longer sees the argument `secret` under /admin-tools, and still does elsewhere.
    expect((await send(node.port, 'shop.example', '/admin-tools/run?secret=letmein')).status).toBe(200);
    expect((await send(node.port, 'shop.example', '/other?secret=letmein')).status).toBe(403);
    // The allowlist wins over the CRS, for plain paths only.
    expect((await send(node.port, 'shop.example', `/healthz${SQLI.slice('/search'.length)}`)).status).toBe(200);
    expect((await send(node.port, 'shop.example', `/healthz/..%2Fsearch${SQLI.slice('/search'.length)}`)).status).toBe(403);
  });

  it('answers a challenge rule with a page whose script earns a clearance cookie, which then passes', async () => {
    const first = await send(node.port, 'shop.example', '/login');
    expect(first.status).toBe(403);
    expect(first.body).toContain('<script>');
    expect((await events()).find((e) => e.ruleIds.includes(10300))).toMatchObject({ action: 'challenged', category: 'custom' });
    // The page's own script, run as a browser runs it, sets the cookie and reloads.
    const { cookie, reloads } = solveChallengePage(first.body);
    expect(reloads).toBe(1);
    expect(await send(node.port, 'shop.example', '/login', 'GET', undefined, cookie)).toMatchObject({ status: 200, body: 'ok' });
    // The clearance is for this domain only (other.example takes the default route, blocking too).
    expect((await send(node.port, 'other.example', '/login', 'GET', undefined, cookie)).status).toBe(403);
    expect(await metric(/^secbeat_waf_challenges_total\{.*result="issued"/)).toBeGreaterThanOrEqual(1);
    expect(await metric(/^secbeat_waf_challenges_total\{.*result="passed"/)).toBeGreaterThanOrEqual(1);
  });

  it('runs a rule in detection mode by the policy: logged as such, not blocking', async () => {
    expect(await send(node.port, 'shop.example', '/trial-probe')).toMatchObject({ status: 200, body: 'ok' });
    const event = (await events()).find((e) => e.ruleIds.includes(10200));
    expect(event).toMatchObject({ action: 'detected', shadowRuleIds: [10200], interruptedBy: null });
  });

  it('swaps the local rules on a reload, with no restart', async () => {
    expect((await send(node.port, 'shop.example', '/?secret=letmein')).status).toBe(403);
    expect((await send(node.port, 'shop.example', '/?secret=opensesame')).status).toBe(200);
    writeFileSync(rulesFile, localRule('opensesame'));
    const { code, stdout } = await node.ctl('--json', 'config', 'reload');
    expect({ code, result: JSON.parse(stdout) as unknown }, node.output().slice(-3000)).toMatchObject({ code: 0, result: { ok: true, issues: [] } });
    // Each request may land on either thread: both must have swapped.
    for (let i = 0; i < 6; i++) {
      expect((await send(node.port, 'shop.example', '/?secret=letmein')).status).toBe(200);
      expect((await send(node.port, 'shop.example', '/?secret=opensesame')).status).toBe(403);
    }
  });

  it('refuses a reload whose rules have errors, and keeps the running ones', async () => {
    writeFileSync(rulesFile, 'SecRule ARGS "@noSuchOperator x" "id:10002,phase:2,deny"\n');
    // The admin command works (exit 0); the reload it reports does not.
    const { code, stdout } = await node.ctl('--json', 'config', 'reload');
    const result = JSON.parse(stdout) as { ok: boolean; issues: string[] };
    expect({ code, ok: result.ok }).toEqual({ code: 0, ok: false });
    expect(result.issues.join('\n')).toContain(`${rulesFile}:1`);
    expect((await send(node.port, 'shop.example', '/?secret=opensesame')).status).toBe(403);
  });
});
