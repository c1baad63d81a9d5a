// The secbeat command itself: validate-config on the shipped examples and on broken input (exit codes, file
// and line in the message), and ctl against a socket where nothing listens.
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it, onTestFinished } from 'vitest';
import { ROOT, SECBEAT } from '../helpers/node-process.ts';

function secbeat(args: string[], env: Record<string, string> = {}) {
  const r = spawnSync(SECBEAT, args, { cwd: ROOT, encoding: 'utf8', env: { PATH: process.env['PATH'] ?? '', ...env }, timeout: 30_000 });
  return { code: r.status, stdout: r.stdout, stderr: r.stderr };
}

const examples = [
  ...readdirSync(join(ROOT, 'config')).filter((f) => f.endsWith('.toml')).map((f) => join('config', f)),
  ...readdirSync(join(ROOT, 'config/regions')).map((f) => join('config/regions', f)),
];

/** A directory for this test, removed when it finishes. */
function testDir(): string {
  const dir = mkdtempSync(join(tmpdir(), 'secbeat-cli-'));
  onTestFinished(() => rmSync(dir, { recursive: true, force: true }));
  return dir;
}

describe('secbeat validate-config', () => {
  it.each(examples)('%s is valid', (file) => {
    const r = secbeat(['validate-config', file], { NATS_TOKEN: 'test-token' });
    expect(r.stderr).toBe('');
    expect(r.code).toBe(0);
    expect(r.stdout).toMatch(/^(note: .*\n)*configuration ok/);
  });

  it('names the file, line and key of a mistake and exits 2, binding nothing', () => {
    const dir = testDir();
    const file = join(dir, 'bad.toml');
    writeFileSync(file, '[server]\nmode = "tcp"\nworker_thread = 4\n');
    const r = secbeat(['run', '--config', file, '--validate-config']);
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(/bad\.toml:3.*server\.worker_thread.*worker_threads/);
  });

  it('command-line values override the environment, which overrides the file', () => {
    const r = secbeat(['validate-config', '--set', 'server.mode="tcp"'], { MITIGATION_MODE: 'l7' });
    expect(r.stdout).toContain('(mode tcp)');
    const env = secbeat(['validate-config'], { MITIGATION_MODE: 'l7' });
    expect(env.stdout).toContain('(mode l7)');
  });

  it('syn mode refuses to start, naming what is missing: the interface, the XDP object', () => {
    const dir = testDir();
    const base = ['run', '--mode', 'syn', '--set', `admin.socket_path="${join(dir, 's')}"`, '--set', 'metrics.enabled=false'];
    const noInterface = secbeat([...base, '--set', 'syn_proxy.interface="nosuch0"']);
    expect(noInterface.code).toBe(2);
    expect(noInterface.stdout + noInterface.stderr).toContain('no network interface named \\"nosuch0\\"');
    const noObject = secbeat(base, { SECBEAT_XDP_OBJECT: join(dir, 'missing.bpf.o') });
    expect(noObject.code).toBe(2);
    expect(noObject.stdout + noObject.stderr).toContain('the XDP object is missing');
    expect(noObject.stdout + noObject.stderr).toContain(join(dir, 'missing.bpf.o'));
  });
});

describe('secbeat ctl', () => {
  it('exits 3 with a clear message when no node listens', () => {
    const r = secbeat(['ctl', '--socket', join(tmpdir(), 'secbeat-nobody.sock'), 'ping']);
    expect(r.code).toBe(3);
    expect(r.stderr).toContain('SECBEAT_ERR_ADMIN_CONNECT');
  });
});
