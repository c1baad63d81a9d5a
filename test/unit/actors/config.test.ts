import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it, onTestFinished } from 'vitest';
import { configActor, type ApplyReport } from '../../../src/actors/config.ts';
import { SecbeatError } from '../../../src/errors.ts';
import { loadConfig } from '../../../src/config/load.ts';
import type { Config } from '../../../src/config/schema.ts';
import { SimulatedClock } from '../../../src/runtime/clock.ts';
import { Supervisor } from '../../../src/runtime/supervisor.ts';
import { ActorSystem } from '../../../src/runtime/system.ts';

/** Refuses a config naming 9 threads the way the node refuses an unusable certificate: by throwing. */
async function setup() {
  const dir = mkdtempSync(join(tmpdir(), 'secbeat-config-actor-'));
  onTestFinished(() => rmSync(dir, { recursive: true, force: true }));
  const file = join(dir, 'node.toml');
  writeFileSync(file, '[logging]\nlevel = "info"\n');
  const loaded = loadConfig({ file, env: {} });
  if (!loaded.ok) throw new Error('fixture config invalid');
  const applied: { next: Readonly<Config>; prev: Readonly<Config> }[] = [];
  const clock = new SimulatedClock(0);
  const system = new ActorSystem({ region: 'r', node: 'n', thread: 'main', clock, mailboxCapacity: 8, askTimeoutMs: 1000, deadLetterCapacity: 8, chaosEnabled: false });
  const sup = new Supervisor({ name: 'root', strategy: 'one_for_one', maxRestarts: 1, periodMs: 1000, backoffInitialMs: 0, backoffMaxMs: 0, clock }, [
    system.actorChild({
      name: 'config',
      behavior: configActor,
      input: {
        source: { file, env: {} },
        config: loaded.config,
        apply: async (next: Readonly<Config>, prev: Readonly<Config>): Promise<ApplyReport> => {
          if (next.server.worker_threads === 9) throw new SecbeatError('SECBEAT_ERR_TLS_CERT', 'a.pem (key a.key): the private key does not belong to the certificate');
          applied.push({ next, prev });
          return {
            restartOnly: next.server.worker_threads !== prev.server.worker_threads ? ['server.worker_threads'] : [],
            notApplied: next.logging.level === 'warn' ? ['l7: thread w1 did not apply'] : [],
          };
        },
      },
    }),
  ]);
  await sup.start();
  const ask = <T>(msg: { type: 'config.show' | 'config.validate' | 'config.reload'; file?: string }) => system.ask(system.address('config'), msg) as Promise<T>;
  return { file, dir, applied, ask };
}

describe('config actor', () => {
  it('reload applies a good file and bumps the version', async () => {
    const { file, applied, ask } = await setup();
    writeFileSync(file, '[logging]\nlevel = "debug"\n[server]\nworker_threads = 3\n');
    const check = await ask<{ ok: boolean; issues: string[]; version: number }>({ type: 'config.reload' });
    expect(check).toEqual({ ok: true, issues: ['server.worker_threads: changed; takes effect after a restart'], version: 2 });
    expect(applied.map((a) => a.next.logging.level)).toEqual(['debug']);
    const shown = await ask<{ version: number; config: Config }>({ type: 'config.show' });
    expect(shown.version).toBe(2);
    expect(shown.config.logging.level).toBe('debug');
  });

  it('a bad reload keeps the last good config and says why, with the line', async () => {
    const { file, applied, ask } = await setup();
    writeFileSync(file, '[logging]\nlevel = "debug"\n[server]\nworker_thread = 3\n');
    const check = await ask<{ ok: boolean; issues: string[]; version: number }>({ type: 'config.reload' });
    expect(check.ok).toBe(false);
    expect(check.version).toBe(1);
    expect(check.issues.join('\n')).toMatch(/node\.toml:4.*server\.worker_thread.*worker_threads/);
    expect(applied).toEqual([]);
    expect((await ask<{ config: Config }>({ type: 'config.show' })).config.logging.level).toBe('info');
  });

  it('a reload whose live part cannot be applied is refused, and the running config stays', async () => {
    const { file, applied, ask } = await setup();
    writeFileSync(file, '[logging]\nlevel = "debug"\n[server]\nworker_threads = 9\n');
    const check = await ask<{ ok: boolean; issues: string[]; version: number }>({ type: 'config.reload' });
    expect(check).toEqual({ ok: false, issues: ['a.pem (key a.key): the private key does not belong to the certificate'], version: 1 });
    expect(applied).toEqual([]);
    expect((await ask<{ config: Config }>({ type: 'config.show' })).config.logging.level).toBe('info');
  });

  it('a reload reports live changes that did not reach part of the node', async () => {
    const { file, ask } = await setup();
    writeFileSync(file, '[logging]\nlevel = "warn"\n');
    expect(await ask({ type: 'config.reload' })).toEqual({ ok: true, issues: ['l7: thread w1 did not apply'], version: 2 });
  });

  it('validate checks another file without applying it', async () => {
    const { dir, applied, ask } = await setup();
    const other = join(dir, 'other.toml');
    writeFileSync(other, '[server]\nmode = "nope"\n');
    const check = await ask<{ ok: boolean; issues: string[] }>({ type: 'config.validate', file: other });
    expect(check.ok).toBe(false);
    expect(check.issues.join('\n')).toMatch(/server\.mode/);
    expect(applied).toEqual([]);
  });
});
