// The config pipeline: read → ${VAR} interpolation → TOML parse → env overrides → CLI overrides → schema →
// semantic checks → deep freeze. Called by main.ts (run, validate-config) and the config actor (reload).
// It never throws for any file content and never binds or starts anything; every problem becomes a ConfigIssue.
import { isUtf8 } from 'node:buffer';
import { readFileSync, statSync } from 'node:fs';
import { resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parse, TomlError } from 'smol-toml';
import * as v from 'valibot';
import type { ErrorCode } from '../errors.ts';
import { isUnknownKeyIssue, issueKeys, PARSE } from '../validation.ts';
import { checkConfig } from './checks.ts';
import { indexKeyLines, locateKey, suggestKey, type KeyIndex } from './locate.ts';
import { ConfigSchema, type Config, type SectionName } from './schema.ts';

export interface ConfigSource {
  /** Config file; null/absent → $MITIGATION_CONFIG → the embedded config/secbeat.toml. Relative to `cwd`. */
  file?: string | null;
  /** Environment for MITIGATION_*, SECBEAT_<SECTION>__<KEY> and ${VAR}; absent → none (pass process.env explicitly). */
  env?: Record<string, string | undefined>;
  /** Command-line "section.key=value" overrides, applied last; the value is read as a TOML value. */
  overrides?: readonly string[];
  /** Directory relative paths resolve against; defaults to process.cwd(). */
  cwd?: string;
}

export type ConfigErrorCode = Extract<ErrorCode, `SECBEAT_ERR_CONFIG_${string}`>;

export interface ConfigIssue {
  code: ConfigErrorCode;
  /** The file as the operator named it; null when the problem came from the environment or command line. */
  file: string | null;
  /** Dotted key path, e.g. "server.worker_threads"; "" for whole-file problems. */
  path: string;
  /** 1-based position in `file`, when known. */
  line: number | null;
  column: number | null;
  message: string;
}

export type LoadResult =
  /** `file` is the absolute path that was read, null for the embedded default; reload passes it back. */
  | { ok: true; config: Readonly<Config>; file: string | null }
  | { ok: false; issues: ConfigIssue[] };

export const EMBEDDED_CONFIG_PATH = fileURLToPath(new URL('../../config/secbeat.toml', import.meta.url));

/** Config files are hand-written and small; the cap bounds parse time and memory for hostile input. */
const MAX_CONFIG_BYTES = 1024 * 1024;
/** Overrides come from env vars and argv; anything longer is taken as a plain string without parsing. */
const MAX_OVERRIDE_BYTES = 64 * 1024;
/** Past this many, further issues only hide the first ones; the operator fixes and reruns. */
const MAX_ISSUES = 100;
/** Keys longer than this are cut in issue paths so one hostile key cannot make a megabyte log line. */
const MAX_KEY_SHOWN = 128;
/** The schema nests section → key → array item; deeper values are rejected by it, so interpolation stops there. */
const MAX_INTERPOLATION_DEPTH = 3;
/** Nothing valid is nested deeper than an array in a section; the cap bounds hostile inline nesting. */
const MAX_TOML_DEPTH = 32;

const REDACTED = '[redacted]';
const ENV_PREFIX = 'SECBEAT_';
const VAR_NAME = /^[A-Za-z_][A-Za-z0-9_]*$/;

type Table = Record<string, unknown>;

function isTable(value: unknown): value is Table {
  if (typeof value !== 'object' || value === null || Array.isArray(value)) return false;
  const proto: unknown = Object.getPrototypeOf(value);
  return proto === Object.prototype || proto === null;
}

const SECTIONS = Object.keys(ConfigSchema.entries) as SectionName[];

function isSection(name: string): name is SectionName {
  return Object.hasOwn(ConfigSchema.entries, name);
}

function sectionFields(section: SectionName): v.ObjectEntries {
  return ConfigSchema.entries[section].wrapped.entries;
}

