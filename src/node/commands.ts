// Executes one decoded admin request against the running node. The admin socket and the REST API
// (src/admin/rest-api.ts) call this one implementation, so `secbeat ctl` and the API can never disagree.
import { SecbeatError, assertNever } from '../errors.ts';
import {
  CONFIG_RELOAD_TIMEOUT_MS,
  decodeChaosRule,
  decodeMsg,
  formatAddress,
  parseAddress,
  POLICY_KINDS,
  type ActorInfo,
  type Address,
  type AdminRequest,
  type DeadLetter,
  type EventFilter,
  type ThreadInfo,
} from '../messages.ts';
import { ChaosFilter } from '../runtime/chaos.ts';
import { recentSecurityEvents, type SecurityEventRecord } from '../telemetry/events.ts';
import { logSecurityEvent } from '../telemetry/log.ts';
import { LISTENER_ACTOR, MAIN_ACTORS, type SecbeatNode } from './node.ts';

/** Which interface a command came through; security events (blocks, unblocks) record it. */
export type CommandSource = 'admin' | 'api';

export async function executeAdminCommand(node: SecbeatNode, req: AdminRequest, source: CommandSource = 'admin'): Promise<unknown> {
  switch (req.cmd) {
    case 'ping':
      return 'pong';
    case 'threads.list':
      return { threads: threads(node) };
    case 'actors.list':
      return { actors: await actors(node) };
    case 'actor.inspect': {
      const address = resolve(node, req.address);
      const text = formatAddress(address);
      const info = (await actors(node)).find((a) => a.address === text);
      if (!info) throw new SecbeatError('SECBEAT_ERR_ACTOR_NOT_FOUND', `no actor at ${text}`);
      return info;
    }
    case 'actor.restart':
    case 'actor.stop':
    case 'actor.suspend':
    case 'actor.resume':
      await actorOp(node, resolve(node, req.address), req.cmd);
      return { address: formatAddress(resolve(node, req.address)), done: req.cmd };
    case 'actor.inject': {
      const address = resolve(node, req.address);
      const decoded = decodeMsg(req.message);
      if (!decoded.ok) throw new SecbeatError('SECBEAT_ERR_MESSAGE_INVALID', `message: ${decoded.issues.join('; ')}`);
      if (req.ask) return { reply: await node.system.ask(address, decoded.value, req.timeoutMs) };
      node.system.tell(address, decoded.value);
      return { sent: true, to: formatAddress(address), type: decoded.value.type };
    }
    case 'thread.restart':
      node.thread(req.thread);
      await node.threadSupervisor.restartChild(req.thread);
      return { thread: req.thread, restarted: true };
    case 'thread.terminate':
      requireChaos(node);
      await node.thread(req.thread).terminate();
      return { thread: req.thread, terminated: true };
    case 'chaos.list':
      return { enabled: node.config.chaos.enabled, rules: node.chaosRules };
    case 'chaos.set': {
      requireChaos(node);
      const decoded = decodeChaosRule(req.rule);
      if (!decoded.ok) throw new SecbeatError('SECBEAT_ERR_CHAOS_RULE_INVALID', `rule: ${decoded.issues.join('; ')}`);
      const rule = ChaosFilter.ruleFromSpec(decoded.value, node.clock.now());
      await node.setChaos([...node.chaosRules.filter((r) => r.id !== rule.id), rule]);
      return { rule };
    }
    case 'chaos.clear': {
      requireChaos(node);
      const before = node.chaosRules;
      const kept = req.rule === undefined ? [] : before.filter((r) => r.id !== req.rule);
      await node.setChaos(kept);
      return { cleared: before.length - kept.length };
    }
    case 'deadletters.list':
      return { deadLetters: await deadLetters(node, req.limit), total: node.system.deadLetters.total };
    case 'node.stats':
      return stats(node);
    case 'config.show':
    case 'config.validate':
    case 'config.reload': {
      const to = node.system.address(MAIN_ACTORS.config);
      if (req.cmd === 'config.show') return node.system.ask(to, { type: 'config.show' });
      const msg = req.file === undefined ? { type: req.cmd } : { type: req.cmd, file: req.file };
      return node.system.ask(to, msg, req.cmd === 'config.reload' ? CONFIG_RELOAD_TIMEOUT_MS : undefined);
    }
    case 'log.level':
      await node.setLogLevel(req.level);
      return { level: req.level };
    case 'block.add':
      return node.blockIp(req.ip, req.durationSec ?? null, source);
    case 'block.remove':
      return { ip: req.ip, removed: node.unblockIp(req.ip, source) };
    case 'block.list':
      return { blocked: node.blocklist.list(), capacity: node.blocklist.capacity };
    case 'cidr.block':
      return blockCidr(node, req.cidr, req.durationSec ?? null, source);
    case 'cidr.unblock':
      return unblockCidr(node, req.cidr, source);
    case 'cidr.list':
      return { blocked: node.cidrBlocklist.list(), capacity: node.cidrBlocklist.capacity };
    case 'events.list':
      return { events: await securityEvents(node, req.type, req.limit) };
    case 'certs.list':
      return node.certificates(req.limit);
    case 'syn.status':
      return node.synStatus();
    case 'domains.upsert': {
      const { upserted, count } = await node.tenantsOrThrow().upsert('domain', req.domains, 'domains');
      return { upserted, domains: count };
    }
    case 'domains.remove': {
      const { removed, count } = node.tenantsOrThrow().remove('domain', req.hosts);
      return { removed, domains: count };
    }
    case 'domains.list': {
      const tenants = node.tenantsOrThrow();
      const { count, first } = tenants.list('domain', req.limit);
      return { domains: count, ...tenants.status(), first };
    }
    case 'domains.compact': {
      const tenants = node.tenantsOrThrow();
      return { started: await tenants.compact(), generation: tenants.generation };
    }
    case 'policy.upsert': {
      const { upserted, count } = await node.tenantsOrThrow().upsert(req.kind, req.entries, 'entries');
      return { kind: req.kind, upserted, entries: count };
    }
    case 'policy.remove': {
      const { removed, count } = node.tenantsOrThrow().remove(req.kind, req.names);
      return { kind: req.kind, removed, entries: count };
    }
    case 'policy.list': {
      const tenants = node.tenantsOrThrow();
      return Object.fromEntries(POLICY_KINDS.map((kind) => [kind, tenants.list(kind, req.limit)]));
    }
    case 'node.drain':
      return { threads: await node.drain(req.timeoutMs) };
    case 'node.shutdown':
      // Answer first; the socket closes as part of the shutdown.
      setImmediate(() => void node.shutdown(req.timeoutMs));
      return { shuttingDown: true, drainTimeoutMs: req.timeoutMs };
    default:
      return assertNever(req);
  }
}

