// The C character classes ModSecurity's parsers test with (in the "C" locale, ASCII only), shared by the body
// processors so each byte means the same to all of them.

/** isspace: space, \t, \n, \v, \f, \r. */
export function isSpace(code: number): boolean {
  return code === 0x20 || (code >= 0x09 && code <= 0x0d);
}

/** isalnum: ASCII letters and digits. */
export function isAlnum(code: number): boolean {
  return (code >= 0x30 && code <= 0x39) || (code >= 0x41 && code <= 0x5a) || (code >= 0x61 && code <= 0x7a);
}

/** The value of a hex digit (isxdigit, then x2c), or -1 for any other char code (NaN past the end included). */
export function hexValue(code: number): number {
  if (code >= 0x30 && code <= 0x39) return code - 0x30;
  const lower = code | 0x20;
  return lower >= 0x61 && lower <= 0x66 ? lower - 0x57 : -1;
}
