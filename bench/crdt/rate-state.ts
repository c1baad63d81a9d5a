// The fleet's rate-limit state two ways, side by side in one run, for three nodes publishing every 100 ms
// the counts of K clients in the current window (what the limiter publishes, src/ratelimit/fleet-limiter.ts):
//
//   automerge  one Automerge document per window, each node writing its own map of client → count (the
//              user's design with the corrections: per-node aggregates on an interval, node-owned keys)
//   g-counter  the shipped state (src/crdt/rate-windows.ts): per-replica counts per window, published whole
//              as JSON and merged by maximum
//
// Prints each one's CPU per node per second (ten publishes and ten merges of the two other nodes') and the
// ratio. The decision it backs is in docs/rationale.md.
//
//   node bench/crdt/rate-state.ts [--clients 100,1000,10000] [--seconds 2]
import * as A from '@automerge/automerge';
import { parseArgs } from 'node:util';
import { RateWindows, type RateSnapshot } from '../../src/crdt/rate-windows.ts';

const { values } = parseArgs({ options: { clients: { type: 'string', default: '100,1000,10000' }, seconds: { type: 'string', default: '2' } } });
const NODES = 3;
const PUBLISHES_PER_SECOND = 10;
const WINDOW_MS = 1_000;

function clientsOf(k: number): string[] {
  return Array.from({ length: k }, (_, i) => `10.${(i >> 16) & 255}.${(i >> 8) & 255}.${i & 255}`);
}

/** CPU ms per node for `rounds` publishes, each followed by every node taking in the others'. */
function automerge(clients: readonly string[], rounds: number): number {
  let docs = Array.from({ length: NODES }, (_, n) => A.init<Record<string, Record<string, number>>>({ actor: String(n + 1).repeat(32) }));
  const started = process.cpuUsage();
  for (let r = 0; r < rounds; r++) {
    const changes: Uint8Array[] = [];
    docs = docs.map((doc, n) => {
      const next = A.change(doc, (d) => {
        const mine = (d[`node${n}`] ??= {});
        for (const c of clients) mine[c] = r + 1;
      });
      changes.push(A.getLastLocalChange(next)!);
      return next;
    });
    docs = docs.map((doc, n) => A.applyChanges(doc, changes.filter((_, m) => m !== n))[0]);
  }
  const used = process.cpuUsage(started);
  for (const doc of docs) A.free(doc);
  return (used.user + used.system) / 1000 / NODES;
}

function gCounter(clients: readonly string[], rounds: number): number {
  const states = Array.from({ length: NODES }, (_, n) => new RateWindows({ replica: `node${n}`, windowMs: WINDOW_MS, maxAgeMs: 10_000 }));
  const started = process.cpuUsage();
  for (let r = 0; r < rounds; r++) {
    const payloads = states.map((state) => {
      for (const c of clients) state.record(c, 0, r + 1);
      return JSON.stringify(state.ownSnapshot());
    });
    states.forEach((state, n) => {
      for (const [m, payload] of payloads.entries()) if (m !== n) state.merge(JSON.parse(payload) as RateSnapshot);
    });
  }
  const used = process.cpuUsage(started);
  return (used.user + used.system) / 1000 / NODES;
}

const seconds = Number(values.seconds);
const rounds = seconds * PUBLISHES_PER_SECOND;
console.log(`${NODES} nodes, ${PUBLISHES_PER_SECOND} publishes a second each, ${seconds} s; CPU per node per second of publishing`);
console.log('clients | automerge ms/s | g-counter ms/s | automerge ÷ g-counter');
for (const k of values.clients.split(',').map(Number)) {
  const clients = clientsOf(k);
  const am = automerge(clients, rounds) / seconds;
  const gc = gCounter(clients, rounds) / seconds;
  console.log(`${String(k).padStart(7)} | ${am.toFixed(1).padStart(14)} | ${gc.toFixed(1).padStart(14)} | ${(am / gc).toFixed(1).padStart(6)}×`);
}
