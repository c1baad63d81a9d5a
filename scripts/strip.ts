// Type stripping of src/ into a runnable JavaScript tree, shared by `npm run build:js` (scripts/build.ts,
// which writes dist/) and the benchmarks (which build a private copy from the sources they measure).
// Stripping blanks types in place, so lines and columns (stack traces) match the .ts sources exactly.
import { mkdirSync, readdirSync, readFileSync, symlinkSync, writeFileSync } from 'node:fs';
import { stripTypeScriptTypes } from 'node:module';
import { dirname, join, relative } from 'node:path';

/** Relative module specifiers ending in .ts, in quotes. Same length after the rewrite, so columns hold. */
const TS_SPECIFIER = /(['"])(\.{1,2}\/[^'"\n]+)\.ts\1/g;

export interface StripOptions {
  /** The tree whose src/ is stripped. */
  sourceRoot: string;
  /** Receives src/**.js. */
  outDir: string;
  /** Names next to src/ reached by relative paths from it (the embedded config, the native addon) → link targets. */
  links: Readonly<Record<string, string>>;
}

function sources(dir: string): string[] {
  return readdirSync(dir, { withFileTypes: true }).flatMap((e) =>
    e.isDirectory() ? sources(join(dir, e.name)) : e.name.endsWith('.ts') ? [join(dir, e.name)] : [],
  );
}

/** Strips every module of `sourceRoot/src` into `outDir/src`; returns how many. */
export function stripTree({ sourceRoot, outDir, links }: StripOptions): number {
  // The first call warns that type stripping is experimental; a build or a bench report has no use for it.
  const emitWarning = process.emitWarning;
  process.emitWarning = () => {};
  try {
    const files = sources(join(sourceRoot, 'src'));
    for (const file of files) {
      const js = stripTypeScriptTypes(readFileSync(file, 'utf8'), { mode: 'strip' }).replace(TS_SPECIFIER, '$1$2.js$1');
      const out = join(outDir, relative(sourceRoot, file)).replace(/\.ts$/, '.js');
      mkdirSync(dirname(out), { recursive: true });
      writeFileSync(out, js);
    }
    for (const [name, target] of Object.entries(links)) symlinkSync(target, join(outDir, name));
    return files.length;
  } finally {
    process.emitWarning = emitWarning;
  }
}
