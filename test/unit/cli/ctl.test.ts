// `secbeat ctl`: argument parsing to AdminCommands (table-driven), the human renderers, socket resolution,
// and exit codes end to end against a real AdminServer with an in-test handler.
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { pino } from 'pino';
import { afterEach, describe, expect, it } from 'vitest';
import { AdminServer, type AdminHandler } from '../../../src/admin/server.ts';
import { CTL_USAGE, DEFAULT_SOCKET_PATH, parseCtlArgs, runCtl, socketPathFor, type CtlFlags } from '../../../src/cli/ctl.ts';
import { EXIT_CODES } from '../../../src/cli/exit-codes.ts';
import { renderResult } from '../../../src/cli/render.ts';
import { SecbeatError } from '../../../src/errors.ts';
import type { ActorInfo, AdminCommand, ThreadInfo } from '../../../src/messages.ts';

const cleanups: (() => Promise<void>)[] = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});

const COMMAND_CASES: [string, AdminCommand][] = [
  ['ping', { cmd: 'ping' }],
  ['threads', { cmd: 'threads.list' }],
  ['actors', { cmd: 'actors.list' }],
  ['inspect w0/listener', { cmd: 'actor.inspect', address: 'w0/listener' }],
  ['restart config', { cmd: 'actor.restart', address: 'config' }],
  ['stop eu/n1/w1/listener', { cmd: 'actor.stop', address: 'eu/n1/w1/listener' }],
  ['suspend config', { cmd: 'actor.suspend', address: 'config' }],
  ['resume config', { cmd: 'actor.resume', address: 'config' }],
  ['inject config {"type":"config.show"}', { cmd: 'actor.inject', address: 'config', message: { type: 'config.show' }, ask: false, timeoutMs: 5_000 }],
  [
    'inject config {"type":"sys.ping"} --ask --ask-timeout 250',
    { cmd: 'actor.inject', address: 'config', message: { type: 'sys.ping' }, ask: true, timeoutMs: 250 },
  ],
  ['thread-restart w0', { cmd: 'thread.restart', thread: 'w0' }],
  ['thread-terminate w1', { cmd: 'thread.terminate', thread: 'w1' }],
  ['chaos list', { cmd: 'chaos.list' }],
  ['chaos set {"id":"d","action":{"kind":"drop","probability":1}}', { cmd: 'chaos.set', rule: { id: 'd', action: { kind: 'drop', probability: 1 } } }],
  ['chaos clear', { cmd: 'chaos.clear' }],
  ['chaos clear slow-config', { cmd: 'chaos.clear', rule: 'slow-config' }],
  ['deadletters', { cmd: 'deadletters.list', limit: 100 }],
  ['deadletters --limit 7', { cmd: 'deadletters.list', limit: 7 }],
  ['stats', { cmd: 'node.stats' }],
  ['config show', { cmd: 'config.show' }],
  ['config validate', { cmd: 'config.validate' }],
  ['config validate config/prod.toml', { cmd: 'config.validate', file: resolve('config/prod.toml') }],
  ['config reload /etc/secbeat.toml', { cmd: 'config.reload', file: '/etc/secbeat.toml' }],
  ['log-level debug', { cmd: 'log.level', level: 'debug' }],
  ['block 203.0.113.9', { cmd: 'block.add', ip: '203.0.113.9' }],
  ['block 2001:db8::1 --duration 600', { cmd: 'block.add', ip: '2001:db8::1', durationSec: 600 }],
  ['unblock 203.0.113.9', { cmd: 'block.remove', ip: '203.0.113.9' }],
  ['blocks', { cmd: 'block.list' }],
  ['cidr block 203.0.113.0/24', { cmd: 'cidr.block', cidr: '203.0.113.0/24' }],
  ['cidr block 2001:db8::/32 --duration 3600', { cmd: 'cidr.block', cidr: '2001:db8::/32', durationSec: 3600 }],
  ['cidr unblock 203.0.113.0/24', { cmd: 'cidr.unblock', cidr: '203.0.113.0/24' }],
  ['cidr list', { cmd: 'cidr.list' }],
  ['events', { cmd: 'events.list', type: 'all', limit: 100 }],
  ['events --type attack --limit 20', { cmd: 'events.list', type: 'attack', limit: 20 }],
  ['syn', { cmd: 'syn.status' }],
  ['certs', { cmd: 'certs.list', limit: 100 }],
  ['certs --limit 5', { cmd: 'certs.list', limit: 5 }],
  ['drain', { cmd: 'node.drain', timeoutMs: 30_000 }],
  ['drain --timeout-ms 0', { cmd: 'node.drain', timeoutMs: 0 }],
  ['shutdown --timeout-ms 5000', { cmd: 'node.shutdown', timeoutMs: 5_000 }],
];

