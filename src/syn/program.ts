// SYN mode's XDP program as one object: open and load it (bpf/build/secbeat.bpf.o through the secbeat_xdp addon),
// configure it, keep its allowlist and blocklist, read its counters by reason, attach it to an interface and
// detach it. The SYN-proxy actor owns one; tests drive one through BPF_PROG_TEST_RUN.
import { availableParallelism } from 'node:os';
import { SecbeatError } from '../errors.ts';
import { findXdpObject, loadXdpAddon, type XdpAttachMode, type XdpAttachResult, type XdpBinding, type XdpObjectHandle, type XdpTestRun } from '../native/xdp.ts';
import { BLOCK_VALUE_BYTES, blockValue, cidrOfKey, encodeConfig, LPM_KEY_BYTES, lpmKey, type ListPresence, type XdpSettings } from './maps.ts';

export interface XdpProgramOptions {
  /** bpffs directory where the maps are pinned and, on a restart, reused; null keeps them private. */
  pinDir: string | null;
  /** Entries of the per-source rate-limit map (LRU); 0 keeps the object's 65,536. */
  sourceEntries: number;
}

export interface BlockEntry {
  cidr: string;
  /** When the block ends (Date.now() milliseconds), or null for never. */
  expiresAtMs: number | null;
}

export type ReasonCounters = Record<string, { packets: bigint; bytes: bigint }>;

/** Where the program is attached, and as which program id. */
export interface XdpAttachment {
  ifindex: number;
  mode: XdpAttachMode;
  programId: number;
}

/** Entries per updateBatch call: bounded, so one call never holds the thread for long. */
const BATCH = 4096;

export class XdpProgram {
  readonly #addon: XdpBinding;
  readonly #object: XdpObjectHandle;
  /** What configure() last wrote, and which lists hold entries: both go into the one configuration record. */
  #settings: XdpSettings | null = null;
  #lists: ListPresence = { allow: false, block: false };
  #attached: XdpAttachment | null = null;

  private constructor(addon: XdpBinding, object: XdpObjectHandle) {
    this.#addon = addon;
    this.#object = object;
  }

  /** Opens and loads (verifies) the program; throws a SecbeatError naming what is missing or what failed. */
  static open(options: XdpProgramOptions): XdpProgram {
    const addon = loadXdpAddon();
    if (!addon.ok) throw addon.error;
    const object = findXdpObject();
    if (!object.ok) throw object.error;
    let handle: XdpObjectHandle;
    try {
      handle = new addon.binding.XdpObject(object.path, options.pinDir ?? '', options.sourceEntries, 'secbeat_xdp');
      handle.load();
    } catch (err) {
      throw new SecbeatError('SECBEAT_ERR_INTERNAL', `cannot load ${object.path}: ${err instanceof Error ? err.message : String(err)}`, { cause: err });
    }
    return new XdpProgram(addon.binding, handle);
  }

  get reasons(): readonly string[] {
    return this.#addon.reasons;
  }

  get attachment(): XdpAttachment | null {
    return this.#attached;
  }

  /** Writes the configuration record; lists that are empty (pinned maps may not be) are skipped by the program. */
  configure(settings: XdpSettings): void {
    this.#settings = settings;
    this.#lists = this.#presence();
    this.#writeConfig();
  }

  /** Adds ranges to the allowlist (which wins over everything). */
  allow(cidrs: readonly string[]): void {
    this.#update('sb_allowlist', cidrs.map(lpmKey), () => Buffer.alloc(1, 1));
    this.#listsChanged();
  }

  disallow(cidrs: readonly string[]): number {
    const deleted = this.#delete('sb_allowlist', cidrs.map(lpmKey));
    this.#listsChanged();
    return deleted;
  }

