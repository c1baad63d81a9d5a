// The dependency rule of ARCHITECTURE.md, enforced: the runtime knows nothing of the domain, and domain
// libraries know nothing of actors or the runtime. Only actors/, node/ and main.ts wire the two together.
// Also enforced: worker threads never load valibot, whose schemas only the main thread needs.
import { readdirSync, readFileSync } from 'node:fs';
import { dirname, join, relative, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';

const SRC = resolve(dirname(fileURLToPath(import.meta.url)), '../../src');

/** What each top-level folder (or root file) of src/ may import from other folders. */
const ALLOWED: Record<string, readonly string[]> = {
  runtime: ['messages.ts', 'address.ts', 'errors.ts', 'telemetry'],
  telemetry: ['messages.ts', 'errors.ts'],
  'messages.ts': ['errors.ts', 'address.ts', 'validation.ts'],
  'validation.ts': [],
  'address.ts': [],
  'errors.ts': [],
  net: [],
  tls: ['errors.ts', 'messages.ts'],
  http: ['messages.ts', 'errors.ts', 'telemetry', 'net', 'tls', 'proxy', 'waf', 'ratelimit'],
  waf: ['net', 'messages.ts'],
  blocklist: ['messages.ts', 'errors.ts', 'telemetry', 'net'],
  proxy: ['messages.ts', 'errors.ts', 'telemetry', 'blocklist', 'config', 'native'],
  config: ['messages.ts', 'errors.ts', 'validation.ts', 'net'],
  native: ['errors.ts'],
  admin: ['messages.ts', 'errors.ts', 'telemetry', 'net'],
  cli: ['messages.ts', 'errors.ts', 'admin'],
  crdt: [],
  ratelimit: ['crdt', 'net', 'blocklist'],
  syn: ['errors.ts', 'native', 'net'],
};

function files(dir: string): string[] {
  return readdirSync(dir, { withFileTypes: true }).flatMap((e) =>
    e.isDirectory() ? files(join(dir, e.name)) : e.name.endsWith('.ts') ? [join(dir, e.name)] : [],
  );
}

function area(file: string): string {
  return relative(SRC, file).split('/')[0]!;
}

/** What a worker thread evaluates first: its entry, and the behaviours table it imports by URL. */
const WORKER_ENTRIES = ['runtime/thread-entry.ts', 'actors/index.ts'];

/**
 * Specifiers of the modules `text` makes Node load. Type stripping erases only `import type` and
 * `export type` statements; `import { type A }` still loads its module, so it counts. No "(" before the
 * specifier: that is an exported function, whose first string literal is no module.
 */
function loadedSpecifiers(text: string): string[] {
  const statements = text.matchAll(/^\s*(?:import|export)(?!\s+type\b)\b[^'"(]*?(?:from\s+)?['"]([^'"]+)['"]/gm);
  const dynamic = text.matchAll(/import\((['"])([^'"]+)\1\)/g);
  return [...[...statements].map((m) => m[1]!), ...[...dynamic].map((m) => m[2]!)];
}

describe('architecture', () => {
  it('every import stays inside the dependency rule', () => {
    const violations: string[] = [];
    for (const file of files(SRC)) {
      const rules = ALLOWED[area(file)];
      if (!rules) continue; // actors/, node/, main.ts wire everything
      const text = readFileSync(file, 'utf8');
      for (const m of text.matchAll(/^\s*(?:import|export)\b[^'"]*?from\s+['"](\.[^'"]+)['"]/gm)) {
        const target = area(resolve(dirname(file), m[1]!));
        if (target !== area(file) && !rules.includes(target)) violations.push(`${relative(SRC, file)} imports ${m[1]}`);
      }
      for (const m of text.matchAll(/import\((['"])(\.[^'"]+)\1\)/g)) violations.push(`${relative(SRC, file)} dynamically imports ${m[2]}`);
    }
    expect(violations).toEqual([]);
  });

  it('worker threads never load valibot (about 3 MB of RSS per isolate)', () => {
    const loaded = new Set<string>();
    const importers: string[] = [];
    const visit = (file: string): void => {
      if (loaded.has(file)) return;
      loaded.add(file);
      for (const specifier of loadedSpecifiers(readFileSync(file, 'utf8'))) {
        if (specifier.startsWith('.')) visit(resolve(dirname(file), specifier));
        else if (/^(?:valibot|@valibot\/)/.test(specifier)) importers.push(relative(SRC, file));
      }
    };
    for (const entry of WORKER_ENTRIES) visit(join(SRC, entry));
    // The walk must reach the data plane, or it proves nothing.
    expect(loaded).toContain(join(SRC, 'proxy/tcp.ts'));
    expect(importers).toEqual([]);
  });
});