/** Splits on spaces, except inside a trailing JSON operand (which holds no spaces in these cases). */
function argv(line: string): string[] {
  return line.split(' ');
}

describe('parseCtlArgs', () => {
  it.each(COMMAND_CASES)('%s', (line, expected) => {
    const parsed = parseCtlArgs(argv(line));
    expect(parsed).toEqual({ ok: true, command: expected, flags: { socket: null, config: null, json: false, timeoutMs: 10_000 } });
  });

  it('reads global flags before or after the command', () => {
    const parsed = parseCtlArgs(['--socket', '/run/s.sock', 'threads', '--json', '--timeout', '2500', '--config', 'c.toml']);
    expect(parsed).toEqual({
      ok: true,
      command: { cmd: 'threads.list' },
      flags: { socket: '/run/s.sock', config: 'c.toml', json: true, timeoutMs: 2_500 },
    });
  });

  it.each([
    [[], /missing command/],
    [['frobnicate'], /unknown command "frobnicate"/],
    [['chaos'], /chaos needs one of: list, set, clear/],
    [['config', 'edit'], /config needs one of: show, validate, reload/],
    [['inspect'], /inspect takes ADDR/],
    [['ping', 'extra'], /ping takes no operands/],
    [['inject', 'config', '{nope'], /MESSAGE_JSON is not valid JSON/],
    [['chaos', 'set', '{'], /RULE_JSON is not valid JSON/],
    [['block', '300.1.1.1'], /IP: "300\.1\.1\.1" is not an IPv4 or IPv6 address/],
    [['block', '10.0.0.1', '--duration', 'soon'], /--duration expects a whole number/],
    [['block', '10.0.0.1', '--duration', '0'], /invalid arguments for block: durationSec: /],
    [['log-level', 'loud'], /invalid arguments for log-level: level: /],
    [['cidr'], /cidr needs one of: block, unblock, list/],
    [['cidr', 'block', '203.0.113.0'], /invalid arguments for cidr block: cidr: expected a network like/],
    [['cidr', 'block', '10.0.0.0/33'], /cidr: expected a network/],
    [['events', '--type', 'scary'], /invalid arguments for events: type: Invalid option/],
    [['blocks', '--type', 'attack'], /--type does not apply to blocks/],
    [['deadletters', '--limit', '0'], /limit: /],
    [['inspect', 'a/b/c'], undefined], // address syntax is the node's to judge (it knows `here`)
    [['threads', '--limit', '5'], /--limit does not apply to threads/],
    [['threads', '--frob'], /Unknown option '--frob'/],
    [['threads', '--timeout', '0'], /--timeout must be greater than 0/],
  ] as const)('%j is a usage error', (args, message) => {
    const parsed = parseCtlArgs(args);
    if (message === undefined) {
      expect(parsed.ok).toBe(true);
      return;
    }
    expect(parsed).toEqual({ ok: false, error: expect.stringMatching(message), usage: CTL_USAGE });
  });

  it('asks for help with -h and --help', () => {
    expect(parseCtlArgs(['-h'])).toEqual({ ok: false, error: null, usage: CTL_USAGE });
    expect(parseCtlArgs(['threads', '--help'])).toEqual({ ok: false, error: null, usage: CTL_USAGE });
  });

  it('lists every command in the usage text', () => {
    for (const [line] of COMMAND_CASES) {
      const words = line.split(' ');
      const name = words[0] === 'chaos' || words[0] === 'config' || words[0] === 'cidr' ? words.slice(0, 2).join(' ') : words[0]!;
      expect(CTL_USAGE).toContain(`\n  ${name} `);
    }
  });
});

