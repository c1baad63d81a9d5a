// Files under the node's state directory are replaced whole: written beside, then renamed over, so a crash
// mid-write leaves the old file or the new one, never half of either.
import { renameSync, writeFileSync } from 'node:fs';

/** `mode` applies when the file is created (the temporary one is: the rename keeps it). */
export function writeAtomically(path: string, data: string | Uint8Array, mode?: number): void {
  writeFileSync(`${path}.tmp`, data, mode === undefined ? undefined : { mode });
  renameSync(`${path}.tmp`, path);
}
