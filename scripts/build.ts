// Writes dist/: src/ with the TypeScript types stripped (.ts → .js, relative specifiers rewritten), so a
// running node does not load Node's TypeScript stripper into every isolate — about 14 MB of RSS per thread,
// which the idle-RSS budget cannot afford. Stripping blanks types in place, so lines and columns (stack
// traces) match the .ts sources exactly. bin/secbeat runs dist/ when it is newer than every source file and
// the sources otherwise; tests always run the sources.
import { mkdirSync, readdirSync, readFileSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { stripTypeScriptTypes } from 'node:module';
import { dirname, join, relative } from 'node:path';
import { fileURLToPath } from 'node:url';

const ROOT = fileURLToPath(new URL('..', import.meta.url));
const DIST = join(ROOT, 'dist');
/** Files reached by relative paths from src/ (the embedded config, the native addon) resolve through links. */
const LINKED = ['config', 'native'];
/** Relative module specifiers ending in .ts, in quotes. Same length after the rewrite, so columns hold. */
const TS_SPECIFIER = /(['"])(\.{1,2}\/[^'"\n]+)\.ts\1/g;

function sources(dir: string): string[] {
  return readdirSync(dir, { withFileTypes: true }).flatMap((e) =>
    e.isDirectory() ? sources(join(dir, e.name)) : e.name.endsWith('.ts') ? [join(dir, e.name)] : [],
  );
}

rmSync(DIST, { recursive: true, force: true });
let count = 0;
for (const file of sources(join(ROOT, 'src'))) {
  const js = stripTypeScriptTypes(readFileSync(file, 'utf8'), { mode: 'strip' }).replace(TS_SPECIFIER, '$1$2.js$1');
  const out = join(DIST, relative(ROOT, file)).replace(/\.ts$/, '.js');
  mkdirSync(dirname(out), { recursive: true });
  writeFileSync(out, js);
  count++;
}
for (const name of LINKED) symlinkSync(join('..', name), join(DIST, name));
// The stamp bin/secbeat compares with the sources; written last, so a half-built dist/ is never used.
writeFileSync(join(DIST, '.built'), `${new Date().toISOString()}\n`);
console.log(`build: ${count} modules stripped into dist/`);
