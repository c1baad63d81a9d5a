// Generations of the tenant document (src/crdt/config-replica.ts) between in-memory replicas: compaction
// drops the history on every replica, edits made by a replica cut off during it (or by its earlier
// incarnation) are carried into the new generation, a document compacted apart is merged whole, and a peer
// that is not level holds automatic compaction back until it has been silent for the roster period.
import { describe, expect, it } from 'vitest';
import { ConfigDoc, META_KEY } from '../../../src/crdt/config-doc.ts';
import { ConfigReplica, WARMUP_TICKS, type CompactionPolicy, type GenerationChange, type ReplicaState } from '../../../src/crdt/config-replica.ts';
import * as A from '@automerge/automerge';

const MAX_DELIVERIES = 100_000;

/** Replicas joined by a queue of deliveries; a replica in `cut` neither sends nor receives. */
class Net {
  readonly replicas = new Map<string, ConfigReplica>();
  readonly changes = new Map<string, GenerationChange[]>();
  readonly cut = new Set<string>();
  readonly #queue: (() => void)[] = [];
  now = 1_000_000;

  add(name: string, options: { doc?: ConfigDoc; state?: ReplicaState; compaction?: CompactionPolicy | null; rosterMs?: number } = {}): ConfigReplica {
    const changes: GenerationChange[] = [];
    const replica = new ConfigReplica({
      name,
      doc: options.doc ?? ConfigDoc.create(),
      state: options.state,
      send: (generation, peer, envelope) => this.#post(name, peer, (r) => r.receive(name, generation, envelope)),
      announce: (generation, heads) => {
        for (const peer of this.replicas.keys()) if (peer !== name) this.#post(name, peer, (r) => r.hello(name, generation, heads));
      },
      onRemoteChange: () => {},
      onGeneration: (change) => changes.push(change),
      compaction: options.compaction === undefined ? null : options.compaction,
      rosterMs: options.rosterMs ?? 60_000,
      now: () => this.now,
      pause: () => Promise.resolve(),
    });
    this.replicas.set(name, replica);
    this.changes.set(name, changes);
    return replica;
  }

  /** Ticks every replica `rounds` times, delivering everything in between (microtasks too: compaction awaits). */
  async settle(rounds = 12): Promise<void> {
    for (let round = 0; round < rounds; round++) {
      for (const r of this.replicas.values()) r.tick();
      await this.flush();
    }
  }

  async flush(): Promise<void> {
    for (let n = 0; n < MAX_DELIVERIES; n++) {
      await Promise.resolve();
      const next = this.#queue.shift();
      if (next === undefined) return;
      next();
    }
    throw new Error('deliveries did not settle');
  }

  #post(from: string, to: string, run: (r: ConfigReplica) => void): void {
    if (this.cut.has(from) || this.cut.has(to)) return;
    this.#queue.push(() => run(this.replicas.get(to)!));
  }
}

const settings = (n: number): string => JSON.stringify({ origins: [`http://10.0.0.${n}:80`] });

function domainsOf(r: ConfigReplica): Record<string, string> {
  return Object.fromEntries([...r.doc.entries('domain')].sort());
}

