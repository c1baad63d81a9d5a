// The platform's JSON policy — custom rules, exclusions, allowlists — turned into what the engine runs. Custom
// rules and exclusions become SecLang directives built as AST (never as SecLang text: a pattern with quotes
// or backslashes cannot break out of a generated rule), so they go through the same compiler, budget and
// match log as the CRS. Allowlists never reach the engine: the L7 gate skips the WAF for them, which is both
// the cheapest check and the one that always wins.
//
//   rule       {id, name, pattern, action: block|log|challenge, severity, targets, domains?}
//              → SecRule <targets> "@rx pattern" "id,phase:2,t:none,deny,status:403|pass,log,msg,severity,tag"
//              (for some domains: a chain whose head matches the request's host); challenge is `pass` with
//              the tag CHALLENGE_TAG, which the L7 gate answers with its challenge (src/http/challenge.ts)
//   exclusion  {rule_ids, path?, parameter?, domains?}
//              → SecRule REQUEST_FILENAME "@beginsWith path" "phase:1,pass,nolog,ctl:ruleRemoveTargetById=id;ARGS:parameter"
//              (ctl:ruleRemoveById without a parameter), loaded before the CRS so phase 1 rules see it too
//   rule mode  {rule_ids, mode: detection|off}
//              → shadow_by_id (no SecLang spelling: the rules log their matches and change nothing, so they
//              add nothing to the anomaly score) | SecRuleRemoveById; both apply wherever written
import type { WafPolicy } from '../messages.ts';
import type { ActionSpec, Directive, SourcePosition, VariableSelector } from './seclang/ast.ts';

type CustomRule = WafPolicy['rules'][number];
type Exclusion = WafPolicy['exclusions'][number];
type CustomRuleTarget = CustomRule['targets'][number];

/** Marks the matches of `challenge` rules for the L7 gate. */
export const CHALLENGE_TAG = 'secbeat-challenge';

/** Exclusions get ids from here down: below the local-rule range custom rules use. */
const EXCLUSION_ID_BASE = 99_999;

const TARGET_VARIABLES: Record<CustomRuleTarget, VariableSelector[]> = {
  args: [selector('ARGS')],
  args_names: [selector('ARGS_NAMES')],
  path: [selector('REQUEST_FILENAME')],
  uri: [selector('REQUEST_URI')],
  query: [selector('QUERY_STRING')],
  body: [selector('REQUEST_BODY')],
  headers: [selector('REQUEST_HEADERS')],
  cookies: [selector('REQUEST_COOKIES'), selector('REQUEST_COOKIES_NAMES')],
  method: [selector('REQUEST_METHOD')],
  user_agent: [selector('REQUEST_HEADERS', 'User-Agent')],
  ip: [selector('REMOTE_ADDR')],
};

/** Directives to load before the CRS (exclusions) and after it (custom rules). */
export function policyDirectives(policy: WafPolicy, file = '<waf policy>'): { before: Directive[]; after: Directive[] } {
  const modes = policy.rule_modes.map(
    (mode, i): Directive => ({ kind: mode.mode === 'detection' ? 'shadow_by_id' : 'remove_by_id', ranges: mode.rule_ids.map((id) => ({ from: id, to: id })), file, line: i + 1 }),
  );
  const before = [...modes, ...policy.exclusions.flatMap((exclusion, i) => exclusionDirectives(exclusion, EXCLUSION_ID_BASE - i, { file, line: i + 1 }))];
  const after = policy.rules.flatMap((rule, i) => ruleDirectives(rule, { file, line: i + 1 }));
  return { before, after };
}

function ruleDirectives(rule: CustomRule, at: SourcePosition): Directive[] {
  const actions: ActionSpec[] = [
    { name: 'id', value: String(rule.id) },
    { name: 'phase', value: '2' },
    { name: 't', value: 'none' },
    ...(rule.action === 'block' ? [{ name: 'deny' }, { name: 'status', value: '403' }] : [{ name: 'pass' }]),
    { name: 'log' },
    { name: 'msg', value: rule.name },
    { name: 'severity', value: rule.severity.toUpperCase() },
    { name: 'tag', value: 'attack-custom' },
    ...(rule.action === 'challenge' ? [{ name: 'tag', value: CHALLENGE_TAG }] : []),
    { name: 'logdata', value: 'Matched Data: %{MATCHED_VAR} found within %{MATCHED_VAR_NAME}' },
  ];
  const match: Directive = { kind: 'rule', variables: rule.targets.flatMap((t) => TARGET_VARIABLES[t]), operator: { name: 'rx', argument: rule.pattern, negated: false }, actions: [], ...at };
  if (rule.domains === undefined) return [{ ...match, actions }];
  return [{ ...hostRule(rule.domains, at), actions: [...actions, ...HOST_CHAIN] }, { ...match, actions: [{ name: 't', value: 'none' }] }];
}

function exclusionDirectives(exclusion: Exclusion, id: number, at: SourcePosition): Directive[] {
  const ctl: ActionSpec[] = exclusion.rule_ids.map((ruleId) => ({
    name: 'ctl',
    value: exclusion.parameter === undefined ? `ruleRemoveById=${ruleId}` : `ruleRemoveTargetById=${ruleId};ARGS:${exclusion.parameter}`,
  }));
  const head: ActionSpec[] = [{ name: 'id', value: String(id) }, { name: 'phase', value: '1' }, { name: 'pass' }, { name: 'nolog' }, { name: 't', value: 'none' }];
  const path: Directive = {
    kind: 'rule',
    variables: [selector('REQUEST_FILENAME')],
    operator: exclusion.path === undefined ? { name: 'unconditionalMatch', argument: '', negated: false } : { name: 'beginsWith', argument: exclusion.path, negated: false },
    actions: [],
    ...at,
  };
  if (exclusion.domains === undefined) return [{ ...path, actions: [...head, ...ctl] }];
  return [{ ...hostRule(exclusion.domains, at), actions: [...head, ...HOST_CHAIN] }, { ...path, actions: [{ name: 't', value: 'none' }, ...ctl] }];
}

/** The host test heads a chain: hosts compare in lower case; the rule proper is the next link. */
const HOST_CHAIN: readonly ActionSpec[] = [{ name: 't', value: 'lowercase' }, { name: 'chain' }];

/** Matches requests for one of `domains`: SERVER_NAME is the Host header without its port. */
function hostRule(domains: readonly string[], at: SourcePosition): Extract<Directive, { kind: 'rule' }> {
  const names = domains.map((d) => d.toLowerCase().replace(/[.*+?^${}()|[\]\\]/g, '\\$&'));
  return { kind: 'rule', variables: [selector('SERVER_NAME')], operator: { name: 'rx', argument: `^(?:${names.join('|')})$`, negated: false }, actions: [], ...at };
}

function selector(collection: string, key?: string): VariableSelector {
  return key === undefined ? { collection, count: false, exclude: false } : { collection, key: { kind: 'name', value: key }, count: false, exclude: false };
}
