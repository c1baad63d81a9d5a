// The rule set under test and the configuration CRS 3.3.4's own CI ran its regression suite with, for the
// in-process target. Rules come from Debian's modsecurity-crs package; nothing is copied into this repository.
//
// How CRS's tooling ran the suite (coreruleset/documentation, content/development/testing.md, "Testing the
// Rule Set"): ftw against the project's Apache container (owasp/modsecurity-crs:3.3-apache for 3.x) started
// from tests/docker-compose.yml with `MODSEC_RULE_ENGINE: DetectionOnly`; for one's own server the page gives
// the same settings as a SecAction after crs-setup.conf: `ctl:ruleEngine=DetectionOnly` and paranoia level 4
// (`tx.blocking_paranoia_level` in CRS 4, `tx.paranoia_level` in 3.3), so that every rule runs. ftw then
// judges each stage by the error-log lines written between two marker requests.
//
// That is also how CRS handled the Accept-Charset header that 1,126 of the suite's 2,396 enabled stages send
// although CRS 3.3.4 itself restricts it (`/accept-charset/` in tx.restricted_headers, rule 920450): the
// header stayed in the tests and the WAF ran DetectionOnly, so on those stages 920450 logs a line and adds to
// the anomaly score, nothing is blocked, and no expectation but 920450's own looks at it. In the words of
// coreruleset/coreruleset#2779 (Sept. 2022, asking for the headers to be removed from the tests later): "they
// do not cause test failures, because the test framework looks at rules instead of score". Stage 920160-4
// shows it: it sends Accept-Charset and expects status 200, which only DetectionOnly gives. This runner does
// the same: the header is sent as written, the engine runs DetectionOnly, stages are judged by their log
// lines, and the statuses they expect are the web server's (./server-parse.ts), never the WAF's.
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import type { WafOptions } from '../../src/waf/engine.ts';
import { CRS_RULES_DIR, NODE_FILES } from '../../src/waf/load.ts';
import { parseSecLang } from '../../src/waf/seclang/parser.ts';

export const PARANOIA_LEVELS = [1, 2, 3, 4] as const;
export type ParanoiaLevel = (typeof PARANOIA_LEVELS)[number];
/** The level CRS's CI runs the suite at: all rules execute. */
export const CI_PARANOIA_LEVEL: ParanoiaLevel = 4;

/**
 * The engine configured as the CI's container was: Debian's CRS loaded as ModSecurity loads it (the engine's
 * `crs` option: modsecurity.conf-recommended's body-processor rules, crs-setup.conf, the paranoia level set
 * before REQUEST-901 defaults it, then rules/*.conf), and DetectionOnly.
 */
export function crsTestOptions(paranoiaLevel: ParanoiaLevel): WafOptions {
  return { crs: { paranoiaLevel }, mode: 'DetectionOnly' };
}

/** Each CRS rule id's paranoia level, from its `paranoia-level/N` tag, to tell missed detections from rules not run. */
export function ruleParanoiaLevels(): Map<number, number> {
  const levels = new Map<number, number>();
  for (const path of NODE_FILES.glob(join(CRS_RULES_DIR, '*.conf'))) {
    for (const directive of parseSecLang(readFileSync(path, 'latin1'), path).directives) {
      if (directive.kind !== 'rule' && directive.kind !== 'action') continue;
      const id = directive.actions.find((a) => a.name === 'id')?.value;
      const tag = directive.actions.find((a) => a.name === 'tag' && a.value?.startsWith('paranoia-level/'))?.value;
      if (id !== undefined && tag !== undefined) levels.set(Number(id), Number(tag.slice('paranoia-level/'.length)));
    }
  }
  return levels;
}
