// The shared range table: add / update / remove / expiry / capacity on the writer, matching on readers, the
// combined blocklist the data planes use, and readers on another thread — including one that checks without
// pause while the writer refills the slot next to its range (the seqlock's job).
import { Worker } from 'node:worker_threads';
import { describe, expect, it } from 'vitest';
import { SharedBlocklist } from '../../../src/blocklist/shared-blocklist.ts';
import { createCidrTableState, SharedCidrTable, SharedCidrTableWriter } from '../../../src/blocklist/shared-cidr-table.ts';
import { createIpSetState, SharedIpSetWriter } from '../../../src/blocklist/shared-ip-set.ts';

const nowSec = (): number => Date.now() / 1000;

describe('SharedCidrTable', () => {
  it('blocks the addresses inside a range, IPv4 as plain or mapped text, and IPv6', () => {
    const table = new SharedCidrTableWriter(createCidrTableState(8));
    expect(table.add('203.0.113.0/24', null)).toEqual({ outcome: 'added', cidr: '203.0.113.0/24' });
    expect(table.add('2001:DB8::/32', null)).toEqual({ outcome: 'added', cidr: '2001:db8::/32' });
    const reader = new SharedCidrTable(table.state);
    for (const [ip, blocked] of [
      ['203.0.113.0', true],
      ['203.0.113.255', true],
      ['::ffff:203.0.113.77', true],
      ['203.0.114.1', false],
      ['2001:db8:ffff::1', true],
      ['2001:db9::1', false],
      ['not an address', false],
    ] as const) {
      expect(reader.check(ip), ip).toBe(blocked);
    }
  });

  it('re-adding updates the expiry; removing, expiry and purge lift the block', () => {
    const table = new SharedCidrTableWriter(createCidrTableState(8));
    expect(table.add('10.0.0.0/8', nowSec() - 1).outcome).toBe('added');
    expect(table.check('10.1.2.3')).toBe(false); // already expired
    expect(table.add('10.0.0.0/8', null)).toEqual({ outcome: 'updated', cidr: '10.0.0.0/8' });
    expect(table.check('10.1.2.3')).toBe(true);
    expect(table.list()).toEqual([{ cidr: '10.0.0.0/8', expiresAt: null }]);
    expect(table.remove('10.0.0.0/8')).toEqual({ outcome: 'removed', cidr: '10.0.0.0/8' });
    expect(table.remove('10.0.0.0/8')).toEqual({ outcome: 'absent', cidr: '10.0.0.0/8' });
    expect(table.check('10.1.2.3')).toBe(false);

    const later = Math.ceil(nowSec()) + 3600;
    table.add('192.0.2.0/24', nowSec() - 5);
    table.add('198.51.100.0/24', later);
    expect(table.purgeExpired(nowSec())).toEqual(['192.0.2.0/24']);
    expect(table.list()).toEqual([{ cidr: '198.51.100.0/24', expiresAt: later }]);
    expect(table.size).toBe(1);
  });

  it('refuses what is not a network, with the reason', () => {
    const table = new SharedCidrTableWriter(createCidrTableState(8));
    expect(table.add('10.0.0.1/8', null)).toEqual({ outcome: 'invalid', reason: expect.stringMatching(/host bits set \(the network is 10\.0\.0\.0\/8\)/) });
    expect(table.add('10.0.0.0/33', null).outcome).toBe('invalid');
    expect(table.remove('example.com/8').outcome).toBe('invalid');
    expect(table.size).toBe(0);
  });

  it('fills to capacity, reuses freed slots, and a /0 blocks every family', () => {
    const table = new SharedCidrTableWriter(createCidrTableState(4));
    for (let i = 0; i < 4; i++) expect(table.add(`10.${i}.0.0/16`, null).outcome).toBe('added');
    expect(table.add('10.9.0.0/16', null)).toEqual({ outcome: 'full', cidr: '10.9.0.0/16' });
    table.remove('10.1.0.0/16');
    expect(table.add('10.9.0.0/16', null).outcome).toBe('added');
    expect(table.check('10.9.1.1')).toBe(true);
    expect(table.check('10.1.1.1')).toBe(false);
    for (const entry of table.list()) table.remove(entry.cidr);
    expect(table.size).toBe(0);
    table.add('::/0', null);
    expect(table.check('192.0.2.1')).toBe(true);
    expect(table.check('2001:db8::1')).toBe(true);
  });
});

