// The engine (src/waf/engine.ts) with the whole CRS 3.3.4 loaded, on generated requests: arbitrary methods,
// targets, headers and body bytes, under every body processor. No transaction may throw or report an internal
// error; every outcome is a well-formed interruption or null; the evaluation budget holds.
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { createWaf } from '../../src/waf/engine.ts';
import { fcParams } from '../helpers/fc.ts';
import { requests, toRequest } from '../helpers/waf-requests.ts';

describe('the engine with CRS on arbitrary requests', () => {
  const { ruleSet, errors } = createWaf({ crs: { paranoiaLevel: 4 } });
  const tight = createWaf({ crs: { paranoiaLevel: 4 }, limits: { budget: 2000, onExhausted: 'fail-closed' } }).ruleSet;

  it('loads the CRS', () => {
    expect(errors).toEqual([]);
  });

  it('never throws nor fails internally, and answers with a well-formed outcome', () => {
    fc.assert(
      fc.property(requests, (sent) => {
        const tx = ruleSet.begin(toRequest(sent));
        const interruption = tx.requestHeaders() ?? tx.requestBody(sent.body);
        tx.responseHeaders({ status: 200, protocol: 'HTTP/1.1', headers: [['Content-Type', 'text/html']] });
        tx.responseBody('<html>ok</html>');
        tx.logging();
        expect(tx.internalError).toBeNull();
        if (interruption !== null) {
          expect(['deny', 'drop', 'redirect']).toContain(interruption.action);
          expect(interruption.status).toBeGreaterThanOrEqual(300);
        }
        for (const match of tx.matches) expect(match.ruleId).toBeGreaterThan(0);
        expect(Number.isFinite(tx.anomalyScore)).toBe(true);
      }),
      fcParams(200),
    );
  });

  it('keeps to a small evaluation budget: a request that exceeds it is flagged and, fail-closed, refused', () => {
    fc.assert(
      fc.property(requests, (sent) => {
        const tx = tight.begin(toRequest(sent));
        const interruption = tx.requestHeaders() ?? tx.requestBody(sent.body);
        expect(tx.internalError).toBeNull();
        if (tx.budgetExceeded) expect(interruption).toMatchObject({ reason: 'budget', ruleId: 0 });
      }),
      fcParams(100),
    );
  });
});
