// The engine core (src/waf/compile.ts, transaction.ts and the modules they use) on small hand-written rule
// sets: each case is rules + a request, and what must come out (interruption, logged rule ids, TX values).
// Operators, transformations and body processors are the real ones; the cases only use simple ones so a
// failure here points at the engine, not at them.
import { describe, expect, it } from 'vitest';
import { createWaf, formatModsecLine, type Interruption, type WafOptions } from '../../../src/waf/engine.ts';
import type { WafRequest } from '../../../src/waf/request.ts';
import { TRANSFORMS } from '../../../src/waf/transforms/index.ts';

interface Sent {
  method?: string;
  uri?: string;
  headers?: [string, string][];
  body?: string | null;
}

function request(sent: Sent): WafRequest {
  return {
    method: sent.method ?? (sent.body ? 'POST' : 'GET'),
    uri: sent.uri ?? '/',
    protocol: 'HTTP/1.1',
    headers: sent.headers ?? [['Host', 'example.com']],
    remoteAddr: '192.0.2.7',
    remotePort: 40000,
    serverAddr: '198.51.100.1',
    serverPort: 80,
  };
}

/** Compiles `rules` (no error allowed), runs phases 1-2 on `sent`. */
function run(rules: string, sent: Sent = {}, options: Partial<WafOptions> = {}) {
  const { ruleSet, errors } = createWaf({ rules, ...options });
  expect(errors).toEqual([]);
  const tx = ruleSet.begin(request(sent));
  const interruption: Interruption | null = tx.requestHeaders() ?? tx.requestBody(sent.body ?? null);
  return { tx, interruption, logged: tx.matches.map((m) => m.ruleId) };
}

const FORM = [
  ['Host', 'example.com'],
  ['Content-Type', 'application/x-www-form-urlencoded'],
] as [string, string][];