describe('ConfigReplica generations', () => {
  it('compacts on every replica: same domains, history down to about one operation per entry', async () => {
    const net = new Net();
    const a = net.add('a');
    const b = net.add('b');
    const c = net.add('c');
    for (let round = 0; round < 10; round++) {
      b.doc.put('domain', Array.from({ length: 100 }, (_, i) => [`d${i}.example`, settings(round)] as const));
      b.changed();
    }
    c.doc.remove('domain', ['d7.example']);
    c.changed();
    await net.settle(6);
    const before = domainsOf(a);
    expect(a.doc.historyOps()).toBeGreaterThanOrEqual(1_000);

    expect(await a.compact()).toBe(true);
    await net.settle(6);
    for (const r of [a, b, c]) {
      expect(r.generation).toBe(1);
      expect(domainsOf(r)).toEqual(before);
      // 99 entries and the mark.
      expect(r.doc.historyOps()).toBeLessThanOrEqual(101);
    }
    expect(net.changes.get('b')).toEqual([{ generation: 1, replayed: 0, othersLeft: 0, merged: false }]);
  });

  it('carries into the new generation what a replica wrote while cut off, and what it wrote after the snapshot', async () => {
    const net = new Net();
    const a = net.add('a');
    const b = net.add('b');
    const c = net.add('c');
    a.doc.put('domain', [['shared.example', settings(1)], ['gone.example', settings(1)]]);
    a.changed();
    await net.settle(4);

    net.cut.add('c');
    c.doc.put('domain', [['island.example', settings(3)]]);
    c.doc.remove('domain', ['gone.example']);
    c.changed();
    expect(await a.compact()).toBe(true);
    b.doc.put('domain', [['late.example', settings(2)]]);
    b.changed();
    await net.settle(4);
    expect(b.generation).toBe(1);
    expect(c.generation).toBe(0);

    net.cut.delete('c');
    await net.settle(8);
    expect(c.generation).toBe(1);
    expect(net.changes.get('c')).toEqual([{ generation: 1, replayed: 2, othersLeft: 0, merged: false }]);
    const expected = { 'island.example': settings(3), 'late.example': settings(2), 'shared.example': settings(1) };
    for (const r of [a, b, c]) expect(domainsOf(r)).toEqual(expected);
  });

  it('carries what an earlier incarnation of the node wrote and never sent (actors kept in its state)', async () => {
    const net = new Net();
    const a = net.add('a');
    const b = net.add('b');
    a.doc.put('domain', [['one.example', settings(1)]]);
    a.changed();
    await net.settle(4);

    net.cut.add('b');
    b.doc.put('domain', [['unsent.example', settings(2)]]);
    const saved = b.doc.save();
    const state = b.state();
    net.replicas.delete('b');
    expect(await a.compact()).toBe(true);

    net.cut.delete('b');
    const restarted = net.add('b', { doc: ConfigDoc.load(saved), state });
    await net.settle(8);
    expect(restarted.generation).toBe(1);
    expect(domainsOf(a)).toEqual({ 'one.example': settings(1), 'unsent.example': settings(2) });
    expect(domainsOf(restarted)).toEqual(domainsOf(a));
  });

  it('merges whole a document compacted apart (another lineage), keeping both sides\' domains', async () => {
    const net = new Net();
    const a = net.add('a');
    const b = net.add('b');
    a.doc.put('domain', [['fleet.example', settings(1)]]);
    a.changed();
    await net.settle(4);
    expect(await a.compact()).toBe(true);
    a.doc.put('domain', [['fleet2.example', settings(1)]]);
    a.changed();
    await net.settle(4);
    expect(await a.compact()).toBe(true);
    await net.settle(4);
    expect(b.generation).toBe(2);

    // A node that ran alone and compacted its own document once.
    const loneDoc = ConfigDoc.create();
    loneDoc.put('domain', [['alone.example', settings(9)]]);
    net.cut.add('lone');
    const lone = net.add('lone', { doc: loneDoc });
    expect(await lone.compact()).toBe(true);
    net.cut.delete('lone');
    await net.settle(8);

    expect(lone.generation).toBe(2);
    expect(net.changes.get('lone')!.at(-1)).toMatchObject({ generation: 2, merged: true });
    const expected = { 'alone.example': settings(9), 'fleet.example': settings(1), 'fleet2.example': settings(1) };
    for (const r of [a, b, lone]) expect(domainsOf(r)).toEqual(expected);
  });

  it('compacts by itself once the history outgrows the entries, held back while a peer is not level', async () => {
    const net = new Net();
    const policy = { minOps: 200, factor: 2 };
    const a = net.add('a', { compaction: policy, rosterMs: 60_000 });
    const b = net.add('b', { compaction: policy, rosterMs: 60_000 });
    await net.settle(WARMUP_TICKS);
    net.cut.add('b');
    for (let round = 0; round < 10; round++) {
      a.doc.put('domain', Array.from({ length: 50 }, (_, i) => [`d${i}.example`, settings(round)] as const));
      a.changed();
    }
    await net.settle(4);
    // b was heard within the roster period and is not level: no compaction.
    expect(a.generation).toBe(0);
    net.now += 61_000;
    await net.settle(2);
    expect(a.generation).toBe(1);
    expect(a.doc.historyOps()).toBeLessThanOrEqual(51);

    net.cut.delete('b');
    await net.settle(8);
    expect(b.generation).toBe(1);
    expect(domainsOf(b)).toEqual(domainsOf(a));
  });

  it('leads (does the fleet\'s housekeeping) when its name sorts first among the peers heard within the roster period', async () => {
    const net = new Net();
    const a = net.add('a', { rosterMs: 60_000 });
    const b = net.add('b', { rosterMs: 60_000 });
    expect(a.leads).toBe(false); // warming up
    await net.settle(WARMUP_TICKS);
    expect([a.leads, b.leads]).toEqual([true, false]);
    net.cut.add('a');
    net.now += 61_000;
    await net.settle(1);
    expect(b.leads).toBe(true);
  });

  it('builds the same snapshot on two replicas that compact the same state', async () => {
    const net = new Net();
    const a = net.add('a');
    const b = net.add('b');
    a.doc.put('domain', [['x.example', settings(1)], ['y.example', settings(2)]]);
    a.changed();
    await net.settle(4);
    net.cut.add('a').add('b');
    await Promise.all([a.compact(), b.compact()]);
    expect(a.doc.metas()).toEqual(b.doc.metas());
    expect(a.doc.lineage()).toBe(b.doc.lineage());
  });

  it('ignores a malformed snapshot mark and messages of a generation left behind', async () => {
    const doc = ConfigDoc.create();
    doc.doc = A.change(doc.doc, (d) => {
      d[META_KEY] = new A.ImmutableString('{"generation":"x"}');
    });
    expect(doc.generation()).toBe(0);
    const net = new Net();
    const a = net.add('a', { doc });
    expect(await a.compact()).toBe(true);
    expect(a.receive('b', 0, { epoch: 1, seq: 1, data: new Uint8Array([1, 2, 3]) })).toBe(false);
  });
});
