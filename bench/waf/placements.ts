// Where the detection bench (./detection.ts) puts each corpus value in a request, as a real attacker would:
//
//   query    GET /search?q=<value>&page=1
//   form     POST /comment, urlencoded: name=alice&comment=<value>
//   json     POST /api/comment, {"name": "alice", "comment": <value>}
//   cookie   GET /account with Cookie: session=…; pref=<value>
//   referer  GET /products with Referer: https://www.example.com/search?q=<value>
//   user-agent  GET /products with User-Agent: <value> (what HTTP cannot carry in a header %-escaped)
//   xml      POST /api/import, text/xml: the value is the document (XML samples only, instead of form/json)
//
// A value goes into a URL or a form the way a scanner puts it there (wfuzz's FUZZ): as it is, with only what
// HTTP cannot carry %-escaped (space, control bytes, `#`, `&`, `+`, `%` not starting an escape, non-ASCII).
import type { Sample } from './corpus.ts';
import type { HttpExchange } from './workloads.ts';

export const PLACEMENTS = ['query', 'form', 'json', 'cookie', 'referer', 'user-agent', 'xml'] as const;
export type Placement = (typeof PLACEMENTS)[number];

export interface Case {
  sample: Sample;
  placement: Placement;
}

const BASE_HEADERS = {
  Host: 'www.example.com',
  'User-Agent': 'Mozilla/5.0 (X11; Linux x86_64; rv:128.0) Gecko/20100101 Firefox/128.0',
  Accept: 'text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8',
  'Accept-Language': 'en-US,en;q=0.5',
};

/** What a URL or form value cannot carry as it is, %-escaped; everything else as the attacker wrote it. */
export function urlSafe(value: string): string {
  return Buffer.from(value, 'utf8')
    .toString('latin1')
    .replace(/%(?![0-9A-Fa-f]{2})|[^\x21-\x7e]|[#&+]/g, (c) => `%${c.charCodeAt(0).toString(16).toUpperCase().padStart(2, '0')}`);
}

/** A cookie value: also `;` and `,`, which would end it. */
function cookieSafe(value: string): string {
  return urlSafe(value).replace(/[;,"\\]/g, (c) => `%${c.charCodeAt(0).toString(16).toUpperCase()}`);
}

/** A header value: bytes outside printable ASCII %-escaped (a header cannot carry them raw). */
function headerSafe(value: string): string {
  return Buffer.from(value, 'utf8')
    .toString('latin1')
    .replace(/[^\x20-\x7e]/g, (c) => `%${c.charCodeAt(0).toString(16).toUpperCase().padStart(2, '0')}`);
}

export function casesOf(sample: Sample): Case[] {
  const placements: Placement[] = sample.xmlDocument === true ? ['query', 'xml'] : ['query', 'form', 'json', 'cookie', 'referer', 'user-agent'];
  return placements.map((placement) => ({ sample, placement }));
}

export function exchangeOf(c: Case): HttpExchange {
  const v = c.sample.value;
  switch (c.placement) {
    case 'query':
      return { method: 'GET', path: `/search?q=${urlSafe(v)}&page=1`, headers: { ...BASE_HEADERS }, body: '' };
    case 'form':
      return { method: 'POST', path: '/comment', headers: { ...BASE_HEADERS, 'Content-Type': 'application/x-www-form-urlencoded' }, body: `name=alice&comment=${urlSafe(v)}` };
    case 'json':
      return { method: 'POST', path: '/api/comment', headers: { ...BASE_HEADERS, 'Content-Type': 'application/json' }, body: JSON.stringify({ name: 'alice', comment: v }) };
    case 'cookie':
      return { method: 'GET', path: '/account', headers: { ...BASE_HEADERS, Cookie: `session=8f14e45fceea167a5a36dedd4bea2543; pref=${cookieSafe(v)}` }, body: '' };
    case 'referer':
      return { method: 'GET', path: '/products', headers: { ...BASE_HEADERS, Referer: `https://www.example.com/search?q=${urlSafe(v)}` }, body: '' };
    case 'user-agent':
      return { method: 'GET', path: '/products', headers: { ...BASE_HEADERS, 'User-Agent': headerSafe(v) }, body: '' };
    case 'xml':
      return { method: 'POST', path: '/api/import', headers: { ...BASE_HEADERS, 'Content-Type': 'text/xml' }, body: v };
  }
}
