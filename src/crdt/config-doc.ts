// The fleet's tenant configuration as one Automerge document: any node accepts a change, every node merges
// every other's, and all end with the same state. Each entry is a root key holding its settings as JSON in an
// ImmutableString — one last-writer-wins register per entry:
//
//   "domain:shop.example" → '{"host":"shop.example","origins":["http://10.0.0.5:8080"],"waf_mode":"blocking"}'
//   "block:203.0.113.0/24" → '{"cidr":"203.0.113.0/24","expires_at":1767225600000}'
//
// Why this shape, measured on this machine with Automerge 3.5 (10,000 domains in one change): nested maps
// cost 5.9 s and 278 KB saved, a string per domain (Automerge makes strings collaborative text) 4.1 s and
// 141 KB, an ImmutableString 1.4 s and 57 KB. Settings are replaced whole, never merged field by field, so
// a register is also the semantics wanted: concurrent edits of one domain resolve to the same winner on every
// node (Automerge's deterministic conflict order). Root keys, not a `domains` map: two documents started
// apart (a node that came up with NATS down and no saved state) would each create their own `domains` map,
// and merging them would keep one map and hide the other's entries; root keys merge key by key.
//
// The document holds what nodes wrote, not what is valid: every node checks each entry it applies
// (../node decides with the config schema) and keeps its last good value for an entry that fails.
//
// Automerge keeps every change for ever, so the fleet starts a new document from time to time: a snapshot of
// the entries as one document held them, written in deterministic changes (the same state gives the same
// bytes on every node), and marked by a META_KEY entry that says which generation it is and which changes it
// holds (./config-replica.ts decides when, and moves each node over).
import { createHash } from 'node:crypto';
import * as A from '@automerge/automerge';
import { batches } from './batches.ts';

export type ConfigRoot = Record<string, A.ImmutableString>;

/**
 * Kinds of entry, each a key prefix (`domain:shop.example`, `block:203.0.113.0/24`): the node gives each its
 * meaning and checks (../node/fleet-entries.ts). A key of a kind this version does not know is kept, ignored.
 */
export const ENTRY_KINDS = ['domain', 'rule', 'exclusion', 'allow', 'block'] as const;
export type EntryKind = (typeof ENTRY_KINDS)[number];

/** An entry that changed: its settings' JSON text, null when removed. */
export interface EntryChange {
  kind: EntryKind;
  name: string;
  text: string | null;
}

/**
 * A bulk upload is applied in changes of at most this many entries, the event loop free between them: 10,000
 * domains in one change held it for 1.4 s.
 */
export const MAX_ENTRIES_PER_CHANGE = 1_000;

/**
 * ... and of at most this many bytes of settings: a change travels whole in one sync message, which the
 * transport bounds (./config-sync.ts), and a thousand domains with their own certificates are megabytes.
 */
export const MAX_CHANGE_BYTES = 256 * 1024;

/** `entries` cut into runs of at most MAX_ENTRIES_PER_CHANGE entries and MAX_CHANGE_BYTES of text (one entry may pass it alone). */
export function changeBatches<T extends readonly [string, string]>(entries: readonly T[]): T[][] {
  return batches(entries, ([key, value]) => key.length + value.length, MAX_CHANGE_BYTES, MAX_ENTRIES_PER_CHANGE);
}

/** The entry that marks a snapshot complete and says what it holds; written last, in its own change. */
export const META_KEY = 'meta:generation';

/** Per actor, the last of its changes (sequence number) a document holds. */
export type Clock = Record<string, number>;

/**
 * What a snapshot holds. `clocks` is keyed by lineage (see ConfigDoc.lineage) and kept for the last
 * KEPT_LINEAGES generations: a node that comes back from further behind cannot tell which of its changes a
 * snapshot holds, and merges its document whole instead.
 */
export interface GenerationMeta {
  generation: number;
  /** The actor of the snapshot's changes: the lineage of the documents that grow from it. */
  snapshot: string;
  /** The lineage of the document the snapshot was taken from → that document's clock at the time. */
  clocks: Record<string, Clock>;
}