describe('socketPathFor', () => {
  const flags = (over: Partial<CtlFlags> = {}): CtlFlags => ({ socket: null, config: null, json: false, timeoutMs: 1, ...over });
  const fromConfig = (file: string | null): string | null => (file === 'bad.toml' ? null : `/from/${file ?? 'default'}.sock`);

  it('prefers --socket, then $SECBEAT_ADMIN_SOCKET, then the config, then the default', () => {
    expect(socketPathFor(flags({ socket: '/flag.sock', config: 'c' }), { SECBEAT_ADMIN_SOCKET: '/env.sock' }, fromConfig)).toBe('/flag.sock');
    expect(socketPathFor(flags({ config: 'c' }), { SECBEAT_ADMIN_SOCKET: '/env.sock' }, fromConfig)).toBe('/env.sock');
    expect(socketPathFor(flags({ config: 'c' }), {}, fromConfig)).toBe('/from/c.sock');
    expect(socketPathFor(flags(), {}, fromConfig)).toBe('/from/default.sock');
    expect(socketPathFor(flags(), {}, () => null)).toBe(DEFAULT_SOCKET_PATH);
    expect(socketPathFor(flags(), { SECBEAT_ADMIN_SOCKET: '' })).toBe(DEFAULT_SOCKET_PATH);
  });

  it('gives up rather than guess when an explicit --config yields no socket path', () => {
    expect(socketPathFor(flags({ config: 'bad.toml' }), {}, fromConfig)).toBeNull();
    expect(socketPathFor(flags({ config: 'c.toml' }), {})).toBeNull();
  });
});

