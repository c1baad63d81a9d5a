// Shared fast-check settings: runs scale with FC_NUM_RUNS (CI sets more), and a failing run prints its seed
// and shrunk counterexample so it can be replayed with FC_SEED.
import type { Parameters } from 'fast-check';

export function fcParams<T>(defaultRuns = 100): Parameters<T> {
  const seed = process.env['FC_SEED'];
  return {
    numRuns: Number(process.env['FC_NUM_RUNS'] ?? defaultRuns),
    ...(seed ? { seed: Number(seed) } : {}),
  };
}
