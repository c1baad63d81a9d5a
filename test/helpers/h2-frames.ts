// Raw HTTP/2 for abuse tests: frames and header blocks built by hand (node:http2 will not send a rapid-reset
// burst or a CONTINUATION flood), over a TLS connection that negotiated h2, and a reader that collects the
// server's GOAWAY. HPACK here is the minimum: static-table indexes and literals without indexing (RFC 7541).
import { connect as tlsConnect, type TLSSocket } from 'node:tls';
import { testCa } from './certs.ts';

export const FRAME = { DATA: 0x0, HEADERS: 0x1, RST_STREAM: 0x3, SETTINGS: 0x4, GOAWAY: 0x7, CONTINUATION: 0x9 } as const;
export const FLAG = { END_STREAM: 0x1, ACK: 0x1, END_HEADERS: 0x4 } as const;
const PREFACE = Buffer.from('PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n', 'latin1');

export function frame(type: number, flags: number, streamId: number, payload: Buffer = Buffer.alloc(0)): Buffer {
  const header = Buffer.alloc(9);
  header.writeUIntBE(payload.length, 0, 3);
  header[3] = type;
  header[4] = flags;
  header.writeUInt32BE(streamId & 0x7fffffff, 5);
  return Buffer.concat([header, payload]);
}

/** A literal field without indexing, new name (RFC 7541 §6.2.2); names and values under 127 bytes. */
export function literal(name: string, value: string): Buffer {
  return Buffer.concat([Buffer.from([0x00, name.length]), Buffer.from(name, 'latin1'), Buffer.from([value.length]), Buffer.from(value, 'latin1')]);
}

/** The header block of `GET <path>` (static indexes for :method GET and :scheme https) for `authority`. */
export function getRequestBlock(authority: string, path = '/'): Buffer {
  const pathField = path === '/' ? Buffer.from([0x84]) : Buffer.concat([Buffer.from([0x04, path.length]), Buffer.from(path, 'latin1')]);
  return Buffer.concat([Buffer.from([0x82, 0x87]), pathField, Buffer.from([0x01, authority.length]), Buffer.from(authority, 'latin1')]);
}

export function rstStream(streamId: number, code = 0x8 /* CANCEL */): Buffer {
  const payload = Buffer.alloc(4);
  payload.writeUInt32BE(code);
  return frame(FRAME.RST_STREAM, 0, streamId, payload);
}

export interface RawH2 {
  socket: TLSSocket;
  send(bytes: Buffer): void;
  /** Resolves with the server's GOAWAY error code, or null when the connection ends without one. */
  readonly goaway: Promise<number | null>;
  /** HEADERS frames the server sent (responses), counted as they arrive. */
  readonly responses: () => number;
}

/** Connects with ALPN h2, sends the preface and empty SETTINGS, acknowledges the server's. */
export function connectH2(port: number, servername: string): Promise<RawH2> {
  return new Promise((resolve, reject) => {
    const socket = tlsConnect({ host: '127.0.0.1', port, servername, ca: testCa(), ALPNProtocols: ['h2'] }, () => {
      if (socket.alpnProtocol !== 'h2') return reject(new Error(`ALPN chose ${String(socket.alpnProtocol)}`));
      socket.write(Buffer.concat([PREFACE, frame(FRAME.SETTINGS, 0, 0)]));
      resolve({ socket, send: (bytes) => void socket.write(bytes), goaway, responses: () => responses });
    });
    socket.on('error', () => {});
    let buffered = Buffer.alloc(0);
    let responses = 0;
    const goaway = new Promise<number | null>((settle) => {
      socket.on('close', () => settle(null));
      socket.on('data', (chunk: Buffer) => {
        buffered = Buffer.concat([buffered, chunk]);
        while (buffered.length >= 9) {
          const length = buffered.readUIntBE(0, 3);
          if (buffered.length < 9 + length) break;
          const type = buffered[3]!;
          const flags = buffered[4]!;
          const payload = buffered.subarray(9, 9 + length);
          buffered = buffered.subarray(9 + length);
          if (type === FRAME.SETTINGS && (flags & FLAG.ACK) === 0) socket.write(frame(FRAME.SETTINGS, FLAG.ACK, 0));
          if (type === FRAME.HEADERS) responses++;
          if (type === FRAME.GOAWAY) settle(payload.readUInt32BE(4));
        }
      });
    });
    socket.once('error', reject);
  });
}
