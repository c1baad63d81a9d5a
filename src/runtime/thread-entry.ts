// Entry point of every worker thread: builds the thread's actor system from its boot data, starts its actors
// under a root supervisor, sends heartbeats, and answers the main thread's control requests. If the root
// supervisor gives up, the thread reports it and exits so the main thread restarts the whole thread.
import { parentPort, workerData } from 'node:worker_threads';
import { SecbeatError, toErrorData } from '../errors.ts';
import type { Delivery, MainToThread, ThreadControl, ThreadToMain } from '../messages.ts';
import { recentSecurityEvents } from '../telemetry/events.ts';
import { createRootLogger, setLogLevel } from '../telemetry/log.ts';
import { collectThreadMetrics } from '../telemetry/metrics.ts';
import type { AnyBehavior } from './actor.ts';
import { realClock } from './clock.ts';
import { Supervisor } from './supervisor.ts';
import { ActorSystem } from './system.ts';
import type { ThreadBoot } from './thread.ts';
import { PortBatcher } from './transport.ts';

const port = parentPort;
if (!port) throw new Error('thread-entry.ts runs only as a worker thread');
const boot = workerData as ThreadBoot;
const post = (m: ThreadToMain): void => port.postMessage(m);

const log = createRootLogger(boot.log, { region: boot.region, node: boot.node, thread: boot.thread });
const system = new ActorSystem({
  region: boot.region,
  node: boot.node,
  thread: boot.thread,
  clock: realClock,
  mailboxCapacity: boot.runtime.mailboxCapacity,
  askTimeoutMs: boot.runtime.askTimeoutMs,
  deadLetterCapacity: boot.runtime.deadLetterCapacity,
  chaosEnabled: boot.chaos.enabled,
});
system.setChaosRules(boot.chaos.rules, boot.chaos.enabled);
// Everything not for this thread goes to the main thread, which routes it on.
const toMain = new PortBatcher<Delivery>(port, (batch) => ({ kind: 'deliveries', batch }) satisfies ThreadToMain);
const sendToMain = (delivery: Delivery): boolean => {
  toMain.push(delivery);
  return true;
};
system.setThreadTransport((_thread, delivery) => sendToMain(delivery));
// Deliveries for other nodes go the same way: the main thread holds the node transport (NATS).
system.setNodeTransport({ kind: 'main-thread', send: sendToMain, start: async () => {}, close: async () => {} });

const { behaviors } = (await import(boot.behaviorsModule)) as { behaviors: Record<string, AnyBehavior> };
const root = new Supervisor(
  {
    name: `${boot.thread}/root`,
    strategy: 'one_for_one',
    maxRestarts: boot.runtime.maxRestarts,
    periodMs: boot.runtime.restartPeriodMs,
    backoffInitialMs: boot.runtime.backoffInitialMs,
    backoffMaxMs: boot.runtime.backoffMaxMs,
    clock: realClock,
    onEvent: (e) => {
      if (e.kind === 'child.exited' && e.reason.kind === 'crash') log.warn({ child: e.child, error: e.reason.error }, 'actor exited abnormally');
      if (e.kind === 'escalated') log.error({ child: e.child }, 'thread root supervisor escalates');
    },
  },
  boot.actors.map((a) => {
    const behavior = behaviors[a.behavior];
    if (!behavior) throw new Error(`unknown behaviour ${a.behavior} in ${boot.behaviorsModule}`);
    return system.actorChild({ name: a.name, behavior, input: a.input, restart: a.restart });
  }),
);
system.registerSupervisor(root);

async function handleControl(control: ThreadControl): Promise<unknown> {
  switch (control.op) {
    case 'actors.list':
      return system.actors();
    case 'actor.restart':
      return system.restartActor(control.actor);
    case 'actor.stop':
      return system.stopActor(control.actor);
    case 'actor.suspend':
      return system.suspendActor(control.actor);
    case 'actor.resume':
      return system.resumeActor(control.actor);
    case 'deadletters.list':
      return system.deadLetters.list(control.limit);
    case 'chaos.set':
      return system.setChaosRules(control.rules, control.enabled);
    case 'log.level':
      return setLogLevel(control.level);
    case 'metrics':
      return collectThreadMetrics();
    case 'events.list':
      return recentSecurityEvents(control.limit, control.filter);
    case 'stop':
      clearInterval(heartbeat);
      await root.stop();
      system.failPendingAsks(new SecbeatError('SECBEAT_ERR_THREAD_UNAVAILABLE', `thread ${boot.thread} stopped`).toData());
      setImmediate(() => process.exit(0));
      return null;
  }
}

port.on('message', (m: MainToThread) => {
  if (m.kind === 'deliveries') {
    for (const d of m.batch) system.receive(d);
    return;
  }
  handleControl(m.control).then(
    (value) => post({ kind: 'control.reply', id: m.id, outcome: { ok: true, value: value ?? null } }),
    (err: unknown) => post({ kind: 'control.reply', id: m.id, outcome: { ok: false, error: toErrorData(err) } }),
  );
});

let seq = 0;
const heartbeat = setInterval(() => post({ kind: 'heartbeat', seq: seq++ }), boot.runtime.heartbeatIntervalMs);

try {
  await root.start((reason) => {
    post({ kind: 'escalate', error: reason.kind === 'crash' ? reason.error : { code: 'SECBEAT_ERR_SUPERVISOR_ESCALATED', message: reason.kind } });
    process.exit(1);
  });
} catch (err) {
  post({ kind: 'escalate', error: toErrorData(err) });
  process.exit(1);
}
post({ kind: 'ready', actors: boot.actors.map((a) => a.name) });
