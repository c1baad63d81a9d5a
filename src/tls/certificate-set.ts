// The certificates of L7 mode's TLS listener, read from files and checked on the main thread, once, into the
// shared table every worker thread installs from (./pem-table.ts): the default certificate, route
// certificates (served for their route's hosts) and a directory in certbot's live/ layout (one subdirectory
// per certificate holding fullchain.pem and privkey.pem, served for every DNS name of its subjectAltName).
// src/node/l7-settings.ts loads it at start, validate-config and every reload; a reload re-checks only pairs
// whose bytes changed. Any unusable pair throws SECBEAT_ERR_TLS_CERT naming its files, and nothing changes.
import { createPrivateKey, X509Certificate } from 'node:crypto';
import { closeSync, fstatSync, openSync, readdirSync, readFileSync, statSync, type Dirent, type Stats } from 'node:fs';
import { join } from 'node:path';
import { SecbeatError } from '../errors.ts';
import type { CertificateSet, PemTable } from '../messages.ts';
import { covers, normalizeName } from './names.ts';
import { pairDigest, pemAt, PemTableBuilder } from './pem-table.ts';

/** Absolute paths of a certificate chain (leaf first) and its private key, PEM. */
export interface PairFiles {
  cert: string;
  key: string;
}

export interface CertificateSources {
  /** Served to clients without SNI and for names no other certificate covers. */
  defaultCert: PairFiles;
  /** Each route's certificate must cover every one of its hosts; a route's certificate wins over the directory's. */
  routes: readonly { hosts: readonly string[]; files: PairFiles }[];
  /** certbot's live/ directory, or null. */
  dir: string | null;
}

/** Names of the two files of each certificate subdirectory (certbot's). */
export const CERTBOT_FILES = { cert: 'fullchain.pem', key: 'privkey.pem' } as const;

/** What checking a pair establishes: the names its leaf is for and when it expires. */
interface PairFacts {
  dnsNames: string[];
  notAfterMs: number;
}

/** A pair as the last successful load found it: untouched files (same stamp) are not read or checked again. */
interface KnownPair {
  /** Identity and times of both files (device, inode, size, mtime, ctime), following symlinks. */
  stamp: string;
  digest: string;
  facts: PairFacts;
  /** In the table that load built. */
  index: number;
}

export class CertificateLoader {
  /** By certificate path, from the last successful load, with the table it built. */
  #known = new Map<string, KnownPair>();
  #table: PemTable | null = null;