describe('rule evaluation', () => {
  it('denies with 403 when a rule with deny matches, naming the rule', () => {
    const { interruption, logged } = run(`SecRule ARGS "@rx attack" "id:1,phase:2,deny,log"`, { uri: '/?q=an+attack' });
    expect(interruption).toEqual({ action: 'deny', status: 403, ruleId: 1, reason: 'rule', url: null });
    expect(logged).toEqual([1]);
  });

  it('takes status from the rule and redirect urls from macros', () => {
    expect(run(`SecRule ARGS "@rx x" "id:1,deny,status:418"`, { uri: '/?a=x' }).interruption?.status).toBe(418);
    const { interruption } = run(`SecRule ARGS "@rx x" "id:1,redirect:'http://block.example/?r=%{rule.id}'"`, { uri: '/?a=x' });
    expect(interruption).toMatchObject({ action: 'redirect', status: 302, url: 'http://block.example/?r=1' });
  });

  it('evaluates phase 1 before phase 2, and only phase 2 sees body arguments', () => {
    const rules = `
      SecRule ARGS "@rx x" "id:1,phase:1,pass,log"
      SecRule ARGS "@rx x" "id:2,phase:2,pass,log"
      SecRule ARGS_POST "@rx x" "id:3,phase:1,pass,log"`;
    expect(run(rules, { headers: FORM, body: 'a=x' }).logged).toEqual([2]);
    expect(run(rules, { uri: '/?a=x' }).logged).toEqual([1, 2]);
  });

  it('runs a chain only as a whole: the chain logs under the head id once every link matched', () => {
    const rules = `
      SecRule REQUEST_METHOD "@streq GET" "id:10,phase:1,pass,log,msg:'chained',chain"
        SecRule ARGS:a "@rx ^1$" "chain"
        SecRule ARGS:b "@rx ^2$"`;
    expect(run(rules, { uri: '/?a=1&b=2' }).logged).toEqual([10]);
    expect(run(rules, { uri: '/?a=1&b=3' }).logged).toEqual([]);
  });

  it('runs setvar of a matching link even when a later link fails (ModSecurity v3)', () => {
    const rules = `
      SecRule ARGS:a "@rx 1" "id:10,phase:1,pass,setvar:tx.head=1,chain"
        SecRule ARGS:b "@rx 2" "setvar:tx.tail=1,ctl:ruleRemoveById=99"`;
    const { tx } = run(rules, { uri: '/?a=1&b=3' });
    expect(tx.txValue('head')).toBe('1');
    expect(tx.txValue('tail')).toBeUndefined();
  });

  it('skipAfter jumps to the marker, within the phase and across files of markers', () => {
    const rules = `
      SecRule REQUEST_METHOD "@streq GET" "id:1,phase:1,pass,nolog,skipAfter:END"
      SecRule REQUEST_METHOD "@rx ." "id:2,phase:1,pass,log"
      SecRule REQUEST_METHOD "@rx ." "id:3,phase:2,pass,log"
      SecMarker END
      SecRule REQUEST_METHOD "@rx ." "id:4,phase:1,pass,log"`;
    expect(run(rules).logged).toEqual([4, 3]);
    expect(run(rules, { method: 'HEAD' }).logged).toEqual([2, 4, 3]);
  });

  it('skip:n skips the next n rules of the phase', () => {
    const rules = `
      SecAction "id:1,phase:1,pass,nolog,skip:2"
      SecAction "id:2,phase:1,pass,log"
      SecAction "id:3,phase:1,pass,log"
      SecAction "id:4,phase:1,pass,log"`;
    expect(run(rules).logged).toEqual([4]);
  });

  it('logs only rules that log, with msg and logdata expanded', () => {
    const { tx } = run(
      `SecRule ARGS "@rx (b+)" "id:5,phase:1,pass,capture,log,msg:'found %{TX.1}',logdata:'in %{MATCHED_VAR_NAME}: %{MATCHED_VAR}',severity:CRITICAL,tag:'a',tag:'b',ver:'v1'"
       SecRule ARGS "@rx b" "id:6,phase:1,pass,nolog"`,
      { uri: '/?q=abbc' },
    );
    expect(tx.matches).toHaveLength(1);
    expect(tx.matches[0]).toMatchObject({
      ruleId: 5,
      msg: 'found bb',
      data: 'in ARGS:q: abbc',
      severity: 2,
      tags: ['a', 'b'],
      ver: 'v1',
      variable: 'ARGS:q',
      value: 'abbc',
      operator: 'rx',
      action: 'pass',
      disruptive: false,
    });
  });
});

describe('variables and selectors', () => {
  it('names matched values as ModSecurity does, headers looked up without case', () => {
    const { tx } = run(`SecRule REQUEST_HEADERS:user-agent "@rx bot" "id:1,phase:1,pass,log"`, {
      headers: [['User-Agent', 'a bot']],
    });
    expect(tx.matches[0]?.variable).toBe('REQUEST_HEADERS:User-Agent');
  });

  it('excludes members with !VAR:key and selects by regex key, case-insensitively', () => {
    const rules = `SecRule ARGS|!ARGS:skip "@rx x" "id:1,phase:1,pass,log"
                   SecRule ARGS:/^pre_/ "@rx x" "id:2,phase:1,pass,log"`;
    expect(run(rules, { uri: '/?skip=x' }).logged).toEqual([]);
    expect(run(rules, { uri: '/?PRE_a=x' }).logged).toEqual([1, 2]);
  });

  it('counts with &', () => {
    const rules = `
      SecRule &ARGS "@eq 2" "id:1,phase:1,pass,log"
      SecRule &TX:missing "@eq 0" "id:2,phase:1,pass,log"
      SecRule &REQUEST_HEADERS:Host "@eq 1" "id:3,phase:1,pass,log"`;
    expect(run(rules, { uri: '/?a=1&b=2' }).logged).toEqual([1, 2, 3]);
  });

  it('derives the URI variables', () => {
    const rules = `
      SecRule REQUEST_FILENAME "@streq /a b/c.php" "id:1,phase:1,pass,log"
      SecRule REQUEST_BASENAME "@streq c.php" "id:2,phase:1,pass,log"
      SecRule QUERY_STRING "@streq x=%41" "id:3,phase:1,pass,log"
      SecRule REQUEST_URI "@streq /a%20b/c.php?x=%41" "id:4,phase:1,pass,log"
      SecRule REQUEST_LINE "@streq GET /a%20b/c.php?x=%41 HTTP/1.1" "id:5,phase:1,pass,log"
      SecRule ARGS:x "@streq A" "id:6,phase:1,pass,log"`;
    expect(run(rules, { uri: '/a%20b/c.php?x=%41' }).logged).toEqual([1, 2, 3, 4, 5, 6]);
  });

  it('reads cookies', () => {
    const rules = `SecRule REQUEST_COOKIES:session "@streq abc" "id:1,phase:1,pass,log"
                   SecRule REQUEST_COOKIES_NAMES "@streq other" "id:2,phase:1,pass,log"`;
    expect(run(rules, { headers: [['Cookie', 'session=abc; other=1']] }).logged).toEqual([1, 2]);
  });

  it('captures into TX:0..n', () => {
    const { tx } = run(`SecRule ARGS:a "@rx (\\d+)-(\\d+)" "id:1,phase:1,pass,capture,setvar:tx.sum=%{tx.1}%{tx.2}"`, { uri: '/?a=12-34' });
    expect([tx.txValue('0'), tx.txValue('1'), tx.txValue('2'), tx.txValue('sum')]).toEqual(['12-34', '12', '34', '1234']);
  });

  it('sees MATCHED_VARS of the chain head in a chained rule', () => {
    const rules = `
      SecRule ARGS "@rx a" "id:1,phase:1,pass,log,chain"
        SecRule MATCHED_VARS "@rx b"`;
    expect(run(rules, { uri: '/?x=ab' }).logged).toEqual([1]);
    expect(run(rules, { uri: '/?x=a&y=b' }).logged).toEqual([]);
  });
});

