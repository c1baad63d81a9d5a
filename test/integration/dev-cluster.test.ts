// `npm run dev:cluster` (scripts/dev-cluster.ts): one command starts three regions on loopback — a nats-server
// each, joined by gateways, and a SecBeat node each in front of one origin — and Ctrl-C stops every process
// it started and removes its directory.
import { spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { ROOT } from '../helpers/node-process.ts';

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

describe('dev cluster', () => {
  it('starts three regions whose nodes serve, and stops them all on Ctrl-C', async () => {
    const proc = spawn(process.execPath, [join(ROOT, 'scripts/dev-cluster.ts')], { cwd: ROOT, stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    proc.stdout.on('data', (b: Buffer) => (out += b.toString()));
    proc.stderr.on('data', (b: Buffer) => (out += b.toString()));
    const exited = new Promise<number | null>((resolve) => proc.once('exit', (code) => resolve(code)));
    try {
      const deadline = Date.now() + 60_000;
      while (!out.includes('Ctrl-C stops it all')) {
        if (proc.exitCode !== null || Date.now() > deadline) throw new Error(`dev-cluster did not start:\n${out.slice(-3000)}`);
        await new Promise((r) => setTimeout(r, 100));
      }
      const pids = [...out.matchAll(/\(pid (\d+)\)/g)].map((m) => Number(m[1]));
      const nodeUrls = [...out.matchAll(/node +\S+ +(http:\/\/127\.0\.0\.1:\d+)/g)].map((m) => m[1]!);
      const stateDir = /state in (\S+)/.exec(out)![1]!;
      expect(pids).toHaveLength(6);
      expect(nodeUrls).toHaveLength(3);
      for (const url of nodeUrls) {
        const res = await fetch(`${url}/hello`);
        expect(await res.text()).toBe('origin saw GET /hello\n');
      }
      // Every node reaches its region's server.
      const until = Date.now() + 20_000;
      while ((out.match(/nats: connected/g) ?? []).length < 3 && Date.now() < until) await new Promise((r) => setTimeout(r, 100));
      expect((out.match(/nats: connected/g) ?? []).length).toBe(3);

      proc.kill('SIGINT');
      expect(await exited).toBe(0);
      expect(pids.filter(alive)).toEqual([]);
      expect(existsSync(stateDir)).toBe(false);
    } finally {
      // On a failed check: the script's own stop (it kills what it started by PID), SIGKILL only as a last resort.
      if (proc.exitCode === null) {
        proc.kill('SIGINT');
        const killer = setTimeout(() => proc.kill('SIGKILL'), 20_000);
        await exited;
        clearTimeout(killer);
      }
    }
  }, 120_000);
});