export const KEPT_LINEAGES = 8;

/** A change replayed by value: a key set or removed. */
export type ReplayOp = readonly [key: string, value: string | null];

export class ConfigDoc {
  #doc: A.Doc<ConfigRoot>;

  private constructor(doc: A.Doc<ConfigRoot>) {
    this.#doc = doc;
  }

  /** An empty document; `actor` (hex) names this node's changes (random when absent). */
  static create(actor?: string): ConfigDoc {
    return new ConfigDoc(A.init<ConfigRoot>(actor === undefined ? undefined : { actor }));
  }

  /** A document saved by save(); throws on bytes that are not one. */
  static load(bytes: Uint8Array, actor?: string): ConfigDoc {
    return new ConfigDoc(A.load<ConfigRoot>(bytes, actor === undefined ? undefined : { actor }));
  }

  get doc(): A.Doc<ConfigRoot> {
    return this.#doc;
  }

  set doc(doc: A.Doc<ConfigRoot>) {
    this.#doc = doc;
  }

  heads(): string[] {
    return A.getHeads(this.#doc);
  }

  /** The actor this replica's own changes carry. */
  get actor(): string {
    return A.getActorId(this.#doc);
  }

  /** Operations in the history (Automerge keeps them all): what compaction keeps bounded. */
  historyOps(): number {
    return A.stats(this.#doc).numOps;
  }

  /** Root entries, the META_KEY one included. */
  size(): number {
    return A.getBackend(this.#doc).length('_root');
  }

  /*
   * Reads go to Automerge's op set, not to the JS object it keeps in step with it: with Automerge 3.5.0 that
   * object was seen out of step after a sync. A replica whose heads equalled its peers' kept an entry's
   * overwritten value in the object, while its op set and a reload of its bytes held the winner. The replica
   * property test found it: in a replay of its counterexample, one run in two left the replicas disagreeing.
   * Writes still go through A.change. (A.getBackend is exported but marked hidden in Automerge's docs: a
   * version bump must keep these three reads working, which the unit and property tests exercise.)
   */

  /** The root's keys in the op set. */
  #keys(): string[] {
    return A.getBackend(this.#doc).keys('_root');
  }

  /** A root entry's text in the op set; null when absent or not an immutable string. */
  #text(key: string): string | null {
    const value = A.getBackend(this.#doc).getWithType('_root', key);
    return value !== null && value[0] === 'str' ? value[1] : null;
  }

  /**
   * The current generation's snapshot marks, malformed ones skipped: one after a compaction, several when
   * snapshots taken apart were merged, none for a document never compacted. (A document merged across
   * lineages also holds the marks of older generations; they say nothing now.)
   */
  metas(): GenerationMeta[] {
    const conflicts = A.getConflicts(this.#doc, META_KEY);
    const values = conflicts === undefined ? [this.#text(META_KEY)] : Object.values(conflicts);
    const out: GenerationMeta[] = [];
    for (const value of values) {
      const meta = parseMeta(typeof value === 'string' ? value : value !== null && A.isImmutableString(value) ? value.toString() : '');
      if (meta !== null) out.push(meta);
    }
    const generation = Math.max(0, ...out.map((m) => m.generation));
    return out.filter((m) => m.generation === generation);
  }

  generation(): number {
    return this.metas()[0]?.generation ?? 0;
  }

  /**
   * Which snapshot this document grew from, the key of its clock in the next snapshot's mark: the actors of
   * the current generation's snapshot (several when snapshots taken apart were merged), '' for generation 0.
   */
  lineage(): string {
    return [...new Set(this.metas().map((m) => m.snapshot))].sort().join(',');
  }

  /** Per actor, the last of its changes this document holds. Costs one pass over the change list. */
  clock(): Clock {
    const clock: Clock = {};
    for (const change of A.getChangesMetaSince(this.#doc, [])) clock[change.actor] = Math.max(clock[change.actor] ?? 0, change.seq);
    return clock;
  }

  /**
   * The changes by `actors` that `covered` does not hold, by value, in the order they were made (actors in
   * the order given, then sequence). Besides the ops, how many changes by other actors `covered` lacks.
   */
  changesNotIn(covered: Clock, actors: readonly string[]): { ops: ReplayOp[]; others: number } {
    const mine = new Map(actors.map((a, i) => [a, i]));
    const changes: A.ChangeMetadata[] = [];
    let others = 0;
    for (const change of A.getChangesMetaSince(this.#doc, [])) {
      if (change.seq <= (covered[change.actor] ?? 0)) continue;
      if (mine.has(change.actor)) changes.push(change);
      else others++;
    }
    changes.sort((x, y) => mine.get(x.actor)! - mine.get(y.actor)! || x.seq - y.seq);
    const ops: ReplayOp[] = [];
    for (const change of changes) {
      for (const op of A.inspectChange(this.#doc, change.hash)?.ops ?? []) {
        if (op.obj !== '_root' || op.key === META_KEY) continue;
        if (op.action === 'del') ops.push([op.key, null]);
        else if (op.action === 'set' && typeof op.value === 'string') ops.push([op.key, op.value]);
      }
    }
    return { ops, others };
  }

  /** Makes the given sets and removals again, as this replica's own change. */
  replay(ops: readonly ReplayOp[]): void {
    if (ops.length === 0) return;
    this.#doc = A.change(this.#doc, (d) => {
      for (const [key, value] of ops) {
        if (value === null) delete d[key];
        else d[key] = new A.ImmutableString(value);
      }
    });
  }

  /** Takes in every change of `other` (a document of another lineage: the union, as documents started apart). */
  mergeFrom(other: ConfigDoc): void {
    const copy = A.clone(other.#doc);
    this.#doc = A.merge(this.#doc, copy);
    A.free(copy);
  }

  /**
   * A new generation's document: this one's entries as they are now, in changes made the same way on every
   * node (an actor named by the generation and heads, time 0, keys sorted, changeBatches() per change, the
   * mark last), so two nodes that compact the same state build the same document; `pause` runs between
   * changes. The result carries a fresh actor of its own for this replica's later changes.
   */
  async snapshot(pause: () => Promise<void>): Promise<ConfigDoc> {
    const generation = this.generation() + 1;
    const heads = this.heads().sort();
    const entries = this.#keys()
      .flatMap((key) => {
        const text = key === META_KEY ? null : this.#text(key);
        return text === null ? [] : [[key, text] as const];
      })
      .sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
    const actor = createHash('sha256').update(`${generation}|${heads.join(',')}`).digest('hex').slice(0, 32);
    const metas = this.metas();
    const clocks: Record<string, Clock> = {};
    for (const lineage of new Set(metas.flatMap((m) => Object.keys(m.clocks)))) clocks[lineage] = coveredBy(metas, lineage)!;
    clocks[this.lineage()] = this.clock();
    const kept = Object.keys(clocks).slice(-KEPT_LINEAGES);
    const meta: GenerationMeta = { generation, snapshot: actor, clocks: Object.fromEntries(kept.map((k) => [k, clocks[k]!])) };

    const options = { time: 0 };
    let doc = A.init<ConfigRoot>({ actor });
    for (const [i, batch] of changeBatches(entries).entries()) {
      if (i > 0) await pause();
      doc = A.change(doc, options, (d) => {
        for (const [key, value] of batch) d[key] = new A.ImmutableString(value);
      });
    }
    doc = A.change(doc, options, (d) => {
      d[META_KEY] = new A.ImmutableString(JSON.stringify(meta));
    });
    const own = A.clone(doc);
    A.free(doc);
    return new ConfigDoc(own);
  }

  /** Releases the document's memory now rather than when the collector gets to it. */
  free(): void {
    A.free(this.#doc);
  }

  /** Sets each entry's settings (JSON text), in one change. */
  put(kind: EntryKind, entries: readonly (readonly [name: string, settings: string])[]): void {
    this.#doc = A.change(this.#doc, (d) => {
      for (const [name, settings] of entries) d[`${kind}:${name}`] = new A.ImmutableString(settings);
    });
  }

  remove(kind: EntryKind, names: readonly string[]): void {
    this.#doc = A.change(this.#doc, (d) => {
      for (const name of names) delete d[`${kind}:${name}`];
    });
  }

  has(kind: EntryKind, name: string): boolean {
    return A.getBackend(this.#doc).getWithType('_root', `${kind}:${name}`) !== null;
  }

  /**
   * The entries that changed between `since` (heads this document had) and now, with their settings' JSON
   * text (null: removed). Costs what changed, not the document's size.
   */
  changes(since: readonly string[]): EntryChange[] {
    const seen = new Set<string>();
    const out: EntryChange[] = [];
    for (const patch of A.diff(this.#doc, [...since], this.heads())) {
      const key = patch.path[0];
      if (typeof key !== 'string' || seen.has(key)) continue;
      seen.add(key);
      const entry = splitKey(key);
      if (entry === null) continue;
      out.push({ ...entry, text: this.#text(key) });
    }
    return out;
  }

  /** Every entry of a kind with its settings' JSON text, as the document holds them now. */
  entries(kind: EntryKind): Map<string, string> {
    const prefix = `${kind}:`;
    const out = new Map<string, string>();
    for (const key of this.#keys()) {
      if (!key.startsWith(prefix)) continue;
      const text = this.#text(key);
      if (text !== null) out.set(key.slice(prefix.length), text);
    }
    return out;
  }

  save(): Uint8Array {
    return A.save(this.#doc);
  }
}

/**
 * What every one of `metas` holds of the changes of a document of `lineage`: per actor, the lowest sequence
 * number they name (0 where one names none), null when none describes that lineage.
 */
export function coveredBy(metas: readonly GenerationMeta[], lineage: string): Clock | null {
  const clocks = metas.map((m) => m.clocks[lineage]);
  if (clocks.every((c) => c === undefined)) return null;
  const actors = new Set(clocks.flatMap((c) => (c === undefined ? [] : Object.keys(c))));
  const out: Clock = {};
  for (const actor of actors) out[actor] = Math.min(...clocks.map((c) => c?.[actor] ?? 0));
  return out;
}

function splitKey(key: string): { kind: EntryKind; name: string } | null {
  const colon = key.indexOf(':');
  const kind = key.slice(0, colon);
  return colon > 0 && (ENTRY_KINDS as readonly string[]).includes(kind) ? { kind: kind as EntryKind, name: key.slice(colon + 1) } : null;
}

const ACTOR = /^[0-9a-f]{2,64}$/;

/** An Automerge actor id as snapshot marks and replica state hold them: 2 to 64 hex digits. */
export function isActor(value: unknown): value is string {
  return typeof value === 'string' && ACTOR.test(value);
}
const LINEAGE = /^(?:[0-9a-f]{2,64}(?:,[0-9a-f]{2,64}){0,15})?$/;

/** A snapshot mark from the document (untrusted: any node may have written it), null when malformed. */
function parseMeta(text: string): GenerationMeta | null {
  let raw: unknown;
  try {
    raw = JSON.parse(text);
  } catch {
    return null;
  }
  if (typeof raw !== 'object' || raw === null) return null;
  const { generation, snapshot, clocks } = raw as { generation?: unknown; snapshot?: unknown; clocks?: unknown };
  if (!Number.isSafeInteger(generation) || (generation as number) < 1 || !isActor(snapshot) || typeof clocks !== 'object' || clocks === null) {
    return null;
  }
  const lineages = Object.entries(clocks);
  if (lineages.length > KEPT_LINEAGES) return null;
  for (const [lineage, clock] of lineages) {
    if (!LINEAGE.test(lineage) || typeof clock !== 'object' || clock === null) return null;
    for (const [actor, seq] of Object.entries(clock)) if (!isActor(actor) || !Number.isSafeInteger(seq)) return null;
  }
  return { generation: generation as number, snapshot, clocks: clocks as Record<string, Clock> };
}
