// Polling helpers for integration tests: wait for a condition with a deadline, read a metric from a node's
// /metrics endpoint.

/** Polls `condition` every `pollMs` until it holds; throws naming `what` once `timeoutMs` has passed. */
export async function until(condition: () => boolean | Promise<boolean>, what: string, timeoutMs = 10_000, pollMs = 20): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await condition())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, pollMs));
  }
}

/**
 * A metric as a node's /metrics shows it, summed over its label sets; NaN when the node shows no sample of
 * it (so a check for 0 cannot pass on a metric that is missing).
 */
export async function scrapeMetric(metricsPort: number, name: string): Promise<number> {
  const text = await (await fetch(`http://127.0.0.1:${metricsPort}/metrics`)).text();
  const samples = text.split('\n').filter((line) => line.startsWith(`${name} `) || line.startsWith(`${name}{`));
  return samples.length === 0 ? NaN : samples.reduce((sum, line) => sum + Number(line.slice(line.lastIndexOf(' ') + 1)), 0);
}
