// The WAF's challenge (src/http/challenge.ts): the page's own script, run as a browser would run it, earns a
// clearance the server accepts for that client and domain only, until it expires; tampered, foreign, expired
// or oversized clearances are refused.
import { createHash } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { Challenge, CLEARANCE_COOKIE } from '../../../src/http/challenge.ts';
import { solveChallengePage } from '../../helpers/challenge-page.ts';

const NOW = 1_800_000_000;
const challenge = new Challenge({ secret: 'a-test-secret-of-enough-length-0123456789', difficultyBits: 10, ttlSeconds: 600 });

/** The cookie the page's script sets, checking it reloaded once. */
function solvePage(page: string): string {
  const { cookie, reloads } = solveChallengePage(page);
  expect(reloads).toBe(1);
  return cookie;
}

describe('challenge', () => {
  const cookie = solvePage(challenge.page('192.0.2.1', 'shop.example', NOW));

  it("the page's proof of work is one node:crypto accepts, for that client and domain", () => {
    expect(cookie.startsWith(`${CLEARANCE_COOKIE}=`)).toBe(true);
    const value = cookie.slice(CLEARANCE_COOKIE.length + 1);
    const digest = createHash('sha256').update(value).digest();
    expect(digest.readUInt32BE(0) >>> (32 - 10)).toBe(0);
    expect(challenge.cleared(`lang=en; ${cookie}`, '192.0.2.1', 'shop.example', NOW + 1)).toBe(true);
  });

  it('refuses it for another client, another domain, after expiry, and with no cookie', () => {
    expect(challenge.cleared(cookie, '192.0.2.2', 'shop.example', NOW)).toBe(false);
    expect(challenge.cleared(cookie, '192.0.2.1', 'other.example', NOW)).toBe(false);
    expect(challenge.cleared(cookie, '192.0.2.1', 'shop.example', NOW + 601)).toBe(false);
    expect(challenge.cleared(undefined, '192.0.2.1', 'shop.example', NOW)).toBe(false);
    expect(challenge.cleared('lang=en', '192.0.2.1', 'shop.example', NOW)).toBe(false);
  });

  it('refuses a tampered token, a nonce without the work, a longer life and oversized or malformed values', () => {
    const [expiry, mac, nonce] = cookie.slice(CLEARANCE_COOKIE.length + 1).split('.') as [string, string, string];
    const at = (value: string) => challenge.cleared(`${CLEARANCE_COOKIE}=${value}`, '192.0.2.1', 'shop.example', NOW);
    expect(at(`${expiry}.${mac}.${nonce}`)).toBe(true);
    expect(at(`${Number(expiry) + 1}.${mac}.${nonce}`)).toBe(false);
    expect(at(`${expiry}.${mac.slice(0, -1)}A.${nonce}`)).toBe(false);
    // A nonce whose hash misses the difficulty.
    let lazy = 0;
    while (createHash('sha256').update(`${expiry}.${mac}.${lazy}`).digest().readUInt32BE(0) >>> 22 === 0) lazy++;
    expect(at(`${expiry}.${mac}.${lazy}`)).toBe(false);
    expect(at(`${expiry}.${mac}.${'1'.repeat(100)}`)).toBe(false);
    expect(at(`${expiry}.${mac}`)).toBe(false);
    expect(at(`x${expiry}.${mac}.${nonce}`)).toBe(false);
    // A page made now holds an expiry at most ttl ahead; one further ahead was not made here.
    const far = new Challenge({ secret: 'a-test-secret-of-enough-length-0123456789', difficultyBits: 10, ttlSeconds: 6000 });
    const farCookie = solvePage(far.page('192.0.2.1', 'shop.example', NOW));
    expect(challenge.cleared(farCookie, '192.0.2.1', 'shop.example', NOW)).toBe(false);
  });
});
