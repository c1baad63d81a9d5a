// Where the XDP program's maps are pinned: a directory on bpffs. Hosts mount bpffs at /sys/fs/bpf (systemd does);
// a process that `ip netns exec` started sees a fresh sysfs there instead, without it, so the default location is
// mounted when it is missing; that mount is the process's own (its mount namespace), so its pins end with it. A
// pin_dir on a bpffs mounted elsewhere by the host survives `ip netns exec`; any other pin_dir must be on bpffs.
import { execFile } from 'node:child_process';
import { existsSync, mkdirSync, statfsSync } from 'node:fs';
import { dirname, resolve } from 'node:path';
import { promisify } from 'node:util';
import { SecbeatError } from '../errors.ts';

const BPF_FS_MAGIC = 0xcafe4a11;
export const DEFAULT_BPFFS = '/sys/fs/bpf';

function onBpffs(path: string): boolean {
  return statfsSync(path).type === BPF_FS_MAGIC;
}

/** The deepest part of `path` that exists. */
function existingAncestor(path: string): string {
  let at = resolve(path);
  while (!existsSync(at)) at = dirname(at);
  return at;
}

/** Makes `dir` (and its parents) on bpffs, mounting bpffs at /sys/fs/bpf when that is where it belongs and it is missing. */
export async function ensurePinDir(dir: string): Promise<void> {
  const target = resolve(dir);
  if (!onBpffs(existingAncestor(target))) {
    if (target !== DEFAULT_BPFFS && !target.startsWith(`${DEFAULT_BPFFS}/`)) {
      throw new SecbeatError('SECBEAT_ERR_INTERNAL', `syn_proxy.pin_dir ${target} is not on a bpffs mount (mount -t bpf bpf <dir>)`);
    }
    try {
      await promisify(execFile)('mount', ['-t', 'bpf', 'bpf', DEFAULT_BPFFS], { timeout: 10_000 });
    } catch (err) {
      throw new SecbeatError('SECBEAT_ERR_INTERNAL', `bpffs is not mounted at ${DEFAULT_BPFFS} and mounting it failed: ${(err as Error).message}`, { cause: err });
    }
  }
  // One level at a time: Node's recursive mkdir does not return on a filesystem that refuses mkdir oddly (sysfs).
  const missing: string[] = [];
  for (let at = target; !existsSync(at); at = dirname(at)) missing.unshift(at);
  for (const path of missing) mkdirSync(path);
}
