// Constant folding (src/waf/fold.ts) changes no outcome: a rule set compiled with it and without it gives the
// same interruption, the same logged matches and the same collection members on every request, through all
// five phases. Once for the CRS at every paranoia level on generated requests, once for generated rule sets
// that mix what folding handles (constant setvars, gates, chains, skips, markers, dynamic operators) with what
// stops it (request data, captures, keys built from requests, ctl removals, allow:phase, deny).
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { createWaf, type RuleSet } from '../../src/waf/engine.ts';
import type { WafRequest } from '../../src/waf/request.ts';
import type { Transaction } from '../../src/waf/transaction.ts';
import { fcParams } from '../helpers/fc.ts';
import { requests, toRequest } from '../helpers/waf-requests.ts';

/** TX members CRS writes and reads, compared after the request. */
const CRS_MEMBERS = [
  'anomaly_score',
  'inbound_anomaly_score',
  'anomaly_score_pl1',
  'anomaly_score_pl2',
  'anomaly_score_pl3',
  'anomaly_score_pl4',
  'sql_injection_score',
  'xss_score',
  'rce_score',
  'lfi_score',
  'rfi_score',
  'php_injection_score',
  'http_violation_score',
  'session_fixation_score',
  'detection_paranoia_level',
  'executing_paranoia_level',
  'blocking_paranoia_level',
  'inbound_anomaly_score_threshold',
  'allowed_methods',
  'restricted_headers',
  'critical_anomaly_score',
  'ua_hash',
  'real_ip',
  'sampling_rnd100',
];

/** Everything a transaction shows: interruption, logged matches, score, the members named. */
function outcome(ruleSet: RuleSet, request: WafRequest, body: string | null, members: readonly string[]): unknown {
  const tx: Transaction = ruleSet.begin(request);
  const interruption = tx.requestHeaders() ?? tx.requestBody(body);
  tx.responseHeaders({ status: 200, protocol: 'HTTP/1.1', headers: [['Content-Type', 'text/html']] });
  tx.responseBody('<html>ok</html>');
  tx.logging();
  return {
    interruption,
    internalError: tx.internalError,
    matches: tx.matches.map(({ ruleId, phase, msg, data, variable, value, disruptive }) => ({ ruleId, phase, msg, data, variable, value, disruptive })),
    anomalyScore: tx.anomalyScore,
    members: members.map((name) => tx.txValue(name) ?? null),
  };
}

describe('constant folding with the CRS', () => {
  const levels = ([1, 2, 3, 4] as const).map((paranoiaLevel) => ({
    paranoiaLevel,
    folded: createWaf({ crs: { paranoiaLevel } }).ruleSet,
    written: createWaf({ crs: { paranoiaLevel }, foldConstants: false }).ruleSet,
  }));

  it('folds away most of what a request walks', () => {
    const pl1 = levels[0]!;
    const walked = (ruleSet: RuleSet) => ruleSet.compiled.phases[1]!.length + ruleSet.compiled.phases[2]!.length;
    expect(walked(pl1.folded)).toBeLessThan(walked(pl1.written) / 2);
    expect(pl1.folded.ruleCount).toBe(pl1.written.ruleCount);
  });

  it('gives every request the outcome the rules as written give it, at every paranoia level', () => {
    fc.assert(
      fc.property(fc.constantFrom(...levels), requests, ({ folded, written }, sent) => {
        const request = toRequest(sent);
        expect(outcome(folded, request, sent.body, CRS_MEMBERS)).toEqual(outcome(written, request, sent.body, CRS_MEMBERS));
      }),
      fcParams(150),
    );
  });
});

const KEYS = ['k0', 'k1', 'k2'];
const VALUES = ['0', '1', '2', 'x'];
const MARKERS = ['M0', 'M1', 'M2'];

const key = fc.constantFrom(...KEYS);
const value = fc.constantFrom(...VALUES);
const small = fc.integer({ min: 0, max: 3 });
const marker = fc.constantFrom(...MARKERS);

