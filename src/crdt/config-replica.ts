// One node's replica of the fleet's config document across generations. Automerge keeps every change for
// ever (measured: RSS 160 → 669 MB over a million edits of 10,000 domains, bench/crdt/config-growth.ts), so
// when the history outgrows the entries the fleet moves to a new document: a snapshot of the entries
// (./config-doc.ts snapshot()), generation + 1.
//
// - Who compacts: the replica whose name sorts first among itself and the peers heard within `rosterMs`
//   (kept across restarts), once its history holds more than `factor` × entries + `minOps` operations and
//   every one of those peers has announced the same heads as its own (never in its first WARMUP_TICKS).
//   All level means every node's changes are in the snapshot; a peer cut off keeps the fleet from compacting
//   until it is back or has been silent for `rosterMs`. Two replicas that compact the same state build
//   byte-identical snapshots, so even a race makes no fork.
// - Moving over: a replica that hears of a higher generation syncs an empty document of it (a second
//   ConfigSync, messages tagged with their generation) until the snapshot's mark arrives, then adopts it and
//   makes again, as its own new changes, every change of its own that the snapshot's clock for its lineage
//   does not hold (made while cut off, or after the snapshot was taken). Every change is made again once,
//   by its author (and its author's earlier incarnations, from `actors`). Changes by other nodes that the
//   snapshot lacks are left to their authors, and counted.
// - Forks: a document whose lineage the new snapshot's clocks do not describe (compacted apart, e.g. a node
//   that ran alone for longer than `rosterMs`, or more than KEPT_LINEAGES generations behind) is merged
//   into the new one whole: the union, as documents started apart, and its history comes along once.
//   Snapshots of one generation taken apart simply merge, like any two documents.
//
// Clock-free and transport-free like ConfigSync: the owner calls tick() every interval and wires `send` and
// `announce` to the network with the generation in each message.
import { setImmediate as yieldLoop } from 'node:timers/promises';
import { ConfigDoc, coveredBy } from './config-doc.ts';
import { ConfigSync, MAX_PEERS, sameHeads, type SyncEnvelope } from './config-sync.ts';

export interface CompactionPolicy {
  /** History operations always allowed. */
  minOps: number;
  /** History operations allowed per entry on top of minOps. */
  factor: number;
}

/**
 * 10,000 domains compact once their history passes 40,000 operations, when the saved document is about twice
 * a fresh one's size (bench/crdt/config-growth.ts).
 */
export const DEFAULT_COMPACTION: CompactionPolicy = { minOps: 20_000, factor: 2 };

/** A peer silent this long no longer holds compaction back (a node gone for good must not block it for ever). */
export const DEFAULT_ROSTER_MS = 24 * 3_600_000;

/** Ticks a higher generation may stay incomplete before it is dropped (a peer that named it and went away). */
const PENDING_TICKS = 120;

/**
 * Ticks after start before this replica may compact by itself: its peers announce themselves at every tick,
 * and one that has lost its saved roster must hear them before it judges that all are level.
 */
export const WARMUP_TICKS = 10;

/** What a replica keeps across restarts, beside its document. */
export interface ReplicaState {
  /** Actors this node's changes carried in the document's generation, oldest first. */
  actors: string[];
  /** Peer name → when it was last heard (ms since the epoch). */
  roster: Record<string, number>;
}

/** A replica moved to a new generation. */
export interface GenerationChange {
  generation: number;
  /** Own changes made again on the new document (sets and removals). */
  replayed: number;
  /** Changes by other nodes the new document lacks, left to their authors. */
  othersLeft: number;
  /** The old document was of another lineage and was merged in whole. */
  merged: boolean;
}

export interface ConfigReplicaOptions {
  /** This replica's peer name: compaction is proposed by the first name in sort order. */
  name: string;
  doc: ConfigDoc;
  state?: ReplicaState | undefined;
  send: (generation: number, peer: string, envelope: SyncEnvelope) => void;
  announce: (generation: number, heads: string[]) => void;
  /** The current document changed by a received message. */
  onRemoteChange: () => void;
  /** The current document was replaced by a new generation's. */
  onGeneration: (change: GenerationChange) => void;
  /** null: compact only when asked (compact()). */
  compaction?: CompactionPolicy | null;
  rosterMs?: number;
  now?: () => number;
  /** Runs between a snapshot's changes. */
  pause?: () => Promise<void>;
  /** A compaction started by tick() failed (the replica stays on its generation). */
  onError?: (error: unknown) => void;
  epoch?: number;
}

interface Generation {
  generation: number;
  doc: ConfigDoc;
  sync: ConfigSync;
  /** Ticks a pending generation has waited for its snapshot (dropped after PENDING_TICKS). */
  age: number;
}

export class ConfigReplica {
  readonly #o: ConfigReplicaOptions;
  readonly #roster: Map<string, number>;
  #current: Generation;
  #pending: Generation | null = null;
  #actors: string[];
  #compacting = false;
  #ticks = 0;

  constructor(options: ConfigReplicaOptions) {
    this.#o = options;
    this.#roster = new Map(Object.entries(options.state?.roster ?? {}));
    this.#current = this.#open(options.doc.generation(), options.doc);
    this.#actors = [...(options.state?.actors ?? []).filter((a) => a !== options.doc.actor), options.doc.actor];
  }

  get doc(): ConfigDoc {
    return this.#current.doc;
  }

  get generation(): number {
    return this.#current.generation;
  }

  get peers(): number {
    return this.#current.sync.peers;
  }

