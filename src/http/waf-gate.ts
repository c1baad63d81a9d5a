// The WAF as phases of an L7 request (./phases.ts): request_headers runs SecLang phase 1, request_body phase 2
// (with no body too: CRS reads ARGS of a GET in phase 2), in the request's own thread as plain calls. One
// compiled rule set per thread, swapped whole on a reload; one Transaction per request.
//
// Modes, per route with the [waf] mode as default: off (not evaluated), detection (evaluated and logged,
// never interrupts: shadow mode) and blocking. A detection is one security event per request naming every
// rule that matched, and counts secbeat_waf_detections_total by category; a block also counts
// secbeat_attacks_blocked_total{reason="waf_<category>"}. A request whose evaluation budget ran out is
// counted and then passes or is refused by the configured policy (the engine decides, ../waf/budget.ts). In
// blocking mode a matched `challenge` rule (the JSON policy) answers with ./challenge.ts's page unless the
// request holds a valid clearance; rules the policy runs in detection mode are logged and change nothing.
import type { IncomingMessage } from 'node:http';
import type { Http2ServerRequest } from 'node:http2';
import type { WafSettings } from '../messages.ts';
import { Allowlist } from '../waf/allowlist.ts';
import { CHALLENGE_TAG, policyDirectives } from '../waf/custom-rules.ts';
import type { Directive } from '../waf/seclang/ast.ts';
import { SECBEAT_RULES_DIR } from '../waf/load.ts';
import { createWaf, formatModsecLine, RuleSet, type ConfigError, type Interruption, type MatchRecord, type Transaction, type WafRequest } from '../waf/engine.ts';
import type { Challenge } from './challenge.ts';
import { hostName } from './routes.ts';
import { logSecurityEvent, type Logger } from '../telemetry/log.ts';
import type { Metrics } from '../telemetry/metrics.ts';

export type WafMode = WafSettings['mode'];

/** A `challenge` rule matched a request without a valid clearance: answer with the challenge page. */
export interface ChallengeVerdict {
  readonly action: 'challenge';
  readonly status: 403;
  readonly ruleId: number;
  readonly page: string;
}

/** What the gate asks the proxy to answer instead of forwarding the request. */
export type WafVerdict = Interruption | ChallengeVerdict;
/** What a body larger than the inspection limit gets: its first bytes inspected, or 413. */
export type BodyOverLimit = WafSettings['bodyOverLimit'];

/** What a reload swaps, together: the compiled rules and the allowlist of the same policy. */
export interface WafRules {
  ruleSet: RuleSet;
  allowlist: Allowlist;
}

export interface WafGateOptions {
  rules: WafRules;
  /** Routes without a mode of their own use this one. */
  mode: WafMode;
  /** Request body bytes held for inspection (phase 2). */
  inspectBodyBytes: number;
  bodyOverLimit: BodyOverLimit;
  /** Log each matched rule as a ModSecurity error-log line too (event `waf.rule`). */
  matchLog: boolean;
  challenge: Challenge;
  log: Logger;
  metrics: Metrics;
}

/**
 * The rules `settings` describe: the policy's exclusions, the CRS at its paranoia level and threshold (with
 * SecBeat's supplement rules among its files), the local rules file, the policy's custom rules. The engine always runs in blocking form (SecRuleEngine On) and
 * the gate applies a route's mode, so one compiled set serves routes in detection and blocking mode alike.
 */
