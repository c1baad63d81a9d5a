// Cookie header parsing for REQUEST_COOKIES / REQUEST_COOKIES_NAMES, as libmodsecurity 3
// (Transaction::addRequestHeader) does it for each Cookie header in turn:
// - pairs are split on `;` the way std::getline splits (a trailing `;` adds nothing), and trailing
//   whitespace is trimmed from the last pair only;
// - name and value split at the first `=` (`a=b=c` is `a` = `b=c`), a pair without `=` is a name with an
//   empty value;
// - only the name's leading whitespace is trimmed: `b = 2` is the name `b ` with the value ` 2`;
// - an empty pair or one whose name is empty (`=x`) is skipped.
// SecCookieFormat 1 (v1 cookies, `$Version` and quoted values) is not implemented by libmodsecurity 3 either:
// `$Version=1` is a cookie named `$Version`.

import { isSpace } from './ctype.ts';
import type { Arg } from './limits.ts';

export function parseCookies(headerValues: readonly string[]): Arg[] {
  const cookies: Arg[] = [];
  for (const header of headerValues) {
    const end = trimmedEnd(header);
    let start = 0;
    while (start < end) {
      let pairEnd = header.indexOf(';', start);
      if (pairEnd === -1 || pairEnd > end) pairEnd = end;
      let nameStart = start;
      while (nameStart < pairEnd && isSpace(header.charCodeAt(nameStart))) nameStart++;
      const equals = header.indexOf('=', nameStart);
      const nameEnd = equals !== -1 && equals < pairEnd ? equals : pairEnd;
      if (nameEnd > nameStart) {
        cookies.push([header.slice(nameStart, nameEnd), nameEnd < pairEnd ? header.slice(nameEnd + 1, pairEnd) : '']);
      }
      start = pairEnd + 1;
    }
  }
  return cookies;
}

/**
 * Where the last pair ends once its trailing whitespace is gone. A single `;` at the very end only closes the
 * last pair (getline makes no empty piece after it), so `a=1 ;` is trimmed to `a=1` as well.
 */
function trimmedEnd(header: string): number {
  let end = header.length;
  if (end > 0 && header.charCodeAt(end - 1) === 0x3b) end--;
  while (end > 0 && isSpace(header.charCodeAt(end - 1))) end--;
  return end;
}
