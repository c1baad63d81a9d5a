// The config document's sync (src/crdt/config-sync.ts) over a transport that loses, duplicates and reorders
// (fast-check's scheduler decides every delivery; a drop is a delivery that never happens): for 2-4 replicas
// and arbitrary edits, once the link is healed every replica holds the same domains, equal to the merge of
// every replica's document, and a domain written by one replica only holds that replica's last write; the
// messages stay bounded (no storm). Automerge never throws on the garbage a peer may send: it is counted
// and dropped.
import * as A from '@automerge/automerge';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { ConfigDoc } from '../../src/crdt/config-doc.ts';
import { ConfigSync } from '../../src/crdt/config-sync.ts';
import { fcParams } from '../helpers/fc.ts';

const HOSTS = ['a.example', 'b.example', 'c.example', 'd.example'];
const MAX_DELIVERIES = 5_000;
/** Sync intervals after the heal: a pair needs a few round trips, one per interval here; the slowest of 300 adversarial runs took 7. */
const HEAL_ROUNDS = 20;

type Edit = { replica: number; host: string; value: number | null; deliver: number };

describe('ConfigSync (property)', () => {
  it('converges after loss, duplication and reordering, to the merge of every replica', async () => {
    await fc.assert(
      fc.asyncProperty(
        fc.scheduler(),
        fc.integer({ min: 2, max: 4 }),
        fc.array(
          fc.record({ replica: fc.nat({ max: 3 }), host: fc.constantFrom(...HOSTS), value: fc.option(fc.nat({ max: 99 }), { freq: 4 }), deliver: fc.nat({ max: 3 }) }),
          { maxLength: 25 },
        ),
        fc.array(fc.boolean(), { minLength: 1, maxLength: 64 }),
        // Unbounded, or so small that most syncs go as runs of changes (the path for large documents).
        fc.constantFrom(undefined, 600),
        async (s, count, edits: Edit[], dropPattern, maxMessageBytes) => {
          let healed = false;
          let sent = 0;
          // Before the heal, some messages are dropped (the pattern says which) and every other one may come twice.
          // Bounded: a sync that never settles fails the convergence check instead of running forever.
          const deliver = (what: string, run: () => void): void => {
            const n = sent++;
            if (n > MAX_DELIVERIES || (!healed && dropPattern[n % dropPattern.length])) return;
            void s.schedule(Promise.resolve(), what).then(run);
            if (!healed && n % 3 === 0) void s.schedule(Promise.resolve(), `${what} (again)`).then(run);
          };
          const replicas: { doc: ConfigDoc; sync: ConfigSync }[] = [];
          for (let i = 0; i < count; i++) {
            const doc = ConfigDoc.create(`0${i}`.padEnd(32, 'a'));
            const sync = new ConfigSync({
              doc,
              send: (peer, envelope) => deliver(`r${i}→${peer}`, () => replicas[Number(peer.slice(1))]!.sync.receive(`r${i}`, envelope)),
              announce: (heads) => {
                for (let j = 0; j < count; j++) if (j !== i) deliver(`r${i} hello→r${j}`, () => replicas[j]!.sync.hello(`r${i}`, heads));
              },
              onRemoteChange: () => {},
              ...(maxMessageBytes === undefined ? {} : { maxMessageBytes }),
            });
            replicas.push({ doc, sync });
          }
          const lastWrite = new Map<string, { replica: number; value: string | null }[]>();
          for (const edit of edits) {
            const r = replicas[edit.replica % count]!;
            const value = edit.value === null ? null : JSON.stringify({ origins: [`http://10.0.0.${edit.value}:80`] });
            if (value === null) r.doc.remove('domain', [edit.host]);
            else r.doc.put('domain', [[edit.host, value]]);
            const writes = lastWrite.get(edit.host) ?? [];
            writes.push({ replica: edit.replica % count, value });
            lastWrite.set(edit.host, writes);
            r.sync.changed();
            for (let k = 0; k < edit.deliver && s.count() > 0; k++) await s.waitOne();
          }
          await s.waitAll();
          // Heal: nothing is dropped any more; a few intervals' ticks settle it.
          healed = true;
          for (let round = 0; round < HEAL_ROUNDS; round++) {
            for (const r of replicas) r.sync.tick();
            await s.waitAll();
          }
          const reference = replicas.reduce((merged, r) => A.merge(merged, A.clone(r.doc.doc)), A.clone(replicas[0]!.doc.doc));
          const expected = Object.fromEntries([...ConfigDoc.load(A.save(reference)).entries('domain')].sort());
          for (const r of replicas) expect(Object.fromEntries([...r.doc.entries('domain')].sort())).toEqual(expected);
          for (const [host, writes] of lastWrite) {
            if (new Set(writes.map((w) => w.replica)).size !== 1) continue;
            const last = writes.at(-1)!.value;
            expect(replicas[0]!.doc.entries('domain').get(host) ?? null).toBe(last);
          }
        },
      ),
      fcParams(60),
    );
  }, 120_000);

  it('counts and drops what Automerge cannot read, never throwing', () => {
    const doc = ConfigDoc.create();
    doc.put('domain', [['a.example', '{}']]);
    const sync = new ConfigSync({ doc, send: () => {}, announce: () => {}, onRemoteChange: () => {} });
    let seq = 1;
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 200 }), (bytes) => {
        const before = JSON.stringify([...doc.entries('domain')]);
        if (!sync.receive('peer', { epoch: 1, seq: seq++, data: bytes })) expect(JSON.stringify([...doc.entries('domain')])).toBe(before);
      }),
      fcParams(300),
    );
  });
});
