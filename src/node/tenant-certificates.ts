// Tenant domains' own certificates (./fleet-entries.ts checks them) as files the certificate loader reads
// (../tls/certificate-set.ts): one directory per host under <state.dir>/tenant-certs, certbot's layout
// (fullchain.pem, privkey.pem, the key readable by the node's user only). The loader keeps its checks and its
// cache of untouched files for these as for any other, so a change of one domain's certificate costs one
// pair. Files are written only when their bytes change (a temporary file, then renamed) and a host no longer
// carrying a certificate has its directory removed.
import { mkdirSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { CERTBOT_FILES, type PairFiles } from '../tls/certificate-set.ts';
import { writeAtomically } from './state-files.ts';

export interface TenantPem {
  cert: string;
  key: string;
}

export class TenantCertificateFiles {
  readonly #dir: string;
  /** Host → the PEM its files hold, as this process wrote or found them: an unchanged host costs no I/O. */
  readonly #written = new Map<string, TenantPem>();

  constructor(stateDir: string) {
    this.#dir = join(stateDir, 'tenant-certs');
  }

  /** Brings the directory to exactly `pairs` (host → PEM); the files of each, in host order. */
  sync(pairs: ReadonlyMap<string, TenantPem>): { host: string; files: PairFiles }[] {
    mkdirSync(this.#dir, { recursive: true, mode: 0o700 });
    for (const entry of readdirSync(this.#dir)) {
      if (pairs.has(entry)) continue;
      rmSync(join(this.#dir, entry), { recursive: true, force: true });
      this.#written.delete(entry);
    }
    const out: { host: string; files: PairFiles }[] = [];
    for (const host of [...pairs.keys()].sort()) {
      const pem = pairs.get(host)!;
      const dir = join(this.#dir, host);
      const files = { cert: join(dir, CERTBOT_FILES.cert), key: join(dir, CERTBOT_FILES.key) };
      const known = this.#written.get(host);
      if (known?.cert !== pem.cert || known.key !== pem.key) {
        mkdirSync(dir, { recursive: true, mode: 0o700 });
        writeIfChanged(files.cert, pem.cert, 0o644);
        writeIfChanged(files.key, pem.key, 0o600);
        this.#written.set(host, pem);
      }
      out.push({ host, files });
    }
    return out;
  }
}

function writeIfChanged(path: string, text: string, mode: number): void {
  try {
    if (readFileSync(path, 'utf8') === text) return;
  } catch {
    // Absent: written below.
  }
  writeAtomically(path, text, mode);
}
