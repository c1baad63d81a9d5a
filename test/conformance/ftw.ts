// Loads the CRS regression suite (ftw YAML, the format CRS 3.3.4 wrote its tests in) into typed stages for
// ./runner.ts. Decoding follows what CRS's own tool did with a file: PyYAML `safe_load` (YAML 1.1), then
// coreruleset/ftw's ruleset.py (`Ruleset`, `Test`, `Input(**stage['input'])`, `Output`), so a value is read
// the way ftw read it (header values through `str()`, `data` lists joined with CRLF) and whatever ftw would
// have refused is reported as an issue instead of being guessed at.
import { readdirSync, readFileSync } from 'node:fs';
import { basename, dirname, join, relative, sep } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseDocument } from 'yaml';
import { pythonRegex, pythonStr } from './python.ts';

/** The corpus as this repository's CI lays it out (shared/ beside the clone); CRS_CORPUS_DIR overrides it. */
export const DEFAULT_CORPUS_DIR =
  process.env['CRS_CORPUS_DIR'] ??
  join(dirname(fileURLToPath(import.meta.url)), '../../../shared/corpora/crs-v3.3.4/tests/regression/tests');

/** What ftw builds the request from (ruleset.py `Input`); defaults are ftw's. */
export interface StageInput {
  destAddr: string;
  port: number;
  /** `https` makes ftw wrap the socket in TLS; anything else is plain TCP. */
  protocol: string;
  method: string;
  uri: string;
  version: string;
  /** In YAML order, names and values through Python's `str()`; a repeated key keeps its first place, last value. */
  headers: ReadonlyArray<readonly [name: string, value: string]>;
  /** `''` when absent; a YAML list is joined with CRLF, as ftw does. */
  data: string;
  rawRequest: string | null;
  encodedRequest: string | null;
  /** ftw's `stop_magic`; go-ftw spells it `autocomplete_headers: false`. */
  stopMagic: boolean;
}

/** What ftw checks afterwards (ruleset.py `Output`). Patterns are Python `re` sources, searched per log line. */
export interface StageOutput {
  /** null when absent; ftw skips the check for 0 too (`if stage.output.status:`). */
  status: readonly number[] | null;
  logContains: string | null;
  noLogContains: string | null;
  responseContains: string | null;
  expectError: boolean;
}

export interface Stage {
  /** Unique in the corpus: the test title, `~2` for a title's second use, `/n` for stage n of several. */
  id: string;
  /** Path below the corpus directory, e.g. `REQUEST-920-PROTOCOL-ENFORCEMENT/920100.yaml`. */
  file: string;
  /** The rule file the test exercises, as its folder names it, e.g. `REQUEST-920-PROTOCOL-ENFORCEMENT`. */
  ruleFile: string;
  testTitle: string;
  input: StageInput;
  output: StageOutput;
}

/** A file, test or stage that ftw would not have run as decoded here; `where` names it. */
export interface CorpusIssue {
  where: string;
  message: string;
}

export interface Corpus {
  stages: Stage[];
  issues: CorpusIssue[];
  /** Tests not run because their file's `meta.enabled` (or the test's `enabled`) is false. */
  disabledTests: number;
}

const INPUT_KEYS = new Set([
  'raw_request',
  'encoded_request',
  'protocol',
  'dest_addr',
  'port',
  'method',
  'uri',
  'version',
  'headers',
  'data',
  'save_cookie',
  'stop_magic',
  'autocomplete_headers',
]);
const OUTPUT_KEYS = new Set(['status', 'log_contains', 'no_log_contains', 'response_contains', 'expect_error']);

/** Reads every `*.yaml` below `dir` (ftw's `--ruledir_recurse`), in path order. */
export function loadCorpus(dir: string = DEFAULT_CORPUS_DIR): Corpus {
  const corpus: Corpus = { stages: [], issues: [], disabledTests: 0 };
  const seen = new Map<string, number>();
  for (const path of yamlFiles(dir)) {
    const file = relative(dir, path).split(sep).join('/');
    decodeFile(readFileSync(path, 'utf8'), file, corpus, seen);
  }
  return corpus;
}

