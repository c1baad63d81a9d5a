// Keeps replicas' ConfigDoc (./config-doc.ts) in step over a lossy transport (core NATS: messages may be
// lost, duplicated or reordered). Automerge's sync protocol assumes a reliable ordered stream, and breaks both
// ways without one: a lost message stalls the pair (each side's sync state remembers what it sent and will not
// send it again), and a duplicated or late one confuses what each side believes the other has. So the stream
// between two replicas is made ordered and the loss left over is repaired:
//
// - Each message carries its sender's epoch (one per ConfigSync, i.e. per node start) and a sequence number
//   per receiver; a receiver drops a message not newer than the last it took from that sender. Duplicates and
//   late messages become losses.
// - Every interval a replica announces its heads to all (a small broadcast) and sends a sync message to
//   every peer whose announced heads differ from its own: built from the peer's last message when one came
//   since the previous tick, else after forgetting what it had in flight to that peer (a sync state encoded
//   and decoded keeps only what both sides are known to share), or after STUCK_TICKS ticks of talk in which
//   neither side's heads moved (a change lost in a partition stays in the sender's record of what it sent,
//   and Automerge will not send it again until that is cleared). Forgetting at every tick instead would also
//   forget what the peer said it needs, and the two would trade summaries for ever (the partition test found
//   both).
// - Nothing is sent in reply to a message: only at a tick, at a local change and on a peer's announcement
//   of other heads. Replying at once converges faster but, with messages lost or reordered, two replicas
//   can answer each other without end (the property test found such storms); this way a replica sends at
//   most two messages per peer and interval, and a pair converges within a few intervals.
// - At most MAX_PEERS peers are kept: names come off the network, and each costs a sync state.
// - What arrives is untrusted: a message Automerge cannot decode is counted and dropped, never thrown; peer
//   names, heads and envelopes are checked by the caller's transport decoding.
//
// Transport-free and clock-free: `send` carries an envelope to one peer, `announce` the heads to all, and the
// owner (./config-replica.ts) calls tick() every DEFAULT_CONFIG_SYNC_INTERVAL_MS.
import * as A from '@automerge/automerge';
import { batches } from './batches.ts';
import type { ConfigDoc } from './config-doc.ts';

/** A sync message on its way to one peer. */
export interface SyncEnvelope {
  /** The sender's incarnation: a later one starts a new stream. */
  epoch: number;
  /** Per sender and receiver, from 1. */
  seq: number;
  /** An Automerge sync message, or (changes: true) a run of changes the peer lacks (see changeRuns). */
  data: Uint8Array;
  changes?: boolean;
}

export interface ConfigSyncOptions {
  doc: ConfigDoc;
  send: (peer: string, envelope: SyncEnvelope) => void;
  announce: (heads: string[]) => void;
  /** The document changed by a received message (not by this replica's own changes). */
  onRemoteChange: () => void;
  /** This replica's incarnation (default: the time it was created). */
  epoch?: number;
  /** Largest `data` sent (default MAX_SYNC_MESSAGE_BYTES). */
  maxMessageBytes?: number;
}

interface Peer {
  state: A.SyncState;
  /** What the peer last announced. */
  heads: string[];
  /** Last sequence number sent to it. */
  sent: number;
  /** The newest of its messages taken: its epoch and sequence number. */
  takenEpoch: number;
  takenSeq: number;
  /** A message of its was taken since the last tick: the exchange is alive, nothing to repair. */
  heard: boolean;
  /** Both sides' heads at the last tick, and for how many ticks in a row they have not moved. */
  seen: string;
  stuck: number;
  /** The tick at which changes were last sent to it in runs (the sync message was too large). */
  bulkTick: number;
}

/**
 * Ticks a pair may talk without either side's heads moving before what is in flight is forgotten anyway: a
 * change sent before a partition and lost there is in the sender's record of what it sent, and Automerge
 * never sends it again until that record is cleared, however lively the exchange.
 */
const STUCK_TICKS = 3;