export function compileWaf(settings: WafSettings): { rules: WafRules; errors: readonly ConfigError[] } {
  const policy = policyDirectives(settings.policy);
  // The engine parses what the gate hands it: as much as the gate holds (ModSecurity's default is 128 KiB).
  const bodyLimit: Directive = { kind: 'setting', name: 'SecRequestBodyNoFilesLimit', args: [String(settings.inspectBodyBytes)], file: '<[waf] inspect_body_bytes>', line: 1 };
  const { ruleSet, errors } = createWaf({
    directives: { before: [bodyLimit, ...policy.before], after: policy.after },
    crs: {
      setupFile: settings.crsSetupPath,
      rulesDir: settings.crsRulesDir,
      ...(settings.supplement ? { supplementDir: SECBEAT_RULES_DIR } : {}),
      paranoiaLevel: settings.paranoiaLevel,
      anomalyThresholds: { inbound: settings.anomalyThreshold, outbound: 4 },
    },
    ...(settings.rulesPath === null ? {} : { files: [settings.rulesPath] }),
    mode: 'On',
    limits: { budget: settings.evaluationBudget, phaseTimeMs: settings.evaluationTimeMs, onExhausted: settings.failOpen ? 'fail-open' : 'fail-closed' },
  });
  return { rules: { ruleSet, allowlist: new Allowlist(settings.policy.allowlist) }, errors };
}

/**
 * Runs every rule once on benign requests, without the clock, on the thread that will serve with them. V8
 * compiles a regular expression on its first use: the first request after a start would pay for some 300 of
 * them (tens of milliseconds), run into evaluation_time_ms and be refused as over budget. Compiled matchers
 * are shared across reloads (../waf/memo.ts), so later warm-ups are quick.
 */
export function warmUp(ruleSet: RuleSet): void {
  const unclocked = new RuleSet(ruleSet.compiled, { ...ruleSet.limits, phaseTimeMs: Infinity });
  const base = { protocol: 'HTTP/1.1', remoteAddr: '192.0.2.1', remotePort: 40000, serverAddr: '192.0.2.2', serverPort: 80 };
  const headers: [string, string][] = [['Host', 'warmup.example'], ['User-Agent', 'Mozilla/5.0 (X11; Linux x86_64)'], ['Accept', 'text/html'], ['Cookie', 'session=abc123']];
  const form = 'name=Jane+Doe&email=jane%40example.com&comment=Hello+there%2C+nice+page%21&page=2';
  const get = unclocked.begin({ ...base, method: 'GET', uri: `/warm/up.html?${form}`, headers });
  get.requestHeaders();
  get.requestBody(null);
  const post = unclocked.begin({
    ...base,
    method: 'POST',
    uri: '/warm/up',
    headers: [...headers, ['Content-Type', 'application/x-www-form-urlencoded'], ['Content-Length', String(form.length)]],
  });
  post.requestHeaders();
  post.requestBody(form);
}

/** Attack categories as CRS and SecBeat's supplement tag them (`attack-sqli` …); anything else counts as `other`, keeping labels bounded. */
const CATEGORIES = new Set(['sqli', 'xss', 'rce', 'lfi', 'rfi', 'php', 'nodejs', 'java', 'protocol', 'reputation-scanner', 'session-fixation', 'multipart-header', 'generic', 'disclosure', 'custom', 'ssrf', 'nosql', 'prototype-pollution', 'ssti', 'xxe']);

/** Rules named in one event: a request matching more is summarised by the ids list. */
const EVENT_RULES = 10;
const EVENT_URI_BYTES = 256;

type AnyRequest = IncomingMessage | Http2ServerRequest;

export class WafGate {
  #rules: WafRules;
  readonly #o: WafGateOptions;

  constructor(options: WafGateOptions) {
    this.#o = options;
    this.#rules = options.rules;
  }

  /** Requests from now on use `rules`; those under way finish with the ones they began with. */
  swap(rules: WafRules): void {
    this.#rules = rules;
  }

  get ruleCount(): number {
    return this.#rules.ruleSet.ruleCount;
  }

