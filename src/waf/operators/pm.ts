// @pm and @pmFromFile (also spelt @pmf): any of a list of phrases, case-insensitively, through one
// Aho–Corasick automaton per rule (../aho-corasick.ts). With `capture`, TX.0 is the phrase found
// (libmodsecurity src/operators/pm.cc, pm_from_file.cc).
import { PhraseMatcher } from '../aho-corasick.ts';
import { memoized } from '../memo.ts';
import { phraseFactors } from '../prefilter.ts';
import type { CompiledOperator, OperatorContext, OperatorFactory } from './types.ts';

/** @pm: phrases separated by white space, after the `"…"` / `|hex|` / `\;` decoding of parse_pm_content. */
export const pmOperator: OperatorFactory = (argument) => phraseOperator(splitPhrases(decodePmContent(argument)));

/**
 * @pmFromFile: one phrase per line of each file named (separated by spaces, relative to the rule file). As in
 * libmodsecurity, a line is taken whole, trailing spaces included (php-errors.data relies on them); empty
 * lines and lines whose first non-space is `#` are skipped. Also skipped, unlike libmodsecurity: lines of
 * white space alone, which would match any run of it, and a CR ending a line of a file saved with CRLF.
 */
export const pmFromFileOperator: OperatorFactory = (argument, context) => {
  const phrases: string[] = [];
  for (const name of argument.split(' ')) {
    if (name === '') continue;
    if (/^https?:\/\//i.test(name)) {
      return { error: `@pmFromFile ${name}: data files are read locally, not downloaded` };
    }
    const text = readData(context, name);
    if (typeof text !== 'string') return text;
    for (const line of text.split('\n')) {
      const phrase = line.endsWith('\r') ? line.slice(0, -1) : line;
      if (!/^[\t\n\v\f\r ]*(?:#|$)/.test(phrase)) phrases.push(phrase);
    }
  }
  return phraseOperator(phrases);
};

/** The data file's text, or the error to report for this rule. */
export function readData(context: OperatorContext, name: string): string | { error: string } {
  try {
    return context.readDataFile(name);
  } catch (error) {
    return { error: `cannot read data file ${name}: ${error instanceof Error ? error.message : String(error)}` };
  }
}

function phraseOperator(phrases: readonly string[]): CompiledOperator {
  return phraseMemo(phrases.join('\n'));
}

/** Phrase lists up to this long join the engine's literal automaton (see below); longer ones, a clause of their substrings that long. */
const MAX_SHARED_PHRASES = 300;
/** The substrings' length (see phraseFactors): at 3, prose held some of lfi-os-files.data's (`te_`, `on/`). */
const FACTOR_LENGTH = 4;

/** No phrase holds a newline (arguments split on white space, data files by line): the joined list is a faithful key. */
const phraseMemo = memoized((key): CompiledOperator => {
  const phrases = key === '' ? [] : key.split('\n');
  const matcher = new PhraseMatcher(phrases);
  return {
    // Its phrases are the one clause a match satisfies: the engine's literal scan answers for the operator, which
    // then runs only to find the phrase for TX.0 and the match log. Not for the longest lists (CRS's
    // lfi-os-files.data, 1,090 phrases, and 933151's 1,264): with them the shared automaton doubled (47,600
    // states, 15 MB a thread, 0.25 s to build). Those give a clause of short substrings instead, when it is short
    // enough itself; their own automaton then runs only on a value holding one (it ran on every value: 8 µs of
    // bench/waf's POST).
    literals: phrases.length <= MAX_SHARED_PHRASES ? [phrases] : sharedFactors(phrases),
    match(input, captures) {
      const phrase = matcher.find(input);
      if (phrase === null) return false;
      if (captures !== null) {
        captures.values[0] = phrase;
        captures.count = 1;
      }
      return true;
    },
  };
});

function sharedFactors(phrases: readonly string[]): string[][] | null {
  const factors = phraseFactors(phrases, FACTOR_LENGTH);
  return factors.length <= MAX_SHARED_PHRASES ? [factors] : null;
}

/** C isspace: what std::istream_iterator<std::string> splits on. */
function splitPhrases(content: string): string[] {
  return content.split(/[\t\n\v\f\r ]+/).filter((phrase) => phrase !== '');
}

const HEX_DIGIT = /^[0-9A-Fa-f]$/;

/**
 * parse_pm_content: leading spaces and tabs dropped, one pair of enclosing double quotes removed, `|41 42|`
 * hex bytes (white space between them ignored) and the escapes `\:` `\;` `\\` `\"` decoded. Any other escape
 * makes libmodsecurity fall back to the argument as written, and so does this. (libmodsecurity also skips
 * the digits 0–9 inside `|…|`, comparing them with the bytes 0–9; ModSecurity 2 reads them as hex, as here.)
 */
function decodePmContent(argument: string): string {
  let content = argument.replace(/^[ \t]+/, '');
  if (content.length >= 2 && content.startsWith('"') && content.endsWith('"')) content = content.slice(1, -1);
  let out = '';
  let hex = false;
  let escaped = false;
  let pending = '';
  for (const c of content) {
    if (c === '|') {
      hex = !hex;
      pending = '';
    } else if (!escaped && c === '\\') {
      escaped = true;
    } else if (hex) {
      if (HEX_DIGIT.test(c)) {
        pending += c;
        if (pending.length === 2) {
          out += String.fromCharCode(parseInt(pending, 16));
          pending = '';
        }
      }
    } else if (escaped) {
      if (c !== ':' && c !== ';' && c !== '\\' && c !== '"') return argument;
      out += c;
      escaped = false;
    } else {
      out += c;
    }
  }
  return out;
}
