// The node's tenant configuration without a network (src/node/tenants.ts): fleet blocks reach the blocklist
// callback with their expiry, and a block that expired over an hour ago leaves the document at the leading
// node's next minute (a node alone leads once past its warm-up); one still within the hour stays.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pino from 'pino';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { Tenants } from '../../../src/node/tenants.ts';

describe('Tenants', () => {
  const dirs: string[] = [];
  afterEach(() => {
    vi.useRealTimers();
    for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true });
  });

  it('removes fleet blocks that expired over an hour ago, once a minute', async () => {
    vi.useFakeTimers({ now: 1_800_000_000_000 });
    const stateDir = mkdtempSync(join(tmpdir(), 'secbeat-tenants-'));
    dirs.push(stateDir);
    const blocks: ReadonlyMap<string, number | null>[] = [];
    const tenants = new Tenants({
      stateDir,
      region: 'r',
      node: 'n',
      log: pino({ level: 'silent' }),
      onRoutes: () => {},
      onPolicy: () => {},
      onBlocks: (b) => blocks.push(b),
      onCertificates: () => {},
      compactAfterOps: 0,
    });
    const now = 1_800_000_000;
    await tenants.upsert('block', [{ cidr: '203.0.113.0/24', expires_at: now - 7_200 }, { cidr: '198.51.100.0/24', expires_at: now - 60 }, { cidr: '192.0.2.0/24' }], 'entries');
    expect(blocks.at(-1)).toEqual(new Map([['192.0.2.0/24', null], ['198.51.100.0/24', now - 60], ['203.0.113.0/24', now - 7_200]]));
    tenants.attach(null);
    await vi.advanceTimersByTimeAsync(61_000);
    expect(tenants.list('block', 10).first.map((b) => b.cidr)).toEqual(['192.0.2.0/24', '198.51.100.0/24']);
    expect(blocks.at(-1)!.has('203.0.113.0/24')).toBe(false);
    tenants.stop();
  });
});
