import { Worker } from 'node:worker_threads';
import { describe, expect, it } from 'vitest';
import { formatIp, parseIp } from '../../../src/net/ip.ts';
import { createIpSetState, SharedIpSet, SharedIpSetWriter } from '../../../src/blocklist/shared-ip-set.ts';

describe('parseIp / formatIp', () => {
  it.each([
    ['1.2.3.4', '1.2.3.4'],
    ['::ffff:1.2.3.4', '1.2.3.4'],
    ['::1', '::1'],
    ['2001:db8::8:800:200c:417a', '2001:db8::8:800:200c:417a'],
    ['2001:DB8:0:0:8:800:200C:417A', '2001:db8::8:800:200c:417a'],
    ['::', '::'],
    ['1::', '1::'],
    ['fe80::1:2', 'fe80::1:2'],
  ])('%s → %s', (text, canonical) => {
    const w = new Uint32Array(4);
    expect(parseIp(text, w)).toBe(true);
    expect(formatIp(w)).toBe(canonical);
  });

  it.each(['', '1.2.3', '1.2.3.4.5', '256.1.1.1', '01.2.3.4', '1..2.3', ':::', '1:2:3:4:5:6:7:8:9', '1::2::3', 'g::1', '12345::', '::1.2.3', 'localhost', ':1', '1:'])(
    'rejects %j',
    (text) => {
      expect(parseIp(text, new Uint32Array(4))).toBe(false);
    },
  );
});

describe('SharedIpSet', () => {
  it('adds, updates, removes and expires entries', () => {
    const set = new SharedIpSetWriter(createIpSetState(100));
    expect(set.add('10.0.0.1', null)).toBe('added');
    expect(set.add('::ffff:10.0.0.1', null)).toBe('updated');
    expect(set.add('2001:db8::1', Date.now() / 1000 - 1)).toBe('added');
    expect(set.add('nope', null)).toBe('invalid');
    expect(set.check('10.0.0.1')).toBe(true);
    expect(set.check('::ffff:10.0.0.1')).toBe(true);
    expect(set.check('2001:db8::1')).toBe(false); // already expired
    expect(set.check('10.0.0.2')).toBe(false);
    expect(set.purgeExpired(Date.now() / 1000)).toEqual(['2001:db8::1']);
    expect(set.remove('10.0.0.1')).toBe(true);
    expect(set.remove('10.0.0.1')).toBe(false);
    expect(set.check('10.0.0.1')).toBe(false);
    expect(set.size).toBe(0);
  });

  it('stays correct through many add/remove cycles (compaction) and refuses past capacity', () => {
    const set = new SharedIpSetWriter(createIpSetState(50));
    for (let round = 0; round < 20; round++) {
      for (let i = 0; i < 40; i++) expect(set.add(`10.0.${round}.${i}`, null)).toBe('added');
      for (let i = 0; i < 40; i++) expect(set.remove(`10.0.${round}.${i}`)).toBe(true);
    }
    for (let i = 0; i < set.capacity; i++) expect(set.add(`10.1.0.${i}`, null)).toBe('added');
    expect(set.add('10.2.0.1', null)).toBe('full');
    expect(set.list()).toHaveLength(set.capacity);
  });

  it('a block made on one thread is seen by a reader on another thread at once', async () => {
    const writer = new SharedIpSetWriter(createIpSetState(16));
    const code = `
      const { parentPort, workerData } = require('node:worker_threads');
      parentPort.on('message', async (ip) => {
        const { SharedIpSet } = await import(workerData.module);
        parentPort.postMessage(new SharedIpSet(workerData.state).check(ip));
      });`;
    const worker = new Worker(code, {
      eval: true,
      workerData: { state: writer.state, module: new URL('../../../src/blocklist/shared-ip-set.ts', import.meta.url).href },
    });
    const ask = (ip: string) =>
      new Promise<boolean>((resolve) => {
        worker.once('message', resolve);
        worker.postMessage(ip);
      });
    try {
      expect(await ask('192.0.2.7')).toBe(false);
      writer.add('192.0.2.7', null);
      expect(await ask('192.0.2.7')).toBe(true);
      writer.remove('192.0.2.7');
      expect(await ask('192.0.2.7')).toBe(false);
    } finally {
      await worker.terminate();
    }
    expect(new SharedIpSet(writer.state).check('192.0.2.7')).toBe(false);
  });
});