describe('SharedBlocklist', () => {
  it('blocks an exact address or any address of a blocked range', () => {
    const addresses = new SharedIpSetWriter(createIpSetState(16));
    const ranges = new SharedCidrTableWriter(createCidrTableState(8));
    const blocklist = new SharedBlocklist(addresses.state, ranges.state);
    addresses.add('192.0.2.7', null);
    ranges.add('198.51.100.0/24', null);
    expect(blocklist.check('192.0.2.7')).toBe(true);
    expect(blocklist.check('192.0.2.8')).toBe(false);
    expect(blocklist.check('198.51.100.200', 'ipv4')).toBe(true);
    expect(blocklist.check('::ffff:198.51.100.1', 'ipv6')).toBe(true);
    expect(blocklist.check('garbage')).toBe(false);
    ranges.remove('198.51.100.0/24');
    expect(blocklist.check('198.51.100.200')).toBe(false);
  });
});

describe('SharedCidrTable across threads', () => {
  const MODULE = new URL('../../../src/blocklist/shared-cidr-table.ts', import.meta.url).href;

  it('a range blocked on one thread is seen by a reader on another at once', async () => {
    const writer = new SharedCidrTableWriter(createCidrTableState(8));
    const code = `
      const { parentPort, workerData } = require('node:worker_threads');
      parentPort.on('message', async (ip) => {
        const { SharedCidrTable } = await import(workerData.module);
        parentPort.postMessage(new SharedCidrTable(workerData.state).check(ip));
      });`;
    const worker = new Worker(code, { eval: true, workerData: { state: writer.state, module: MODULE } });
    const ask = (ip: string) =>
      new Promise<boolean>((resolve) => {
        worker.once('message', resolve);
        worker.postMessage(ip);
      });
    try {
      expect(await ask('192.0.2.7')).toBe(false);
      writer.add('192.0.2.0/24', null);
      expect(await ask('192.0.2.7')).toBe(true);
      writer.remove('192.0.2.0/24');
      expect(await ask('192.0.2.7')).toBe(false);
    } finally {
      await worker.terminate();
    }
  });

  it('a reader checking without pause never sees a half-written range while the writer refills a slot', async () => {
    const writer = new SharedCidrTableWriter(createCidrTableState(8));
    writer.add('203.0.113.0/24', null); // slot 0, stable: always blocked
    // Slot 1 alternates between an IPv6 /32 and an IPv4 /24. A reader mixing the /32's prefix with the IPv4
    // range's words would see ::/32 — every IPv4 client blocked, 192.0.2.1 included.
    const control = new Int32Array(new SharedArrayBuffer(8)); // [stop, ready]
    const code = `
      const { parentPort, workerData } = require('node:worker_threads');
      (async () => {
        const { SharedCidrTable } = await import(workerData.module);
        const table = new SharedCidrTable(workerData.state);
        const control = workerData.control;
        let checks = 0, missedStable = 0, wrongBlocks = 0;
        Atomics.store(control, 1, 1);
        while (Atomics.load(control, 0) === 0) {
          if (!table.check('203.0.113.9')) missedStable++;
          if (table.check('192.0.2.1')) wrongBlocks++;
          checks++;
        }
        parentPort.postMessage({ checks, missedStable, wrongBlocks });
      })();`;
    const worker = new Worker(code, { eval: true, workerData: { state: writer.state, module: MODULE, control } });
    try {
      const result = new Promise<{ checks: number; missedStable: number; wrongBlocks: number }>((resolve) => worker.once('message', resolve));
      while (Atomics.load(control, 1) === 0) await new Promise((r) => setTimeout(r, 5));
      for (let i = 0; i < 50_000; i++) {
        writer.add('2001:db8::/32', null);
        writer.remove('2001:db8::/32');
        writer.add('198.51.100.0/24', null);
        writer.remove('198.51.100.0/24');
      }
      Atomics.store(control, 0, 1);
      const { checks, missedStable, wrongBlocks } = await result;
      expect(checks).toBeGreaterThan(0);
      expect({ missedStable, wrongBlocks }).toEqual({ missedStable: 0, wrongBlocks: 0 });
    } finally {
      await worker.terminate();
    }
  });
});
