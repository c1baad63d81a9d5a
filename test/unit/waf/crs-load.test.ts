// The whole OWASP CRS 3.3.4 as Debian installs it, through the engine facade (src/waf/engine.ts): it loads at
// every paranoia level without a configuration error, blocks the classic SQL injection through the anomaly
// score (949110, 403) and lets benign requests through with a score of 0.
import { existsSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { createWaf, type Waf } from '../../../src/waf/engine.ts';
import { CRS_RULES_DIR, CRS_SETUP_FILE } from '../../../src/waf/load.ts';
import type { WafRequest } from '../../../src/waf/request.ts';

// scripts/setup.sh installs Debian's modsecurity-crs; without it these tests must fail, not pass vacuously.
function loadCrs(paranoiaLevel: 1 | 2 | 3 | 4): Waf {
  expect(existsSync(CRS_RULES_DIR), `${CRS_RULES_DIR} is missing: run scripts/setup.sh (package modsecurity-crs)`).toBe(true);
  expect(existsSync(CRS_SETUP_FILE), `${CRS_SETUP_FILE} is missing: run scripts/setup.sh`).toBe(true);
  return createWaf({ crs: { paranoiaLevel } });
}

function request(method: string, uri: string, headers: [string, string][] = []): WafRequest {
  return {
    method,
    uri,
    protocol: 'HTTP/1.1',
    headers: [
      ['Host', 'www.example.com'],
      ['User-Agent', 'Mozilla/5.0 (X11; Linux x86_64; rv:128.0) Gecko/20100101 Firefox/128.0'],
      ['Accept', 'text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8'],
      ...headers,
    ],
    remoteAddr: '192.0.2.10',
    remotePort: 51000,
    serverAddr: '198.51.100.2',
    serverPort: 80,
  };
}

/**
 * Benign at every level: paranoia level 4 (920273) admits only a strict byte set in arguments and the body,
 * so these hold no space, `+`, `%` or `@`; the everyday forms below are checked at level 1.
 */
const STRICT_GET = '/search?q=running-shoes&page=2&sort=price_asc&lang=en';
const STRICT_FORM = 'name=Jane&email=jane.doe&comment=looking-forward,thanks&subscribe=on';
const EVERYDAY_GET = '/search?q=running+shoes&page=2&sort=price_asc&lang=en';
const EVERYDAY_FORM = 'name=Jane+Doe&email=jane%40example.com&comment=Looking+forward+to+the+next+release%2C+thanks%21&subscribe=on';

function form(body: string): WafRequest {
  return request('POST', '/contact', [
    ['Content-Type', 'application/x-www-form-urlencoded'],
    ['Content-Length', String(body.length)],
  ]);
}

describe.each([1, 2, 3, 4] as const)('CRS 3.3.4 at paranoia level %i', (level) => {
  const { ruleSet, errors, warnings } = loadCrs(level);

  it('loads without a configuration error', () => {
    expect(errors).toEqual([]);
    // Only the IP-reputation rules' operators are inert, and CRS runs them only when configured to.
    expect(warnings.map((w) => w.message.slice(0, 'rule 910100'.length)).sort()).toEqual(['rule 910100', 'rule 910140']);
    // 790 SecRules and 10 SecActions minus chained links, plus the body-processor and settings rules.
    expect(ruleSet.ruleCount).toBeGreaterThan(500);
  });

  it("blocks GET /?q=1' or '1'='1 with 949110 and 403", () => {
    const tx = ruleSet.begin(request('GET', "/?q=1'%20or%20'1'='1"));
    const interruption = tx.requestHeaders() ?? tx.requestBody(null);
    expect(interruption).toMatchObject({ action: 'deny', status: 403, ruleId: 949110 });
    const ids = tx.matches.map((m) => m.ruleId);
    expect(ids).toContain(949110);
    expect(ids.some((id) => id >= 942000 && id < 943000)).toBe(true);
    expect(tx.anomalyScore).toBeGreaterThanOrEqual(5);
  });

  it('passes a benign GET with four query arguments, score 0', () => {
    const tx = ruleSet.begin(request('GET', STRICT_GET));
    expect(tx.requestHeaders() ?? tx.requestBody(null)).toBeNull();
    expect(tx.matches).toEqual([]);
    expect(tx.anomalyScore).toBe(0);
  });

  it('passes a benign urlencoded POST, score 0', () => {
    const tx = ruleSet.begin(form(STRICT_FORM));
    expect(tx.requestHeaders() ?? tx.requestBody(STRICT_FORM)).toBeNull();
    expect(tx.matches).toEqual([]);
    expect(tx.anomalyScore).toBe(0);
  });
});

describe('CRS 3.3.4 at paranoia level 1 on everyday requests', () => {
  const { ruleSet } = loadCrs(1);

  it.each([
    ['GET', EVERYDAY_GET, null],
    ['POST', '/contact', EVERYDAY_FORM],
  ])('passes %s %s with score 0', (method, uri, body) => {
    const tx = ruleSet.begin(body === null ? request(method, uri) : form(body));
    expect(tx.requestHeaders() ?? tx.requestBody(body)).toBeNull();
    expect(tx.matches).toEqual([]);
    expect(tx.anomalyScore).toBe(0);
  });
});

describe('CRS 3.3.4 options', () => {
  it('applies the anomaly thresholds given', () => {
    const { ruleSet, errors } = createWaf({ crs: { paranoiaLevel: 1, anomalyThresholds: { inbound: 1000, outbound: 1000 } } });
    expect(errors).toEqual([]);
    const tx = ruleSet.begin(request('GET', "/?q=1'%20or%20'1'='1"));
    expect(tx.requestHeaders() ?? tx.requestBody(null)).toBeNull();
    expect(tx.anomalyScore).toBeGreaterThanOrEqual(5);
  });

  it('inspects JSON bodies through the recommended body-processor rules', () => {
    const { ruleSet } = createWaf({ crs: { paranoiaLevel: 1 } });
    const body = JSON.stringify({ user: { name: "1' or '1'='1" } });
    const tx = ruleSet.begin(request('POST', '/api', [['Content-Type', 'application/json']]));
    expect(tx.requestHeaders() ?? tx.requestBody(body)).toMatchObject({ ruleId: 949110 });
    expect(tx.matches.some((m) => m.variable === 'ARGS:json.user.name')).toBe(true);
  });
});
