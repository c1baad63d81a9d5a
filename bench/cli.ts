// Command-line handling both benchmarks (bench/tcp, bench/l7) share: the same flags (--quick, --only,
// --proxies, --secbeat-ref, --cpu-prof, --help), comma lists of known names, and usage errors that print
// the usage and exit 2.
import { parseArgs } from 'node:util';

export class UsageError extends Error {}

/** "a,b" → ['a', 'b'], each one of `allowed`; throws UsageError naming the unknown ones. */
export function parseList<T extends string>(text: string, allowed: readonly T[], flag: string): T[] {
  const items = text.split(',').map((x) => x.trim()).filter((x) => x !== '');
  const unknown = items.filter((x) => !(allowed as readonly string[]).includes(x));
  if (unknown.length > 0) throw new UsageError(`${flag}: unknown ${unknown.join(', ')} (known: ${allowed.join(', ')})`);
  return items as T[];
}

/** The usage text of a bench whose flags are parseBenchArgs'. */
export function benchUsage(script: string, phases: readonly string[], proxies: readonly string[]): string {
  return (
    `usage: node ${script} [--quick] [--only ${phases.join(',')}]\n` +
    `         [--proxies ${proxies.join(',')}] [--secbeat-ref GIT_REF] [--cpu-prof DIR]\n` +
    '  --quick          short phases (smoke run; numbers are noisy)\n' +
    '  --secbeat-ref    run SecBeat from `git archive REF` instead of the working tree\n' +
    '  --cpu-prof DIR   run SecBeat under node --cpu-prof; one .cpuprofile per thread lands in DIR\n'
  );
}

export interface BenchArgs<P extends string, K extends string> {
  quick: boolean;
  phases: Set<P>;
  kinds: K[];
  /** --secbeat-ref: run SecBeat from `git archive REF`; null = the working tree. */
  secbeatRef: string | null;
  /** --cpu-prof: directory for SecBeat's .cpuprofile files. */
  cpuProf: string | undefined;
}

/**
 * The flags of `argv`, or the exit code main() returns at once: 0 after --help (usage on stdout), 2 after a
 * usage error (the error and the usage on stderr).
 */
export function parseBenchArgs<P extends string, K extends string>(
  argv: string[],
  phases: readonly P[],
  proxies: readonly K[],
  usage: string,
): BenchArgs<P, K> | { exitCode: number } {
  try {
    const { values } = parseArgs({
      args: argv,
      options: {
        quick: { type: 'boolean', default: false },
        only: { type: 'string', default: phases.join(',') },
        proxies: { type: 'string', default: proxies.join(',') },
        'secbeat-ref': { type: 'string' },
        'cpu-prof': { type: 'string' },
        help: { type: 'boolean', short: 'h', default: false },
      },
    });
    if (values.help) {
      process.stdout.write(usage);
      return { exitCode: 0 };
    }
    return {
      quick: values.quick,
      phases: new Set(parseList(values.only, phases, '--only')),
      kinds: parseList(values.proxies, proxies, '--proxies'),
      secbeatRef: values['secbeat-ref'] ?? null,
      cpuProf: values['cpu-prof'],
    };
  } catch (err) {
    // parseArgs' own errors (an unknown flag, a missing value) and parseList's: usage errors alike.
    process.stderr.write(`${err instanceof Error ? err.message : String(err)}\n${usage}`);
    return { exitCode: 2 };
  }
}