  /**
   * Reads and checks every pair. A name several directory certificates carry is served by the one that
   * expires last (certbot keeps an old lineage beside a renamed one), ties by directory order; duplicates
   * of one pair (the same bytes twice) are stored once. A pair whose files are untouched since the last
   * load is copied from its table rather than read again, and one whose bytes are unchanged is not checked
   * again: a reload of 100k certificates costs about two stat calls per pair.
   */
  async load(sources: CertificateSources): Promise<CertificateSet> {
    const yieldNow = slicer();
    const known = new Map<string, KnownPair>();
    const chains = new ParsedChains();
    const table = new PemTableBuilder();
    const pairByDigest = new Map<string, number>();
    const factsOf: PairFacts[] = [];
    const add = (files: PairFiles): { index: number; facts: PairFacts } => {
      const old = this.#known.get(files.cert);
      const stamp = old === undefined ? null : `${stampOf(files.cert)}|${stampOf(files.key)}`;
      let pair: { cert: Buffer; key: Buffer; stamp: string; digest: string; facts: PairFacts | undefined };
      if (old !== undefined && old.stamp === stamp && this.#table !== null) {
        pair = { ...pemAt(this.#table, old.index), stamp, digest: old.digest, facts: old.facts };
      } else {
        const cert = read(files.cert);
        const key = read(files.key);
        const digest = pairDigest(cert.bytes, key.bytes).toString('base64');
        pair = { cert: cert.bytes, key: key.bytes, stamp: `${cert.stamp}|${key.stamp}`, digest, facts: old?.digest === digest ? old.facts : undefined };
      }
      let index = pairByDigest.get(pair.digest);
      if (index === undefined) {
        const facts = pair.facts ?? checkPair(pair.cert, pair.key, files, chains);
        index = table.add(pair.cert, pair.key, facts.notAfterMs, Buffer.from(pair.digest, 'base64'));
        pairByDigest.set(pair.digest, index);
        factsOf.push(facts);
      }
      const facts = factsOf[index]!;
      known.set(files.cert, { stamp: pair.stamp, digest: pair.digest, facts, index });
      return { index, facts };
    };

    /** Pair index by name; Map order is the order names were first claimed. */
    const owner = new Map<string, number>();
    for (const route of sources.routes) {
      await yieldNow();
      const { index, facts } = add(route.files);
      for (const host of route.hosts) {
        const name = normalizeName(host, true);
        if (name === null || !covers(facts.dnsNames, name)) {
          throw certError(route.files, `does not cover ${host} (it names ${facts.dnsNames.join(', ')})`);
        }
        owner.set(name, index);
      }
    }
    const routeNames = new Set(owner.keys());
    for (const files of sources.dir === null ? [] : certbotPairs(sources.dir)) {
      await yieldNow();
      const { index, facts } = add(files);
      if (facts.dnsNames.length === 0) throw certError(files, 'has no DNS name to be served for (subjectAltName)');
      for (const name of facts.dnsNames) {
        const current = owner.get(name);
        if (routeNames.has(name) || (current !== undefined && factsOf[current]!.notAfterMs >= facts.notAfterMs)) continue;
        owner.set(name, index);
      }
    }

    const names: string[][] = Array.from({ length: table.size }, () => []);
    for (const [name, index] of owner) names[index]!.push(name);
    const defaultCert = { cert: read(sources.defaultCert.cert).bytes, key: read(sources.defaultCert.key).bytes };
    const built = table.build(names);
    this.#known = known;
    this.#table = built;
    return { defaultCert, table: built };
  }
}

/**
 * Why a pair uploaded for `host` (a tenant domain's own certificate, src/node/fleet-entries.ts) cannot be
 * served for it, or null: the checks the loader makes, and the leaf must cover the host.
 */
export function pairProblem(cert: Buffer, key: Buffer, host: string): string | null {
  let facts: PairFacts;
  try {
    facts = checkPair(cert, key, { cert: 'certificate', key: 'key' }, new ParsedChains());
  } catch (err) {
    return (err as Error).message;
  }
  const name = normalizeName(host, true);
  return name !== null && covers(facts.dnsNames, name) ? null : `certificate does not cover ${host} (it names ${facts.dnsNames.join(', ') || 'nothing'})`;
}

/**
 * The pair is usable: the leaf and every chain certificate parse, and the key is the leaf's. Cheaper than
 * building a secure context (about 0.09 ms against 0.38 ms for a P-256 pair), which is what 100k
 * certificates at start need.
 */
function checkPair(cert: Buffer, key: Buffer, files: PairFiles, chains: ParsedChains): PairFacts {
  let leaf: X509Certificate;
  try {
    leaf = new X509Certificate(cert);
    chains.check(cert);
  } catch (err) {
    throw certError(files, `certificate chain does not parse: ${(err as Error).message}`, err);
  }
  let matches: boolean;
  try {
    matches = leaf.checkPrivateKey(createPrivateKey(key));
  } catch (err) {
    throw certError(files, `private key does not parse: ${(err as Error).message}`, err);
  }
  if (!matches) throw certError(files, 'the private key does not belong to the certificate');
  return { dnsNames: dnsNames(leaf), notAfterMs: leaf.validToDate.getTime() };
}

/**
 * Longest the loader holds the event loop. A reload runs on the main thread, which also watches worker
 * heartbeats (one missed for heartbeat_timeout_ms restarts the thread) and serves the admin socket; 100k
 * pairs take seconds.
 */
const SLICE_MS = 20;

/** Resolves at once within a slice, after one turn of the event loop once the slice is used up. */
function slicer(): () => Promise<void> {
  let since = performance.now();
  return async () => {
    if (performance.now() - since < SLICE_MS) return;
    await new Promise((resolve) => setImmediate(resolve));
    since = performance.now();
  };
}

const PEM_END = '-----END CERTIFICATE-----';
const PEM_CERTIFICATE = /-----BEGIN CERTIFICATE-----[\s\S]*?-----END CERTIFICATE-----/g;

/**
 * The chains (what follows the leaf in a fullchain) already parsed, by length. One CA's fullchains repeat
 * the same intermediates, so 100k pairs parse a handful; compared as bytes, no string per pair.
 */
class ParsedChains {
  readonly #byLength = new Map<number, Buffer[]>();

  /** Throws when a certificate after the leaf does not parse. */
  check(fullchain: Buffer): void {
    const chain = fullchain.subarray(fullchain.indexOf(PEM_END) + PEM_END.length);
    const seen = this.#byLength.get(chain.length) ?? [];
    if (seen.some((c) => c.equals(chain))) return;
    for (const block of chain.toString('latin1').match(PEM_CERTIFICATE) ?? []) new X509Certificate(block);
    // A copy: `chain` is a view of the whole file.
    seen.push(Buffer.from(chain));
    this.#byLength.set(chain.length, seen);
  }
}

/**
 * The DNS names of the leaf's subjectAltName, normalized; the subject CN only when there are none (RFC 6125
 * §6.4.4). Names the store could never be asked for (IP addresses, underscores) are left out.
 */
function dnsNames(leaf: X509Certificate): string[] {
  const san = (leaf.subjectAltName ?? '').split(', ').flatMap((entry) => (entry.startsWith('DNS:') ? [entry.slice(4)] : []));
  const raw = san.length > 0 ? san : [/^CN=(.+)$/m.exec(leaf.subject)?.[1] ?? ''];
  return [...new Set(raw.flatMap((name) => normalizeName(name, true) ?? []))];
}

/** The pair files of every subdirectory (or symlink to one), sorted by name; other entries are skipped. */
function certbotPairs(dir: string): PairFiles[] {
  let entries: Dirent[];
  try {
    entries = readdirSync(dir, { withFileTypes: true });
  } catch (err) {
    throw new SecbeatError('SECBEAT_ERR_TLS_CERT', `certificate directory ${dir} cannot be read: ${errnoOf(err)}`, { cause: err });
  }
  const isDirectory = (e: Dirent): boolean =>
    e.isDirectory() || (e.isSymbolicLink() && statSync(join(dir, e.name), { throwIfNoEntry: false })?.isDirectory() === true);
  return entries
    .filter((e) => !e.name.startsWith('.') && isDirectory(e))
    .map((e) => e.name)
    .sort()
    .map((name) => ({ cert: join(dir, name, CERTBOT_FILES.cert), key: join(dir, name, CERTBOT_FILES.key) }));
}

/** The file's bytes and stamp, from one open: a path lookup costs more than the read on a big directory. */
function read(file: string): { bytes: Buffer; stamp: string } {
  return fileOp(file, (f) => {
    const fd = openSync(f, 'r');
    try {
      return { stamp: stamp(fstatSync(fd)), bytes: readFileSync(fd) };
    } finally {
      closeSync(fd);
    }
  });
}

function stampOf(file: string): string {
  return fileOp(file, (f) => stamp(statSync(f)));
}

/** What changes when a file is written or replaced (a renewal re-points certbot's symlinks: new inode). */
function stamp(s: Stats): string {
  return `${s.dev}:${s.ino}:${s.size}:${s.mtimeMs}:${s.ctimeMs}`;
}

function fileOp<T>(file: string, op: (file: string) => T): T {
  try {
    return op(file);
  } catch (err) {
    throw new SecbeatError('SECBEAT_ERR_TLS_CERT', `cannot read ${file}: ${errnoOf(err)}`, { cause: err });
  }
}

function certError(files: PairFiles, problem: string, cause?: unknown): SecbeatError {
  return new SecbeatError('SECBEAT_ERR_TLS_CERT', `${files.cert} (key ${files.key}): ${problem}`, { cause });
}

function errnoOf(err: unknown): string {
  return (err as NodeJS.ErrnoException).code ?? String(err);
}