function yamlFiles(dir: string): string[] {
  return readdirSync(dir, { withFileTypes: true })
    .flatMap((e) => (e.isDirectory() ? yamlFiles(join(dir, e.name)) : e.name.endsWith('.yaml') ? [join(dir, e.name)] : []))
    .sort();
}

/**
 * Decodes one test file into `corpus`. `seen` counts test titles across files so that stage ids stay unique.
 * YAML 1.1 with duplicate keys allowed, as PyYAML's `safe_load` reads it (the last value wins).
 */
export function decodeFile(text: string, file: string, corpus: Corpus, seen: Map<string, number> = new Map()): void {
  const doc = parseDocument(text, { version: '1.1', uniqueKeys: false });
  if (doc.errors.length > 0) {
    corpus.issues.push({ where: file, message: `YAML: ${doc.errors[0]!.message}` });
    return;
  }
  const root = doc.toJS({ mapAsMap: true }) as unknown;
  const meta = field(root, 'meta');
  const tests = field(root, 'tests');
  for (const key of ['author', 'enabled', 'name', 'description']) {
    if (!has(meta, key)) corpus.issues.push({ where: file, message: `meta.${key} missing (ftw reads it)` });
  }
  if (!Array.isArray(tests)) {
    corpus.issues.push({ where: file, message: 'tests is not a list' });
    return;
  }
  if (field(meta, 'enabled') === false) {
    corpus.disabledTests += tests.length;
    return;
  }
  const ruleFile = file.includes('/') ? file.slice(0, file.indexOf('/')) : basename(file, '.yaml');
  for (const test of tests) {
    const title = field(test, 'test_title');
    if (typeof title !== 'string' && typeof title !== 'number') {
      corpus.issues.push({ where: file, message: 'a test without test_title' });
      continue;
    }
    const testTitle = String(title);
    if (field(test, 'enabled') === false) {
      corpus.disabledTests++;
      continue;
    }
    const stages = field(test, 'stages');
    if (!Array.isArray(stages) || stages.length === 0) {
      corpus.issues.push({ where: `${file} ${testTitle}`, message: 'stages is not a non-empty list' });
      continue;
    }
    const use = (seen.get(testTitle) ?? 0) + 1;
    seen.set(testTitle, use);
    const base = use === 1 ? testTitle : `${testTitle}~${use}`;
    stages.forEach((wrapper, index) => {
      const id = stages.length === 1 ? base : `${base}/${index + 1}`;
      const where = `${file} ${id}`;
      const stage = field(wrapper, 'stage');
      const input = decodeInput(field(stage, 'input'), where, corpus.issues);
      const output = decodeOutput(field(stage, 'output'), where, corpus.issues);
      if (input !== null && output !== null) corpus.stages.push({ id, file, ruleFile, testTitle, input, output });
    });
  }
}

