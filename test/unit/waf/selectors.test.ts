// Key tests of variable selectors (src/waf/selectors.ts): a regex key written as a plain word is answered by
// a prefix or substring test instead of the regex, and must answer exactly as the caseless regex does.
import { describe, expect, it } from 'vitest';
import { compilePcre } from '../../../src/waf/regex.ts';
import { compileKeyTest, keySelects } from '../../../src/waf/selectors.ts';
import { lookupVariable, makeValue } from '../../../src/waf/variables.ts';

const TX = lookupVariable('TX')!;
const KEYS = ['header_name_host', 'HEADER_NAME_X', 'xheader_name_', 'header_nam', '', 'multipart_headers_content_types_0', 'MULTIPART_HEADERS_CONTENT_TYPES', 'a_header_name_b', 'héader_name_'];

describe('regex keys written as words', () => {
  it.each(['^header_name_', 'header_name_', 'MULTIPART_HEADERS_CONTENT_TYPES_*', '^__utm', 'x-y'])('/%s/ selects what the caseless regex selects', (pattern) => {
    const test = compileKeyTest(TX, { kind: 'regex', pattern });
    const regex = compilePcre(pattern, { caseless: true, dotAll: true });
    if (!test.ok || !regex.ok) throw new Error('does not compile');
    for (const key of KEYS) {
      expect(keySelects(test.value, makeValue('TX', key, 'v')), `${pattern} on ${key}`).toBe(regex.regex.test(key));
    }
  });
});