describe('setvar and macros', () => {
  it('sets, adds, subtracts and deletes, reading numbers as std::stoi does', () => {
    const { tx } = run(`
      SecAction "id:1,phase:1,pass,nolog,setvar:tx.score=5,setvar:tx.score=+3,setvar:'tx.score=-1',setvar:tx.flag,setvar:tx.gone=1,setvar:!tx.gone"
      SecAction "id:2,phase:1,pass,nolog,setvar:tx.text=abc,setvar:tx.text=+2,setvar:TX.Mixed=1"`);
    expect(tx.txValue('score')).toBe('7');
    expect(tx.txValue('flag')).toBe('1');
    expect(tx.txValue('gone')).toBeUndefined();
    expect(tx.txValue('text')).toBe('2');
    expect(tx.txValue('mixed')).toBe('1');
  });

  it('expands variables, members and rule metadata in setvar keys and values', () => {
    const { tx } = run(
      `SecRule REQUEST_HEADERS:Host "@rx ." "id:7,phase:1,pass,msg:'the msg',setvar:'tx.%{rule.id}-%{MATCHED_VAR_NAME}=%{REQUEST_HEADERS.host}|%{rule.msg}|%{remote_addr}'"`,
      { headers: [['Host', 'h.example']] },
    );
    expect(tx.txValue('7-REQUEST_HEADERS:Host')).toBe('h.example|the msg|192.0.2.7');
  });

  it('expands operator arguments per transaction', () => {
    const rules = `
      SecAction "id:1,phase:1,pass,nolog,setvar:tx.limit=3"
      SecRule ARGS:n "@gt %{tx.limit}" "id:2,phase:1,pass,log"`;
    expect(run(rules, { uri: '/?n=4' }).logged).toEqual([2]);
    expect(run(rules, { uri: '/?n=3' }).logged).toEqual([]);
  });

  it('adds up an anomaly score as CRS does', () => {
    const { tx, interruption } = run(`
      SecAction "id:1,phase:1,pass,nolog,setvar:tx.critical_anomaly_score=5,setvar:tx.anomaly_score_pl1=0"
      SecRule ARGS "@rx evil" "id:2,phase:2,pass,log,setvar:'tx.anomaly_score_pl1=+%{tx.critical_anomaly_score}'"
      SecAction "id:3,phase:2,pass,nolog,setvar:'tx.anomaly_score=+%{tx.anomaly_score_pl1}'"
      SecRule TX:ANOMALY_SCORE "@ge 10" "id:4,phase:2,deny,log"`, { uri: '/?a=evil&b=evil' });
    expect(tx.anomalyScore).toBe(10);
    expect(interruption?.ruleId).toBe(4);
  });
});

