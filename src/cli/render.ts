// Human-readable output of `secbeat ctl` (src/cli/ctl.ts): tables for thread, actor and security-event lists,
// `key: value` lines for one actor and node stats, pretty JSON for everything else. A result that does not
// have the expected shape (a newer or older node) is printed as JSON rather than guessed at.
import type { ActorInfo, AdminCommandName, CertificateInfo, CertificateList, SynStatus, ThreadInfo } from '../messages.ts';

/** The fields each table reads; a list whose elements lack one is shown as JSON instead. */
const THREAD_FIELDS = ['thread', 'status', 'restarts', 'lastHeartbeatAgoMs', 'actors'] as const satisfies readonly (keyof ThreadInfo)[];
const ACTOR_FIELDS = [
  'address',
  'behavior',
  'status',
  'mailboxDepth',
  'mailboxCapacity',
  'processed',
  'dropped',
  'restarts',
] as const satisfies readonly (keyof ActorInfo)[];

/** A security event as `events.list` returns it (src/telemetry/events.ts): these fields, then its own. */
interface EventRow {
  at: number;
  thread: string;
  event: string;
  [field: string]: unknown;
}
const EVENT_FIELDS = ['at', 'thread', 'event'] as const;
const CERTIFICATE_FIELDS = ['name', 'notAfterMs'] as const satisfies readonly (keyof CertificateInfo)[];
const SYN_FIELDS = ['interface', 'mode', 'programId', 'protectedPorts', 'allowlist', 'blocklist', 'packets'] as const satisfies readonly (keyof SynStatus)[];

export function renderResult(cmd: AdminCommandName, result: unknown): string {
  if (typeof result === 'string') return result;
  switch (cmd) {
    case 'threads.list':
      if (isListOf<'threads', ThreadInfo>(result, 'threads', THREAD_FIELDS)) return threadTable(result.threads);
      break;
    case 'actors.list':
      if (isListOf<'actors', ActorInfo>(result, 'actors', ACTOR_FIELDS)) return actorTable(result.actors);
      break;
    case 'actor.inspect':
      if (isRecord(result)) return keyValues(result);
      break;
    case 'node.stats':
      if (isRecord(result)) return keyValues(result);
      break;
    case 'events.list':
      if (isListOf<'events', EventRow>(result, 'events', EVENT_FIELDS)) return eventTable(result.events);
      break;
    case 'certs.list':
      if (isListOf<'expiringFirst', CertificateInfo>(result, 'expiringFirst', CERTIFICATE_FIELDS)) return certificateTable(result as CertificateList);
      break;
    case 'syn.status':
      if (isRecord(result) && SYN_FIELDS.every((f) => f in result) && Array.isArray(result['protectedPorts']) && isRecord(result['packets'])) {
        return synStatus(result as unknown as SynStatus);
      }
      break;
    default:
      break;
  }
  return JSON.stringify(result, null, 2);
}

function threadTable(threads: readonly ThreadInfo[]): string {
  return table(
    [
      { title: 'THREAD' },
      { title: 'STATUS' },
      { title: 'RESTARTS', right: true },
      { title: 'HEARTBEAT', right: true },
      { title: 'ACTORS', right: true },
    ],
    threads.map((t) => [t.thread, t.status, String(t.restarts), t.lastHeartbeatAgoMs === null ? '-' : age(t.lastHeartbeatAgoMs), String(t.actors)]),
  );
}

function actorTable(actors: readonly ActorInfo[]): string {
  return table(
    [
      { title: 'ADDRESS' },
      { title: 'BEHAVIOR' },
      { title: 'STATUS' },
      { title: 'MAILBOX', right: true },
      { title: 'PROCESSED', right: true },
      { title: 'DROPPED', right: true },
      { title: 'RESTARTS', right: true },
    ],
    actors.map((a) => [
      a.address,
      a.behavior,
      a.status,
      `${a.mailboxDepth}/${a.mailboxCapacity}`,
      String(a.processed),
      String(a.dropped),
      String(a.restarts),
    ]),
  );
}

