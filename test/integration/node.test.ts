// A real node (bin/secbeat run) in tcp mode in front of a real echo backend: ctl sees its threads and actors;
// a worker thread killed under a load of TCP connections is restarted while the other thread keeps serving;
// a block through ctl is refused by every thread at once; garbage on the admin socket changes nothing;
// SIGTERM drains and exits 0.
import { connect } from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import { roundTrip, startEchoServer, type EchoServer } from '../helpers/echo-server.ts';
import { startNode, type NodeProcess } from '../helpers/node-process.ts';

const disposables: AsyncDisposable[] = [];
afterEach(async () => {
  for (const d of disposables.reverse()) await d[Symbol.asyncDispose]();
  disposables.length = 0;
});

async function setup(extraToml = ''): Promise<{ node: NodeProcess; echo: EchoServer }> {
  const echo = await startEchoServer();
  disposables.push(echo);
  const node = await startNode({ backendPort: echo.port, extraToml });
  disposables.push(node);
  return { node, echo };
}

interface ThreadRow {
  thread: string;
  status: string;
  restarts: number;
}

describe('tcp node', () => {
  it('proxies, and ctl lists threads and actors', async () => {
    const { node } = await setup();
    const payload = Buffer.from('hello through secbeat');
    expect((await roundTrip(node.port, payload)).toString()).toBe(payload.toString());

    const actors = await node.ctl('--json', 'actors');
    expect(actors.code).toBe(0);
    const list = JSON.parse(actors.stdout) as { actors: { address: string; status: string }[] };
    expect(list.actors.map((a) => a.address).sort()).toEqual(
      ['test/it-node/main/admin', 'test/it-node/main/config', 'test/it-node/main/telemetry', 'test/it-node/w0/listener', 'test/it-node/w1/listener'].sort(),
    );
    expect(list.actors.every((a) => a.status === 'running')).toBe(true);

    const human = await node.ctl('threads');
    expect(human.code).toBe(0);
    expect(human.stdout).toMatch(/w0\s+running/);

    const metrics = await fetch(`http://127.0.0.1:${node.metricsPort}/metrics`).then((r) => r.text());
    expect(metrics).toMatch(/secbeat_packets_processed_total\{mode="tcp"\} [1-9]/);
    expect(metrics).toContain('secbeat_actor_mailbox_depth');
  });

  it('a worker thread killed under load is restarted; the other thread keeps serving; no process crash', async () => {
    const { node } = await setup('[chaos]\nenabled = true\n');
    const payload = Buffer.alloc(2048, 7);
    let ok = 0;
    let failed = 0;
    let running = true;
    const deadline = Date.now() + 20_000;
    const worker = async () => {
      for (let i = 0; running && i < 5_000 && Date.now() < deadline; i++) {
        try {
          const back = await roundTrip(node.port, payload, 3_000);
          if (back.equals(payload)) ok++;
          else failed++;
        } catch {
          failed++;
        }
      }
    };
    const load = Promise.all(Array.from({ length: 8 }, worker));
    await new Promise((r) => setTimeout(r, 500));
    const before = ok;
    const kill = await node.admin({ cmd: 'thread.terminate', thread: 'w0' });
    expect(kill.ok).toBe(true);
    // Wait until ctl shows w0 restarted and running, while the load goes on.
    let rows: ThreadRow[] = [];
    for (let i = 0; i < 100; i++) {
      const r = await node.admin({ cmd: 'threads.list' });
      rows = (r.result as { threads: ThreadRow[] }).threads;
      if (rows.find((t) => t.thread === 'w0')?.restarts === 1 && rows.find((t) => t.thread === 'w0')?.status === 'running') break;
      await new Promise((res) => setTimeout(res, 100));
    }
    const afterRestart = ok;
    await new Promise((r) => setTimeout(r, 500));
    running = false;
    await load;

    expect(rows.find((t) => t.thread === 'w0')).toMatchObject({ status: 'running', restarts: 1 });
    expect(rows.find((t) => t.thread === 'w1')).toMatchObject({ status: 'running', restarts: 0 });
    expect(ok).toBeGreaterThan(before);
    expect(ok).toBeGreaterThan(afterRestart); // still serving after the restart
    // Only connections in flight on the killed thread may fail: at most one per load worker.
    expect(failed).toBeLessThanOrEqual(8);
    expect(node.proc.exitCode).toBeNull();
    const ctlThreads = await node.ctl('--json', 'threads');
    expect(JSON.parse(ctlThreads.stdout).threads.find((t: ThreadRow) => t.thread === 'w0').restarts).toBe(1);
  });

  it('chaos rules act on cross-thread routes and leave dead letters until cleared', async () => {
    const { node } = await setup('[chaos]\nenabled = true\n');
    const ask = () => node.admin({ cmd: 'actor.inject', address: 'w0/listener', message: { type: 'listener.stats' }, ask: true, timeoutMs: 500 });
    expect((await ask()).ok).toBe(true);
    const set = await node.ctl('chaos', 'set', JSON.stringify({ id: 'drop-stats', match: { type: 'listener.stats' }, action: { kind: 'drop', probability: 1 }, ttlMs: 60_000 }));
    expect(set.code).toBe(0);
    const dropped = await ask();
    expect(dropped).toMatchObject({ ok: false, error: { code: 'SECBEAT_ERR_ASK_TIMEOUT' } });
    const letters = await node.admin({ cmd: 'deadletters.list', limit: 10 });
    expect(JSON.stringify(letters.result)).toContain('chaos_drop');
    expect((await node.ctl('chaos', 'clear', 'drop-stats')).code).toBe(0);
    expect((await ask()).ok).toBe(true);
  });

  it('chaos commands fail clearly when chaos is disabled', async () => {
    const { node } = await setup();
    const r = await node.ctl('chaos', 'set', JSON.stringify({ id: 'x', action: { kind: 'drop', probability: 1 } }));
    expect(r.code).toBe(1);
    expect(r.stderr).toContain('SECBEAT_ERR_CHAOS_DISABLED');
  });

  it('ctl syn says that a tcp node runs no XDP program', async () => {
    const { node } = await setup();
    const r = await node.ctl('syn');
    expect(r.code).toBe(1);
    expect(r.stderr).toContain('runs no XDP program');
  });

  it('a block through ctl is refused by every thread at once, and unblock lifts it', async () => {
    const { node } = await setup();
    expect((await node.ctl('block', '127.0.0.1')).code).toBe(0);
    const attempts = await Promise.allSettled(Array.from({ length: 20 }, () => roundTrip(node.port, Buffer.from('x'), 2_000)));
    // Refused connections are closed without an echo.
    expect(attempts.every((a) => a.status === 'rejected' || a.value.length === 0)).toBe(true);
    expect((await node.ctl('unblock', '127.0.0.1')).code).toBe(0);
    expect((await roundTrip(node.port, Buffer.from('back'))).toString()).toBe('back');
  });

  it('garbage on the admin socket gets errors and changes nothing', async () => {
    const { node } = await setup();
    const replies = await new Promise<string>((resolve) => {
      const s = connect(node.socketPath);
      let buf = '';
      s.on('data', (b) => (buf += b.toString()));
      s.on('end', () => resolve(buf));
      s.write(Buffer.from([0xff, 0xfe, 0x00, 0x0a]));
      s.write('{"id":1,"cmd":"no.such"}\n{"id":2,"cmd":"actor.inspect"}\nnot json\n');
      setTimeout(() => s.end(), 300);
    });
    const lines = replies.trim().split('\n').map((l) => JSON.parse(l) as { ok: boolean; error: { code: string } });
    expect(lines.map((l) => l.error.code)).toEqual([
      'SECBEAT_ERR_ADMIN_MALFORMED',
      'SECBEAT_ERR_ADMIN_UNKNOWN_COMMAND',
      'SECBEAT_ERR_ADMIN_INVALID_ARGS',
      'SECBEAT_ERR_ADMIN_MALFORMED',
    ]);
    expect((await node.admin({ cmd: 'ping' })).ok).toBe(true);
    expect(node.proc.exitCode).toBeNull();
  });

  it('SIGTERM drains open connections and exits 0', async () => {
    const { node } = await setup();
    const open = connect({ host: '127.0.0.1', port: node.port });
    // Without a listener a reset would be an uncaught exception in the test process instead of this test's
    // failure: a drain closes cleanly.
    let error: string | undefined;
    open.on('error', (err: NodeJS.ErrnoException) => (error = err.code));
    // Open through the proxy, not just connected: 'connect' fires once the kernel completed the handshake,
    // possibly before the node admitted the connection, and a drain refuses one still waiting for admission
    // (native/src/tcp_engine.cc close_all) — the reset this test saw about once in 30 loaded full runs.
    const echoed = new Promise((r) => open.once('data', r));
    open.write('x');
    await echoed;
    const closed = new Promise((r) => open.once('close', r));
    const code = node.stop('SIGTERM');
    await closed; // drain_timeout_ms (2 s) passes, then the idle connection is closed
    expect(error).toBeUndefined();
    expect(await code).toBe(0);
    expect(node.output()).toContain('node stopped');
  });
});