describe('renderResult', () => {
  const threads: ThreadInfo[] = [
    { thread: 'main', status: 'running', restarts: 0, threadId: 0, lastHeartbeatAgoMs: null, actors: 3 },
    { thread: 'w0', status: 'running', restarts: 12, threadId: 1, lastHeartbeatAgoMs: 250, actors: 1 },
    { thread: 'w1', status: 'restarting', restarts: 1, threadId: null, lastHeartbeatAgoMs: 4_321, actors: 0 },
  ];
  const actor: ActorInfo = {
    address: 'eu/n1/w0/listener',
    behavior: 'listener',
    status: 'running',
    mailboxDepth: 3,
    mailboxCapacity: 4096,
    processed: 1234,
    dropped: 0,
    restarts: 2,
    lastError: { code: 'SECBEAT_ERR_INTERNAL', message: 'boom' },
  };

  it('renders threads as an aligned table', () => {
    expect(renderResult('threads.list', { threads })).toBe(
      [
        'THREAD  STATUS      RESTARTS  HEARTBEAT  ACTORS',
        'main    running            0          -       3',
        'w0      running           12      250ms       1',
        'w1      restarting         1       4.3s       0',
      ].join('\n'),
    );
  });

  it('renders actors as an aligned table', () => {
    const config: ActorInfo = { ...actor, address: 'eu/n1/main/config', behavior: 'config', status: 'suspended', mailboxDepth: 0, mailboxCapacity: 64, processed: 7, restarts: 0 };
    expect(renderResult('actors.list', { actors: [actor, config] })).toBe(
      [
        'ADDRESS            BEHAVIOR  STATUS     MAILBOX  PROCESSED  DROPPED  RESTARTS',
        'eu/n1/w0/listener  listener  running     3/4096       1234        0         2',
        'eu/n1/main/config  config    suspended     0/64          7        0         0',
      ].join('\n'),
    );
  });

  it('renders one actor and node stats as key: value lines', () => {
    expect(renderResult('actor.inspect', actor)).toBe(
      [
        'address:         eu/n1/w0/listener',
        'behavior:        listener',
        'status:          running',
        'mailboxDepth:    3',
        'mailboxCapacity: 4096',
        'processed:       1234',
        'dropped:         0',
        'restarts:        2',
        'lastError:       SECBEAT_ERR_INTERNAL: boom',
      ].join('\n'),
    );
    expect(renderResult('node.stats', { node: 'n1', uptimeSec: 12, draining: false, lastError: null, mode: { tcp: true } })).toBe(
      ['node:      n1', 'uptimeSec: 12', 'draining:  false', 'lastError: -', 'mode:      {"tcp":true}'].join('\n'),
    );
  });

  it('renders security events as a table: time, thread, event, then the event’s own fields', () => {
    const events = [
      { event: 'cidr.blocked', cidr: '203.0.113.0/24', durationSec: null, source: 'api', at: Date.UTC(2025, 0, 2, 3, 4, 5), thread: 'main' },
      { event: 'conn.refused', mode: 'tcp', reason: 'blocklist', clientIp: '203.0.113.9', at: Date.UTC(2025, 0, 2, 3, 4, 6), thread: 'w1' },
    ];
    expect(renderResult('events.list', { events })).toBe(
      [
        'TIME                      THREAD  EVENT         DETAILS',
        '2025-01-02T03:04:05.000Z  main    cidr.blocked  cidr=203.0.113.0/24 durationSec=- source=api',
        '2025-01-02T03:04:06.000Z  w1      conn.refused  mode=tcp reason=blocklist clientIp=203.0.113.9',
      ].join('\n'),
    );
    expect(renderResult('events.list', { events: [{ event: 'x', at: 'yesterday', thread: 'w0' }] })).toBe('TIME       THREAD  EVENT  DETAILS\nyesterday  w0      x');
    expect(renderResult('events.list', { events: [{ event: 'x' }] })).toBe('{\n  "events": [\n    {\n      "event": "x"\n    }\n  ]\n}');
  });

  it('renders certificates as counts, then the names that expire first', () => {
    const list = {
      names: 3,
      certificates: 2,
      defaultNotAfterMs: Date.UTC(2026, 5, 1),
      expiringFirst: [
        { name: 'a.example', notAfterMs: Date.UTC(2026, 0, 2) },
        { name: '*.b.example', notAfterMs: Date.UTC(2026, 2, 3) },
      ],
    };
    expect(renderResult('certs.list', list)).toBe(
      [
        'names: 3  certificates: 2  default expires: 2026-06-01T00:00:00.000Z',
        'NAME         NOT AFTER',
        'a.example    2026-01-02T00:00:00.000Z',
        '*.b.example  2026-03-03T00:00:00.000Z',
        '(the 2 that expire first; --limit N for more)',
      ].join('\n'),
    );
  });

  it('renders the XDP status as key-value lines, then packets per reason, busiest first', () => {
    const status = { interface: 'eth0', mode: 'native', programId: 42, protectedPorts: [443, 8443], allowlist: 0, blocklist: 3, packets: { pass: 10, synack: 900, blocklist: 25 } };
    expect(renderResult('syn.status', status)).toBe(
      [
        'interface:       eth0',
        'attached:        native',
        'program:         42',
        'protected ports: 443,8443',
        'allowlist:       0',
        'blocklist:       3',
        'REASON     PACKETS',
        'synack         900',
        'blocklist       25',
        'pass            10',
      ].join('\n'),
    );
    expect(renderResult('syn.status', { ...status, mode: null })).toContain('attached:        no');
    expect(renderResult('syn.status', { interface: 'eth0' })).toBe('{\n  "interface": "eth0"\n}');
    expect(renderResult('syn.status', { ...status, protectedPorts: '443' })).toContain('"protectedPorts": "443"');
  });

  it('prints strings as they are, other results and unexpected shapes as pretty JSON', () => {
    expect(renderResult('ping', 'pong')).toBe('pong');
    expect(renderResult('block.list', { blocked: ['203.0.113.9'] })).toBe('{\n  "blocked": [\n    "203.0.113.9"\n  ]\n}');
    expect(renderResult('threads.list', { threads: [{ name: 'w0' }] })).toBe('{\n  "threads": [\n    {\n      "name": "w0"\n    }\n  ]\n}');
    expect(renderResult('actors.list', [1])).toBe('[\n  1\n]');
  });
});