  block(entries: readonly BlockEntry[]): void {
    const nowMs = Date.now();
    const nowNs = this.#addon.monotonicNs();
    const keys = entries.map((e) => lpmKey(e.cidr));
    this.#update('sb_blocklist', keys, (i) => {
      const expires = entries[i]!.expiresAtMs;
      if (expires === null) return blockValue(0n);
      // Wall-clock expiry to the monotonic clock the program reads (a past one stays past); 0 would mean never.
      const at = nowNs + BigInt(Math.round((expires - nowMs) * 1e6));
      return blockValue(at > 0n ? at : 1n);
    });
    this.#listsChanged();
  }

  unblock(cidrs: readonly string[]): number {
    const deleted = this.#delete('sb_blocklist', cidrs.map(lpmKey));
    this.#listsChanged();
    return deleted;
  }

  /** What a list holds now (pinned maps keep entries across restarts): CIDR → monotonic expiry in ns (0: never). */
  entries(list: 'allow' | 'block'): Map<string, bigint> {
    const map = list === 'allow' ? 'sb_allowlist' : 'sb_blocklist';
    const { keys, values, count } = this.#object.dump(map, 1 << 20);
    const out = new Map<string, bigint>();
    for (let i = 0; i < count; i++) {
      out.set(cidrOfKey(keys.subarray(i * LPM_KEY_BYTES, (i + 1) * LPM_KEY_BYTES)), list === 'block' ? values.readBigUInt64LE(i * BLOCK_VALUE_BYTES) : 0n);
    }
    return out;
  }

  /** Blocklist entries whose expiry has passed, deleted; the ranges. */
  sweepExpired(): string[] {
    const now = this.#addon.monotonicNs();
    const expired = [...this.entries('block')].filter(([, at]) => at !== 0n && at <= now).map(([cidr]) => cidr);
    this.unblock(expired);
    return expired;
  }

  counters(): ReasonCounters {
    const raw = this.#object.counters();
    const out: ReasonCounters = {};
    this.#addon.reasons.forEach((reason, i) => {
      out[reason] = { packets: raw[2 * i]!, bytes: raw[2 * i + 1]! };
    });
    return out;
  }

  testRun(packet: Buffer, repeat = 1): XdpTestRun {
    return this.#object.testRun(packet, repeat);
  }

  /**
   * Attaches to `ifname`: native mode, else generic ('auto'), through a link that ends with this object or
   * with the process, so no crash leaves the program attached. Another program on the interface makes this
   * throw, naming it.
   */
  attach(ifname: string, mode: XdpAttachMode | 'auto'): XdpAttachResult {
    const ifindex = this.#addon.ifindex(ifname);
    if (ifindex === 0) throw new SecbeatError('SECBEAT_ERR_INTERNAL', `no network interface named ${JSON.stringify(ifname)} in this namespace`);
    let result: XdpAttachResult;
    try {
      result = this.#object.attach(ifindex, mode);
    } catch (err) {
      const other = this.#object.attachedProgramId(ifindex, 'native') || this.#object.attachedProgramId(ifindex, 'generic');
      const holder = other === 0 ? '' : ` (XDP program id ${other} is attached there: \`bpftool net show dev ${ifname}\`)`;
      throw new SecbeatError('SECBEAT_ERR_INTERNAL', `cannot attach XDP to ${ifname}${holder}: ${err instanceof Error ? err.message : String(err)}`, { cause: err });
    }
    this.#attached = { ifindex, mode: result.mode, programId: this.#object.programId() };
    return result;
  }

  /** Detaches. Idempotent. */
  detach(): void {
    if (this.#attached === null) return;
    this.#attached = null;
    this.#object.detach();
  }

  /** Detaches and releases the object (maps that are pinned stay for the next start). */
  close(): void {
    this.detach();
    this.#object.close();
  }

  /** Which lists hold entries now (one entry read from each). */
  #presence(): ListPresence {
    return { allow: this.#object.dump('sb_allowlist', 1).count > 0, block: this.#object.dump('sb_blocklist', 1).count > 0 };
  }

  /** After a list changed: the record's list bits follow whether each list holds entries (rewritten only on a change). */
  #listsChanged(): void {
    const lists = this.#presence();
    if (lists.allow === this.#lists.allow && lists.block === this.#lists.block) return;
    this.#lists = lists;
    this.#writeConfig();
  }

  #writeConfig(): void {
    // Until the first configure() the record stays as the array map starts, all zeros (no protected port, no list
    // looked up): the lists' bits are written with the settings.
    if (this.#settings === null) return;
    this.#object.updateBatch('sb_config', Buffer.alloc(4), encodeConfig(this.#settings, availableParallelism(), this.#lists), 1);
  }

  #update(map: string, keys: readonly Buffer[], value: (i: number) => Buffer): void {
    for (let start = 0; start < keys.length; start += BATCH) {
      const end = Math.min(keys.length, start + BATCH);
      const values: Buffer[] = [];
      for (let i = start; i < end; i++) values.push(value(i));
      this.#object.updateBatch(map, Buffer.concat(keys.slice(start, end)), Buffer.concat(values), end - start);
    }
  }

  #delete(map: string, keys: readonly Buffer[]): number {
    let deleted = 0;
    for (let start = 0; start < keys.length; start += BATCH) {
      const end = Math.min(keys.length, start + BATCH);
      deleted += this.#object.deleteBatch(map, Buffer.concat(keys.slice(start, end)), end - start);
    }
    return deleted;
  }
}