/** Peers kept at most; messages from further names are dropped as stale (a fleet has far fewer nodes). */
export const MAX_PEERS = 1_024;

/** The interval at which the owner should call tick(). */
export const DEFAULT_CONFIG_SYNC_INTERVAL_MS = 500;

/**
 * Largest message data: the node's transport drops inbound payloads past 1 MiB, and the data travels in
 * base64 within JSON. Automerge puts every change a peer lacks in one sync message (a first sync of 10,000
 * domains is about 0.9 MB, of 100,000 about 9 MB); past this the changes go in runs of at most this size
 * instead (`changes`), loaded by the peer in any order (Automerge holds a change until its dependencies
 * arrive), and the sync protocol takes over once the peer's heads have moved.
 */
export const MAX_SYNC_MESSAGE_BYTES = 512 * 1024;

/** Ticks before runs of changes are sent to a peer again while a sync message to it would still be too large. */
const BULK_RESEND_TICKS = 4;

export class ConfigSync {
  readonly #o: Required<ConfigSyncOptions>;
  readonly #peers = new Map<string, Peer>();
  #malformed = 0;
  #stale = 0;
  #ticks = 0;

  constructor(options: ConfigSyncOptions) {
    this.#o = { epoch: Date.now(), maxMessageBytes: MAX_SYNC_MESSAGE_BYTES, ...options };
  }

  /** Messages dropped since start because Automerge could not read them. */
  get malformed(): number {
    return this.#malformed;
  }

  /** Messages dropped since start as duplicates or older than one already taken. */
  get stale(): number {
    return this.#stale;
  }

  get peers(): number {
    return this.#peers.size;
  }

  /** What the peer last announced, undefined for a name never heard. */
  headsOf(name: string): readonly string[] | undefined {
    return this.#peers.get(name)?.heads;
  }

  /** Announces this replica's heads and resends to every peer that is not known to be level with it. */
  tick(): void {
    this.#ticks++;
    const heads = this.#o.doc.heads();
    this.#o.announce(heads);
    for (const [name, peer] of this.#peers) {
      const heard = peer.heard;
      peer.heard = false;
      if (sameHeads(peer.heads, heads)) {
        peer.stuck = 0;
        continue;
      }
      const seen = `${[...peer.heads].sort().join()}|${[...heads].sort().join()}`;
      peer.stuck = seen === peer.seen ? peer.stuck + 1 : 0;
      peer.seen = seen;
      // Silence since the last tick, or talk without progress: what was in flight is taken as lost. A lively
      // answer, though, carries what the peer has and needs, which a reset would forget: the reply is built from it.
      if (!heard || peer.stuck >= STUCK_TICKS) {
        peer.state = A.decodeSyncState(A.encodeSyncState(peer.state));
        peer.stuck = 0;
      }
      this.#sendTo(name, peer);
    }
  }

