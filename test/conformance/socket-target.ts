// The over-the-wire target: each stage's bytes are written as they are to a fresh TCP (or TLS) connection,
// so malformed requests reach the node exactly as ftw sent them to CRS's Apache, and the answer is read as
// ftw read it (a status line it can parse, within 5 s, or an error). The log expectations need the node's
// rule-match log: a MatchLog supplies it; without one the target reports no log and the runner says so.
import { connect as connectTcp } from 'node:net';
import { connect as connectTls } from 'node:tls';
import { NEED_MORE, PARSE_ERROR, ResponseParser } from '../../src/http/response-parser.ts';
import type { Stage } from './ftw.ts';
import { FTW_RESPONSE_TIMEOUT_MS, type StageOutcome, type Target } from './target.ts';

/** Reads a node's rule-match log around one stage (an L7 node's log, a file between markers, …). */
export interface MatchLog<Mark = unknown> {
  /** Taken right before the stage's request is sent. */
  mark(stage: Stage): Promise<Mark>;
  /** The lines written for that request since `mark`, ModSecurity error-log style (`[id "942100"]` …). */
  linesSince(mark: Mark, stage: Stage): Promise<readonly string[]>;
}

export interface SocketTargetOptions {
  /** Where every stage goes, whatever its dest_addr and port say (as go-ftw's `testoverride` does). */
  host: string;
  port: number;
  log?: MatchLog;
  timeoutMs?: number;
}

export type RawExchange = { kind: 'response'; status: number; raw: string } | { kind: 'error'; message: string };

export function socketTarget(options: SocketTargetOptions): Target {
  const { host, port, log } = options;
  return {
    name: `${host}:${port}`,
    async exchange(stage, request) {
      const mark = log === undefined ? undefined : await log.mark(stage);
      const reply = await sendRaw({
        host,
        port,
        tls: stage.input.protocol === 'https',
        request,
        timeoutMs: options.timeoutMs ?? FTW_RESPONSE_TIMEOUT_MS,
      });
      const lines = log === undefined ? null : await log.linesSince(mark, stage);
      return { ...reply, log: lines };
    },
    async close() {},
  };
}

export interface SendRawOptions {
  host: string;
  port: number;
  tls: boolean;
  request: Buffer;
  timeoutMs: number;
}

/** Writes `request` on a new connection and reads one response; never rejects. */
export function sendRaw(options: SendRawOptions): Promise<RawExchange> {
  const { host, port, request } = options;
  // HEAD's answer has no body whatever its headers say; the method is the request's first word.
  const head = request.subarray(0, 5).toString('latin1') === 'HEAD ';
  return new Promise((resolve) => {
    const socket = options.tls ? connectTls({ host, port, rejectUnauthorized: false }) : connectTcp({ host, port });
    const parser = new ResponseParser();
    const received: Buffer[] = [];
    let status = 0;
    let settled = false;
    const finish = (result: RawExchange): void => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      socket.destroy();
      resolve(result);
    };
    const raw = (): string => Buffer.concat(received).toString('latin1');
    const timer = setTimeout(
      () => finish({ kind: 'error', message: `No response from server within ${options.timeoutMs} ms` }),
      options.timeoutMs,
    );
    parser.expect(
      {
        onHead(code) {
          status = code;
        },
        onBody() {},
        onEnd() {},
      },
      head,
    );
    socket.on(options.tls ? 'secureConnect' : 'connect', () => socket.write(request));
    socket.on('data', (chunk: Buffer) => {
      received.push(chunk);
      const at = parser.execute(chunk);
      if (at === PARSE_ERROR) finish({ kind: 'error', message: `unparsable response: ${parser.error}` });
      else if (at !== NEED_MORE) finish({ kind: 'response', status, raw: raw() });
    });
    socket.on('end', () => {
      if (received.length === 0) finish({ kind: 'error', message: 'No response from server (connection closed)' });
      else if (parser.closed()) finish({ kind: 'response', status, raw: raw() });
      else finish({ kind: 'error', message: 'connection closed in the middle of the response' });
    });
    socket.on('error', (error) => finish({ kind: 'error', message: `socket: ${error.message}` }));
  });
}
