// The main thread's certificate loader on real files: certbot's live/ layout, names from subjectAltName
// (wildcards included), which pair serves a name several carry, and errors that name the files.
import { mkdirSync, mkdtempSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { CertificateSet } from '../../../src/messages.ts';
import { CertificateLoader, CERTBOT_FILES, type CertificateSources, type PairFiles } from '../../../src/tls/certificate-set.ts';
import { pemAt } from '../../../src/tls/pem-table.ts';
import { createCertificateAuthority, type IssuedCertificate } from '../../helpers/x509.ts';

const ca = createCertificateAuthority();
let dir = '';

beforeAll(() => {
  dir = mkdtempSync(join(tmpdir(), 'secbeat-certset-'));
});
afterAll(() => rmSync(dir, { recursive: true, force: true }));

let written = 0;
/** Writes a pair (fullchain: leaf + CA) into a fresh directory; returns its files. */
function pairFiles(issued: IssuedCertificate, under = join(dir, `pair-${++written}`), key = issued.key): PairFiles {
  mkdirSync(under, { recursive: true });
  const files = { cert: join(under, CERTBOT_FILES.cert), key: join(under, CERTBOT_FILES.key) };
  writeFileSync(files.cert, issued.cert + ca.cert);
  writeFileSync(files.key, key);
  return files;
}

/** A certbot live/ directory with one subdirectory per certificate. */
function liveDir(certs: Record<string, IssuedCertificate>): string {
  const live = join(dir, `live-${++written}`);
  for (const [name, issued] of Object.entries(certs)) pairFiles(issued, join(live, name));
  writeFileSync(join(live, 'README'), 'certbot writes one; it is not a certificate');
  return live;
}

function servedBy(set: CertificateSet): Map<string, string> {
  const map = new Map<string, string>();
  set.table.names.forEach((names, i) => {
    const leaf = pemAt(set.table, i).cert.toString();
    for (const name of names) map.set(name, leaf);
  });
  return map;
}

describe('CertificateLoader', () => {
  const fallback = ca.issue(['default.example']);
  const sources = (over: Partial<CertificateSources>): CertificateSources => ({ defaultCert: pairFiles(fallback), routes: [], dir: null, ...over });

  it('serves each directory certificate for every DNS name it carries, wildcards included', async () => {
    const shop = ca.issue(['shop.example', '*.shop.example', 'Shop.Example']);
    const blog = ca.issue(['blog.example']);
    const live = liveDir({ 'shop.example': shop, 'blog.example': blog });
    symlinkSync(join(live, 'blog.example'), join(live, 'blog-link'));
    const set = await new CertificateLoader().load(sources({ dir: live }));
    const served = servedBy(set);
    expect([...served.keys()].sort()).toEqual(['*.shop.example', 'blog.example', 'shop.example']);
    expect(served.get('*.shop.example')).toBe(shop.cert + ca.cert);
    // The symlinked directory is the same bytes: stored once.
    expect(set.table.names.filter((n) => n.length > 0)).toHaveLength(2);
    expect(set.table.notAfterMs[0]).toBeGreaterThan(Date.now());
    expect(Buffer.from(set.defaultCert.cert).toString()).toBe(fallback.cert + ca.cert);
  });

  it('gives a name to its route certificate first, then to the directory certificate that expires last', async () => {
    const older = ca.issue(['a.example', 'b.example'], { days: 5 });
    const newer = ca.issue(['a.example', 'b.example'], { days: 50 });
    const route = ca.issue(['b.example']);
    const set = await new CertificateLoader().load(
      sources({ dir: liveDir({ 'a-newer': newer, 'b-older': older }), routes: [{ hosts: ['B.example'], files: pairFiles(route) }] }),
    );
    const served = servedBy(set);
    expect(served.get('a.example')).toBe(newer.cert + ca.cert);
    expect(served.get('b.example')).toBe(route.cert + ca.cert);
  });

  it('refuses an unusable pair with a message naming its files', async () => {
    const good = ca.issue(['good.example']);
    const live = liveDir({ good });
    const loader = new CertificateLoader();
    const mismatched = pairFiles(good, undefined, ca.issue(['other.example']).key);
    await expect(loader.load(sources({ routes: [{ hosts: ['good.example'], files: mismatched }] }))).rejects.toThrow(
      `${mismatched.cert} (key ${mismatched.key}): the private key does not belong to the certificate`,
    );
    const uncovered = pairFiles(good);
    await expect(loader.load(sources({ routes: [{ hosts: ['good.example', 'x.good.example'], files: uncovered }] }))).rejects.toThrow(
      `${uncovered.cert} (key ${uncovered.key}): does not cover x.good.example (it names good.example)`,
    );
    const junk = pairFiles(good);
    writeFileSync(junk.cert, 'not a certificate');
    await expect(loader.load(sources({ routes: [{ hosts: ['good.example'], files: junk }] }))).rejects.toThrow(`${junk.cert} (key ${junk.key}): certificate chain does not parse`);
    const badChain = pairFiles(good);
    writeFileSync(badChain.cert, `${good.cert}-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n`);
    await expect(loader.load(sources({ routes: [{ hosts: ['good.example'], files: badChain }] }))).rejects.toThrow('certificate chain does not parse');
    mkdirSync(join(live, 'half'));
    writeFileSync(join(live, 'half', CERTBOT_FILES.cert), good.cert);
    await expect(loader.load(sources({ dir: live }))).rejects.toThrow(`cannot read ${join(live, 'half', CERTBOT_FILES.key)}: ENOENT`);
    await expect(loader.load(sources({ dir: join(dir, 'missing') }))).rejects.toThrow(`certificate directory ${join(dir, 'missing')} cannot be read: ENOENT`);
  });

  it('reads the files again on every load: a replaced pair is picked up, a removed one is gone', async () => {
    const first = ca.issue(['r.example']);
    const live = liveDir({ r: first, gone: ca.issue(['gone.example']) });
    const loader = new CertificateLoader();
    expect([...servedBy(await loader.load(sources({ dir: live }))).keys()].sort()).toEqual(['gone.example', 'r.example']);
    const second = ca.issue(['r.example']);
    pairFiles(second, join(live, 'r'));
    rmSync(join(live, 'gone'), { recursive: true });
    const served = servedBy(await loader.load(sources({ dir: live })));
    expect([...served.keys()]).toEqual(['r.example']);
    expect(served.get('r.example')).toBe(second.cert + ca.cert);
  });
});
