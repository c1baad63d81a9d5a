// A minimal RFC 6455 WebSocket endpoint on an origin's node:http server, so proxy tests can use a real client
// (Node's global WebSocket): the opening handshake (§4.2.2), a first text message from the origin, then every
// frame echoed back unmasked with its FIN bit and opcode (fragments included), pings answered with pongs and a
// close with a close (§5.5). No extensions or subprotocols.
import { createHash } from 'node:crypto';
import type { IncomingMessage, Server } from 'node:http';
import type { Duplex } from 'node:stream';

/** RFC 6455 §1.3: appended to the client's key before hashing. */
const ACCEPT_GUID = '258EAFA5-E914-47DA-95CA-C5AB0DC85B11';

const OPCODE = { text: 0x1, close: 0x8, ping: 0x9, pong: 0xa } as const;
const FIN = 0x80;

interface Frame {
  /** FIN, RSV and opcode bits, as received. */
  head: number;
  payload: Buffer;
  /** Bytes the frame took on the wire. */
  length: number;
}

/**
 * Accepts WebSocket upgrades on `server`. `hello` is the origin's first message on each connection (what it
 * saw of the handshake, for tests to check what the proxy forwarded).
 */
export function acceptWebSockets(server: Server, hello: (req: IncomingMessage) => string): void {
  server.on('upgrade', (req: IncomingMessage, socket: Duplex, head: Buffer) => {
    socket.on('error', () => socket.destroy());
    const key = req.headers['sec-websocket-key'];
    if (req.headers.upgrade?.toLowerCase() !== 'websocket' || typeof key !== 'string') {
      socket.end('HTTP/1.1 400 Bad Request\r\nconnection: close\r\ncontent-length: 0\r\n\r\n');
      return;
    }
    const accept = createHash('sha1').update(key + ACCEPT_GUID).digest('base64');
    socket.write(`HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: ${accept}\r\n\r\n`);
    socket.write(encodeFrame(FIN | OPCODE.text, Buffer.from(hello(req))));
    let pending = head;
    const onData = (chunk: Buffer): void => {
      pending = pending.length === 0 ? chunk : Buffer.concat([pending, chunk]);
      for (let frame = decodeFrame(pending); frame !== null; frame = decodeFrame(pending)) {
        pending = pending.subarray(frame.length);
        const opcode = frame.head & 0x0f;
        if (opcode === OPCODE.close) {
          socket.end(encodeFrame(FIN | OPCODE.close, frame.payload));
          socket.off('data', onData);
          return;
        }
        socket.write(encodeFrame(opcode === OPCODE.ping ? FIN | OPCODE.pong : frame.head, frame.payload));
      }
    };
    socket.on('data', onData);
    if (head.length > 0) onData(Buffer.alloc(0));
  });
}

/** A server frame: never masked (§5.1), payload length in 7, 7+16 or 7+64 bits (§5.2). */
function encodeFrame(head: number, payload: Buffer): Buffer {
  const n = payload.length;
  const header = Buffer.alloc(n < 126 ? 2 : n < 0x10000 ? 4 : 10);
  header[0] = head;
  if (header.length === 2) header[1] = n;
  else if (header.length === 4) {
    header[1] = 126;
    header.writeUInt16BE(n, 2);
  } else {
    header[1] = 127;
    header.writeBigUInt64BE(BigInt(n), 2);
  }
  return Buffer.concat([header, payload]);
}

/** The first whole frame in `buf`, unmasked; null while it is incomplete. */
function decodeFrame(buf: Buffer): Frame | null {
  if (buf.length < 2) return null;
  const masked = (buf[1]! & 0x80) !== 0;
  let n = buf[1]! & 0x7f;
  let offset = 2;
  if (n === 126) {
    if (buf.length < 4) return null;
    n = buf.readUInt16BE(2);
    offset = 4;
  } else if (n === 127) {
    if (buf.length < 10) return null;
    n = Number(buf.readBigUInt64BE(2));
    offset = 10;
  }
  const maskOffset = offset;
  if (masked) offset += 4;
  if (buf.length < offset + n) return null;
  const payload = Buffer.from(buf.subarray(offset, offset + n));
  if (masked) for (let i = 0; i < n; i++) payload[i] = payload[i]! ^ buf[maskOffset + (i & 3)]!;
  return { head: buf[0]!, payload, length: offset + n };
}
