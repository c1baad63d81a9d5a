// Loading a Node-API addon from a list of candidate paths, for both of SecBeat's addons (./binding.ts: TCP mode's
// splice engine; ./xdp.ts: SYN mode's libbpf loader). Never throws: a failure's message lists every path tried
// and why each failed, so the caller can log it once, fall back, or refuse to start with it.
import { createRequire } from 'node:module';
import { resolve } from 'node:path';
import { SecbeatError } from '../errors.ts';

export type AddonLoadResult<T> = { ok: true; binding: T; path: string } | { ok: false; error: SecbeatError };

const requireAddon = createRequire(import.meta.url);

/**
 * The first candidate that loads and that `check` accepts (null: acceptable, else why not). `what` names the
 * addon in the error; `hint` ends its first line (how to build it).
 */
export function loadAddon<T>(candidates: readonly string[], what: string, hint: string, check: (binding: object) => string | null): AddonLoadResult<T> {
  const failures: string[] = [];
  const causes: unknown[] = [];
  for (const path of candidates) {
    try {
      const binding: unknown = requireAddon(path);
      const problem = typeof binding === 'object' && binding !== null ? check(binding) : 'did not export an object';
      if (problem === null) return { ok: true, binding: binding as T, path };
      failures.push(`${path}: ${problem}`);
    } catch (err) {
      causes.push(err);
      failures.push(`${path}: ${describeLoadError(err)}`);
    }
  }
  const message = `${what} unavailable${hint ? ` ${hint}` : ''}; tried:\n  ${failures.join('\n  ')}`;
  return { ok: false, error: new SecbeatError('SECBEAT_ERR_INTERNAL', message, { cause: new AggregateError(causes) }) };
}

/**
 * The paths to try: the one an environment variable names, alone (an operator who names a file wants that file,
 * and silently loading a different build would hide the mistake), else the build outputs.
 */
export function candidatePaths(env: NodeJS.ProcessEnv, variable: string, builds: readonly string[]): string[] {
  const explicit = env[variable];
  return explicit !== undefined && explicit !== '' ? [resolve(explicit)] : [...builds];
}

/** The check loadAddon takes for an addon that exports `constructor` and stamps its surface with `abiVersion`. */
export function exportsCheck(constructor: string, abiVersion: number, build: string): (binding: object) => string | null {
  return (binding) => {
    const b = binding as Record<string, unknown>;
    if (typeof b[constructor] !== 'function') return `does not export ${constructor} (not a ${build} build?)`;
    if (b['abiVersion'] !== abiVersion) return `abiVersion ${String(b['abiVersion'])}, expected ${abiVersion} (stale build: rebuild)`;
    return null;
  };
}

function describeLoadError(err: unknown): string {
  if (typeof err === 'object' && err !== null) {
    const e = err as { code?: unknown; message?: unknown };
    // require() reports a missing .node file as MODULE_NOT_FOUND with a long stack-ish message.
    if (e.code === 'MODULE_NOT_FOUND') return 'not found';
    if (typeof e.message === 'string') return e.message.split('\n')[0] ?? e.message;
  }
  return String(err);
}