describe('exceptions and ctl', () => {
  const target = `SecRule ARGS "@rx x" "id:100,phase:2,deny,log,tag:'attack-x'"`;

  it('ctl:ruleRemoveTargetById takes one member away from one rule', () => {
    const rules = `SecRule REQUEST_URI "@beginsWith /safe" "id:1,phase:1,pass,nolog,ctl:ruleRemoveTargetById=100;ARGS:q"\n${target}`;
    expect(run(rules, { uri: '/safe?q=x' }).interruption).toBeNull();
    expect(run(rules, { uri: '/safe?p=x' }).interruption?.ruleId).toBe(100);
    expect(run(rules, { uri: '/other?q=x' }).interruption?.ruleId).toBe(100);
  });

  it('ctl:ruleRemoveTargetByTag, ctl:ruleRemoveById and ctl:ruleRemoveByTag', () => {
    const byTag = `SecAction "id:1,phase:1,pass,nolog,ctl:ruleRemoveTargetByTag=attack-x;ARGS:q"\n${target}`;
    expect(run(byTag, { uri: '/?q=x' }).interruption).toBeNull();
    expect(run(`SecAction "id:1,phase:1,pass,nolog,ctl:ruleRemoveById=90-110"\n${target}`, { uri: '/?q=x' }).interruption).toBeNull();
    expect(run(`SecAction "id:1,phase:1,pass,nolog,ctl:ruleRemoveByTag=attack-x"\n${target}`, { uri: '/?q=x' }).interruption).toBeNull();
  });

  it('a rule in detection mode (shadow_by_id, from the policy) logs its match and changes nothing', () => {
    const rules = [
      `SecRule ARGS "@rx evil" "id:1,phase:2,pass,log,msg:'scored',setvar:tx.score=+5,skipAfter:END"`,
      `SecRule ARGS "@rx worse" "id:2,phase:2,deny,status:403,log"`,
      `SecRule TX:score "@ge 5" "id:3,phase:2,deny,status:403,log"`,
      'SecMarker END',
      `SecRule ARGS "@rx evil" "id:4,phase:2,pass,log"`,
    ].join('\n');
    // As written: 1 scores and skips to END, so 3 never runs; 4 logs.
    const written = run(rules, { uri: '/?a=evil' });
    expect({ logged: written.logged, score: written.tx.txValue('score') }).toEqual({ logged: [1, 4], score: '5' });
    const shadow = { directives: { before: [{ kind: 'shadow_by_id' as const, ranges: [{ from: 1, to: 2 }], file: '<policy>', line: 1 }] } };
    // Shadowed: 1 still logs (marked), but sets nothing and does not skip; 3 sees no score; nothing blocks.
    const shadowed = run(rules, { uri: '/?a=evil' }, shadow);
    expect({ logged: shadowed.logged, score: shadowed.tx.txValue('score'), interruption: shadowed.interruption }).toEqual({ logged: [1, 4], score: undefined, interruption: null });
    expect(shadowed.tx.matches.map((m) => m.shadow)).toEqual([true, false]);
    // 2 denies as written, and only logs in detection mode.
    expect(run(rules, { uri: '/?a=worse' }).interruption?.ruleId).toBe(2);
    const worse = run(rules, { uri: '/?a=worse' }, shadow);
    expect({ logged: worse.logged, interruption: worse.interruption, disruptive: worse.tx.matches[0]?.disruptive }).toEqual({ logged: [2], interruption: null, disruptive: false });
  });

  it('SecRuleUpdateTargetById adds exclusions, wherever it is written', () => {
    expect(run(`SecRuleUpdateTargetById 100 "!ARGS:q"\n${target}`, { uri: '/?q=x' }).interruption).toBeNull();
    expect(run(`${target}\nSecRuleUpdateTargetById 100 "!ARGS:q"`, { uri: '/?r=x' }).interruption?.ruleId).toBe(100);
    expect(run(`${target}\nSecRuleUpdateTargetByTag attack-x "!ARGS:q"`, { uri: '/?q=x' }).interruption).toBeNull();
  });

  it('SecRuleUpdateTargetById with a replaced target swaps it', () => {
    const rules = `${target}\nSecRuleUpdateTargetById 100 "ARGS_GET:other" "ARGS"`;
    expect(run(rules, { uri: '/?q=x' }).interruption).toBeNull();
    expect(run(rules, { uri: '/?other=x' }).interruption?.ruleId).toBe(100);
  });

  it('SecRuleRemoveById / ByTag / ByMsg leave rules out', () => {
    expect(run(`${target}\nSecRuleRemoveById 100`, { uri: '/?q=x' }).interruption).toBeNull();
    expect(run(`${target}\nSecRuleRemoveByTag "attack-"`, { uri: '/?q=x' }).interruption).toBeNull();
    expect(run(`SecRule ARGS "@rx x" "id:1,deny,msg:'Bad thing'"\nSecRuleRemoveByMsg "^Bad"`, { uri: '/?q=x' }).interruption).toBeNull();
  });

  it('SecRuleUpdateActionById replaces the disruptive action', () => {
    expect(run(`${target}\nSecRuleUpdateActionById 100 "pass"`, { uri: '/?q=x' }).interruption).toBeNull();
  });

  it('ctl:ruleEngine=Off ends evaluation; DetectionOnly logs but never interrupts', () => {
    expect(run(`SecAction "id:1,phase:1,pass,nolog,ctl:ruleEngine=Off"\n${target}`, { uri: '/?q=x' }).logged).toEqual([]);
    const detect = run(`SecAction "id:1,phase:1,pass,nolog,ctl:ruleEngine=DetectionOnly"\n${target}`, { uri: '/?q=x' });
    expect(detect.interruption).toBeNull();
    expect(detect.logged).toEqual([100]);
    const configured = run(target, { uri: '/?q=x' }, { mode: 'DetectionOnly' });
    expect([configured.interruption, configured.logged]).toEqual([null, [100]]);
  });

  it('allow skips the rest of the request phases; allow:phase only its own phase', () => {
    const rules = (allow: string) => `
      SecRule REQUEST_URI "@beginsWith /ok" "id:1,phase:1,${allow},nolog"
      SecAction "id:2,phase:1,pass,log"
      ${target}`;
    expect(run(rules('allow'), { uri: '/ok?q=x' }).logged).toEqual([]);
    expect(run(rules('allow:phase'), { uri: '/ok?q=x' }).logged).toEqual([100]);
    expect(run(rules('allow'), { uri: '/no?q=x' }).logged).toEqual([2, 100]);
  });
});

