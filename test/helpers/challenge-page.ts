// Runs a challenge page's script (src/http/challenge.ts) as a browser would, with a document and a location of
// its own: the cookie it sets, and how many times it asked to reload.
import { runInNewContext } from 'node:vm';

export function solveChallengePage(page: string): { cookie: string; reloads: number } {
  const script = /<script>([^]*)<\/script>/.exec(page)?.[1];
  if (script === undefined) throw new Error('no script in the challenge page');
  const browser = { document: { cookie: '' }, location: { reloads: 0, reload() { this.reloads++; } }, Math };
  runInNewContext(script, browser, { timeout: 30_000 });
  return { cookie: browser.document.cookie.split(';')[0]!, reloads: browser.location.reloads };
}
