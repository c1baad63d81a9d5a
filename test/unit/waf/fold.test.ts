// Constant folding (src/waf/fold.ts) on hand-written rule sets: what it keeps, what it drops, and that the
// transaction sees what the rules as written give it where paths join. test/property/waf-fold.prop.test.ts
// compares outcomes on generated rule sets and on the CRS.
import { describe, expect, it } from 'vitest';
import { createWaf, type RuleSet } from '../../../src/waf/engine.ts';
import type { WafRequest } from '../../../src/waf/request.ts';

function compile(rules: string, foldConstants = true): RuleSet {
  const { ruleSet, errors } = createWaf({ rules: `SecRuleEngine On\n${rules}`, foldConstants });
  expect(errors).toEqual([]);
  return ruleSet;
}

/** The ids of phase `phase`'s list, `*` marking a rule without operator (a folded batch or jump). */
function listed(ruleSet: RuleSet, phase: 1 | 2): string[] {
  return ruleSet.compiled.phases[phase]!.map((rule) => `${rule.id}${rule.operator === null ? '*' : ''}`);
}

function get(query: string): WafRequest {
  return { method: 'GET', uri: `/?${query}`, protocol: 'HTTP/1.1', headers: [['Host', 'example.com']], remoteAddr: '192.0.2.1', remotePort: 1, serverAddr: '192.0.2.2', serverPort: 80 };
}

/** TX members `names` and the logged rule ids after phases 1-2, with the rules folded and as written. */
function both(rules: string, query: string, names: readonly string[]): { folded: unknown; written: unknown } {
  const run = (ruleSet: RuleSet) => {
    const tx = ruleSet.begin(get(query));
    tx.requestBody(null);
    return { members: names.map((name) => tx.txValue(name) ?? null), logged: tx.matches.map((match) => match.ruleId) };
  };
  return { folded: run(compile(rules)), written: run(compile(rules, false)) };
}

describe('constant folding', () => {
  it('drops a paranoia gate and the rules it always skips, and batches constant setvars', () => {
    const rules = `
SecAction "id:1,phase:1,pass,nolog,setvar:tx.paranoia_level=1"
SecRule &TX:detection_paranoia_level "@eq 0" "id:2,phase:1,pass,nolog,setvar:tx.detection_paranoia_level=%{tx.paranoia_level}"
SecRule ARGS "@contains attack" "id:3,phase:2,deny,log"
SecRule TX:DETECTION_PARANOIA_LEVEL "@lt 2" "id:4,phase:2,pass,nolog,skipAfter:END"
SecRule ARGS "@contains odd" "id:5,phase:2,deny,log"
SecMarker END
SecRule ARGS "@contains evil" "id:6,phase:2,deny,log"`;
    const ruleSet = compile(rules);
    expect(listed(ruleSet, 1)).toEqual(['1*']);
    expect(ruleSet.compiled.phases[1]![0]!.setvars.map((setvar) => `${setvar.key.source}=${setvar.value.source}`)).toEqual([
      'paranoia_level=1',
      'detection_paranoia_level=1',
    ]);
    expect(listed(ruleSet, 2)).toEqual(['3', '6']);
    expect(ruleSet.ruleCount).toBe(6);
    expect(ruleSet.begin(get('q=odd')).requestBody(null)).toBeNull();
    expect(ruleSet.begin(get('q=evil')).requestBody(null)).toMatchObject({ ruleId: 6 });
  });

  it('keeps a gate that a ctl may remove at run time, and drops one whose ctl no path reaches', () => {
    const rules = `
SecAction "id:1,phase:1,pass,nolog,setvar:tx.level=1"
SecRule ARGS:off "@streq 1" "id:2,phase:1,pass,nolog,ctl:ruleRemoveById=3"
SecRule TX:level "@lt 2" "id:3,phase:1,pass,nolog,skipAfter:END"
SecRule ARGS "@contains x" "id:4,phase:1,deny,log"
SecMarker END
SecRule TX:level "@lt 2" "id:5,phase:2,pass,nolog,skipAfter:END2"
SecRule ARGS:off "@streq 1" "id:6,phase:2,pass,nolog,ctl:ruleRemoveById=7"
SecMarker END2
SecRule TX:level "@lt 2" "id:7,phase:2,pass,nolog,skipAfter:END3"
SecRule ARGS "@contains y" "id:8,phase:2,deny,log"
SecMarker END3`;
    const ruleSet = compile(rules);
    expect(listed(ruleSet, 1)).toEqual(['1*', '2', '3', '4']);
    // 6 is never reached, so nothing may remove 7: 7 and what it skips fold away.
    expect(listed(ruleSet, 2)).toEqual([]);
    expect(ruleSet.begin(get('off=1&q=x')).requestBody(null)).toMatchObject({ ruleId: 4 });
    expect(ruleSet.begin(get('q=x')).requestBody(null)).toBeNull();
  });

  it('does not run a batch of setvars across the landing of a jump', () => {
    const rules = `
SecRule ARGS:c "@streq 1" "id:1,phase:1,pass,nolog,skipAfter:M"
SecAction "id:2,phase:1,pass,nolog,setvar:tx.skipped=1"
SecMarker M
SecAction "id:3,phase:1,pass,nolog,setvar:tx.landed=1"
SecRule TX:skipped "@eq 1" "id:4,phase:2,pass,log"`;
    expect(listed(compile(rules), 1)).toEqual(['1', '2*', '3*']);
    for (const query of ['c=1', 'c=2']) {
      const { folded, written } = both(rules, query, ['skipped', 'landed']);
      expect(folded).toEqual(written);
    }
    expect(both(rules, 'c=1', ['skipped', 'landed']).folded).toEqual({ members: [null, '1'], logged: [] });
  });

  it('begins phase 2 from what holds after phase 1 and at its allow:phase exits', () => {
    const rules = `
SecAction "id:1,phase:1,pass,nolog,setvar:tx.k=before"
SecRule ARGS:stop "@streq 1" "id:2,phase:1,allow:phase,nolog"
SecAction "id:3,phase:1,pass,nolog,setvar:tx.k=after"
SecRule TX:k "@streq after" "id:4,phase:2,pass,log,msg:'after'"
SecRule TX:k "@streq before" "id:5,phase:2,pass,log,msg:'before'"`;
    // Rule 4 and 5 each match on one path: both are kept.
    expect(listed(compile(rules), 2)).toEqual(['4', '5']);
    for (const query of ['stop=1', 'stop=0']) {
      const { folded, written } = both(rules, query, ['k']);
      expect(folded).toEqual(written);
    }
  });

  it('forgets TX:0-9 after a capture and members whose keys a rule builds from the request', () => {
    const rules = `
SecAction "id:1,phase:1,pass,nolog,setvar:tx.1=z,setvar:tx.h_host=0"
SecRule ARGS:a "@rx ^(.)" "id:2,phase:1,pass,nolog,capture"
SecRule REQUEST_HEADERS_NAMES "@rx ^.*$" "id:3,phase:1,pass,nolog,capture,t:lowercase,setvar:'tx.h_%{tx.0}=1'"
SecRule TX:1 "@streq z" "id:4,phase:2,pass,log"
SecRule TX:h_host "@eq 1" "id:5,phase:2,pass,log"`;
    expect(listed(compile(rules), 2)).toEqual(['4', '5']);
    const { folded, written } = both(rules, 'a=q', ['1', 'h_host']);
    expect(folded).toEqual(written);
    expect(folded).toEqual({ members: ['q', '1'], logged: [5] });
  });
});
