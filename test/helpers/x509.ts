// X.509 certificates built in-process (DER by hand, signed with node:crypto): ECDSA P-256 leaves with DNS
// subjectAltNames under one CA, about 0.2 ms each where the openssl CLI (./certs.ts) takes ~30 ms. For tests
// and benches that need thousands of certificates (bench/l7/certs.ts makes 100,000). RFC 5280 §4.1 is the
// layout; only the fields TLS stacks insist on are written.
import { generateKeyPairSync, sign, type KeyObject } from 'node:crypto';

export interface IssuedCertificate {
  /** PEM, leaf only. */
  cert: string;
  /** PEM, PKCS#8. */
  key: string;
  serial: bigint;
}

export interface CertificateAuthority {
  /** PEM of the self-signed CA certificate: what clients trust and what a fullchain ends with. */
  cert: string;
  /** Signs a leaf for `names` (the first is also the CN), valid from an hour ago for `days`. */
  issue(names: readonly string[], options?: { days?: number; serial?: bigint }): IssuedCertificate;
}

const OID = {
  commonName: '2.5.4.3',
  ecPublicKey: '1.2.840.10045.2.1',
  ecdsaWithSha256: '1.2.840.10045.4.3.2',
  subjectAltName: '2.5.29.17',
  basicConstraints: '2.5.29.19',
  keyUsage: '2.5.29.15',
} as const;

const HOUR_MS = 3_600_000;
const DAY_MS = 24 * HOUR_MS;

/** A CA with a fresh P-256 key; serials count up from 1 unless given. */
export function createCertificateAuthority(name = 'SecBeat test CA'): CertificateAuthority {
  const { privateKey, publicKey } = generateKeyPairSync('ec', { namedCurve: 'P-256' });
  const issuer = distinguishedName(name);
  const now = Date.now();
  const caCert = certificate(
    {
      serial: 1n,
      issuer,
      subject: issuer,
      notBefore: now - HOUR_MS,
      notAfter: now + 30 * DAY_MS,
      spki: publicKey.export({ type: 'spki', format: 'der' }),
      // CA:TRUE (critical) and keyCertSign + cRLSign: what OpenSSL's chain verification requires of an issuer.
      extensions: [
        extension(OID.basicConstraints, true, seq(tlv(0x01, Buffer.from([0xff])))),
        extension(OID.keyUsage, true, tlv(0x03, Buffer.from([0x01, 0x06]))),
      ],
    },
    privateKey,
  );
  let nextSerial = 1n;
  return {
    cert: caCert,
    issue(names, options = {}) {
      const leaf = generateKeyPairSync('ec', { namedCurve: 'P-256' });
      const serial = options.serial ?? ++nextSerial;
      const notBefore = Date.now() - HOUR_MS;
      const cert = certificate(
        {
          serial,
          issuer,
          subject: distinguishedName(names[0] ?? 'leaf'),
          notBefore,
          notAfter: notBefore + HOUR_MS + (options.days ?? 2) * DAY_MS,
          spki: leaf.publicKey.export({ type: 'spki', format: 'der' }),
          extensions: [extension(OID.subjectAltName, false, seq(...names.map((n) => tlv(0x82, Buffer.from(n, 'ascii')))))],
        },
        privateKey,
      );
      return { cert, key: leaf.privateKey.export({ type: 'pkcs8', format: 'pem' }) as string, serial };
    },
  };
}

interface TbsFields {
  serial: bigint;
  issuer: Buffer;
  subject: Buffer;
  notBefore: number;
  notAfter: number;
  spki: Buffer;
  extensions: Buffer[];
}

function certificate(f: TbsFields, signer: KeyObject): string {
  const algorithm = seq(oid(OID.ecdsaWithSha256));
  const tbs = seq(
    tlv(0xa0, integer(2n)),
    integer(f.serial),
    algorithm,
    f.issuer,
    seq(time(f.notBefore), time(f.notAfter)),
    f.subject,
    f.spki,
    tlv(0xa3, seq(...f.extensions)),
  );
  const signature = sign('sha256', tbs, signer);
  const der = seq(tbs, algorithm, tlv(0x03, Buffer.concat([Buffer.from([0]), signature])));
  return `-----BEGIN CERTIFICATE-----\n${der.toString('base64').replace(/.{64}/g, '$&\n').replace(/\n?$/, '\n')}-----END CERTIFICATE-----\n`;
}

function distinguishedName(cn: string): Buffer {
  return seq(tlv(0x31, seq(oid(OID.commonName), tlv(0x0c, Buffer.from(cn, 'utf8')))));
}

function extension(id: string, critical: boolean, value: Buffer): Buffer {
  return seq(oid(id), ...(critical ? [tlv(0x01, Buffer.from([0xff]))] : []), tlv(0x04, value));
}

/** UTCTime through 2049, GeneralizedTime after (RFC 5280 §4.1.2.5). */
function time(ms: number): Buffer {
  const iso = new Date(ms).toISOString();
  const digits = iso.slice(0, 19).replace(/[-T:]/g, '');
  return ms < Date.UTC(2050, 0, 1) ? tlv(0x17, Buffer.from(`${digits.slice(2)}Z`)) : tlv(0x18, Buffer.from(`${digits}Z`));
}

function integer(n: bigint): Buffer {
  let hex = n.toString(16);
  if (hex.length % 2 === 1) hex = `0${hex}`;
  const bytes = Buffer.from(hex, 'hex');
  // DER integers are signed: a leading byte with the top bit set needs a zero in front to stay positive.
  return tlv(0x02, bytes[0]! & 0x80 ? Buffer.concat([Buffer.from([0]), bytes]) : bytes);
}

function oid(dotted: string): Buffer {
  const [first, second, ...rest] = dotted.split('.').map(Number);
  const out = [first! * 40 + second!];
  for (const arc of rest) {
    const base128 = [arc & 0x7f];
    for (let v = arc >>> 7; v > 0; v >>>= 7) base128.unshift((v & 0x7f) | 0x80);
    out.push(...base128);
  }
  return tlv(0x06, Buffer.from(out));
}

function seq(...items: Buffer[]): Buffer {
  return tlv(0x30, Buffer.concat(items));
}

function tlv(tag: number, value: Buffer): Buffer {
  const n = value.length;
  const length = n < 0x80 ? [n] : n < 0x100 ? [0x81, n] : [0x82, n >> 8, n & 0xff];
  return Buffer.concat([Buffer.from([tag, ...length]), value]);
}
