// Parses IPv4 and IPv6 text into four 32-bit words (IPv4 as ::ffff:a.b.c.d, the form dual-stack sockets
// report), without allocating, for the per-connection blocklist check. Returns false for anything else.

/** Parses `text` into `out` (length ≥ 4). IPv4-mapped IPv6 and plain IPv4 give the same words. */
export function parseIp(text: string, out: Uint32Array): boolean {
  if (text.length === 0 || text.length > 45) return false;
  if (text.indexOf(':') === -1) {
    const v4 = parseIpv4(text, 0, text.length);
    if (v4 < 0) return false;
    out[0] = 0;
    out[1] = 0;
    out[2] = 0xffff;
    out[3] = v4;
    return true;
  }
  return parseIpv6(text, out);
}

/** Dotted quad in text[start, end) → uint32, or -1. No leading zeros beyond a single "0", as inet_pton. */
function parseIpv4(text: string, start: number, end: number): number {
  let value = 0;
  let parts = 0;
  let i = start;
  while (parts < 4) {
    let octet = 0;
    let digits = 0;
    while (i < end) {
      const c = text.charCodeAt(i);
      if (c < 48 || c > 57) break;
      if (digits === 1 && octet === 0) return -1;
      octet = octet * 10 + (c - 48);
      digits++;
      i++;
      if (octet > 255) return -1;
    }
    if (digits === 0) return -1;
    value = value * 256 + octet;
    parts++;
    if (parts < 4) {
      if (i >= end || text.charCodeAt(i) !== 46) return -1;
      i++;
    }
  }
  return i === end ? value >>> 0 : -1;
}

// Scratch space reused across calls: parsing runs once per accepted connection and must not allocate.
const groups = new Uint16Array(8);
const full = new Uint16Array(8);

function parseIpv6(text: string, out: Uint32Array): boolean {
  const end = text.length;
  let count = 0;
  let gap = -1;
  let i = 0;
  if (text.startsWith('::')) {
    gap = 0;
    i = 2;
    if (i === end) return writeGroups(out, count, gap);
  } else if (text.charCodeAt(0) === 58) return false;
  while (i < end) {
    if (count === 8) return false;
    // An embedded IPv4 tail takes the last two groups.
    let j = i;
    let hex = 0;
    let digits = 0;
    while (j < end) {
      const c = text.charCodeAt(j);
      const d = c >= 48 && c <= 57 ? c - 48 : c >= 97 && c <= 102 ? c - 87 : c >= 65 && c <= 70 ? c - 55 : -1;
      if (d < 0) break;
      hex = hex * 16 + d;
      digits++;
      j++;
    }
    if (j < end && text.charCodeAt(j) === 46) {
      if (count > 6) return false;
      const v4 = parseIpv4(text, i, end);
      if (v4 < 0) return false;
      groups[count++] = v4 >>> 16;
      groups[count++] = v4 & 0xffff;
      i = end;
      break;
    }
    if (digits === 0 || digits > 4) return false;
    groups[count++] = hex;
    i = j;
    if (i === end) break;
    if (text.charCodeAt(i) !== 58) return false;
    i++;
    if (i < end && text.charCodeAt(i) === 58) {
      if (gap !== -1) return false;
      gap = count;
      i++;
      if (i === end) break;
    } else if (i === end) return false;
  }
  return writeGroups(out, count, gap);
}

function writeGroups(out: Uint32Array, count: number, gap: number): boolean {
  if (gap === -1 ? count !== 8 : count > 7) return false;
  full.fill(0);
  if (gap === -1) full.set(groups.subarray(0, 8));
  else {
    full.set(groups.subarray(0, gap), 0);
    full.set(groups.subarray(gap, count), 8 - (count - gap));
  }
  for (let w = 0; w < 4; w++) out[w] = ((full[w * 2]! << 16) | full[w * 2 + 1]!) >>> 0;
  return true;
}

/** Canonical text of parsed words (IPv4-mapped printed as IPv4), for listings. */
export function formatIp(words: ArrayLike<number>): string {
  if (words[0] === 0 && words[1] === 0 && words[2] === 0xffff) {
    const v = words[3]! >>> 0;
    return `${v >>> 24}.${(v >>> 16) & 255}.${(v >>> 8) & 255}.${v & 255}`;
  }
  const g: number[] = [];
  for (let w = 0; w < 4; w++) g.push((words[w]! >>> 16) & 0xffff, words[w]! & 0xffff);
  // Longest run of zero groups (length ≥ 2) becomes "::" (RFC 5952).
  let bestStart = -1;
  let bestLen = 0;
  for (let s = 0; s < 8; ) {
    if (g[s] !== 0) {
      s++;
      continue;
    }
    let e = s;
    while (e < 8 && g[e] === 0) e++;
    if (e - s > bestLen && e - s >= 2) {
      bestStart = s;
      bestLen = e - s;
    }
    s = e;
  }
  const hex = g.map((x) => x.toString(16));
  if (bestStart === -1) return hex.join(':');
  return `${hex.slice(0, bestStart).join(':')}::${hex.slice(bestStart + bestLen).join(':')}`;
}