  /** This replica changed its document: tell every peer now rather than at the next tick. */
  changed(): void {
    this.#o.announce(this.#o.doc.heads());
    for (const [name, peer] of this.#peers) this.#sendTo(name, peer);
  }

  /** A peer's announcement: a new peer is met, and one whose heads differ is synced with. */
  hello(name: string, heads: string[]): void {
    const peer = this.#peer(name);
    if (peer === null) return;
    peer.heads = heads;
    if (!sameHeads(heads, this.#o.doc.heads())) this.#sendTo(name, peer);
  }

  /**
   * A sync message from a peer (untrusted bytes); false, and counted, when it is stale (a duplicate, or older
   * than one taken) or Automerge cannot read it.
   */
  receive(name: string, envelope: SyncEnvelope): boolean {
    const peer = this.#peer(name);
    if (peer === null || envelope.epoch < peer.takenEpoch || (envelope.epoch === peer.takenEpoch && envelope.seq <= peer.takenSeq)) {
      this.#stale++;
      return false;
    }
    if (envelope.epoch > peer.takenEpoch) {
      // The peer restarted: what this side had in flight to its old incarnation is gone with it.
      peer.state = A.decodeSyncState(A.encodeSyncState(peer.state));
    }
    peer.takenEpoch = envelope.epoch;
    peer.takenSeq = envelope.seq;
    const before = this.#o.doc.heads();
    try {
      if (envelope.changes === true) {
        const changes = unpackRun(envelope.data);
        if (changes === null) throw new RangeError('not a run of changes');
        [this.#o.doc.doc] = A.applyChanges(this.#o.doc.doc, changes);
      } else {
        const [doc, state] = A.receiveSyncMessage(this.#o.doc.doc, peer.state, envelope.data);
        this.#o.doc.doc = doc;
        peer.state = state;
      }
      peer.heard = true;
    } catch {
      this.#malformed++;
      return false;
    }
    if (!sameHeads(before, this.#o.doc.heads())) this.#o.onRemoteChange();
    return true;
  }

  #peer(name: string): Peer | null {
    let peer = this.#peers.get(name);
    if (peer === undefined) {
      if (this.#peers.size >= MAX_PEERS) return null;
      peer = { state: A.initSyncState(), heads: [], sent: 0, takenEpoch: 0, takenSeq: 0, heard: false, seen: '', stuck: 0, bulkTick: -BULK_RESEND_TICKS };
      this.#peers.set(name, peer);
    }
    return peer;
  }

  #sendTo(name: string, peer: Peer): void {
    const [state, message] = A.generateSyncMessage(this.#o.doc.doc, peer.state);
    if (message === null) {
      peer.state = state;
    } else if (message.length <= this.#o.maxMessageBytes) {
      peer.state = state;
      this.#o.send(name, { epoch: this.#o.epoch, seq: ++peer.sent, data: message });
    } else if (this.#ticks - peer.bulkTick >= BULK_RESEND_TICKS) {
      // Too large for the transport: the changes since what both sides share, in runs. The sync state stays as
      // it was, so the next message is built from what the peer says it has once it has loaded them.
      peer.bulkTick = this.#ticks;
      const doc = this.#o.doc.doc;
      const shared = A.decodeSyncState(A.encodeSyncState(peer.state)).sharedHeads;
      for (const run of changeRuns(A.getChangesSince(doc, A.hasHeads(doc, shared) ? shared : []), this.#o.maxMessageBytes)) {
        this.#o.send(name, { epoch: this.#o.epoch, seq: ++peer.sent, data: run, changes: true });
      }
    }
  }
}

/** Bytes of the length before each change in a run. */
const FRAME = 4;

/**
 * Changes packed into runs of at most `max` bytes, each change after its length (4 bytes, big-endian), so
 * the receiver hands Automerge each change on its own and one that does not parse is refused (Automerge's
 * own incremental format skips what it cannot read, silently). A change larger than `max` goes alone.
 */
function changeRuns(changes: readonly Uint8Array[], max: number): Uint8Array[] {
  return batches(changes, (change) => FRAME + change.length, max).map((run) => {
    const out = new Uint8Array(run.reduce((n, change) => n + FRAME + change.length, 0));
    const view = new DataView(out.buffer);
    let at = 0;
    for (const change of run) {
      view.setUint32(at, change.length);
      out.set(change, at + FRAME);
      at += FRAME + change.length;
    }
    return out;
  });
}

/** The changes of a run (untrusted bytes); null when the framing does not add up. */
function unpackRun(data: Uint8Array): Uint8Array[] | null {
  const view = new DataView(data.buffer, data.byteOffset, data.byteLength);
  const out: Uint8Array[] = [];
  let at = 0;
  while (at < data.length) {
    if (at + FRAME > data.length) return null;
    const length = view.getUint32(at);
    at += FRAME;
    if (length === 0 || at + length > data.length) return null;
    out.push(data.subarray(at, at + length));
    at += length;
  }
  return out.length > 0 ? out : null;
}

export function sameHeads(a: readonly string[], b: readonly string[]): boolean {
  if (a.length !== b.length) return false;
  const set = new Set(a);
  return b.every((h) => set.has(h));
}