describe('default actions and transformations', () => {
  it('block does what SecDefaultAction of its phase says', () => {
    const block = `SecRule ARGS "@rx x" "id:1,phase:2,block,log"`;
    expect(run(`SecDefaultAction "phase:2,log,deny,status:406"\n${block}`, { uri: '/?q=x' }).interruption?.status).toBe(406);
    expect(run(`SecDefaultAction "phase:2,log,pass"\n${block}`, { uri: '/?q=x' }).interruption).toBeNull();
  });

  it('applies default transformations unless the rule says t:none', () => {
    const defaults = `SecDefaultAction "phase:1,pass,log,t:lowercase"`;
    expect(run(`${defaults}\nSecRule ARGS "@streq abc" "id:1,phase:1"`, { uri: '/?a=ABC' }).logged).toEqual([1]);
    expect(run(`${defaults}\nSecRule ARGS "@streq abc" "id:1,phase:1,t:none"`, { uri: '/?a=ABC' }).logged).toEqual([]);
  });

  it('shares cached transformation prefixes between rules without mixing results', () => {
    const rules = `
      SecRule ARGS "@streq a b" "id:1,phase:1,pass,log,t:none,t:urlDecode"
      SecRule ARGS "@streq a b" "id:2,phase:1,pass,log,t:none,t:urlDecode,t:lowercase"
      SecRule ARGS "@streq A B" "id:3,phase:1,pass,log,t:none,t:urlDecode"
      SecRule ARGS "@streq a+b" "id:4,phase:1,pass,log,t:none,t:lowercase"`;
    expect(run(rules, { uri: '/?q=A%252BB' }).logged).toEqual([]);
    expect(run(rules, { uri: '/?q=A%2520B' }).logged).toEqual([2, 3]);
    expect(run(rules, { uri: '/?q=a%2520b' }).logged).toEqual([1, 2]);
  });

  it('gives every chain what running its steps one by one gives, whatever steps it passes over or shares', () => {
    // Chains sharing prefixes, lowering steps after steps the values do or do not trigger, and t:uppercase: the
    // engine skips steps by the values' traits and hands lowering chains one lower-cased copy (transaction.ts).
    const chains = [
      'lowercase',
      'normalizePath,lowercase',
      'normalizePath,cmdLine',
      'urlDecodeUni,lowercase',
      'lowercase,urlDecodeUni',
      'urlDecodeUni,htmlEntityDecode,lowercase',
      'removeWhitespace,lowercase',
      'uppercase,lowercase',
      'lowercase,uppercase',
      'cmdLine',
      'compressWhitespace,cmdLine,normalizePath',
    ];
    const values = ['Please. Deliver', 'a%41b', 'A%2541 &amp; B', 'x/./Y', 'plain', 'Two  Spaces, "Quoted"'];
    const rules = values.flatMap((_, v) =>
      chains.map((chain, c) => `SecRule ARGS:v${v} "@unconditionalMatch" "id:${100 * v + c + 1},phase:1,pass,nolog,t:none,t:${chain.split(',').join(',t:')},setvar:'tx.r${v}_${c}=%{MATCHED_VAR}'"`),
    );
    const query = values.map((value, v) => `v${v}=${encodeURIComponent(value)}`).join('&');
    const { tx } = run(rules.join('\n'), { uri: `/?${query}` });
    values.forEach((value, v) =>
      chains.forEach((chain, c) => {
        const expected = chain.split(',').reduce((text, name) => TRANSFORMS.get(name.toLowerCase())!(text), value);
        expect(tx.txValue(`r${v}_${c}`), `${chain} of ${JSON.stringify(value)}`).toBe(expected);
      }),
    );
  });

  it('multiMatch tries the value before and after each transformation', () => {
    const rules = (extra: string) => `SecRule ARGS "@streq AB" "id:1,phase:1,pass,log,t:none,t:lowercase${extra}"`;
    expect(run(rules(''), { uri: '/?q=AB' }).logged).toEqual([]);
    expect(run(rules(',multiMatch'), { uri: '/?q=AB' }).logged).toEqual([1]);
  });

  it('multiMatch lowers again what an earlier step raised, though the value had no capitals', () => {
    // The value has no capitals, so t:lowercase alone would pass it over; after t:uppercase it must not.
    const rules = `SecRule ARGS "@streq ab" "id:1,phase:1,pass,log,t:none,t:uppercase,t:lowercase,t:removeWhitespace,multiMatch"`;
    expect(run(rules, { uri: '/?q=a%20b' }).logged).toEqual([1]);
    expect(run(rules.replace('t:lowercase,', ''), { uri: '/?q=a%20b' }).logged).toEqual([]);
  });
});