function decodeInput(raw: unknown, where: string, issues: CorpusIssue[]): StageInput | null {
  if (!(raw instanceof Map)) {
    issues.push({ where, message: 'input is not a mapping' });
    return null;
  }
  const problems: string[] = [];
  for (const key of raw.keys()) {
    // `Input(**input)`: any other key is a TypeError in ftw.
    if (!INPUT_KEYS.has(String(key))) problems.push(`unknown input key ${JSON.stringify(key)}`);
  }
  const text = (key: string, fallback: string | null): string | null => {
    if (!raw.has(key)) return fallback;
    const v = raw.get(key);
    if (typeof v === 'string') return v;
    problems.push(`input.${key} is not a string (ftw concatenates it)`);
    return fallback;
  };
  const headers: Array<[string, string]> = [];
  const rawHeaders = raw.has('headers') ? raw.get('headers') : new Map();
  if (rawHeaders instanceof Map) {
    for (const [k, v] of rawHeaders) {
      const name = pythonStr(k);
      const value = pythonStr(v);
      if (name === null || value === null) problems.push(`header ${String(k)}: ${typeof v} values are not reproduced`);
      else headers.push([name, value]);
    }
  } else {
    problems.push('input.headers is not a mapping');
  }
  let data = '';
  const rawData = raw.get('data');
  if (typeof rawData === 'string') data = rawData;
  else if (Array.isArray(rawData) && rawData.every((l) => typeof l === 'string')) data = rawData.join('\r\n');
  else if (rawData !== undefined && rawData !== '') problems.push('input.data is neither a string nor a list of strings');
  const port = raw.get('port') ?? 80;
  if (!Number.isInteger(port)) problems.push('input.port is not an integer');
  const stopMagic = raw.get('stop_magic') ?? raw.get('autocomplete_headers') === false;
  if (typeof stopMagic !== 'boolean') problems.push('input.stop_magic is not a boolean');
  if (raw.has('stop_magic') && raw.has('autocomplete_headers') && raw.get('autocomplete_headers') === stopMagic) {
    problems.push('stop_magic and autocomplete_headers disagree');
  }
  // Cookies come back only from an origin that sets them; ftw's cookie jar is not reproduced.
  if (raw.get('save_cookie') === true) problems.push('save_cookie is not reproduced');
  const input: StageInput = {
    destAddr: text('dest_addr', 'localhost')!,
    port: Number(port),
    protocol: text('protocol', 'http')!,
    method: text('method', 'GET')!,
    uri: text('uri', '/')!,
    version: text('version', 'HTTP/1.1')!,
    headers,
    data,
    rawRequest: text('raw_request', null),
    encodedRequest: text('encoded_request', null),
    stopMagic: stopMagic === true,
  };
  for (const message of problems) issues.push({ where, message });
  return problems.length === 0 ? input : null;
}

function decodeOutput(raw: unknown, where: string, issues: CorpusIssue[]): StageOutput | null {
  if (!(raw instanceof Map)) {
    issues.push({ where, message: 'output is not a mapping' });
    return null;
  }
  const problems: string[] = [];
  for (const key of raw.keys()) if (!OUTPUT_KEYS.has(String(key))) problems.push(`unknown output key ${JSON.stringify(key)}`);
  const pattern = (key: string): string | null => {
    const v = raw.get(key);
    if (v === undefined) return null;
    if (typeof v !== 'string') {
      problems.push(`output.${key} is not a string`);
      return null;
    }
    const compiled = pythonRegex(v);
    if (!(compiled instanceof RegExp)) problems.push(`output.${key}: ${compiled.error}`);
    return v;
  };
  let status: number[] | null = null;
  const rawStatus = raw.get('status');
  if (Number.isInteger(rawStatus)) status = rawStatus === 0 ? null : [rawStatus as number];
  else if (Array.isArray(rawStatus) && rawStatus.every((s) => Number.isInteger(s))) status = rawStatus.length === 0 ? null : rawStatus;
  else if (rawStatus !== undefined) problems.push('output.status is neither an integer nor a list of integers');
  const output: StageOutput = {
    status,
    logContains: pattern('log_contains'),
    noLogContains: pattern('no_log_contains'),
    responseContains: pattern('response_contains'),
    expectError: raw.get('expect_error') === true,
  };
  if (
    output.status === null &&
    output.logContains === null &&
    output.noLogContains === null &&
    output.responseContains === null &&
    !output.expectError
  ) {
    problems.push('output checks nothing (ftw refuses such a stage)');
  }
  for (const message of problems) issues.push({ where, message });
  return problems.length === 0 ? output : null;
}

function field(value: unknown, key: string): unknown {
  return value instanceof Map ? value.get(key) : undefined;
}

function has(value: unknown, key: string): boolean {
  return value instanceof Map && value.has(key);
}