/** One directive, with `{id}` and `{phase}` filled in afterwards. */
const directive = fc.oneof(
  // What folding folds.
  fc.tuple(key, value).map(([k, v]) => `SecAction "id:{id},phase:{phase},pass,nolog,setvar:tx.${k}=${v}"`),
  fc.tuple(key, small).map(([k, n]) => `SecAction "id:{id},phase:{phase},pass,nolog,setvar:tx.${k}=+${n}"`),
  fc.tuple(key, key).map(([k, from]) => `SecAction "id:{id},phase:{phase},pass,nolog,setvar:tx.${k}=%{tx.${from}}"`),
  fc.tuple(key, value).map(([k, v]) => `SecRule &TX:${k} "@eq 0" "id:{id},phase:{phase},pass,nolog,setvar:tx.${k}=${v}"`),
  fc.tuple(key, small, marker).map(([k, n, m]) => `SecRule TX:${k} "@lt ${n}" "id:{id},phase:{phase},pass,nolog,skipAfter:${m}"`),
  fc.tuple(key, small, fc.integer({ min: 1, max: 3 })).map(([k, n, s]) => `SecRule TX:${k} "@eq ${n}" "id:{id},phase:{phase},pass,nolog,skip:${s}"`),
  fc.tuple(key, value).map(([k, v]) => `SecRule TX:${k} "@streq ${v}" "id:{id},phase:{phase},pass,log,msg:'tx ${k} is ${v}'"`),
  fc.tuple(key, key).map(([k, other]) => `SecRule TX:${k} "@within %{tx.${other}}" "id:{id},phase:{phase},pass,nolog,setvar:tx.${other}=w"`),
  fc.tuple(key, key, small).map(
    ([k, other, n]) =>
      `SecRule &TX:${k} "@eq 1" "id:{id},phase:{phase},pass,nolog,chain,setvar:tx.${other}=c"\n  SecRule TX:${other} "@gt ${n}" "setvar:tx.${k}=+1"`,
  ),
  fc.tuple(key, value).map(([k, v]) => `SecRule TX:${k} "@streq ${v}" "id:{id},phase:{phase},deny,status:403,log"`),
  marker.map((m) => `SecMarker ${m}`),
  // What stops it.
  fc.tuple(value, key, value).map(([a, k, v]) => `SecRule ARGS:a "@contains ${a}" "id:{id},phase:{phase},pass,nolog,setvar:tx.${k}=${v}"`),
  fc.tuple(value, fc.integer({ min: 0, max: 9 })).map(([a, i]) => `SecRule ARGS:a "@contains ${a}" "id:{id},phase:{phase},pass,nolog,ctl:ruleRemoveById=${100 + i}"`),
  value.map((a) => `SecRule ARGS:b "@streq ${a}" "id:{id},phase:{phase},allow:phase,nolog"`),
  value.map((a) => `SecRule ARGS:b "@streq ${a}" "id:{id},phase:{phase},deny,status:403,log"`),
  key.map((k) => `SecRule ARGS:a "@rx ^(.)" "id:{id},phase:{phase},pass,nolog,capture,setvar:tx.${k}=%{tx.1}"`),
  fc.constant(`SecRule ARGS_NAMES "@rx ." "id:{id},phase:{phase},pass,nolog,setvar:'tx.k%{MATCHED_VAR_NAME}=1'"`),
  key.map((k) => `SecRule TX:/^k/ "@streq 1" "id:{id},phase:{phase},pass,nolog,setvar:tx.${k}=p"`),
  fc.tuple(value, key).map(([v, k]) => `SecRule TX:1 "@streq ${v}" "id:{id},phase:{phase},pass,nolog,setvar:tx.${k}=t"`),
  fc.tuple(value, marker).map(([v, m]) => `SecRule ARGS:c "@streq ${v}" "id:{id},phase:{phase},pass,nolog,skipAfter:${m}"`),
);

const ruleSets = fc.array(fc.tuple(directive, fc.constantFrom(1, 2)), { minLength: 1, maxLength: 14 }).map((entries) =>
  entries.map(([text, phase], i) => text.replaceAll('{id}', String(100 + i)).replaceAll('{phase}', String(phase))).join('\n'),
);

const argValue = fc.constantFrom('0', '1', '2', 'x', 'zz');
const generatedRequests = fc.record({ a: fc.option(argValue), b: fc.option(argValue), c: fc.option(argValue) });

describe('constant folding on generated rule sets', () => {
  it('gives every request the outcome the rules as written give it', () => {
    fc.assert(
      fc.property(ruleSets, fc.array(generatedRequests, { minLength: 1, maxLength: 4 }), (rules, sent) => {
        const folded = createWaf({ rules: `SecRuleEngine On\n${rules}` }).ruleSet;
        const written = createWaf({ rules: `SecRuleEngine On\n${rules}`, foldConstants: false }).ruleSet;
        for (const args of sent) {
          const query = Object.entries(args)
            .filter(([, v]) => v !== null)
            .map(([k, v]) => `${k}=${v}`)
            .join('&');
          const request: WafRequest = {
            method: 'GET',
            uri: `/?${query}`,
            protocol: 'HTTP/1.1',
            headers: [['Host', 'example.com']],
            remoteAddr: '192.0.2.1',
            remotePort: 1000,
            serverAddr: '192.0.2.2',
            serverPort: 80,
          };
          const members = [...KEYS, 'ka', 'kb', 'kc', '0', '1'];
          expect(outcome(folded, request, null, members)).toEqual(outcome(written, request, null, members));
        }
      }),
      fcParams(400),
    );
  });
});
