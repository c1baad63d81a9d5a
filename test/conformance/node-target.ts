// The suite through a running L7 node, as ftw ran it through Apache: `bin/secbeat run` in l7 mode with the
// Debian CRS at the chosen paranoia level in detection mode (never blocking, as CRS's CI ran DetectionOnly:
// ./crs-setup.ts) and `[waf] match_log` on, in front of an origin that answers every request with 200. Each
// stage's bytes go over a socket as they are (./socket-target.ts).
//
// The log is the node's own: one `waf.rule` line per matched rule on its stdout, in ModSecurity's error-log
// format. A stage's lines are found as go-ftw finds them in a web server's error log: a marker request before
// and after the stage carries a fresh X-CRS-Test value that a local rule logs (go-ftw's marker rule, id
// 999999), and the lines of the transactions logged between the two markers' are the stage's. The node runs
// one worker thread so that its log follows the order of the requests.
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startNode, type NodeProcess } from '../helpers/node-process.ts';
import type { ParanoiaLevel } from './crs-setup.ts';
import { type MatchLog, sendRaw, socketTarget } from './socket-target.ts';
import type { Target } from './target.ts';

const MARKER_HEADER = 'X-CRS-Test';
const MARKER_RULE = `SecRule REQUEST_HEADERS:${MARKER_HEADER} "@rx ^.*$" "id:999999,phase:1,pass,t:none,log,msg:'%{MATCHED_VAR}'"\n`;
/** How long a marker may take to show in the log before the run gives up (the node is local and idle). */
const MARKER_TIMEOUT_MS = 10_000;
/** What output() keeps: the lines are read from stdout as they come, this is only for error messages. */
const KEEP_OUTPUT = 64 * 1024;

interface RuleLine {
  transactionId: string;
  line: string;
}

export async function nodeTarget(paranoiaLevel: ParanoiaLevel): Promise<Target> {
  const dir = mkdtempSync(join(tmpdir(), 'secbeat-ftw-'));
  const rulesFile = join(dir, 'marker.conf');
  writeFileSync(rulesFile, MARKER_RULE);
  const origin = createServer((req, res) => {
    req.resume();
    req.on('end', () => res.end('ok'));
  });
  await new Promise<void>((resolve) => origin.listen(0, '127.0.0.1', resolve));
  const originPort = (origin.address() as { port: number }).port;
  let node: NodeProcess;
  try {
    node = await startNode({
      mode: 'l7',
      backendPort: originPort,
      threads: 1,
      keepOutput: KEEP_OUTPUT,
      extraToml: `
[waf]
enabled = true
mode = "detection"
paranoia_level = ${paranoiaLevel}
rules_path = "${rulesFile}"
match_log = true
`,
    });
  } catch (error) {
    await closeServer(origin);
    rmSync(dir, { recursive: true, force: true });
    throw error;
  }
  const log = new NodeMatchLog(node);
  const target = socketTarget({ host: '127.0.0.1', port: node.port, log });
  return {
    name: `L7 node PL${paranoiaLevel}`,
    exchange: (stage, request) => target.exchange(stage, request),
    async close() {
      await node[Symbol.asyncDispose]();
      await closeServer(origin);
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

/** The node's `waf.rule` lines, read from its stdout as they come, between markers. */
class NodeMatchLog implements MatchLog<string> {
  readonly #node: NodeProcess;
  readonly #lines: RuleLine[] = [];
  #partial = '';
  #markers = 0;
  #waiter: (() => void) | null = null;

  constructor(node: NodeProcess) {
    this.#node = node;
    node.proc.stdout!.on('data', (chunk: Buffer) => this.#read(chunk.toString()));
  }

  async mark(): Promise<string> {
    // Lines before the mark are never needed again.
    this.#lines.length = 0;
    return this.#sendMarker(`${++this.#markers}-start`);
  }

  async linesSince(start: string): Promise<readonly string[]> {
    const end = await this.#sendMarker(`${this.#markers}-end`);
    const lines = this.#lines;
    const startAt = lines.findIndex((l) => l.line.includes(start));
    const startTx = lines[startAt]!.transactionId;
    const endTx = lines.find((l) => l.line.includes(end))!.transactionId;
    const between: string[] = [];
    for (let i = startAt + 1; i < lines.length; i++) {
      const { transactionId, line } = lines[i]!;
      if (transactionId === endTx) break;
      if (transactionId !== startTx) between.push(line);
    }
    return between;
  }

  /** Sends a marker request and waits until its line is in the log; the marker value. */
  async #sendMarker(value: string): Promise<string> {
    const marker = `secbeat-ftw ${value}`;
    const request = Buffer.from(`GET / HTTP/1.1\r\nHost: localhost\r\nUser-Agent: secbeat-ftw\r\nAccept: */*\r\n${MARKER_HEADER}: ${marker}\r\nConnection: close\r\n\r\n`, 'latin1');
    const reply = await sendRaw({ host: '127.0.0.1', port: this.#node.port, tls: false, request, timeoutMs: MARKER_TIMEOUT_MS });
    if (reply.kind === 'error') throw new Error(`marker request ${marker}: ${reply.message}`);
    const deadline = Date.now() + MARKER_TIMEOUT_MS;
    while (!this.#lines.some((l) => l.line.includes(marker))) {
      if (Date.now() > deadline) throw new Error(`marker ${marker} never reached the node's log:\n${this.#node.output().slice(-4000)}`);
      await new Promise<void>((resolve) => {
        this.#waiter = resolve;
        setTimeout(resolve, 50);
      });
    }
    return marker;
  }

  #read(text: string): void {
    const parts = (this.#partial + text).split('\n');
    this.#partial = parts.pop()!;
    for (const part of parts) {
      if (!part.includes('"waf.rule"')) continue;
      const entry = JSON.parse(part) as { event?: string; transactionId?: string; line?: string };
      if (entry.event === 'waf.rule' && entry.transactionId !== undefined && entry.line !== undefined) {
        this.#lines.push({ transactionId: entry.transactionId, line: entry.line });
      }
    }
    this.#waiter?.();
    this.#waiter = null;
  }
}

function closeServer(server: Server): Promise<void> {
  server.closeAllConnections();
  return new Promise((resolve) => server.close(() => resolve()));
}