function eventTable(events: readonly EventRow[]): string {
  return table(
    [{ title: 'TIME' }, { title: 'THREAD' }, { title: 'EVENT' }, { title: 'DETAILS' }],
    events.map(({ at, thread, event, ...fields }) => [
      typeof at === 'number' ? time(at) : scalar(at),
      thread,
      event,
      Object.entries(fields)
        .map(([k, v]) => `${k}=${scalar(v)}`)
        .join(' '),
    ]),
  );
}

function certificateTable(list: CertificateList): string {
  const summary = [
    `names: ${list.names}`,
    `certificates: ${list.certificates}`,
    `default expires: ${list.defaultNotAfterMs === null ? '-' : time(list.defaultNotAfterMs)}`,
  ].join('  ');
  const shown = list.expiringFirst.length < list.names ? `\n(the ${list.expiringFirst.length} that expire first; --limit N for more)` : '';
  return `${summary}\n${table([{ title: 'NAME' }, { title: 'NOT AFTER' }], list.expiringFirst.map((c) => [c.name, time(c.notAfterMs)]))}${shown}`;
}

/** The attachment in `key: value` lines, then packets per reason, busiest first. */
function synStatus(status: SynStatus): string {
  const head = keyValues({
    interface: status.interface,
    attached: status.mode ?? 'no',
    program: status.programId,
    'protected ports': status.protectedPorts.join(',') || '-',
    allowlist: status.allowlist,
    blocklist: status.blocklist,
  });
  const reasons = Object.entries(status.packets).sort(([, a], [, b]) => b - a);
  return `${head}\n${table([{ title: 'REASON' }, { title: 'PACKETS', right: true }], reasons.map(([reason, n]) => [reason, String(n)]))}`;
}

interface Column {
  title: string;
  /** Numbers read best right-aligned. */
  right?: boolean;
}

function table(columns: readonly Column[], rows: readonly (readonly string[])[]): string {
  const all = [columns.map((c) => c.title), ...rows];
  const widths = columns.map((_, i) => Math.max(...all.map((r) => (r[i] ?? '').length)));
  return all
    .map((row) =>
      columns
        .map((c, i) => {
          const cell = row[i] ?? '';
          return c.right ? cell.padStart(widths[i]!) : cell.padEnd(widths[i]!);
        })
        .join('  ')
        .trimEnd(),
    )
    .join('\n');
}

/** One `key: value` line per field, keys aligned; `{ code, message }` errors read as `CODE: message`. */
function keyValues(record: Record<string, unknown>): string {
  const keys = Object.keys(record);
  const width = Math.max(0, ...keys.map((k) => k.length + 1));
  return keys.map((k) => `${`${k}:`.padEnd(width)} ${scalar(record[k])}`).join('\n');
}

function scalar(value: unknown): string {
  if (value === null || value === undefined) return '-';
  if (typeof value === 'string') return value;
  if (typeof value === 'number' || typeof value === 'boolean') return String(value);
  if (isRecord(value) && typeof value['code'] === 'string' && typeof value['message'] === 'string') return `${value['code']}: ${value['message']}`;
  return JSON.stringify(value);
}

function time(ms: number): string {
  return Number.isFinite(ms) ? new Date(ms).toISOString() : scalar(ms);
}

function age(ms: number): string {
  return ms < 1_000 ? `${Math.round(ms)}ms` : `${(ms / 1_000).toFixed(1)}s`;
}

function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

/** `{ [key]: T[] }` where every element has at least the given fields; enough to render without guessing. */
function isListOf<K extends string, T>(value: unknown, key: K, fields: readonly string[]): value is Record<K, T[]> {
  if (!isRecord(value)) return false;
  const list = value[key];
  return Array.isArray(list) && list.every((item) => isRecord(item) && fields.every((f) => f in item));
}
