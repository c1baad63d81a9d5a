// Writes dist/: src/ with the TypeScript types stripped (scripts/strip.ts), so a running node does not load
// Node's TypeScript stripper into every isolate — about 14 MB of RSS per thread, which the idle-RSS budget
// cannot afford. bin/secbeat runs dist/ when it is newer than every source file and the sources otherwise;
// tests always run the sources.
import { rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { stripTree } from './strip.ts';

const ROOT = fileURLToPath(new URL('..', import.meta.url));
const DIST = join(ROOT, 'dist');

rmSync(DIST, { recursive: true, force: true });
const count = stripTree({ sourceRoot: ROOT, outDir: DIST, links: { config: '../config', native: '../native', bpf: '../bpf' } });
// The stamp bin/secbeat compares with the sources; written last, so a half-built dist/ is never used.
writeFileSync(join(DIST, '.built'), `${new Date().toISOString()}\n`);
console.log(`build: ${count} modules stripped into dist/`);