describe('runCtl', () => {
  async function node(handler: AdminHandler): Promise<string> {
    const dir = await mkdtemp(join(tmpdir(), 'sb-ctl-'));
    const path = join(dir, 'admin.sock');
    const server = new AdminServer({ path, handler, log: pino({ level: 'silent' }) });
    await server.listen();
    cleanups.push(async () => {
      await server.close();
      await rm(dir, { recursive: true, force: true });
    });
    return path;
  }

  const handler: AdminHandler = (req) => {
    switch (req.cmd) {
      case 'threads.list':
        return Promise.resolve({ threads: [{ thread: 'main', status: 'running', restarts: 0, threadId: 0, lastHeartbeatAgoMs: null, actors: 1 }] });
      case 'actor.inspect':
        return Promise.reject(new SecbeatError('SECBEAT_ERR_ACTOR_NOT_FOUND', `no actor at ${req.address}`));
      case 'node.stats':
        return new Promise(() => undefined);
      default:
        return Promise.resolve({ echo: req.cmd });
    }
  };

  async function ctl(args: string[], env: Record<string, string | undefined> = {}): Promise<{ code: number; stdout: string; stderr: string }> {
    let stdout = '';
    let stderr = '';
    const code = await runCtl(args, { stdout: (s) => (stdout += s), stderr: (s) => (stderr += s), env });
    return { code, stdout, stderr };
  }

  it('prints the human rendering and exits 0', async () => {
    const path = await node(handler);
    expect(await ctl(['--socket', path, 'threads'])).toEqual({
      code: EXIT_CODES.OK,
      stdout: 'THREAD  STATUS   RESTARTS  HEARTBEAT  ACTORS\nmain    running         0          -       1\n',
      stderr: '',
    });
  });

  it('prints the raw result as one JSON line with --json', async () => {
    const path = await node(handler);
    expect(await ctl(['threads', '--json'], { SECBEAT_ADMIN_SOCKET: path })).toEqual({
      code: EXIT_CODES.OK,
      stdout: '{"threads":[{"thread":"main","status":"running","restarts":0,"threadId":0,"lastHeartbeatAgoMs":null,"actors":1}]}\n',
      stderr: '',
    });
  });

  it('exits 1 with the node error on stderr, or the error object with --json', async () => {
    const path = await node(handler);
    expect(await ctl(['--socket', path, 'inspect', 'ghost'])).toEqual({
      code: EXIT_CODES.COMMAND_FAILED,
      stdout: '',
      stderr: 'error SECBEAT_ERR_ACTOR_NOT_FOUND: no actor at ghost\n',
    });
    expect(await ctl(['--socket', path, '--json', 'inspect', 'ghost'])).toEqual({
      code: EXIT_CODES.COMMAND_FAILED,
      stdout: '{"code":"SECBEAT_ERR_ACTOR_NOT_FOUND","message":"no actor at ghost"}\n',
      stderr: '',
    });
  });

  it('exits 2 with usage on stderr for bad arguments, 0 with usage on stdout for --help', async () => {
    const bad = await ctl(['block', 'not-an-ip']);
    expect(bad.code).toBe(EXIT_CODES.USAGE);
    expect(bad.stderr).toMatch(/^error: IP: "not-an-ip" is not an IPv4 or IPv6 address\n\nusage: secbeat ctl/);
    expect(await ctl(['--help'])).toEqual({ code: EXIT_CODES.OK, stdout: CTL_USAGE, stderr: '' });
    const noSocket = await runCtl(['--config', 'broken.toml', 'ping'], { stdout: () => undefined, stderr: () => undefined, env: {} }, () => null);
    expect(noSocket).toBe(EXIT_CODES.USAGE);
  });

  it('exits 3 when nothing listens on the socket', async () => {
    const path = join(tmpdir(), `sb-ctl-nothing-${process.pid}.sock`);
    const result = await ctl(['--socket', path, 'ping']);
    expect(result.code).toBe(EXIT_CODES.UNREACHABLE);
    expect(result.stderr).toBe(`error SECBEAT_ERR_ADMIN_CONNECT: cannot reach the admin socket at ${path}: connect ENOENT ${path}\n`);
  });

  it('exits 4 when the node does not answer in time', async () => {
    const path = await node(handler);
    const result = await ctl(['--socket', path, '--timeout', '30', 'stats']);
    expect(result.code).toBe(EXIT_CODES.TIMEOUT);
    expect(result.stderr).toMatch(/^error SECBEAT_ERR_ASK_TIMEOUT: no reply to node\.stats/);
  });
});
