// The in-process target: each stage's bytes go through the web-server model (./server-parse.ts) and what it
// passes on goes through the engine, as CRS's CI had Apache hand requests to ModSecurity. The engine runs the
// Debian CRS with the CI's settings (./crs-setup.ts: DetectionOnly, the chosen paranoia level), and its match
// records, written as ModSecurity error-log lines, are the log the expectations are checked against.
import { createWaf, formatModsecLine, type Transaction, type WafRequest } from '../../src/waf/engine.ts';
import { crsTestOptions, type ParanoiaLevel } from './crs-setup.ts';
import type { Stage } from './ftw.ts';
import { type ParsedRequest, parseAsServer } from './server-parse.ts';
import type { StageOutcome, Target } from './target.ts';

/** Where ftw's requests came from (any port: ftw's was ephemeral). */
const CLIENT = { remoteAddr: '127.0.0.1', remotePort: 50_000 } as const;

export function engineTarget(paranoiaLevel: ParanoiaLevel): { target: Target; errors: readonly string[] } {
  const { ruleSet, errors } = createWaf(crsTestOptions(paranoiaLevel));
  const begin = (stage: Stage, parsed: ParsedRequest): Transaction => {
    const request: WafRequest = {
      method: parsed.method,
      uri: parsed.uri,
      protocol: parsed.protocol,
      headers: parsed.headers,
      ...CLIENT,
      serverAddr: stage.input.destAddr,
      serverPort: stage.input.port,
    };
    return ruleSet.begin(request);
  };
  const log = (tx: Transaction): string[] => tx.matches.map((record) => formatModsecLine(record));
  const target: Target = {
    name: `in-process PL${paranoiaLevel}`,
    async exchange(stage, bytes): Promise<StageOutcome> {
      const view = parseAsServer(bytes);
      switch (view.kind) {
        case 'refused':
          return { kind: 'response', status: view.status, raw: `HTTP/1.1 ${view.status} \r\n\r\n`, log: [] };
        case 'http09':
          return { kind: 'error', message: `no status line in the answer: ${view.reason}`, log: [] };
        case 'incomplete': {
          // Phase 1 runs once the head is in; the body never completes, so phase 2 never does.
          const tx = begin(stage, view.request);
          tx.requestHeaders();
          return { kind: 'error', message: `no response within 5 s: the server waits (${view.reason})`, log: log(tx) };
        }
        case 'request': {
          const tx = begin(stage, view.request);
          const interruption = tx.requestHeaders() ?? tx.requestBody(view.request.body);
          const status = interruption?.status ?? view.status;
          return { kind: 'response', status, raw: `HTTP/1.1 ${status} \r\n\r\n`, log: log(tx) };
        }
      }
    },
    async close() {},
  };
  return { target, errors: errors.map((e) => `${e.file}:${e.line}: ${e.message}`) };
}
