// Tenant certificates as files (src/node/tenant-certificates.ts): written in certbot's layout with the key
// private, not written again while unchanged, replaced when changed, removed with their host.
import { mkdtempSync, readFileSync, rmSync, statSync, existsSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { TenantCertificateFiles } from '../../../src/node/tenant-certificates.ts';

describe('TenantCertificateFiles', () => {
  const dirs: string[] = [];
  afterEach(() => {
    for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true });
  });

  it('keeps the directory equal to the pairs it is given', () => {
    const state = mkdtempSync(join(tmpdir(), 'secbeat-tenant-certs-'));
    dirs.push(state);
    const files = new TenantCertificateFiles(state);
    const a = { cert: 'CERT A', key: 'KEY A' };
    const [first] = files.sync(new Map([['a.example', a]]));
    expect(first).toEqual({ host: 'a.example', files: { cert: join(state, 'tenant-certs/a.example/fullchain.pem'), key: join(state, 'tenant-certs/a.example/privkey.pem') } });
    expect(readFileSync(first!.files.cert, 'utf8')).toBe('CERT A');
    expect(statSync(first!.files.key).mode & 0o777).toBe(0o600);
    const written = statSync(first!.files.cert).mtimeMs;

    // Unchanged: not written again (a new instance, as after a restart, compares the bytes on disk).
    new TenantCertificateFiles(state).sync(new Map([['a.example', { ...a }], ['b.example', { cert: 'CERT B', key: 'KEY B' }]]));
    expect(statSync(first!.files.cert).mtimeMs).toBe(written);

    files.sync(new Map([['b.example', { cert: 'CERT B2', key: 'KEY B' }]]));
    expect(existsSync(join(state, 'tenant-certs/a.example'))).toBe(false);
    expect(readFileSync(join(state, 'tenant-certs/b.example/fullchain.pem'), 'utf8')).toBe('CERT B2');
  });
});
