// The rate-window CRDT (src/crdt/rate-windows.ts) against a reference model: for 2–5 replicas and arbitrary
// sequences of hits, publishes, deliveries, duplicates, drops, reorders, partitions, crashes and restarts, then a
// heal (every replica sends what it knows to every other): all replicas hold the same state, and every key's
// total in every window is exactly the number of hits made (none lost, none counted twice). Merging is
// commutative, associative and idempotent.
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { RateWindows, type RateSnapshot } from '../../src/crdt/rate-windows.ts';
import { fcParams } from '../helpers/fc.ts';

const WINDOW_MS = 1_000;
const KEYS = ['192.0.2.1', '192.0.2.2', '2001:db8::1'];
const TIMES = [0, 400, 1_000, 1_999, 2_500, 3_000];

type Op =
  | { op: 'hit'; replica: number; key: number; time: number; n: number }
  | { op: 'publish'; replica: number }
  | { op: 'deliver'; pick: number }
  | { op: 'duplicate'; pick: number }
  | { op: 'drop'; pick: number }
  | { op: 'cut'; a: number; b: number }
  | { op: 'mend'; a: number; b: number }
  | { op: 'crash'; replica: number };

const opArb = (replicas: number): fc.Arbitrary<Op> => {
  const r = fc.nat({ max: replicas - 1 });
  return fc.oneof(
    { weight: 4, arbitrary: fc.record({ op: fc.constant('hit' as const), replica: r, key: fc.nat({ max: KEYS.length - 1 }), time: fc.constantFrom(...TIMES), n: fc.integer({ min: 1, max: 3 }) }) },
    { weight: 3, arbitrary: fc.record({ op: fc.constant('publish' as const), replica: r }) },
    { weight: 3, arbitrary: fc.record({ op: fc.constant('deliver' as const), pick: fc.nat() }) },
    { weight: 1, arbitrary: fc.record({ op: fc.constant('duplicate' as const), pick: fc.nat() }) },
    { weight: 1, arbitrary: fc.record({ op: fc.constant('drop' as const), pick: fc.nat() }) },
    { weight: 1, arbitrary: fc.record({ op: fc.constant('cut' as const), a: r, b: r }) },
    { weight: 1, arbitrary: fc.record({ op: fc.constant('mend' as const), a: r, b: r }) },
    { weight: 1, arbitrary: fc.record({ op: fc.constant('crash' as const), replica: r }) },
  );
};

const scenario = fc.integer({ min: 2, max: 5 }).chain((replicas) => fc.tuple(fc.constant(replicas), fc.array(opArb(replicas), { maxLength: 80 })));

/** A replica's whole state in a canonical form, to compare replicas. */
function canonical(w: RateWindows): string {
  const rows: string[] = [];
  for (const s of w.allSnapshots()) for (const win of s.windows) for (const [key, count] of win.counts) rows.push(`${win.start}|${key}|${s.replica}|${count}`);
  return rows.sort().join('\n');
}

interface Node {
  state: RateWindows;
  epoch: number;
  /** Written through after every change of this node's state: what a restart starts from. */
  persisted: RateSnapshot[];
}

function newState(index: number, epoch: number): RateWindows {
  return new RateWindows({ replica: `node${index}#${epoch}`, windowMs: WINDOW_MS, maxAgeMs: 60_000 });
}

