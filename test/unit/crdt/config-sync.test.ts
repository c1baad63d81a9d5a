// ConfigSync's path for what does not fit in one message (src/crdt/config-sync.ts): past maxMessageBytes the
// changes a peer lacks go in runs, each within the bound, loaded in any order, resent when one is lost, and
// the sync protocol takes over once the peer has them.
import { randomBytes } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { ConfigDoc } from '../../../src/crdt/config-doc.ts';
import { ConfigSync, type SyncEnvelope } from '../../../src/crdt/config-sync.ts';

const MAX = 4_096;

function pair(lose: (envelope: SyncEnvelope, n: number) => boolean) {
  const queue: (() => void)[] = [];
  const sent: SyncEnvelope[] = [];
  const docs = [ConfigDoc.create(), ConfigDoc.create()];
  const syncs: ConfigSync[] = [];
  for (const i of [0, 1]) {
    syncs.push(
      new ConfigSync({
        doc: docs[i]!,
        send: (_peer, envelope) => {
          sent.push(envelope);
          if (!lose(envelope, sent.length)) queue.push(() => syncs[1 - i]!.receive(`r${i}`, envelope));
        },
        announce: (heads) => queue.push(() => syncs[1 - i]!.hello(`r${i}`, heads)),
        onRemoteChange: () => {},
        maxMessageBytes: MAX,
        epoch: i + 1,
      }),
    );
  }
  const settle = (ticks: number): void => {
    for (let t = 0; t < ticks; t++) {
      for (const s of syncs) s.tick();
      for (let n = 0; n < 10_000 && queue.length > 0; n++) queue.shift()!();
    }
  };
  return { docs, syncs, sent, settle };
}

/** 300 domains in 30 changes, with padding that does not compress: about 30 KB, far past MAX for a first sync. */
function fill(doc: ConfigDoc): void {
  for (let c = 0; c < 30; c++) {
    doc.put('domain', Array.from({ length: 10 }, (_, i) => [`d${c * 10 + i}.example`, JSON.stringify({ origins: [`http://10.0.${c}.${i}:8080`], pad: randomBytes(40).toString('hex') })] as const));
  }
}

describe('ConfigSync past maxMessageBytes', () => {
  it('sends what the peer lacks in runs within the bound, and the peer ends level', () => {
    const { docs, sent, settle } = pair(() => false);
    fill(docs[0]!);
    settle(10);
    expect(Object.fromEntries(docs[1]!.entries('domain'))).toEqual(Object.fromEntries(docs[0]!.entries('domain')));
    expect(sent.some((e) => e.changes === true)).toBe(true);
    expect(Math.max(...sent.map((e) => e.data.length))).toBeLessThanOrEqual(MAX);
  });

  it('sends the runs again when one was lost', () => {
    const { docs, sent, settle } = pair((envelope, n) => envelope.changes === true && n <= 2);
    fill(docs[0]!);
    settle(16);
    expect(docs[1]!.entries('domain').size).toBe(300);
    expect(sent.filter((e) => e.changes === true).length).toBeGreaterThan(8);
  });

  it('counts and drops a run that is not Automerge changes', () => {
    const { docs, syncs } = pair(() => false);
    fill(docs[1]!);
    expect(syncs[1]!.receive('r0', { epoch: 1, seq: 1, data: new Uint8Array([0, 0, 0, 3, 1, 2, 3]), changes: true })).toBe(false);
    expect(syncs[1]!.receive('r0', { epoch: 1, seq: 2, data: new Uint8Array([0, 0, 0, 9, 1, 2, 3]), changes: true })).toBe(false);
    expect(syncs[1]!.malformed).toBe(2);
    expect(docs[1]!.entries('domain').size).toBe(300);
  });
});
