// Fuzzing the admin socket: arbitrary bytes, cut at arbitrary chunk boundaries, sent to a live AdminServer.
// The server must answer every line exactly once with a well-formed reply (an admin error, or ok for a valid
// request), never crash, and keep serving fresh connections afterwards.
import fc from 'fast-check';
import { mkdtemp, rm } from 'node:fs/promises';
import { connect } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pino } from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { AdminClient } from '../../src/admin/client.ts';
import { AdminServer } from '../../src/admin/server.ts';
import { ADMIN_COMMANDS, decodeAdminRequest } from '../../src/messages.ts';
import { fcParams } from '../helpers/fc.ts';

const MAX_LINE_BYTES = 512;
const ADMIN_ERROR_CODES = new Set([
  'SECBEAT_ERR_ADMIN_MALFORMED',
  'SECBEAT_ERR_ADMIN_UNKNOWN_COMMAND',
  'SECBEAT_ERR_ADMIN_INVALID_ARGS',
  'SECBEAT_ERR_ADMIN_LINE_TOO_LONG',
  'SECBEAT_ERR_ADMIN_BUSY',
]);

let dir: string;
let path: string;
let server: AdminServer;

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'sb-admin-prop-'));
  path = join(dir, 'admin.sock');
  // In-flight limit out of reach, so every valid request is answered ok and the count below is exact.
  server = new AdminServer({
    path,
    handler: (req) => Promise.resolve(req.cmd === 'ping' ? 'pong' : { done: req.cmd }),
    log: pino({ level: 'silent' }),
    maxLineBytes: MAX_LINE_BYTES,
    maxInFlightPerConnection: 100_000,
  });
  await server.listen();
});

afterAll(async () => {
  await server.close();
  await rm(dir, { recursive: true, force: true });
});

const text = (s: string): Uint8Array => new TextEncoder().encode(s);

/** Pieces of a byte stream: noise, framing characters, near-valid and valid requests, overlong lines. */
const segment: fc.Arbitrary<Uint8Array> = fc.oneof(
  fc.uint8Array({ maxLength: 64 }),
  fc.constantFrom('\n', '\r\n', ' ', '\t', '\r', '{', '}', '"').map(text),
  fc.constantFrom([0xc3], [0xff], [0xed, 0xa0, 0x80], [0xef, 0xbb, 0xbf]).map((b) => Uint8Array.from(b)),
  fc.integer({ min: 0, max: 2 ** 31 }).map((id) => text(`{"id":${id},"cmd":"ping"}\n`)),
  fc
    .record({
      id: fc.oneof(fc.integer(), fc.string({ maxLength: 8 }), fc.constant(null)),
      cmd: fc.oneof(fc.constantFrom(...ADMIN_COMMANDS), fc.string({ maxLength: 12 })),
      address: fc.string({ maxLength: 10 }),
      level: fc.constantFrom('debug', 'loud'),
    }, { requiredKeys: ['cmd'] })
    .map((r) => text(`${JSON.stringify(r)}\n`)),
  fc.jsonValue({ maxDepth: 3 }).map((v) => text(`${JSON.stringify(v)}\n`)),
  fc.integer({ min: MAX_LINE_BYTES - 2, max: MAX_LINE_BYTES * 8 }).map((n) => new Uint8Array(n).fill(0x61)),
);

/** What the server must answer: one reply per non-blank line, ok exactly for the lines that decode. */
function expectedReplies(stream: Uint8Array): { total: number; ok: number } {
  const utf8 = new TextDecoder('utf-8', { fatal: true });
  let total = 0;
  let ok = 0;
  let start = 0;
  while (start < stream.length) {
    let end = stream.indexOf(0x0a, start);
    if (end === -1) end = stream.length; // the last line is ended by EOF
    const line = stream.subarray(start, end);
    start = end + 1;
    if (line.length > MAX_LINE_BYTES) {
      total++;
      continue;
    }
    if (line.every((b) => b === 0x20 || b === 0x09 || b === 0x0d)) continue;
    total++;
    try {
      if (decodeAdminRequest(JSON.parse(utf8.decode(line))).ok) ok++;
    } catch {
      // malformed: an error reply
    }
  }
  return { total, ok };
}

function concat(parts: readonly Uint8Array[]): Uint8Array {
  const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
  let offset = 0;
  for (const p of parts) {
    out.set(p, offset);
    offset += p.length;
  }
  return out;
}

/** Writes the stream in the given chunks, half-closes, and collects everything the server sends until it closes. */
function exchange(stream: Uint8Array, cuts: readonly number[]): Promise<string> {
  return new Promise((resolve, reject) => {
    const socket = connect(path);
    let received = '';
    socket.setEncoding('utf8');
    socket.on('data', (s: string) => (received += s));
    socket.on('error', reject);
    socket.on('close', () => resolve(received));
    socket.on('connect', async () => {
      const bounds = [...new Set(cuts.map((c) => c % (stream.length + 1)))].sort((a, b) => a - b);
      let from = 0;
      for (const to of [...bounds, stream.length]) {
        if (to <= from) continue;
        await new Promise<void>((r) => socket.write(stream.subarray(from, to), () => r()));
        from = to;
      }
      socket.end();
    });
  });
}

describe('admin socket under arbitrary bytes', () => {
  it('answers every line once with a well-formed reply and keeps serving', async () => {
    await fc.assert(
      fc.asyncProperty(fc.array(segment, { maxLength: 24 }), fc.array(fc.nat(), { maxLength: 12 }), async (segments, cuts) => {
        const stream = concat(segments);
        const expected = expectedReplies(stream);
        const received = await exchange(stream, cuts);
        expect(received === '' || received.endsWith('\n')).toBe(true);
        const replies = received.split('\n').slice(0, -1).map((l) => JSON.parse(l) as { id: unknown; ok: boolean; error?: { code: string; message: string } });
        expect(replies.length).toBe(expected.total);
        expect(replies.filter((r) => r.ok).length).toBe(expected.ok);
        for (const r of replies) {
          if (r.ok) continue;
          expect(ADMIN_ERROR_CODES.has(r.error!.code)).toBe(true);
          expect(r.error!.message.length).toBeGreaterThan(0);
        }
        await using client = await AdminClient.connect(path, 2_000);
        expect(await client.request({ cmd: 'ping' }, 2_000)).toEqual({ id: 1, ok: true, result: 'pong' });
      }),
      { ...fcParams(100), timeout: 10_000 },
    );
  });
});