function resolve(node: SecbeatNode, text: string): Address {
  const address = parseAddress(text, node.system.here);
  if (!address) {
    throw new SecbeatError('SECBEAT_ERR_ADMIN_INVALID_ARGS', `address: expected actor, thread/actor or region/node/thread/actor, got ${JSON.stringify(text)}`);
  }
  return address;
}

function requireChaos(node: SecbeatNode): void {
  if (!node.config.chaos.enabled) throw new SecbeatError('SECBEAT_ERR_CHAOS_DISABLED', 'chaos is disabled: set [chaos] enabled = true and reload');
}

function threads(node: SecbeatNode): ThreadInfo[] {
  const main: ThreadInfo = {
    thread: 'main',
    status: 'running',
    restarts: 0,
    threadId: 0,
    lastHeartbeatAgoMs: null,
    actors: node.system.actors().length,
  };
  return [main, ...node.threads.map((t) => t.info())];
}

async function actors(node: SecbeatNode): Promise<ActorInfo[]> {
  const remote = await node.onEveryThread({ op: 'actors.list' });
  return [...node.system.actors(), ...remote.flatMap((r) => (r.value as ActorInfo[] | undefined) ?? [])];
}

async function actorOp(node: SecbeatNode, address: Address, cmd: 'actor.restart' | 'actor.stop' | 'actor.suspend' | 'actor.resume'): Promise<void> {
  const here = node.system.here;
  if (address.region !== here.region || address.node !== here.node) {
    throw new SecbeatError('SECBEAT_ERR_TRANSPORT_UNAVAILABLE', `${formatAddress(address)} is on another node; run ctl there`);
  }
  if (address.thread !== 'main') {
    await node.thread(address.thread).control({ op: cmd, actor: address.actor }, 10_000);
    return;
  }
  switch (cmd) {
    case 'actor.restart':
      return node.system.restartActor(address.actor);
    case 'actor.stop':
      return node.system.stopActor(address.actor);
    case 'actor.suspend':
      return node.system.suspendActor(address.actor);
    case 'actor.resume':
      return node.system.resumeActor(address.actor);
  }
}