/** Keys valid directly under `parent` (the root or a section); empty below that. */
function knownKeys(parent: readonly PropertyKey[]): string[] {
  if (parent.length === 0) return SECTIONS;
  const section = String(parent[0]);
  return parent.length === 1 && isSection(section) ? Object.keys(sectionFields(section)) : [];
}

function unknownKeyMessage(parent: readonly PropertyKey[], key: string): string {
  const suggestion = suggestKey(key, knownKeys(parent));
  return `unknown ${parent.length === 0 ? 'section' : 'key'}${suggestion ? ` (did you mean ${suggestion}?)` : ''}`;
}

/** Collects issues up to MAX_ISSUES and places each at the file position or the override that caused it. */
class IssueList {
  readonly issues: ConfigIssue[] = [];
  /** JSON of [section, key] → the env var or CLI flag that set it last; such issues point there, not into the file. */
  readonly origins = new Map<string, string>();
  readonly #file: string;
  readonly #text: string;
  #index: KeyIndex | null = null;
  #omitted = 0;

  constructor(file: string, text: string) {
    this.#file = file;
    this.#text = text;
  }

  /** `describe` may be a function so that issues past the cap cost nothing (a hostile file can hold 100k keys). */
  add(code: ConfigErrorCode, path: readonly PropertyKey[], describe: string | (() => string)): void {
    if (this.issues.length >= MAX_ISSUES) {
      this.#omitted++;
      return;
    }
    const message = typeof describe === 'string' ? describe : describe();
    const keys = path.map(String);
    const shown = keys.map((k) => (k.length > MAX_KEY_SHOWN ? `${k.slice(0, MAX_KEY_SHOWN)}…` : k)).join('.');
    const origin = this.origins.get(JSON.stringify(keys.slice(0, 2)));
    if (origin !== undefined) {
      this.issues.push({ code, file: null, path: shown, line: null, column: null, message: `${message} (set by ${origin})` });
      return;
    }
    this.#index ??= indexKeyLines(this.#text);
    const at = locateKey(this.#index, keys);
    this.issues.push({ code, file: this.#file, path: shown, line: at?.line ?? null, column: at?.column ?? null, message });
  }

  /** Adds a problem with an override itself (unknown or malformed key): it points at the variable, not the file. */
  addOverride(path: string, message: string): void {
    if (this.issues.length >= MAX_ISSUES) this.#omitted++;
    else this.issues.push({ code: 'SECBEAT_ERR_CONFIG_INVALID', file: null, path, line: null, column: null, message });
  }

  /** Adds an issue that has no key (read and parse failures). */
  addWhole(code: ConfigErrorCode, message: string, line: number | null = null, column: number | null = null): void {
    this.issues.push({ code, file: this.#file, path: '', line, column, message });
  }

  /** Issues in file order (the order an operator fixes them), then unplaced ones, then override ones. */
  result(): { ok: false; issues: ConfigIssue[] } {
    const rank = (i: ConfigIssue): number => (i.file === null ? 2 ** 32 : (i.line ?? 2 ** 31));
    const issues = this.issues.toSorted((a, b) => rank(a) - rank(b));
    const last = issues.at(-1);
    if (this.#omitted > 0 && last) issues.push({ ...last, path: '', line: null, column: null, message: `${this.#omitted} more issue(s) not shown` });
    return { ok: false, issues };
  }
}

// ---------------------------------------------------------------------------------------------------------
// Reading and parsing

function readConfigText(absolute: string, issues: IssueList): string | null {
  let bytes: Buffer;
  try {
    const stat = statSync(absolute);
    if (!stat.isFile()) {
      issues.addWhole('SECBEAT_ERR_CONFIG_READ', 'not a regular file');
      return null;
    }
    if (stat.size > MAX_CONFIG_BYTES) {
      issues.addWhole('SECBEAT_ERR_CONFIG_READ', `file too large (${stat.size} bytes; the limit is ${MAX_CONFIG_BYTES})`);
      return null;
    }
    bytes = readFileSync(absolute);
  } catch (err) {
    const e = err as NodeJS.ErrnoException;
    issues.addWhole('SECBEAT_ERR_CONFIG_READ', `cannot read: ${e.code ?? e.message}`);
    return null;
  }
  // Checked again after reading: the file may have grown since the stat.
  if (bytes.length > MAX_CONFIG_BYTES) {
    issues.addWhole('SECBEAT_ERR_CONFIG_READ', `file too large (more than ${MAX_CONFIG_BYTES} bytes)`);
    return null;
  }
  const text = bytes.toString('utf8');
  if (!isUtf8(bytes)) {
    const at = positionOf(text, text.indexOf('\uFFFD'));
    issues.addWhole('SECBEAT_ERR_CONFIG_PARSE', 'the file is not valid UTF-8 (TOML requires it)', at.line, at.column);
    return null;
  }
  return text.startsWith('\uFEFF') ? text.slice(1) : text;
}

function positionOf(text: string, offset: number): { line: number; column: number } {
  const before = text.slice(0, Math.max(0, offset));
  const lineStart = before.lastIndexOf('\n') + 1;
  return { line: before.split('\n').length, column: offset - lineStart + 1 };
}

function parseToml(text: string, issues: IssueList): Table | null {
  try {
    return parse(text, { unsafeKeyBehaviour: 'throw', maxDepth: MAX_TOML_DEPTH });
  } catch (err) {
    if (err instanceof TomlError) {
      // The first line is the reason; the rest is a code excerpt that may quote secrets.
      const reason = err.message.split('\n')[0]!.replace(/^Invalid TOML document: /, '');
      issues.addWhole('SECBEAT_ERR_CONFIG_PARSE', `invalid TOML: ${reason}`, err.line, err.column);
    } else {
      // smol-toml recurses; hostile input can still exhaust the stack, which is a parse failure, not a crash.
      issues.addWhole('SECBEAT_ERR_CONFIG_PARSE', `invalid TOML: ${err instanceof Error ? err.message : String(err)}`);
    }
    return null;
  }
}

// ---------------------------------------------------------------------------------------------------------
// ${VAR} interpolation: applied to string values of the parsed file (never to keys, comments or overrides),
// so a secret containing quotes or newlines cannot change the TOML structure.

type Expanded = { ok: true; value: string } | { ok: false; message: string };

function expandVars(text: string, env: Record<string, string | undefined>): Expanded {
  if (!text.includes('$')) return { ok: true, value: text };
  let out = '';
  let i = 0;
  while (i < text.length) {
    const dollar = text.indexOf('$', i);
    if (dollar < 0) {
      out += text.slice(i);
      break;
    }
    out += text.slice(i, dollar);
    if (text.startsWith('$${', dollar)) {
      out += '${';
      i = dollar + 3;
    } else if (text[dollar + 1] !== '{') {
      out += '$';
      i = dollar + 1;
    } else {
      const close = text.indexOf('}', dollar + 2);
      if (close < 0) return { ok: false, message: 'unterminated "${" (write "$${" for a literal "${")' };
      const name = text.slice(dollar + 2, close);
      if (!VAR_NAME.test(name)) return { ok: false, message: `invalid variable name in "\${${name.slice(0, 64)}}" (write "$\${" for a literal "\${")` };
      // hasOwn, or "${constructor}" would expand to Object.prototype.constructor of a plain env object.
      const value = Object.hasOwn(env, name) ? env[name] : undefined;
      if (typeof value !== 'string') return { ok: false, message: `environment variable ${name} is not set` };
      out += value;
      i = close + 1;
    }
  }
  return { ok: true, value: out };
}

function interpolate(node: Table | unknown[], path: PropertyKey[], env: Record<string, string | undefined>, issues: IssueList): void {
  if (path.length >= MAX_INTERPOLATION_DEPTH) return;
  const entries: [PropertyKey, unknown][] = Array.isArray(node) ? node.map((v, i) => [i, v]) : Object.entries(node);
  for (const [key, value] of entries) {
    if (typeof value === 'string') {
      const r = expandVars(value, env);
      if (r.ok) (node as Record<PropertyKey, unknown>)[key] = r.value;
      else issues.add('SECBEAT_ERR_CONFIG_INTERPOLATION', [...path, key], r.message);
    } else if (Array.isArray(value) || isTable(value)) {
      interpolate(value, [...path, key], env, issues);
    }
  }
}

// ---------------------------------------------------------------------------------------------------------
// Overrides: MITIGATION_MODE, SECBEAT_<SECTION>__<KEY>, then "section.key=value" from the command line.

/** A single TOML value (`4`, `true`, `[80, 443]`, `"x"`), or undefined when `raw` is not exactly one. */
function parseTomlValue(raw: string): unknown {
  if (raw.length > MAX_OVERRIDE_BYTES) return undefined;
  try {
    const table = parse(`v = ${raw}`, { maxDepth: MAX_TOML_DEPTH });
    const keys = Object.keys(table);
    return keys.length === 1 && keys[0] === 'v' ? table['v'] : undefined;
  } catch {
    return undefined;
  }
}

/**
 * The TOML reading of `raw` when the field accepts it, else the raw string when the field accepts that
 * (so SECBEAT_PLATFORM__NODE_ID=123 stays a name), else the TOML reading so the schema names the type problem.
 */
function overrideValue(raw: string, field: v.GenericSchema): unknown {
  const value = parseTomlValue(raw);
  if (value !== undefined && v.is(field, value)) return value;
  if (v.is(field, raw)) return raw;
  return value ?? raw;
}

function applyOverride(table: Table, parts: readonly string[], raw: string, origin: string, issues: IssueList): void {
  const [section, key] = parts;
  if (parts.length !== 2 || section === undefined || key === undefined || !isSection(section)) {
    const suggestion = parts.length === 2 && section !== undefined ? suggestKey(section, SECTIONS) : null;
    const detail = parts.length === 2 ? `unknown section${suggestion ? ` (did you mean ${suggestion}?)` : ''}` : 'expected <section>.<key>';
    issues.addOverride(parts.join('.').slice(0, 200), `${detail} (set by ${origin})`);
    return;
  }
  const fields = sectionFields(section);
  // hasOwn, because "constructor" or "__proto__" would otherwise find Object.prototype members.
  const field = Object.hasOwn(fields, key) ? fields[key] : undefined;
  if (field === undefined) {
    const suggestion = suggestKey(key, Object.keys(fields));
    issues.addOverride(`${section}.${key}`.slice(0, 200), `unknown key${suggestion ? ` (did you mean ${suggestion}?)` : ''} (set by ${origin})`);
    return;
  }
  const current = table[section];
  // A non-table section in the file is a schema error reported against the file; the override has nowhere to go.
  if (current !== undefined && !isTable(current)) return;
  const target = (current as Table | undefined) ?? {};
  table[section] = target;
  target[key] = overrideValue(raw, field);
  issues.origins.set(JSON.stringify([section, key]), origin);
}

function applyEnv(table: Table, env: Record<string, string | undefined>, issues: IssueList): void {
  const mode = env['MITIGATION_MODE'];
  if (mode) applyOverride(table, ['server', 'mode'], mode, 'MITIGATION_MODE', issues);
  // Only SECBEAT_<A>__<B> names are overrides; other SECBEAT_* variables belong to other tools.
  const names = Object.keys(env)
    .filter((n) => n.startsWith(ENV_PREFIX) && n.includes('__'))
    .sort();
  for (const name of names) {
    const value = env[name];
    if (value === undefined) continue;
    applyOverride(table, name.slice(ENV_PREFIX.length).toLowerCase().split('__'), value, name, issues);
  }
}

function applyCli(table: Table, overrides: readonly string[], issues: IssueList): void {
  for (const item of overrides) {
    const eq = item.indexOf('=');
    if (eq <= 0) {
      issues.addOverride('', `--set ${JSON.stringify(item.slice(0, 200))}: expected section.key=value`);
      continue;
    }
    const path = item.slice(0, eq).trim();
    applyOverride(table, path.split('.'), item.slice(eq + 1).trim(), `--set ${path.slice(0, 200)}`, issues);
  }
}

// ---------------------------------------------------------------------------------------------------------
// The pipeline

function deepFreeze<T>(value: T): T {
  if (typeof value === 'object' && value !== null && !Object.isFrozen(value)) {
    for (const v of Object.values(value)) deepFreeze(v);
    Object.freeze(value);
  }
  return value;
}

export function loadConfig(source: ConfigSource): LoadResult {
  const env = source.env ?? {};
  const cwd = source.cwd ?? process.cwd();
  // An empty MITIGATION_CONFIG counts as unset, the way shells clear variables.
  const named = source.file ?? (env['MITIGATION_CONFIG'] || null);
  const shown = named ?? EMBEDDED_CONFIG_PATH;
  const absolute = resolve(cwd, shown);

  const empty = new IssueList(shown, '');
  const text = readConfigText(absolute, empty);
  if (text === null) return empty.result();
  const issues = new IssueList(shown, text);
  const table = parseToml(text, issues);
  if (table === null) return issues.result();

  interpolate(table, [], env, issues);
  // Values that failed to expand would only produce confusing schema errors on top.
  if (issues.issues.length > 0) return issues.result();

  applyEnv(table, env, issues);
  applyCli(table, source.overrides ?? [], issues);

  const parsed = v.safeParse(ConfigSchema, table, PARSE);
  if (!parsed.success) {
    for (const issue of parsed.issues) {
      const path = issueKeys(issue);
      const object = issue.path?.at(-1)?.input;
      if (isUnknownKeyIssue(issue) && isTable(object)) {
        // valibot reports the first unknown key of an object; the operator should see every one, each at its line.
        const parent = path.slice(0, -1);
        const known = knownKeys(parent);
        for (const key of Object.keys(object)) {
          if (!known.includes(key)) issues.add('SECBEAT_ERR_CONFIG_INVALID', [...parent, key], () => unknownKeyMessage(parent, key));
        }
      } else {
        issues.add('SECBEAT_ERR_CONFIG_INVALID', path, issue.message);
      }
    }
    return issues.result();
  }
  if (issues.issues.length > 0) return issues.result();

  for (const c of checkConfig(parsed.output, cwd)) issues.add('SECBEAT_ERR_CONFIG_INVALID', c.path, c.message);
  if (issues.issues.length > 0) return issues.result();

  return { ok: true, config: deepFreeze(parsed.output), file: named === null ? null : absolute };
}

/** "file:line:column path: message", dropping the parts that are unknown. */
export function formatConfigIssue(issue: ConfigIssue): string {
  const where = issue.file === null ? '' : issue.line === null ? issue.file : `${issue.file}:${issue.line}:${issue.column ?? 1}`;
  const what = issue.path === '' ? issue.message : `${issue.path}: ${issue.message}`;
  return where === '' ? what : `${where} ${what}`;
}

/** A copy safe to show (config.show, logs): secrets replaced, credentials stripped from URLs. */
export function redactConfig(config: Config): unknown {
  const copy = structuredClone(config);
  if (copy.nats.token !== undefined) copy.nats.token = REDACTED;
  if (copy.nats.password !== undefined) copy.nats.password = REDACTED;
  if (copy.admin.api_token !== undefined) copy.admin.api_token = REDACTED;
  if (copy.orchestrator.url !== undefined) {
    const url = new URL(copy.orchestrator.url);
    if (url.username || url.password) {
      url.username = '';
      url.password = '';
      copy.orchestrator.url = url.toString();
    }
  }
  return copy;
}