describe('request bodies', () => {
  it('parses urlencoded bodies into ARGS_POST and ARGS, and fills REQUEST_BODY', () => {
    const rules = `
      SecRule ARGS_POST:a "@streq 1" "id:1,phase:2,pass,log"
      SecRule REQUEST_BODY "@streq a=1&b=2" "id:2,phase:2,pass,log"
      SecRule &ARGS "@eq 3" "id:3,phase:2,pass,log"
      SecRule REQBODY_PROCESSOR "@streq URLENCODED" "id:4,phase:1,pass,log"`;
    expect(run(rules, { uri: '/?c=3', headers: FORM, body: 'a=1&b=2' }).logged).toEqual([4, 1, 2, 3]);
  });

  it('switches to the JSON processor with ctl and reports parse errors', () => {
    const headers: [string, string][] = [['Content-Type', 'application/json']];
    const rules = `
      SecRule REQUEST_HEADERS:Content-Type "@rx json" "id:1,phase:1,pass,nolog,ctl:requestBodyProcessor=JSON"
      SecRule ARGS:json.a "@streq 1" "id:2,phase:2,pass,log"
      SecRule REQBODY_ERROR "!@eq 0" "id:3,phase:2,pass,log"`;
    expect(run(rules, { headers, body: '{"a":1}' }).logged).toEqual([2]);
    expect(run(rules, { headers, body: '{"a":' }).logged).toEqual([3]);
  });

  it('fills REQUEST_BODY for URLENCODED or when forced, as ModSecurity 2 and CRS 901340 expect', () => {
    const json: [string, string][] = [['Content-Type', 'application/json']];
    const text: [string, string][] = [['Content-Type', 'text/plain']];
    const body = `SecRule REQUEST_BODY "@rx x" "id:2,phase:2,pass,log"`;
    const force = `SecRule REQBODY_PROCESSOR "!@rx (?:URLENCODED|MULTIPART|XML|JSON)" "id:1,phase:1,pass,nolog,ctl:forceRequestBodyVariable=On"`;
    const json_ = `SecAction "id:3,phase:1,pass,nolog,ctl:requestBodyProcessor=JSON"`;
    expect(run(`${force}\n${body}`, { headers: text, body: 'x' }).logged).toEqual([2]);
    expect(run(body, { headers: text, body: 'x' }).logged).toEqual([]);
    expect(run(`${json_}\n${force}\n${body}`, { headers: json, body: '["x"]' }).logged).toEqual([]);
  });

  it('refuses a body over SecRequestBodyLimit with 413, or inspects its start with ProcessPartial', () => {
    const rules = `SecRequestBodyLimit 10\nSecRule REQUEST_BODY "@rx ^a" "id:1,phase:2,pass,log"`;
    expect(run(rules, { headers: FORM, body: 'a'.repeat(11) }).interruption).toMatchObject({ status: 413, reason: 'body_limit' });
    const partial = run(`SecRequestBodyLimitAction ProcessPartial\n${rules}`, { headers: FORM, body: 'a'.repeat(11) });
    expect([partial.interruption, partial.logged]).toEqual([null, [1]]);
  });

  it('leaves the body alone with SecRequestBodyAccess Off', () => {
    const rules = `SecRequestBodyAccess Off\nSecRule ARGS "@rx ." "id:1,phase:2,pass,log"`;
    expect(run(rules, { headers: FORM, body: 'a=1' }).logged).toEqual([]);
  });
});

