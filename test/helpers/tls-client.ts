// One full TLS handshake (a new connection, no session resumption) and one HTTP/1.1 request on it, for tests
// that watch which certificate a listener presents while it is changed: the certificate and the answer.
import { X509Certificate } from 'node:crypto';
import { connect } from 'node:tls';
import { testCa } from './certs.ts';

export interface HandshakeResult {
  fingerprint: string;
  serial: string;
  status: number;
  body: string;
}

export interface HandshakeOptions {
  maxVersion?: 'TLSv1.2' | 'TLSv1.3';
  /** The chain is always verified against the test CA; the name only when true (the default). */
  verifyName?: boolean;
}

/** `GET /` with `Host: servername` and `Connection: close`, after a handshake with SNI `servername`. */
export function handshakeAndGet(port: number, servername: string, options: HandshakeOptions = {}): Promise<HandshakeResult> {
  return new Promise((resolve, reject) => {
    let presented: X509Certificate | undefined;
    let reply = '';
    const socket = connect(
      {
        host: '127.0.0.1',
        port,
        servername,
        ca: testCa(),
        ALPNProtocols: ['http/1.1'],
        ...(options.maxVersion === undefined ? {} : { maxVersion: options.maxVersion }),
        ...(options.verifyName === false ? { checkServerIdentity: () => undefined } : {}),
      },
      () => {
        presented = socket.getPeerX509Certificate();
        socket.write(`GET / HTTP/1.1\r\nHost: ${servername}\r\nConnection: close\r\n\r\n`);
      },
    );
    socket.setEncoding('latin1');
    socket.on('data', (text: string) => (reply += text));
    socket.on('error', reject);
    socket.on('end', () => {
      if (presented === undefined) return reject(new Error('ended before the handshake'));
      resolve({
        fingerprint: presented.fingerprint256,
        serial: presented.serialNumber,
        status: Number(/^HTTP\/1\.1 (\d{3}) /.exec(reply)?.[1] ?? 0),
        body: reply.slice(reply.indexOf('\r\n\r\n') + 4),
      });
    });
  });
}

export function fingerprintOf(pem: { cert: Buffer | string }): string {
  return new X509Certificate(pem.cert).fingerprint256;
}
