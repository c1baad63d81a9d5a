// The typed surface of the secbeat_xdp addon (native/src/xdp_addon.cc, over libbpf) and its loader, and where
// the XDP object it loads (bpf/secbeat.bpf.c, built by scripts/build-bpf.sh) is looked for. SYN mode uses it
// through src/syn/; nothing else needs it, so tcp and l7 modes never load it.
import { existsSync } from 'node:fs';
import { dirname, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { SecbeatError } from '../errors.ts';
import { candidatePaths, exportsCheck, loadAddon, type AddonLoadResult } from './load.ts';

/** XDP verdicts (include/uapi/linux/bpf.h, enum xdp_action). */
export const XDP_ACTION = { ABORTED: 0, DROP: 1, PASS: 2, TX: 3, REDIRECT: 4 } as const;
export type XdpActionCode = (typeof XDP_ACTION)[keyof typeof XDP_ACTION];

export type XdpAttachMode = 'native' | 'generic';

export interface XdpAttachResult {
  mode: XdpAttachMode;
  /** Why native mode was refused when 'auto' fell back to generic; null otherwise. */
  nativeError: string | null;
}

export interface XdpTestRun {
  action: number;
  /** The packet as the program left it (a SYN-ACK for XDP_TX). */
  packet: Buffer;
  /** Average run time per repetition, as the kernel measured it. */
  durationNs: number;
}

/** One loaded XDP object. Methods throw Errors with `code` (an errno name) and libbpf's log when it has one. */
export interface XdpObjectHandle {
  /** Loads the program through the verifier and creates (or reuses pinned) maps. Idempotent. */
  load(): void;
  /**
   * Attaches through a BPF link this object owns: closing the object, or the process ending however it ends,
   * detaches the program. 'auto' tries native (driver) mode and falls back to generic.
   */
  attach(ifindex: number, mode: XdpAttachMode | 'auto'): XdpAttachResult;
  /** Ends the link. Idempotent. */
  detach(): void;
  /** The id of the program attached in `mode`, 0 for none. */
  attachedProgramId(ifindex: number, mode: XdpAttachMode): number;
  programId(): number;
  updateBatch(map: string, keys: Buffer, values: Buffer, count: number): void;
  /** How many of the keys existed and were deleted. */
  deleteBatch(map: string, keys: Buffer, count: number): number;
  /** At most `limit` entries, keys and values packed back to back; read in batches where the map type allows. */
  dump(map: string, limit: number): { keys: Buffer; values: Buffer; count: number };
  /** [packets, bytes] per reason (XdpBinding.reasons order), summed over CPUs. */
  counters(): BigUint64Array;
  testRun(packet: Buffer, repeat: number): XdpTestRun;
  /**
   * Live-frames mode (BPF_F_TEST_XDP_LIVE_FRAMES): `repeat` fresh frames of `packet` as if received on
   * `ifindex`, XDP_TX sending them out there, `batchSize` at a time; only the duration comes back.
   */
  testRun(packet: Buffer, repeat: number, ifindex: number, batchSize: number): { action: null; packet: null; durationNs: number };
  close(): void;
}

export interface XdpBinding {
  /** new XdpObject(objectPath, pinDir ('' for none), sourceEntries (0: the object's default), programName). */
  XdpObject: new (objectPath: string, pinDir: string, sourceEntries: number, programName: string) => XdpObjectHandle;
  /** CLOCK_MONOTONIC_COARSE, the clock the program reads (bpf_ktime_get_coarse_ns). */
  monotonicNs(): bigint;
  /** The interface's index in this network namespace, 0 when there is none. */
  ifindex(name: string): number;
  /** Counter reasons in index order, from bpf/secbeat.h: defined once, there. */
  reasons: readonly string[];
  abiVersion: number;
}

export const XDP_ABI_VERSION = 1;

const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '../..');

/** Environment variables naming the addon and the object to load instead of the build outputs. */
export const XDP_ADDON_ENV = 'SECBEAT_XDP_ADDON';
export const XDP_OBJECT_ENV = 'SECBEAT_XDP_OBJECT';

export function xdpAddonCandidates(env: NodeJS.ProcessEnv = process.env): string[] {
  return candidatePaths(env, XDP_ADDON_ENV, [resolve(ROOT, 'native/build/Release/secbeat_xdp.node'), resolve(ROOT, 'native/build/Debug/secbeat_xdp.node')]);
}

export function xdpObjectCandidates(env: NodeJS.ProcessEnv = process.env): string[] {
  return candidatePaths(env, XDP_OBJECT_ENV, [resolve(ROOT, 'bpf/build/secbeat.bpf.o')]);
}

export type XdpLoadResult = AddonLoadResult<XdpBinding>;

let cached: XdpLoadResult | null = null;

/** The addon (cached per thread); on failure, every path tried and why. */
export function loadXdpAddon(): XdpLoadResult {
  if (cached !== null) return cached;
  if (process.platform !== 'linux') {
    cached = { ok: false, error: new SecbeatError('SECBEAT_ERR_INTERNAL', `the XDP addon needs Linux, this is ${process.platform}`) };
    return cached;
  }
  cached = loadAddon<XdpBinding>(
    xdpAddonCandidates(),
    'the XDP addon (secbeat_xdp)',
    '(needs libbpf-dev when `npm run build:native` runs)',
    exportsCheck('XdpObject', XDP_ABI_VERSION, 'secbeat_xdp'),
  );
  return cached;
}

/** The XDP object's path, or an error listing the paths tried. */
export function findXdpObject(): { ok: true; path: string } | { ok: false; error: SecbeatError } {
  const candidates = xdpObjectCandidates();
  const found = candidates.find((path) => existsSync(path));
  if (found !== undefined) return { ok: true, path: found };
  const message = `the XDP object is missing (run \`npm run build:bpf\`: it needs clang, bpftool and libbpf-dev); tried:\n  ${candidates.map((p) => `${p}: not found`).join('\n  ')}`;
  return { ok: false, error: new SecbeatError('SECBEAT_ERR_INTERNAL', message) };
}
