// Reading SecLang configuration from disk: files and their Include directives (globs allowed, paths relative
// to the including file, as ModSecurity resolves them), and the OWASP CRS as Debian's modsecurity-crs package
// installs it, with paranoia level and anomaly thresholds applied the way crs-setup.conf would. The result is
// the directive list ./compile.ts compiles; problems are collected with file and line, never thrown.

import { globSync, readFileSync } from 'node:fs';
import { basename, dirname, isAbsolute, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { ConfigError } from './compile.ts';
import type { Directive, SourcePosition } from './seclang/ast.ts';
import { parseSecLang } from './seclang/parser.ts';

export interface LoadedConfig {
  directives: Directive[];
  errors: ConfigError[];
}

/** How files are found and read; tests replace both. */
export interface FileAccess {
  /** A file's bytes as a byte string (configuration is bytes: patterns may hold any byte). */
  readFile(path: string): string;
  /** Paths matching a glob pattern, sorted. */
  glob(pattern: string): string[];
}

export const NODE_FILES: FileAccess = {
  readFile: (path) => readFileSync(path, 'latin1'),
  glob: (pattern) => globSync(pattern).sort(),
};

/** Include chains deeper than this are refused (a file including itself through others would never end). */
const MAX_INCLUDE_DEPTH = 16;

/** Loads configuration files in order, following their Includes. */
export function loadConfigFiles(paths: readonly string[], files: FileAccess = NODE_FILES): LoadedConfig {
  const loaded: LoadedConfig = { directives: [], errors: [] };
  for (const path of paths) loadFile(resolve(path), loaded, files, []);
  return loaded;
}

/**
 * Loads configuration text; `name` is what errors cite and what relative Include and data-file paths are
 * resolved against (its directory), so a name like `/etc/waf/custom.conf` behaves as that file would.
 */
export function loadConfigText(text: string, name: string, files: FileAccess = NODE_FILES): LoadedConfig {
  const loaded: LoadedConfig = { directives: [], errors: [] };
  addText(text, name, loaded, files, []);
  return loaded;
}

function loadFile(path: string, into: LoadedConfig, files: FileAccess, stack: readonly string[], from?: SourcePosition): void {
  if (stack.includes(path) || stack.length >= MAX_INCLUDE_DEPTH) {
    const reason = stack.includes(path) ? 'includes itself' : `is included more than ${MAX_INCLUDE_DEPTH} levels deep`;
    into.errors.push({ file: from?.file ?? path, line: from?.line ?? 0, message: `${path} ${reason}` });
    return;
  }
  let text: string;
  try {
    text = files.readFile(path);
  } catch (error) {
    const message = `cannot read ${path}: ${error instanceof Error ? error.message : String(error)}`;
    into.errors.push({ file: from?.file ?? path, line: from?.line ?? 0, message });
    return;
  }
  addText(text, path, into, files, [...stack, path]);
}

function addText(text: string, name: string, into: LoadedConfig, files: FileAccess, stack: readonly string[]): void {
  const parsed = parseSecLang(text, name);
  into.errors.push(...parsed.errors);
  for (const directive of parsed.directives) {
    if (directive.kind !== 'include') {
      into.directives.push(directive);
      continue;
    }
    const at: SourcePosition = { file: directive.file, line: directive.line };
    const pattern = isAbsolute(directive.path) ? directive.path : join(dirname(name), directive.path);
    if (!/[*?[]/.test(pattern)) {
      loadFile(resolve(pattern), into, files, stack, at);
      continue;
    }
    const matches = globbed(files, pattern);
    // ModSecurity refuses an Include glob that matches nothing: it is most likely a wrong path.
    if (typeof matches === 'string' || matches.length === 0) {
      into.errors.push({ ...at, message: `Include ${directive.path}: ${typeof matches === 'string' ? matches : 'no file matches'}` });
      continue;
    }
    for (const match of matches) loadFile(resolve(match), into, files, stack, at);
  }
}

/** The files a glob matches, or why it could not be expanded (a directory that cannot be read). */
function globbed(files: FileAccess, pattern: string): string[] | string {
  try {
    return files.glob(pattern);
  } catch (error) {
    return error instanceof Error ? error.message : String(error);
  }
}

export interface CrsOptions {
  /** Default /etc/modsecurity/crs/crs-setup.conf. */
  setupFile?: string;
  /** Default /usr/share/modsecurity-crs/rules; every *.conf there is loaded, in name order. */
  rulesDir?: string;
  paranoiaLevel: 1 | 2 | 3 | 4;
  /** Default CRS's own: inbound 5, outbound 4. */
  anomalyThresholds?: { inbound: number; outbound: number };
  /**
   * SecLang added as ModSecurity users do: `before` where REQUEST-900-EXCLUSION-RULES-BEFORE-CRS.conf goes
   * (after crs-setup, before the rules), `after` where RESPONSE-999-EXCLUSION-RULES-AFTER-CRS.conf goes.
   * A string is `before`.
   */
  extra?: string | { before?: string; after?: string };
  /**
   * Rules 200000 and 200001 of ModSecurity's recommended configuration, which switch the body processor to
   * XML or JSON by Content-Type (libmodsecurity picks only URLENCODED and MULTIPART by itself). Default true:
   * without them CRS never sees inside XML and JSON bodies.
   */
  bodyProcessorRules?: boolean;
  /**
   * A directory of rule files run with the CRS (SECBEAT_RULES_DIR: SecBeat's own): its *.conf files are
   * merged into the CRS's rule files in name order, so `REQUEST-945-…` runs after REQUEST-944 and before
   * REQUEST-949's blocking evaluation and scores like a CRS rule.
   */
  supplementDir?: string;
}

export const CRS_SETUP_FILE = '/etc/modsecurity/crs/crs-setup.conf';
export const CRS_RULES_DIR = '/usr/share/modsecurity-crs/rules';
/** SecBeat's rules for what CRS 3.3 misses ([waf] supplement; config/waf/*.conf says what they cover). */
export const SECBEAT_RULES_DIR = fileURLToPath(new URL('../../config/waf', import.meta.url));

/** modsecurity.conf-recommended's body-processor rules, verbatim but for the ids' quotes. */
const BODY_PROCESSOR_RULES = `
SecRule REQUEST_HEADERS:Content-Type "^(?:application(?:/soap\\+|/)|text/)xml" \\
  "id:200000,phase:1,t:none,t:lowercase,pass,nolog,ctl:requestBodyProcessor=XML"
SecRule REQUEST_HEADERS:Content-Type "^application/json" \\
  "id:200001,phase:1,t:none,t:lowercase,pass,nolog,ctl:requestBodyProcessor=JSON"
`;

/**
 * Loads crs-setup.conf, then a SecAction that sets the paranoia level (and thresholds) — after the setup
 * file so it wins over it, and before REQUEST-901 so 901's `&TX:paranoia_level "@eq 0"` defaults leave it
 * alone, which is what uncommenting rule 900000 in crs-setup.conf does — then the rules.
 */
export function loadCrs(options: CrsOptions, files: FileAccess = NODE_FILES): LoadedConfig {
  const setupFile = options.setupFile ?? CRS_SETUP_FILE;
  const rulesDir = options.rulesDir ?? CRS_RULES_DIR;
  const extra = typeof options.extra === 'string' ? { before: options.extra } : (options.extra ?? {});
  const loaded: LoadedConfig = { directives: [], errors: [] };
  const add = (part: LoadedConfig) => {
    loaded.directives.push(...part.directives);
    loaded.errors.push(...part.errors);
  };
  if (options.bodyProcessorRules ?? true) add(loadConfigText(BODY_PROCESSOR_RULES, '<modsecurity.conf-recommended>', files));
  add(loadConfigFiles([setupFile], files));
  add(loadConfigText(crsSettings(options), '<crs options>', files));
  if (extra.before !== undefined) add(loadConfigText(extra.before, join(dirname(setupFile), '<extra before CRS>'), files));
  const ruleFiles = globbed(files, join(rulesDir, '*.conf'));
  if (typeof ruleFiles === 'string' || ruleFiles.length === 0) {
    loaded.errors.push({ file: rulesDir, line: 0, message: `no CRS rule files (*.conf) in ${rulesDir}${typeof ruleFiles === 'string' ? `: ${ruleFiles}` : ''}` });
  } else {
    const supplement = options.supplementDir === undefined ? [] : globbed(files, join(options.supplementDir, '*.conf'));
    if (typeof supplement === 'string' || (options.supplementDir !== undefined && supplement.length === 0)) {
      const why = typeof supplement === 'string' ? `: ${supplement}` : '';
      loaded.errors.push({ file: options.supplementDir ?? '', line: 0, message: `no rule files (*.conf) in ${options.supplementDir}${why}` });
    } else {
      add(loadConfigFiles(inNameOrder([...ruleFiles, ...supplement]), files));
    }
  }
  if (extra.after !== undefined) add(loadConfigText(extra.after, join(dirname(setupFile), '<extra after CRS>'), files));
  return loaded;
}

/** Paths sorted by file name alone, as the CRS's own files are ordered. */
function inNameOrder(paths: readonly string[]): string[] {
  return [...paths].sort((a, b) => (basename(a) < basename(b) ? -1 : basename(a) > basename(b) ? 1 : 0));
}

/** Ids in CRS's setup range that neither CRS 3.3 nor its example setup file uses. */
const SETTINGS_RULE_ID = 900995;

function crsSettings(options: CrsOptions): string {
  const level = options.paranoiaLevel;
  const setvars = [`setvar:tx.paranoia_level=${level}`, `setvar:tx.executing_paranoia_level=${level}`];
  const thresholds = options.anomalyThresholds;
  if (thresholds !== undefined) {
    setvars.push(
      `setvar:tx.inbound_anomaly_score_threshold=${Math.trunc(thresholds.inbound)}`,
      `setvar:tx.outbound_anomaly_score_threshold=${Math.trunc(thresholds.outbound)}`,
    );
  }
  return `SecAction "id:${SETTINGS_RULE_ID},phase:1,pass,nolog,t:none,${setvars.join(',')}"\n`;
}
