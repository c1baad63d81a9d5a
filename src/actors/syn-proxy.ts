// The SYN-proxy actor (main thread, syn mode or [syn_proxy] enabled) owns the XDP program's lifecycle on the
// configured interface: loads it (maps pinned per node, reused on restart), configures it, installs the
// nftables SYNPROXY table that completes cookie handshakes, attaches it, and on every sync tick mirrors the
// allowlist and the blocklists into it (the config's, and the node's own: block-ip, emergency-block, fleet and
// rate-limit blocks, all read from the shared lists every thread checks) and exports its counters. Reloaded
// settings take effect at the next tick. It detaches on stop and after a crash (its stop hook runs then too),
// and the program is attached through a BPF link, so even a killed process leaves no attachment behind.
import { join } from 'node:path';
import { assertNever } from '../errors.ts';
import type { SynProxyMsg, SynStatus } from '../messages.ts';
import type { Behavior } from '../runtime/actor.ts';
import { ensurePinDir } from '../syn/bpffs.ts';
import { canonicalCidr } from '../net/cidr.ts';
import type { XdpSettings } from '../syn/maps.ts';
import { installSynproxy, removeSynproxy, restoreConntrack, strictConntrack, synproxyTableName } from '../syn/netfilter.ts';
import { XdpProgram, type ReasonCounters } from '../syn/program.ts';
import { metrics } from '../telemetry/metrics.ts';

/** What the actor applies, derived from the config by the node (src/node/syn-settings.ts). */
export interface SynProxySettings {
  interface: string;
  xdpMode: 'native' | 'generic' | 'auto';
  xdp: XdpSettings;
  allowlist: readonly string[];
  blocklist: readonly string[];
  netfilter: boolean;
  pinDir: string | null;
  sourceEntries: number;
  syncIntervalMs: number;
}

/** A blocked range and when its block ends (Date.now() milliseconds), null for never. */
export interface MirroredBlock {
  cidr: string;
  expiresAtMs: number | null;
}

export interface SynProxyInput {
  nodeId: string;
  /** The settings as the running config has them (read at every tick, so reloads apply). */
  settings: () => SynProxySettings;
  /** The node's own blocks (block-ip, emergency-block, fleet, rate limit), from the lists every thread checks. */
  nodeBlocks: () => MirroredBlock[];
}

interface SynProxyState {
  program: XdpProgram;
  applied: SynProxySettings;
  table: string;
  /** nf_conntrack_tcp_loose before we set it, to restore; null when netfilter is off. */
  looseBefore: string | null;
  /** What the program's lists hold, as we last wrote them: CIDR → expiry (ms, null: never). */
  blocked: Map<string, number | null>;
  allowed: Set<string>;
  counted: ReasonCounters;
  input: SynProxyInput;
}

/** Reasons that are refusals, counted in secbeat_attacks_blocked_total{mode="syn"} too. */
const PASSING = new Set(['pass', 'allowlist', 'flow', 'cookie_ack', 'synack']);

export const synProxy: Behavior<SynProxyState, SynProxyMsg, SynProxyInput> = {
  name: 'syn-proxy',
  async init(ctx, input) {
    const settings = input.settings();
    const pinDir = settings.pinDir === null ? null : join(settings.pinDir, input.nodeId);
    if (pinDir !== null) await ensurePinDir(pinDir);
    const program = XdpProgram.open({ pinDir, sourceEntries: settings.sourceEntries });
    const table = synproxyTableName(input.nodeId);
    let looseBefore: string | null = null;
    try {
      program.configure(settings.xdp);
      if (settings.netfilter) {
        looseBefore = await strictConntrack();
        await installSynproxy(synproxyRules(table, settings));
      }
      const attached = program.attach(settings.interface, settings.xdpMode);
      if (attached.nativeError !== null) {
        ctx.log.warn({ interface: settings.interface, nativeError: attached.nativeError }, 'XDP native mode refused; attached in generic (skb) mode');
      }
      ctx.log.info({ interface: settings.interface, mode: attached.mode, ports: settings.xdp.protectedTcpPorts, pinDir }, 'XDP SYN proxy attached');
    } catch (err) {
      await release(program, settings.netfilter ? table : null, looseBefore);
      throw err;
    }
    // What expired in pinned maps while no node ran goes first, so it is not taken for a live entry below.
    program.sweepExpired();
    const state: SynProxyState = {
      program,
      applied: settings,
      table,
      looseBefore,
      // Pinned maps come back with what a previous run put in them: start from that, not from nothing.
      blocked: new Map([...program.entries('block').keys()].map((cidr) => [cidr, null])),
      allowed: new Set(program.entries('allow').keys()),
      counted: program.counters(),
      input,
    };
    metrics().xdpAttached.set({ mode: program.attachment!.mode }, 1);
    syncLists(state, Date.now());
    ctx.schedule(settings.syncIntervalMs, { type: 'syn.sync' });
    return state;
  },
  async receive(state, msg, ctx) {
    switch (msg.type) {
      case 'syn.sync': {
        const settings = state.input.settings();
        if (JSON.stringify(settings.xdp) !== JSON.stringify(state.applied.xdp)) state.program.configure(settings.xdp);
        // Whether nftables is managed at all, the interface, and the maps' place and size are fixed until a restart.
        if (state.applied.netfilter) {
          const rules = synproxyRules(state.table, settings);
          if (JSON.stringify(rules) !== JSON.stringify(synproxyRules(state.table, state.applied))) await installSynproxy(rules);
        }
        state.applied = { ...settings, netfilter: state.applied.netfilter, interface: state.applied.interface };
        syncLists(state, Date.now());
        exportCounters(state);
        ctx.schedule(settings.syncIntervalMs, { type: 'syn.sync' });
        return state;
      }
      case 'syn.status': {
        const attachment = state.program.attachment;
        const packets: Record<string, number> = {};
        for (const [reason, { packets: n }] of Object.entries(state.program.counters())) packets[reason] = Number(n);
        const status: SynStatus = {
          interface: state.applied.interface,
          mode: attachment?.mode ?? null,
          programId: attachment?.programId ?? 0,
          protectedPorts: [...state.applied.xdp.protectedTcpPorts],
          allowlist: state.allowed.size,
          blocklist: state.blocked.size,
          packets,
        };
        ctx.reply(status);
        return state;
      }
      default:
        return assertNever(msg);
    }
  },
  async stop(state, ctx) {
    const mode = state.program.attachment?.mode;
    exportCounters(state);
    await release(state.program, state.applied.netfilter ? state.table : null, state.looseBefore);
    if (mode !== undefined) metrics().xdpAttached.set({ mode }, 0);
    ctx.log.info({ interface: state.applied.interface }, 'XDP SYN proxy detached');
  },
};

