// Transaction.end() hands a transaction's mark words to the next transaction of the thread (src/waf/transaction.ts):
// a run of generated requests whose transactions are ended one after another gives every request the outcome a
// fresh transaction gives it, and an ended transaction keeps its results and runs no further phase. (Words left
// unzeroed would not show here: a stale literal bit only lets an operator run that decides for itself.)
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { createWaf, type RuleSet } from '../../src/waf/engine.ts';
import type { WafRequest } from '../../src/waf/request.ts';
import { fcParams } from '../helpers/fc.ts';
import { requests, toRequest } from '../helpers/waf-requests.ts';

/** Phases 1 and 2, then what the request's transaction shows; ended afterwards when `end`. */
function outcome(ruleSet: RuleSet, request: WafRequest, body: string | null, end: boolean): unknown {
  const tx = ruleSet.begin(request);
  const interruption = tx.requestHeaders() ?? tx.requestBody(body);
  if (end) tx.end();
  return {
    interruption,
    internalError: tx.internalError,
    matches: tx.matches.map(({ ruleId, variable, value }) => ({ ruleId, variable, value })),
    anomalyScore: tx.anomalyScore,
  };
}

describe('Transaction.end', () => {
  const { ruleSet } = createWaf({ crs: { paranoiaLevel: 2 } });

  it('leaves every later transaction the outcome a fresh one gives, whatever the earlier requests marked', () => {
    fc.assert(
      fc.property(fc.array(requests, { minLength: 2, maxLength: 6 }), (sent) => {
        const ended = sent.map((one) => outcome(ruleSet, toRequest(one), one.body, true));
        const fresh = sent.map((one) => outcome(ruleSet, toRequest(one), one.body, false));
        expect(ended).toEqual(fresh);
      }),
      fcParams(60),
    );
  });

  it('keeps an ended transaction readable and runs no phase after it', () => {
    const request: WafRequest = {
      method: 'GET',
      uri: `/?q=${encodeURIComponent("1' or '1'='1")}`,
      protocol: 'HTTP/1.1',
      headers: [['Host', 'shop.example']],
      remoteAddr: '192.0.2.1',
      remotePort: 40000,
      serverAddr: '192.0.2.2',
      serverPort: 80,
    };
    const tx = ruleSet.begin(request);
    expect(tx.requestHeaders()).toBeNull();
    tx.end();
    // Phase 2 would refuse this request (942100); ended, the transaction no longer evaluates anything.
    expect(tx.requestBody(null)).toBeNull();
    expect(tx.matches).toEqual([]);
    const whole = ruleSet.begin(request);
    expect(whole.requestBody(null)?.ruleId).toBe(949110);
    whole.end();
    expect(whole.interruption?.ruleId).toBe(949110);
    expect(whole.matches.map((m) => m.ruleId)).toContain(942100);
    expect(whole.anomalyScore).toBeGreaterThanOrEqual(5);
  });
});