async function deadLetters(node: SecbeatNode, limit: number): Promise<(DeadLetter & { thread: string })[]> {
  const remote = await node.onEveryThread({ op: 'deadletters.list', limit });
  return mergeByTime(node.system.deadLetters.list(limit), remote, limit);
}

/** Each thread keeps its own ring (src/telemetry/events.ts); they are read only when asked for. */
async function securityEvents(node: SecbeatNode, filter: EventFilter, limit: number): Promise<(SecurityEventRecord & { thread: string })[]> {
  const remote = await node.onEveryThread({ op: 'events.list', limit, filter });
  return mergeByTime(recentSecurityEvents(limit, filter), remote, limit);
}

/**
 * The main thread's records and every worker's answer (threads that did not answer are left out), tagged
 * with their thread and ordered by time: the newest `limit`, oldest first.
 */
function mergeByTime<T extends { at: number }>(main: readonly T[], remote: readonly { thread: string; value?: unknown }[], limit: number): (T & { thread: string })[] {
  const all = [
    ...main.map((x) => ({ ...x, thread: 'main' })),
    ...remote.flatMap((r) => ((r.value as T[] | undefined) ?? []).map((x) => ({ ...x, thread: r.thread }))),
  ];
  return all.sort((a, b) => a.at - b.at).slice(-limit);
}

function blockCidr(node: SecbeatNode, cidr: string, durationSec: number | null, source: CommandSource): { cidr: string; expiresAt: number | null } {
  const expiresAt = durationSec === null ? null : Math.ceil(node.clock.now() / 1000) + durationSec;
  const added = node.cidrBlocklist.add(cidr, expiresAt);
  if (added.outcome === 'invalid') throw new SecbeatError('SECBEAT_ERR_ADMIN_INVALID_ARGS', `cidr: ${added.reason}`);
  if (added.outcome === 'full') {
    throw new SecbeatError('SECBEAT_ERR_ADMIN_INVALID_ARGS', `the range blocklist is full (${node.cidrBlocklist.capacity} networks); unblock some first`);
  }
  logSecurityEvent(node.log, { event: 'cidr.blocked', cidr: added.cidr, durationSec, source });
  return { cidr: added.cidr, expiresAt };
}

function unblockCidr(node: SecbeatNode, cidr: string, source: CommandSource): { cidr: string; removed: boolean } {
  const removed = node.cidrBlocklist.remove(cidr);
  if (removed.outcome === 'invalid') throw new SecbeatError('SECBEAT_ERR_ADMIN_INVALID_ARGS', `cidr: ${removed.reason}`);
  if (removed.outcome === 'removed') logSecurityEvent(node.log, { event: 'cidr.unblocked', cidr: removed.cidr, source });
  return { cidr: removed.cidr, removed: removed.outcome === 'removed' };
}

async function stats(node: SecbeatNode): Promise<Record<string, unknown>> {
  const listeners = await Promise.all(
    node.threads.map((t) =>
      node.system.ask(node.system.address(LISTENER_ACTOR, t.name), { type: 'listener.stats' } as const, 2_000).catch(() => null),
    ),
  );
  const mem = process.memoryUsage();
  const live = listeners.filter((l) => l !== null);
  return {
    region: node.config.platform.region,
    node: node.config.platform.node_id,
    mode: node.config.server.mode,
    pid: process.pid,
    uptimeSec: Math.round((node.clock.now() - node.startedAt) / 1000),
    rssBytes: mem.rss,
    heapUsedBytes: mem.heapUsed,
    threads: threads(node).length,
    threadRestarts: node.threads.reduce((n, t) => n + t.info().restarts, 0),
    connectionsActive: live.reduce((n, l) => n + l.active, 0),
    connectionsAccepted: live.reduce((n, l) => n + l.accepted, 0),
    connectionsRefused: live.reduce((n, l) => n + l.refused, 0),
    bytesIn: live.reduce((n, l) => n + l.bytesIn, 0),
    bytesOut: live.reduce((n, l) => n + l.bytesOut, 0),
    blocked: node.blocklist.size,
    chaosRules: node.chaosRules.length,
    deadLettersMain: node.system.deadLetters.total,
  };
}