  /** Starts a request's WAF transaction, or null when its route's mode is off or the allowlist lets it by. */
  begin(req: AnyRequest, routeMode: WafMode | undefined, authority: string, clientIp: string): WafCheck | null {
    const mode = routeMode ?? this.#o.mode;
    if (mode === 'off') return null;
    const { ruleSet, allowlist } = this.#rules;
    const domain = hostName(authority);
    const uri = req.url ?? '/';
    if (allowlist.size > 0 && allowlist.allows(clientIp, domain, uri)) return null;
    const cookie = req.headers.cookie;
    return new WafCheck(this.#o, ruleSet.begin(wafRequest(req, clientIp)), mode, domain, clientIp, uri, Array.isArray(cookie) ? cookie.join('; ') : cookie);
  }
}

/**
 * One request's WAF state across its phases. `headers()` and `body()` return the interruption to answer the
 * request with (blocking mode only), or null to go on; the first interruption, or the end of phase 2, logs
 * the request's event once.
 */
export class WafCheck {
  readonly #o: WafGateOptions;
  /**
   * Null once the check is over (phase 2 ran, or phase 1 refused the request): the transaction is ended, which
   * hands its mark words to the next one, and its variables and caches (100–150 KB for a form post) do not
   * live on with the request, for instance while the rest of an inspection turn runs (./inspection-turn.ts).
   */
  #tx: Transaction | null;
  readonly #mode: Exclude<WafMode, 'off'>;
  readonly #domain: string;
  readonly #clientIp: string;
  readonly #uri: string;
  readonly #cookie: string | undefined;
  #reported = false;

  constructor(
    options: WafGateOptions,
    tx: Transaction,
    mode: Exclude<WafMode, 'off'>,
    domain: string,
    clientIp: string,
    uri: string,
    cookie: string | undefined,
  ) {
    this.#o = options;
    this.#tx = tx;
    this.#mode = mode;
    this.#domain = domain;
    this.#clientIp = clientIp;
    this.#uri = uri;
    this.#cookie = cookie;
  }

  /** Request body bytes to hold for phase 2. */
  get inspectBodyBytes(): number {
    return this.#o.inspectBodyBytes;
  }

  get bodyOverLimit(): BodyOverLimit {
    return this.#o.bodyOverLimit;
  }

  /** Phase 1. */
  headers(): WafVerdict | null {
    const tx = this.#tx;
    if (tx === null) return null;
    const hit = tx.requestHeaders();
    if (hit === null) return null;
    this.#end(tx);
    return this.#outcome(tx, hit);
  }