describe('safety', () => {
  const rules = `SecRule ARGS "@rx z" "id:1,phase:1,pass,log"\nSecRule ARGS "@rx z" "id:2,phase:2,pass,log"`;
  // Two values: each text is scanned for literals once per transaction, so it is their sum that passes 150.
  const sent = { uri: `/?a=${'y'.repeat(100)}&b=${'x'.repeat(100)}` };

  it('stops at the evaluation budget: fail-closed blocks, fail-open passes, both flag it', () => {
    const closed = run(rules, sent, { limits: { budget: 150, onExhausted: 'fail-closed' } });
    expect(closed.interruption).toMatchObject({ status: 403, ruleId: 0, reason: 'budget' });
    expect(closed.tx.budgetExceeded).toBe(true);
    const open = run(rules, sent, { limits: { budget: 150, onExhausted: 'fail-open' } });
    expect(open.interruption).toBeNull();
    expect(open.tx.budgetExceeded).toBe(true);
    expect(run(rules, sent, { limits: { budget: 1000 } }).tx.budgetExceeded).toBe(false);
  });

  it('stops a phase past its time budget, reading the clock only once enough bytes were spent', () => {
    // 70 KiB of input passes CLOCK_EVERY_UNITS on the second evaluation; a zero-length phase is over by then.
    const long = { uri: `/?a=${'y'.repeat(70 * 1024)}` };
    const late = run(rules, long, { limits: { phaseTimeMs: 0, onExhausted: 'fail-closed' } });
    expect(late.interruption).toMatchObject({ status: 403, ruleId: 0, reason: 'budget' });
    expect(late.tx.budgetExceeded).toBe(true);
    // A short request never reads the clock: even a zero time budget leaves it alone.
    expect(run(rules, sent, { limits: { phaseTimeMs: 0 } }).tx.budgetExceeded).toBe(false);
    expect(run(rules, long, { limits: { phaseTimeMs: 60_000 } }).tx.budgetExceeded).toBe(false);
  });

  it('does not evaluate inputs too long for a backtracking-only regex, and flags it as PCRE limits', () => {
    // A back reference keeps the pattern off V8's linear engine, so ../regex.ts bounds its input length.
    const rules = `SecRule ARGS "@rx (a+)\\1b" "id:1,phase:1,pass,log"
                   SecRule TX:MSC_PCRE_LIMITS_EXCEEDED "@eq 1" "id:2,phase:1,deny,log"`;
    const short = run(rules, { uri: '/?q=aab' });
    expect([short.logged, short.tx.regexLimitExceeded]).toEqual([[1], false]);
    const long = run(rules, { uri: `/?q=${'a'.repeat(5000)}b` });
    expect([long.logged, long.tx.regexLimitExceeded, long.interruption?.ruleId]).toEqual([[2], true, 2]);
  });

  it('lists rules whose operator can never match here as warnings, not errors', () => {
    const { errors, warnings } = createWaf({ rules: 'SecRule REMOTE_ADDR "@rbl bl.example" "id:1,phase:1,deny"', rulesName: 'r.conf' });
    expect(errors).toEqual([]);
    expect(warnings).toEqual([{ file: 'r.conf', line: 1, message: expect.stringContaining('rule 1: never matches') }]);
  });

  it('reports configuration problems with file and line and keeps the good rules', () => {
    const { ruleSet, errors } = createWaf({
      rules: 'SecRule ARGS "@nosuchop x" "id:1"\nSecBogus On\nSecRule ARGS "@rx x" "id:2,t:nosuch"\nSecRule ARGS "@rx x" "id:3,deny"\nSecRule ARGS "@rx x" "deny"',
      rulesName: 'custom.conf',
    });
    expect(errors.map((e) => `${e.file}:${e.line}`).sort()).toEqual(['custom.conf:1', 'custom.conf:2', 'custom.conf:3', 'custom.conf:5']);
    expect(ruleSet.ruleCount).toBe(1);
  });

  it('refuses duplicate ids and unknown skipAfter markers', () => {
    const { errors } = createWaf({ rules: 'SecAction "id:1,pass"\nSecAction "id:1,pass"\nSecAction "id:2,pass,skipAfter:NOWHERE"' });
    expect(errors.map((e) => e.message)).toEqual([expect.stringContaining('duplicate id'), expect.stringContaining('NOWHERE')]);
  });
});

describe('formatModsecLine', () => {
  it('renders the ModSecurity error-log line the CRS regression suite greps', () => {
    const { tx } = run(`SecRule ARGS "@rx x" "id:942100,phase:2,deny,msg:'SQL Injection',logdata:'Matched Data: %{MATCHED_VAR}',severity:'CRITICAL',tag:'attack-sqli',ver:'OWASP_CRS/3.3.4'"`, {
      uri: '/?q=x%22y',
    });
    const line = formatModsecLine(tx.matches[0]!, { uri: '/', uniqueId: tx.uniqueId });
    expect(line).toMatch(/^ModSecurity: Access denied with code 403 \(phase 2\)\. Matched "Operator `Rx' with parameter `x' against variable `ARGS:q' \(Value: `x\\x22y' \)/);
    expect(line).toContain('[id "942100"]');
    expect(line).toContain('[msg "SQL Injection"] [data "Matched Data: x\\x22y"] [severity "2"] [ver "OWASP_CRS/3.3.4"]');
    expect(line).toContain('[tag "attack-sqli"]');
  });
});