describe('RateWindows (property)', () => {
  it('converges to the reference totals under loss, duplication, reordering, partitions and restarts', () => {
    fc.assert(
      fc.property(scenario, ([replicas, ops]) => {
        const nodes: Node[] = Array.from({ length: replicas }, (_, i) => ({ state: newState(i, 0), epoch: 0, persisted: [] }));
        const inFlight: { to: number; snapshot: RateSnapshot }[] = [];
        const cut = new Set<string>();
        const truth = new Map<string, number>();
        const persist = (node: Node): void => {
          node.persisted = node.state.allSnapshots();
        };
        const link = (a: number, b: number): string => `${Math.min(a, b)}-${Math.max(a, b)}`;

        for (const op of ops) {
          switch (op.op) {
            case 'hit': {
              const node = nodes[op.replica]!;
              node.state.hit(KEYS[op.key]!, op.time, op.n);
              persist(node);
              const k = `${KEYS[op.key]}@${node.state.windowOf(op.time)}`;
              truth.set(k, (truth.get(k) ?? 0) + op.n);
              break;
            }
            case 'publish':
              for (let to = 0; to < replicas; to++) {
                if (to !== op.replica && !cut.has(link(op.replica, to))) inFlight.push({ to, snapshot: nodes[op.replica]!.state.ownSnapshot() });
              }
              break;
            case 'deliver':
            case 'duplicate': {
              if (inFlight.length === 0) break;
              const i = op.pick % inFlight.length;
              const { to, snapshot } = inFlight[i]!;
              nodes[to]!.state.merge(snapshot);
              persist(nodes[to]!);
              if (op.op === 'deliver') inFlight.splice(i, 1);
              break;
            }
            case 'drop':
              if (inFlight.length > 0) inFlight.splice(op.pick % inFlight.length, 1);
              break;
            case 'cut':
              if (op.a !== op.b) cut.add(link(op.a, op.b));
              break;
            case 'mend':
              cut.delete(link(op.a, op.b));
              break;
            case 'crash': {
              // A restart: a new incarnation, starting from what was written through.
              const node = nodes[op.replica]!;
              node.epoch++;
              const restarted = newState(op.replica, node.epoch);
              for (const snapshot of node.persisted) restarted.merge(snapshot);
              node.state = restarted;
              persist(node);
              break;
            }
          }
        }

        // Heal: every link back, every replica sends all it knows to every other, twice over.
        for (let round = 0; round < 2; round++) {
          for (let from = 0; from < replicas; from++) {
            for (let to = 0; to < replicas; to++) if (to !== from) for (const s of nodes[from]!.state.allSnapshots()) nodes[to]!.state.merge(s);
          }
        }

        const states = nodes.map((n) => canonical(n.state));
        for (const s of states) expect(s).toBe(states[0]);
        for (const node of nodes) {
          for (const key of KEYS) {
            for (const time of TIMES) {
              expect(node.state.total(key, time)).toBe(truth.get(`${key}@${node.state.windowOf(time)}`) ?? 0);
            }
          }
        }
      }),
      fcParams(200),
    );
  });

  it('merges commutatively and idempotently', () => {
    const hits = fc.array(fc.record({ key: fc.constantFrom(...KEYS), time: fc.constantFrom(...TIMES), n: fc.integer({ min: 1, max: 5 }) }), { maxLength: 20 });
    fc.assert(
      fc.property(fc.array(hits, { minLength: 2, maxLength: 4 }), (perReplica) => {
        const snapshots = perReplica.map((h, i) => {
          const w = newState(i, 0);
          for (const { key, time, n } of h) w.hit(key, time, n);
          return w.ownSnapshot();
        });
        const forward = newState(99, 0);
        const backward = newState(99, 0);
        const twice = newState(99, 0);
        for (const s of snapshots) forward.merge(s);
        for (const s of [...snapshots].reverse()) backward.merge(s);
        for (const s of [...snapshots, ...snapshots]) twice.merge(s);
        expect(canonical(backward)).toBe(canonical(forward));
        expect(canonical(twice)).toBe(canonical(forward));
      }),
      fcParams(),
    );
  });

  it('merges associatively, also when two states hold different counts of one replica', () => {
    const hits = fc.array(fc.record({ key: fc.constantFrom(...KEYS), time: fc.constantFrom(...TIMES), n: fc.integer({ min: 1, max: 5 }) }), { maxLength: 20 });
    fc.assert(
      fc.property(hits, hits, hits, (ha, hb, hc) => {
        // a and c are two snapshots of replica 0 (c later, with more hits); b is replica 1's.
        const r0 = newState(0, 0);
        for (const { key, time, n } of ha) r0.hit(key, time, n);
        const a = r0.allSnapshots();
        for (const { key, time, n } of hc) r0.hit(key, time, n);
        const c = r0.allSnapshots();
        const r1 = newState(1, 0);
        for (const { key, time, n } of hb) r1.hit(key, time, n);
        const b = r1.allSnapshots();
        const join = (...parts: ReturnType<RateWindows['allSnapshots']>[]) => {
          const w = newState(99, 0);
          for (const part of parts) for (const snapshot of part) w.merge(snapshot);
          return w.allSnapshots();
        };
        const left = newState(98, 0);
        for (const snapshot of [...join(a, b), ...c]) left.merge(snapshot);
        const right = newState(98, 0);
        for (const snapshot of [...a, ...join(b, c)]) right.merge(snapshot);
        expect(canonical(left)).toBe(canonical(right));
      }),
      fcParams(),
    );
  });

  it('drops windows past maxAgeMs and keeps the rest', () => {
    const w = new RateWindows({ replica: 'r', windowMs: 1_000, maxAgeMs: 5_000 });
    w.hit('k', 0);
    w.hit('k', 7_000);
    w.prune(8_000);
    expect(w.total('k', 0)).toBe(0);
    expect(w.total('k', 7_000)).toBe(1);
  });
});
