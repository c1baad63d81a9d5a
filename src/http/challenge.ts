// The `challenge` action of custom WAF rules (src/waf/custom-rules.ts): a request that matches such a rule and
// carries no valid clearance gets a small page whose script finds a proof of work and stores it in a cookie,
// then reloads; the reloaded request carries the clearance and passes. A client that runs no script (most
// bots, curl) never gets through; a browser pays a fraction of a second once per clearance lifetime.
//
// Stateless, so any thread (and, with a shared challenge_secret, any node) can check any clearance:
//   token     = <expiry>.<mac>         mac = HMAC-SHA256(secret, "<expiry>|<client ip>|<domain>"), base64url, 22 chars
//   clearance = <token>.<nonce>        SHA-256("<token>.<nonce>") starts with `difficultyBits` zero bits
// in the cookie `secbeat_clearance`. The page computes SHA-256 in plain script (WebCrypto is missing on plain
// HTTP outside localhost), the same function the test runs against node:crypto.
import { createHash, createHmac, timingSafeEqual } from 'node:crypto';

export const CLEARANCE_COOKIE = 'secbeat_clearance';

export interface ChallengeOptions {
  secret: string;
  /** Leading zero bits the proof needs: 2^bits hashes on average (14: ~16k, a fraction of a second). */
  difficultyBits: number;
  ttlSeconds: number;
}

/** A clearance cookie longer than this is not read (it is attacker input). */
const MAX_CLEARANCE_LENGTH = 96;
const MAC_LENGTH = 22;

export class Challenge {
  readonly #o: ChallengeOptions;

  constructor(options: ChallengeOptions) {
    this.#o = options;
  }

