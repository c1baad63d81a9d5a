// The requests bench/waf/run.ts sends: the two benign workloads the issue names (a GET with 4 query parameters, a
// POST of a 2 KiB urlencoded form), each with the headers a browser sends, and the attack that both WAFs must
// refuse. Each becomes a wrk Lua script for the measured load and a node:http request for the one-off checks.
import { request, type Agent } from 'node:http';

export type WorkloadName = 'get' | 'post';

export interface HttpExchange {
  method: 'GET' | 'POST';
  /** Path and query, already percent-encoded. */
  path: string;
  /** Header name → value, Host included; Content-Length is added from the body. */
  headers: Readonly<Record<string, string>>;
  body: string;
}

/**
 * A domain name, not the listener's address: CRS rule 920350 scores a numeric Host (anomaly 3, below the
 * blocking threshold of 5, but logged and a cost no browser request carries).
 */
const HOST = 'www.example.com';

/** What Firefox 128 on Linux sends with a top-level navigation. */
const BROWSER_HEADERS: Readonly<Record<string, string>> = {
  Host: HOST,
  'User-Agent': 'Mozilla/5.0 (X11; Linux x86_64; rv:128.0) Gecko/20100101 Firefox/128.0',
  Accept: 'text/html,application/xhtml+xml,application/xml;q=0.9,image/avif,image/webp,*/*;q=0.8',
  'Accept-Language': 'en-US,en;q=0.5',
  'Accept-Encoding': 'gzip, deflate, br, zstd',
  Connection: 'keep-alive',
  Cookie: 'session=8f14e45fceea167a5a36dedd4bea2543; lang=en',
  'Upgrade-Insecure-Requests': '1',
  'Sec-Fetch-Dest': 'document',
  'Sec-Fetch-Mode': 'navigate',
  'Sec-Fetch-Site': 'same-origin',
  'Sec-Fetch-User': '?1',
};

/** The POST body size. */
export const FORM_BYTES = 2048;

/**
 * Nineteen fields of a checkout form and a free-text `message` that fills the body to FORM_BYTES. The message is
 * plain words joined by `+` (spaces) and periods, so that cutting it anywhere leaves no broken %-escape.
 */
function checkoutForm(): string {
  const fields: [string, string][] = [
    ['csrf_token', '4f3c2a1b9e8d7c6b5a4f3e2d1c0b9a8f'],
    ['first_name', 'Alice'],
    ['last_name', 'Martin'],
    ['email', 'alice.martin@example.com'],
    ['phone', '+44 20 7946 0958'],
    ['company', 'Example Trading Ltd'],
    ['address_line1', '221B Baker Street'],
    ['address_line2', 'Flat 2'],
    ['city', 'London'],
    ['postcode', 'NW1 6XE'],
    ['country', 'GB'],
    ['date_of_birth', '1988-04-17'],
    ['newsletter', 'yes'],
    ['preferred_contact', 'email'],
    ['delivery_window', 'morning'],
    ['gift_wrap', 'no'],
    ['quantity', '3'],
    ['product_id', '48213'],
    ['coupon', 'SPRING24'],
  ];
  const head = new URLSearchParams(fields).toString();
  const prose =
    'Please deliver between nine and eleven in the morning. The side gate is usually open so the driver can leave ' +
    'the boxes next to the blue bench in the garden. If it rains please use the covered porch instead. Thank you ' +
    'very much for the quick service last time. The previous parcel arrived two days early and in perfect shape. ';
  const room = FORM_BYTES - head.length - '&message='.length;
  const message = prose.repeat(Math.ceil(room / prose.length)).replaceAll(' ', '+').slice(0, room);
  return `${head}&message=${message}`;
}

export const WORKLOADS: Readonly<Record<WorkloadName, HttpExchange>> = {
  get: { method: 'GET', path: '/?a=1&b=hello&c=world&d=42', headers: BROWSER_HEADERS, body: '' },
  post: {
    method: 'POST',
    path: '/account/checkout',
    headers: { ...BROWSER_HEADERS, 'Content-Type': 'application/x-www-form-urlencoded', Origin: `http://${HOST}`, Referer: `http://${HOST}/account/checkout` },
    body: checkoutForm(),
  },
};

/** `?q=1' or '1'='1`: libinjection's SQLi fingerprint in CRS rule 942100 (critical, 5 points: blocked at PL1). */
export const ATTACK: HttpExchange = { ...WORKLOADS.get, path: `/?q=${encodeURIComponent("1' or '1'='1")}` };

/** A Lua string literal: JSON's escapes of printable ASCII (\" and \\) are Lua's too. */
function luaString(text: string): string {
  if (!/^[\x20-\x7e]*$/.test(text)) throw new Error(`not printable ASCII: ${JSON.stringify(text)}`);
  return JSON.stringify(text);
}

/** A wrk script sending `x` on every request (wrk builds it once; it adds Content-Length for a body). */
export function wrkScript(x: HttpExchange): string {
  return [
    `wrk.method = ${luaString(x.method)}`,
    `wrk.path = ${luaString(x.path)}`,
    ...Object.entries(x.headers).map(([name, value]) => `wrk.headers[${luaString(name)}] = ${luaString(value)}`),
    ...(x.body === '' ? [] : [`wrk.body = ${luaString(x.body)}`]),
    '',
  ].join('\n');
}

export interface ExchangeOptions {
  /** Keep-alive connections of this agent (the caller closes them); absent: a fresh connection, closed after. */
  agent?: Agent;
  timeoutMs?: number;
}

/** Sends `x` once to 127.0.0.1:port: the status and the response body's length. */
export function exchange(port: number, x: HttpExchange, options: ExchangeOptions = {}): Promise<{ status: number; bodyBytes: number }> {
  const timeoutMs = options.timeoutMs ?? 10_000;
  return new Promise((resolvePromise, reject) => {
    const length = x.body === '' ? {} : { 'Content-Length': String(Buffer.byteLength(x.body)) };
    // Without an agent, one request and the connection is closed: nothing is left open for the proxy's shutdown to wait on.
    const headers = options.agent === undefined ? { ...x.headers, ...length, Connection: 'close' } : { ...x.headers, ...length };
    const agent = options.agent ?? false;
    const req = request({ host: '127.0.0.1', port, method: x.method, path: x.path, headers, agent, timeout: timeoutMs }, (res) => {
      let bodyBytes = 0;
      res.on('data', (chunk: Buffer) => (bodyBytes += chunk.length));
      res.once('end', () => resolvePromise({ status: res.statusCode ?? 0, bodyBytes }));
      res.once('error', reject);
    });
    req.once('timeout', () => req.destroy(new Error(`${x.method} ${x.path}: no answer within ${timeoutMs / 1000} s`)));
    req.once('error', reject);
    req.end(x.body);
  });
}