  state(): ReplicaState {
    return { actors: [...this.#actors], roster: Object.fromEntries(this.#roster) };
  }

  tick(): void {
    this.#ticks++;
    this.#current.sync.tick();
    if (this.#pending !== null) {
      if (++this.#pending.age > PENDING_TICKS) this.#dropPending();
      else this.#pending.sync.tick();
    }
    if (this.#shouldCompact()) this.compact().catch((error: unknown) => this.#o.onError?.(error));
  }

  /** This replica changed its document. */
  changed(): void {
    this.#current.sync.changed();
  }

  hello(peer: string, generation: number, heads: string[]): void {
    if (peer === this.#o.name || (this.#roster.size >= MAX_PEERS && !this.#roster.has(peer))) return;
    this.#roster.set(peer, this.#now());
    this.#generationFor(generation)?.sync.hello(peer, heads);
  }

  /** A sync message (untrusted); false when it was dropped: stale, unreadable, or of a generation left behind. */
  receive(peer: string, generation: number, envelope: SyncEnvelope): boolean {
    const target = peer === this.#o.name ? null : this.#generationFor(generation);
    return target !== null && target.sync.receive(peer, envelope);
  }

  /**
   * Moves to a new generation built from this document now; false when one is already on its way (being
   * built here, or fetched from a peer).
   */
  async compact(): Promise<boolean> {
    if (this.#compacting || this.#pending !== null) return false;
    this.#compacting = true;
    try {
      const snapshot = await this.#current.doc.snapshot(this.#o.pause ?? (() => yieldLoop()));
      // While it was built, a peer's generation may have arrived (or even been adopted): that one wins.
      const newer = Math.max(this.generation, this.#pendingNow()?.generation ?? 0);
      if (newer >= snapshot.generation()) {
        snapshot.free();
        return false;
      }
      this.#adopt(this.#open(snapshot.generation(), snapshot));
      return true;
    } finally {
      this.#compacting = false;
    }
  }

  /**
   * This replica's name sorts first among itself and the peers heard within `rosterMs`, past its warm-up:
   * the one replica that does the fleet's housekeeping (compaction, and what the owner gives it).
   */
  get leads(): boolean {
    if (this.#ticks < WARMUP_TICKS) return false;
    for (const peer of this.#livePeers()) if (peer < this.#o.name) return false;
    return true;
  }

  #shouldCompact(): boolean {
    const policy = this.#o.compaction === undefined ? DEFAULT_COMPACTION : this.#o.compaction;
    if (policy === null || this.#compacting || this.#pending !== null || !this.leads) return false;
    const doc = this.#current.doc;
    const ops = doc.historyOps();
    // The entries are counted only once the history passes minOps (a pass over the root: 0.2 ms for 10,000).
    if (ops <= policy.minOps || ops <= policy.minOps + policy.factor * doc.size()) return false;
    const heads = doc.heads();
    for (const peer of this.#livePeers()) {
      const theirs = this.#current.sync.headsOf(peer);
      if (theirs === undefined || !sameHeads(theirs, heads)) return false;
    }
    return true;
  }

  /** Peers heard within `rosterMs`. */
  *#livePeers(): Generator<string> {
    const since = this.#now() - (this.#o.rosterMs ?? DEFAULT_ROSTER_MS);
    for (const [peer, heard] of this.#roster) if (heard >= since && peer !== this.#o.name) yield peer;
  }

  /** The generation a message is for: opened when it is higher than any known, null when left behind. */
  #generationFor(generation: number): Generation | null {
    if (generation === this.#current.generation) return this.#current;
    if (generation === this.#pending?.generation) return this.#pending;
    if (generation < Math.max(this.#current.generation, this.#pending?.generation ?? 0)) return null;
    this.#dropPending();
    this.#pending = this.#open(generation, ConfigDoc.create());
    return this.#pending;
  }

  #open(generation: number, doc: ConfigDoc): Generation {
    const sync = new ConfigSync({
      doc,
      send: (peer, envelope) => this.#o.send(generation, peer, envelope),
      announce: (heads) => this.#o.announce(generation, heads),
      onRemoteChange: () => this.#remoteChange(opened),
      ...(this.#o.epoch === undefined ? {} : { epoch: this.#o.epoch }),
    });
    const opened: Generation = { generation, doc, sync, age: 0 };
    return opened;
  }

  /** A received message changed `g`: the data plane hears of it, or a fetched generation is complete. */
  #remoteChange(g: Generation): void {
    if (g === this.#current) this.#o.onRemoteChange();
    else if (g === this.#pending && g.doc.generation() === g.generation) {
      this.#pending = null;
      this.#adopt(g);
    }
  }

  #dropPending(): void {
    this.#pending?.doc.free();
    this.#pending = null;
  }

  /** The pending generation, read afresh (TypeScript keeps a narrowing of the field across an await). */
  #pendingNow(): Generation | null {
    return this.#pending;
  }

  /** Makes `next` current: this node's changes it lacks are made again on it (or, across lineages, all merged). */
  #adopt(next: Generation): void {
    const old = this.#current;
    const covered = coveredBy(next.doc.metas(), old.doc.lineage());
    let change: GenerationChange;
    if (covered === null) {
      next.doc.mergeFrom(old.doc);
      change = { generation: next.generation, replayed: 0, othersLeft: 0, merged: true };
    } else {
      const { ops, others } = old.doc.changesNotIn(covered, this.#actors);
      next.doc.replay(ops);
      change = { generation: next.generation, replayed: ops.length, othersLeft: others, merged: false };
    }
    this.#current = next;
    this.#actors = [next.doc.actor];
    old.doc.free();
    this.#o.onGeneration(change);
    this.#current.sync.changed();
  }

  #now(): number {
    return (this.#o.now ?? Date.now)();
  }
}