function synproxyRules(table: string, settings: SynProxySettings) {
  const { xdp } = settings;
  return { table, interface: settings.interface, ports: xdp.protectedTcpPorts, mss4: xdp.mss4, mss6: xdp.mss6, wscale: xdp.wscale };
}

async function release(program: XdpProgram, table: string | null, looseBefore: string | null): Promise<void> {
  program.close();
  if (table !== null) await removeSynproxy(table);
  if (looseBefore !== null) await restoreConntrack(looseBefore);
}

/** A range in the text the maps give back; one that is not a range stays as it is, for lpmKey to refuse by name. */
function canonical(cidr: string): string {
  return canonicalCidr(cidr) ?? cidr;
}

/** The config's lists in canonical text, computed once per list: a reload brings new arrays, ticks reuse them. */
const canonicalLists = new WeakMap<readonly string[], readonly string[]>();

function canonicalList(list: readonly string[]): readonly string[] {
  let canonicalText = canonicalLists.get(list);
  if (canonicalText === undefined) {
    canonicalText = list.map(canonical);
    canonicalLists.set(list, canonicalText);
  }
  return canonicalText;
}

/**
 * Brings the program's lists to what they should hold: the config's allowlist; the config's blocklist and the
 * node's blocks (the later expiry wins when both name a range). Only differences are written; a block whose time
 * ran out is no longer wanted, so it comes out as a difference too.
 */
function syncLists(state: SynProxyState, nowMs: number): void {
  const { program, applied, input } = state;
  // Every range in its one canonical text (192.0.2.7 is 192.0.2.7/32, as the maps give it back), so that a range
  // named two ways is one entry, and a removal never takes out what an addition just wrote.
  const wantAllowed = new Set(canonicalList(applied.allowlist));
  const added = [...wantAllowed].filter((cidr) => !state.allowed.has(cidr));
  const removed = [...state.allowed].filter((cidr) => !wantAllowed.has(cidr));
  if (removed.length > 0) program.disallow(removed);
  if (added.length > 0) program.allow(added);
  state.allowed = wantAllowed;

  const wantBlocked = new Map<string, number | null>(canonicalList(applied.blocklist).map((cidr) => [cidr, null]));
  for (const block of input.nodeBlocks()) {
    if (block.expiresAtMs !== null && block.expiresAtMs <= nowMs) continue;
    const cidr = canonical(block.cidr);
    const had = wantBlocked.get(cidr);
    if (had === undefined || (had !== null && (block.expiresAtMs === null || block.expiresAtMs > had))) wantBlocked.set(cidr, block.expiresAtMs);
  }
  const changed = [...wantBlocked].filter(([cidr, expires]) => state.blocked.get(cidr) !== expires);
  const gone = [...state.blocked.keys()].filter((cidr) => !wantBlocked.has(cidr));
  if (gone.length > 0) program.unblock(gone);
  if (changed.length > 0) program.block(changed.map(([cidr, expiresAtMs]) => ({ cidr, expiresAtMs })));
  state.blocked = wantBlocked;
  metrics().xdpListEntries.set({ list: 'allow' }, state.allowed.size);
  metrics().xdpListEntries.set({ list: 'block' }, state.blocked.size);
}

/** Adds what the kernel counted since the last export to the Prometheus counters. */
function exportCounters(state: SynProxyState): void {
  const now = state.program.counters();
  const m = metrics();
  let total = 0;
  for (const [reason, { packets, bytes }] of Object.entries(now)) {
    const before = state.counted[reason] ?? { packets: 0n, bytes: 0n };
    const dp = Number(packets - before.packets);
    const db = Number(bytes - before.bytes);
    if (dp <= 0) continue;
    total += dp;
    m.xdpPackets.inc({ reason }, dp);
    m.xdpBytes.inc({ reason }, db);
    if (!PASSING.has(reason)) m.attacksBlocked.inc({ mode: 'syn', reason }, dp);
  }
  if (total > 0) m.packetsProcessed.inc({ mode: 'syn' }, total);
  state.counted = now;
}
