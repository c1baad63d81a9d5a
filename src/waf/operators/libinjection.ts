// @detectSQLi and @detectXSS: libinjection's detectors (../libinjection/) as operators. Both take no argument;
// ModSecurity ignores one if given, and so do these (src/operators/detect_sqli.cc, detect_xss.cc).
import { detectSqli } from '../libinjection/sqli.ts';
import { detectXss } from '../libinjection/xss.ts';
import type { CompiledOperator, OperatorFactory } from './types.ts';

/** With `capture`, ModSecurity stores the fingerprint (e.g. "s&sos") as TX.0. */
const DETECT_SQLI: CompiledOperator = {
  match(input, captures) {
    const fingerprint = detectSqli(input);
    if (fingerprint === null) return false;
    if (captures !== null) {
      captures.values[0] = fingerprint;
      captures.count = 1;
    }
    return true;
  },
};

/**
 * With `capture`, ModSecurity stores the whole input as TX.0: libinjection's XSS check has no match to point at.
 * Every finding needs a `<` (a tag, comment or doctype) or an `=` (an attribute value after a listed name: the
 * tokenizer reaches a value after a name only through `=`), so the engine runs it only on inputs holding one
 * (the property test in test/property/waf-libinjection.prop.test.ts holds it to that).
 */
const DETECT_XSS: CompiledOperator = {
  literals: [['<', '=']],
  match(input, captures) {
    if (!detectXss(input)) return false;
    if (captures !== null) {
      captures.values[0] = input;
      captures.count = 1;
    }
    return true;
  },
};

export const detectSqliOperator: OperatorFactory = () => DETECT_SQLI;

export const detectXssOperator: OperatorFactory = () => DETECT_XSS;
