// Writes src/waf/libinjection/sqli-data.ts from libinjection's own data file, third_party/libinjection/sqlparse_data.json
// (the byte → parser map, keyword → token type, and the SQLi fingerprints), the way upstream's sqlparse2c.py turns
// it into libinjection_sqli_data.h. test/unit/waf/libinjection.test.ts fails when the committed module drifts.
// Run: node scripts/gen-libinjection-data.ts
import { readFileSync, writeFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';

export const LIBINJECTION_DATA_PATH = fileURLToPath(new URL('../third_party/libinjection/sqlparse_data.json', import.meta.url));
export const SQLI_DATA_MODULE_PATH = fileURLToPath(new URL('../src/waf/libinjection/sqli-data.ts', import.meta.url));

/** libinjection's token values are C char[32]: a keyword must leave room for the terminating NUL. */
const MAX_KEYWORD_LENGTH = 31;
/** A fingerprint is at most LIBINJECTION_SQLI_MAX_TOKENS token types. */
const MAX_FINGERPRINT_LENGTH = 5;
const CHARMAP_PER_LINE = 4;

interface SqlparseData {
  charmap: string[];
  keywords: Record<string, string>;
  fingerprints: string[];
}

function isStringArray(value: unknown): value is string[] {
  return Array.isArray(value) && value.every((v) => typeof v === 'string');
}

function parseSqlparseData(json: string): SqlparseData {
  const data: unknown = JSON.parse(json);
  if (typeof data !== 'object' || data === null) throw new Error('sqlparse_data.json: not an object');
  const { charmap, keywords, fingerprints } = data as Record<string, unknown>;
  if (!isStringArray(charmap) || charmap.length !== 256) throw new Error('sqlparse_data.json: charmap is not 256 names');
  if (!isStringArray(fingerprints)) throw new Error('sqlparse_data.json: fingerprints is not a list of strings');
  if (typeof keywords !== 'object' || keywords === null || Array.isArray(keywords)) {
    throw new Error('sqlparse_data.json: keywords is not an object');
  }
  const entries = Object.entries(keywords);
  if (!entries.every(([, type]) => typeof type === 'string' && type.length === 1)) {
    throw new Error('sqlparse_data.json: a keyword type is not one character');
  }
  return { charmap, keywords: Object.fromEntries(entries) as Record<string, string>, fingerprints };
}

const quote = (s: string): string => `'${s.replace(/\\/g, '\\\\').replace(/'/g, "\\'")}'`;

/** Generated lines stay within the project's width. */
const LINE_WIDTH = 118;

/** Lays `items` out in lines of `prefix` and as many items, joined by `separator`, as fit. */
function wrap(items: readonly string[], prefix: string, separator: string, terminator: string): string {
  const lines: string[] = [];
  let line = '';
  for (const item of items) {
    const next = line === '' ? `${prefix}${item}` : `${line}${separator}${item}`;
    if (line !== '' && next.length + terminator.length > LINE_WIDTH) {
      lines.push(line + terminator);
      line = `${prefix}${item}`;
    } else {
      line = next;
    }
  }
  if (line !== '') lines.push(line + terminator);
  return lines.join('\n');
}

/** Array elements, each line ending in a comma. */
const rows = (items: readonly string[]): string => wrap(items, '  ', ', ', ',');

/** A union of string literal types. */
const union = (members: readonly string[]): string => wrap(members.map(quote), '  | ', ' | ', '');

/**
 * The module text for `json`. Keys are upper-cased as sqlparse2c.py does, since libinjection compares words
 * case-insensitively against an all-upper-case table. Upstream folds fingerprints into the keyword table as
 * '0' + FINGERPRINT of type 'F'; here they are a separate set, which answers every lookup the same way only
 * while no keyword starts with '0' (a word never does: '0' starts a number), so that is checked.
 */
export function renderSqliData(json: string): string {
  const data = parseSqlparseData(json);
  const classes = [...new Set(data.charmap)].sort();
  const keywords = new Map<string, string>();
  for (const [word, type] of Object.entries(data.keywords)) {
    const upper = word.toUpperCase();
    if (upper.length > MAX_KEYWORD_LENGTH) throw new Error(`keyword longer than ${MAX_KEYWORD_LENGTH}: ${word}`);
    if (upper.startsWith('0')) throw new Error(`keyword starts with '0', which would collide with a fingerprint: ${word}`);
    if (keywords.has(upper)) throw new Error(`keyword twice once upper-cased: ${word}`);
    keywords.set(upper, type);
  }
  const fingerprints = new Set<string>();
  for (const fingerprint of data.fingerprints) {
    if (fingerprint.length === 0 || fingerprint.length > MAX_FINGERPRINT_LENGTH) throw new Error(`bad fingerprint: ${fingerprint}`);
    fingerprints.add(fingerprint.toUpperCase());
  }
  const keywordTypes = [...new Set(keywords.values())].sort();
  const sortedKeywords = [...keywords].sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
  const charmapRows = data.charmap.map(quote);
  const charmapLines: string[] = [];
  for (let byte = 0; byte < 256; byte += CHARMAP_PER_LINE) {
    charmapLines.push(`  /* 0x${byte.toString(16).padStart(2, '0')} */ ${charmapRows.slice(byte, byte + CHARMAP_PER_LINE).join(', ')},`);
  }
  return `// generated by scripts/gen-libinjection-data.ts; do not edit.
// From third_party/libinjection/sqlparse_data.json (libinjection as bundled by ModSecurity v3.0.9),
// BSD-3-Clause, see third_party/libinjection/COPYING.

/** Which parser libinjection's SQL tokenizer runs at a byte (upstream's charmap / char_parse_map). */
export type SqliCharClass =
${union(classes)};

/** Token type of a keyword in the table. */
export type SqliKeywordType =
${union(keywordTypes)};

/** The parser for each byte value, indexed by the byte. */
export const SQLI_CHAR_CLASSES: readonly SqliCharClass[] = [
${charmapLines.join('\n')}
];

/** Upper-case keyword (also operators and multi-word phrases such as 'UNION ALL') → token type. */
export const SQLI_KEYWORDS: ReadonlyMap<string, SqliKeywordType> = new Map<string, SqliKeywordType>([
${rows(sortedKeywords.map(([word, type]) => `[${quote(word)}, ${quote(type)}]`))}
]);

/** Upper-cased token-type fingerprints that libinjection reports as SQL injection. */
export const SQLI_FINGERPRINTS: ReadonlySet<string> = new Set<string>([
${rows([...fingerprints].sort().map(quote))}
]);
`;
}

if (import.meta.main) {
  writeFileSync(SQLI_DATA_MODULE_PATH, renderSqliData(readFileSync(LIBINJECTION_DATA_PATH, 'utf8')));
  console.log(`wrote ${SQLI_DATA_MODULE_PATH}`);
}