  /** Whether `cookieHeader` holds a clearance valid now for this client and domain. */
  cleared(cookieHeader: string | undefined, clientIp: string, domain: string, nowS: number): boolean {
    const value = cookieValue(cookieHeader, CLEARANCE_COOKIE);
    if (value === null || value.length > MAX_CLEARANCE_LENGTH) return false;
    const parts = value.split('.');
    if (parts.length !== 3) return false;
    const [expiryText, mac, nonce] = parts as [string, string, string];
    if (!/^\d{1,12}$/.test(expiryText) || !/^\d{1,12}$/.test(nonce)) return false;
    const expiry = Number(expiryText);
    if (expiry <= nowS || expiry > nowS + this.#o.ttlSeconds) return false;
    const expected = Buffer.from(this.#mac(expiry, clientIp, domain));
    const given = Buffer.from(mac);
    if (given.length !== expected.length || !timingSafeEqual(given, expected)) return false;
    return leadingZeroBits(createHash('sha256').update(value, 'latin1').digest()) >= this.#o.difficultyBits;
  }

  /** The page that earns a clearance for this client and domain. */
  page(clientIp: string, domain: string, nowS: number): string {
    const expiry = nowS + this.#o.ttlSeconds;
    const token = `${expiry}.${this.#mac(expiry, clientIp, domain)}`;
    return challengePage(token, this.#o.difficultyBits, this.#o.ttlSeconds);
  }

  #mac(expiry: number, clientIp: string, domain: string): string {
    return createHmac('sha256', this.#o.secret).update(`${expiry}|${clientIp}|${domain}`).digest('base64url').slice(0, MAC_LENGTH);
  }
}

/** The value of cookie `name` in a Cookie header, or null. */
function cookieValue(header: string | undefined, name: string): string | null {
  if (header === undefined) return null;
  for (const pair of header.split(';')) {
    const eq = pair.indexOf('=');
    if (eq !== -1 && pair.slice(0, eq).trim() === name) return pair.slice(eq + 1).trim();
  }
  return null;
}

function leadingZeroBits(digest: Buffer): number {
  let bits = 0;
  for (const byte of digest) {
    if (byte === 0) {
      bits += 8;
      continue;
    }
    return bits + Math.clz32(byte) - 24;
  }
  return bits;
}

/**
 * The page: SHA-256 over the ASCII string `<token>.<n>` for n = 0, 1, … until the first word of the digest has
 * `bits` leading zeros (bits ≤ 32), then the cookie and a reload. The token is digits, letters, `-`, `_` and
 * `.` (base64url), so it needs no escaping inside the script's string.
 */
function challengePage(token: string, bits: number, ttlSeconds: number): string {
  return `<!doctype html>
<html><head><meta charset="utf-8"><meta name="robots" content="noindex"><title>Checking your browser</title></head>
<body><p>Checking your browser before going on. This takes a moment.</p><noscript><p>Please turn on JavaScript and reload.</p></noscript>
<script>
${SHA256_SCRIPT}
(function () {
  var token = ${JSON.stringify(token)};
  for (var n = 0; ; n++) {
    if (Math.clz32(sha256First(token + "." + n)) >= ${bits}) {
      document.cookie = "${CLEARANCE_COOKIE}=" + token + "." + n + "; path=/; max-age=${ttlSeconds}; SameSite=Lax";
      location.reload();
      return;
    }
  }
})();
</script></body></html>
`;
}

/** SHA-256 of an ASCII string, its first 32-bit word only (all the proof looks at). */
const SHA256_SCRIPT = `function sha256First(m) {
  var K = [${sha256Constants().join(',')}];
  var H = [0x6a09e667, 0xbb67ae85, 0x3c6ef372, 0xa54ff53a, 0x510e527f, 0x9b05688c, 0x1f83d9ab, 0x5be0cd19];
  var b = [], i, o;
  for (i = 0; i < m.length; i++) b.push(m.charCodeAt(i) & 255);
  var l = b.length * 8;
  b.push(128);
  while (b.length % 64 !== 56) b.push(0);
  b.push(0, 0, 0, 0, (l >>> 24) & 255, (l >>> 16) & 255, (l >>> 8) & 255, l & 255);
  function r(x, n) { return (x >>> n) | (x << (32 - n)); }
  var w = new Array(64);
  for (o = 0; o < b.length; o += 64) {
    for (i = 0; i < 16; i++) w[i] = (b[o + 4 * i] << 24) | (b[o + 4 * i + 1] << 16) | (b[o + 4 * i + 2] << 8) | b[o + 4 * i + 3];
    for (i = 16; i < 64; i++) {
      var x = w[i - 15], y = w[i - 2];
      w[i] = (w[i - 16] + (r(x, 7) ^ r(x, 18) ^ (x >>> 3)) + w[i - 7] + (r(y, 17) ^ r(y, 19) ^ (y >>> 10))) | 0;
    }
    var a = H[0], c1 = H[1], c2 = H[2], d = H[3], e = H[4], f = H[5], g = H[6], h = H[7];
    for (i = 0; i < 64; i++) {
      var t1 = (h + (r(e, 6) ^ r(e, 11) ^ r(e, 25)) + ((e & f) ^ (~e & g)) + K[i] + w[i]) | 0;
      var t2 = ((r(a, 2) ^ r(a, 13) ^ r(a, 22)) + ((a & c1) ^ (a & c2) ^ (c1 & c2))) | 0;
      h = g; g = f; f = e; e = (d + t1) | 0; d = c2; c2 = c1; c1 = a; a = (t1 + t2) | 0;
    }
    H = [(H[0] + a) | 0, (H[1] + c1) | 0, (H[2] + c2) | 0, (H[3] + d) | 0, (H[4] + e) | 0, (H[5] + f) | 0, (H[6] + g) | 0, (H[7] + h) | 0];
  }
  return H[0];
}`;

/** The first 32 bits of the fractional parts of the cube roots of the first 64 primes (FIPS 180-4 §4.2.2). */
function sha256Constants(): string[] {
  const primes: number[] = [];
  for (let n = 2; primes.length < 64; n++) if (primes.every((p) => n % p !== 0)) primes.push(n);
  return primes.map((p) => `0x${Math.floor((Math.cbrt(p) % 1) * 2 ** 32).toString(16).padStart(8, '0')}`);
}