  /** Phase 2, which ends the check: `body` whole, or its first bytes when `partial`; null when the request has none. */
  body(body: Buffer | null, partial: boolean): WafVerdict | null {
    const tx = this.#tx;
    if (tx === null) return null;
    if (partial) this.#o.metrics.wafPartialBodies.inc();
    const inspected = body === null ? null : body.toString('latin1', 0, partial ? Math.min(body.length, this.#o.inspectBodyBytes) : body.length);
    const hit = tx.requestBody(inspected);
    this.#end(tx);
    return this.#outcome(tx, hit);
  }

  #end(tx: Transaction): void {
    tx.end();
    this.#tx = null;
  }

  /** Logs and counts the request's matches once; what to answer with in blocking mode, else null. */
  #outcome(tx: Transaction, hit: Interruption | null): WafVerdict | null {
    if (this.#reported) return null;
    this.#reported = true;
    const m = this.#o.metrics;
    if (tx.budgetExceeded) m.wafBudgetExhausted.inc();
    const matches = tx.matches;
    const blocked = hit !== null && this.#mode === 'blocking';
    if (matches.length === 0 && hit === null) return null;
    // Rules in detection mode (the policy's rule_modes) are reported as such, and name the category only
    // when no other rule matched.
    const effective = matches.filter((r) => !r.shadow);
    const category = categoryOf(effective.length > 0 ? effective : matches);
    m.wafDetections.inc({ category, mode: effective.length > 0 || hit !== null ? this.#mode : 'detection' });
    if (blocked) m.attacksBlocked.inc({ mode: 'l7', reason: `waf_${category}` });
    const challenged = blocked || this.#mode !== 'blocking' ? null : this.#challenge(effective);
    logSecurityEvent(this.#o.log, {
      event: 'waf.match',
      action: blocked ? 'blocked' : challenged !== null ? 'challenged' : 'detected',
      mode: this.#mode,
      category,
      clientIp: this.#clientIp,
      domain: this.#domain,
      uri: this.#uri.length > EVENT_URI_BYTES ? this.#uri.slice(0, EVENT_URI_BYTES) : this.#uri,
      anomalyScore: tx.anomalyScore,
      ruleIds: matches.map((r) => r.ruleId),
      shadowRuleIds: matches.length === effective.length ? [] : matches.filter((r) => r.shadow).map((r) => r.ruleId),
      rules: matches.slice(0, EVENT_RULES).map((r) => ({ id: r.ruleId, msg: r.msg, variable: r.variable, data: r.data, severity: r.severity })),
      interruptedBy: hit === null ? null : hit.ruleId,
      reason: hit === null ? null : hit.reason,
      transactionId: tx.uniqueId,
    });
    if (this.#o.matchLog) {
      const context = { clientIp: this.#clientIp, hostname: this.#domain, uri: this.#uri, uniqueId: tx.uniqueId };
      for (const record of matches) this.#o.log.info({ event: 'waf.rule', transactionId: tx.uniqueId, line: formatModsecLine(record, context) }, 'waf rule matched');
    }
    return blocked ? hit : challenged;
  }

  /** The challenge when a challenge rule matched and the request holds no valid clearance; null otherwise. */
  #challenge(matches: readonly MatchRecord[]): ChallengeVerdict | null {
    const rule = matches.find((r) => r.tags.includes(CHALLENGE_TAG));
    if (rule === undefined) return null;
    const { challenge, metrics } = this.#o;
    const now = Math.floor(Date.now() / 1000);
    if (challenge.cleared(this.#cookie, this.#clientIp, this.#domain, now)) {
      metrics.wafChallenges.inc({ result: 'passed' });
      return null;
    }
    metrics.wafChallenges.inc({ result: 'issued' });
    return { action: 'challenge', status: 403, ruleId: rule.ruleId, page: challenge.page(this.#clientIp, this.#domain, now) };
  }
}

/**
 * The request's category: that of its most severe matched rule CRS tags as an attack (`attack-sqli` → `sqli`),
 * the first of equals. A numeric Host (920350, a warning) must not name a request that also carried SQL
 * injection (942100, critical); 949110 and friends carry no attack tag.
 */
function categoryOf(matches: readonly MatchRecord[]): string {
  let best = 'other';
  let bestSeverity = Infinity;
  for (const record of matches) {
    const severity = record.severity ?? 7;
    if (severity >= bestSeverity) continue;
    const tag = record.tags.find((t) => t.startsWith('attack-'));
    if (tag === undefined) continue;
    const name = tag.slice('attack-'.length);
    best = CATEGORIES.has(name) ? name : 'other';
    bestSeverity = severity;
  }
  return best;
}

/**
 * The engine's view of a request: Node already holds header values and the target as one char per byte
 * (latin1), the WAF's byte strings. HTTP/2 pseudo-headers become what an HTTP/1.1 request would carry: the
 * method, target and Host.
 */
function wafRequest(req: AnyRequest, clientIp: string): WafRequest {
  const raw = req.rawHeaders;
  const headers: [string, string][] = [];
  const h2 = 'stream' in req;
  if (h2 && req.authority !== undefined) headers.push(['Host', req.authority]);
  for (let i = 0; i < raw.length; i += 2) {
    const name = raw[i]!;
    if (h2 && name.charCodeAt(0) === 0x3a /* ':' */) continue;
    headers.push([name, raw[i + 1]!]);
  }
  const socket = req.socket;
  return {
    method: req.method ?? 'GET',
    uri: req.url ?? '/',
    protocol: h2 ? 'HTTP/2.0' : `HTTP/${req.httpVersion}`,
    headers,
    remoteAddr: clientIp,
    remotePort: socket.remotePort ?? 0,
    serverAddr: socket.localAddress ?? '',
    serverPort: socket.localPort ?? 0,
  };
}
