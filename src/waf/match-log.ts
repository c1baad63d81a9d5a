// The match log: one record per matched rule that logs, and its rendering as the line libmodsecurity 3 writes
// to the web server's error log (RuleMessage::log). The CRS regression suite states its expectations as
// regexes over those lines (`log_contains: id "942100"`), so the rendering keeps ModSecurity's field order
// and quoting.

import type { CompiledRule, Phase } from './ruleset.ts';

/** The rule's metadata actions as the log prints them: ModSecurity logs them as the rule declares them. */
type RuleMetadata = Pick<CompiledRule, 'severity' | 'tags' | 'ver' | 'rev' | 'maturity' | 'accuracy'>;

export interface MatchRecord extends RuleMetadata {
  readonly ruleId: number;
  readonly phase: Phase;
  /** msg, expanded. */
  readonly msg: string;
  /** logdata, expanded and cut to MAX_LOGGED_BYTES. */
  readonly data: string;
  readonly file: string;
  readonly line: number;
  /** MATCHED_VAR_NAME of the last match of the chain (`ARGS:q`). */
  readonly variable: string;
  /** MATCHED_VAR, cut to MAX_LOGGED_BYTES. */
  readonly value: string;
  /** The operator that matched last (`rx`), and its argument as written. */
  readonly operator: string;
  readonly operatorArgument: string;
  /** The rule's disruptive action as written (`block`, `deny`, `pass` …). */
  readonly action: string;
  /** This rule interrupted the transaction. */
  readonly disruptive: boolean;
  /** With `disruptive`, the response status. */
  readonly status: number | null;
  /** The rule is in detection mode: it changed nothing (see the policy's rule_modes). */
  readonly shadow: boolean;
}

/** Attacker-controlled text kept in a record: ModSecurity 2 cuts logdata at 512 bytes as well. */
export const MAX_LOGGED_BYTES = 512;

/** What a log line says about the transaction rather than the rule; all optional. */
export interface LogContext {
  clientIp?: string;
  hostname?: string;
  uri?: string;
  uniqueId?: string;
}

/**
 * `ModSecurity: Warning. Matched "Operator `Rx' with parameter `…' against variable `ARGS:q' (Value: `…' )
 * [file "…"] [line "…"] [id "942100"] [rev ""] [msg "…"] [data "…"] [severity "2"] [ver "…"] [maturity "0"]
 * [accuracy "0"] [tag "…"]… [hostname "…"] [uri "…"] [unique_id "…"] [ref ""]`, or `Access denied with code
 * 403 (phase 2).` in place of `Warning.` for the rule that blocked.
 */
export function formatModsecLine(record: MatchRecord, context: LogContext = {}): string {
  const head = record.disruptive
    ? `ModSecurity: Access denied with code ${record.status ?? 403} (phase ${record.phase}). `
    : 'ModSecurity: Warning. ';
  const match =
    `Matched "Operator \`${operatorLabel(record.operator)}' with parameter \`${escape(cut(record.operatorArgument, 200))}' ` +
    `against variable \`${escape(record.variable)}' (Value: \`${escape(cut(record.value, 100))}' )`;
  const fields: [string, string][] = [
    ['file', record.file],
    ['line', String(record.line)],
    ['id', String(record.ruleId)],
    ['rev', record.rev],
    ['msg', record.msg],
    ['data', cut(record.data, 200)],
    ['severity', String(record.severity ?? 0)],
    ['ver', record.ver],
    ['maturity', String(record.maturity ?? 0)],
    ['accuracy', String(record.accuracy ?? 0)],
    ...record.tags.map((tag): [string, string] => ['tag', tag]),
    ['hostname', context.hostname ?? ''],
    ['uri', cut(context.uri ?? '', 200)],
    ['unique_id', context.uniqueId ?? ''],
    ['ref', ''],
  ];
  const client = context.clientIp === undefined ? '' : `[client ${context.clientIp}] `;
  return `${client}${head}${match}${fields.map(([name, value]) => ` [${name} "${escape(value)}"]`).join('')}`;
}

/** `rx` → `Rx`, `detectSQLi` → `DetectSQLi`: how ModSecurity names operators in its messages. */
function operatorLabel(name: string): string {
  return name === '' ? name : name[0]!.toUpperCase() + name.slice(1);
}

function cut(text: string, max: number): string {
  return text.length <= max ? text : text.slice(0, max);
}

/**
 * ModSecurity's toHexIfNeeded with quote escaping: bytes outside printable ASCII, `"` and `\` as `\xHH`, so a
 * logged value can neither break the line nor fake a field.
 */
function escape(text: string): string {
  let out = '';
  let run = 0;
  for (let i = 0; i < text.length; i++) {
    const code = text.charCodeAt(i);
    if (code >= 0x20 && code < 0x7f && code !== 0x22 && code !== 0x5c) continue;
    out += `${text.slice(run, i)}\\x${code.toString(16).padStart(2, '0')}`;
    run = i + 1;
  }
  return run === 0 ? text : out + text.slice(run);
}
