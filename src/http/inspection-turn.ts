// WAF inspections run together, once per event-loop turn, before any of their requests goes on to I/O.
//
// Why: a request's CRS evaluation touches a large working set (rule objects, the literal automaton, compiled
// regexes, the engine's own code), and the socket writes between two requests (the kernel's network stack,
// Node's HTTP code) push it out of the CPU caches. Measured with a node:http server answering itself under
// wrk (64 connections, bench/waf's GET): evaluating each request as it is parsed cost 104–106 µs of CPU per
// transaction, against 68 µs in a loop; evaluating the ~60 requests one turn parses back to back, then
// answering them, cost 72–79 µs, and the whole request 101 µs of CPU instead of 155. This is cohort
// scheduling (Larus & Parkes, USENIX 2002): the same stage for many requests while its state is warm.
//
// The cost is a setImmediate hop: requests parsed in one poll phase wait for the check phase of the same
// loop iteration, a few microseconds under light load; nothing waits across turns.

export interface TurnJob {
  /** The CPU work (WAF phases): runs before any job of the turn proceeds. */
  inspect(): void;
  /** What follows it (answer, or forward to the origin): runs once every job of the turn was inspected. */
  proceed(): void;
  /** `inspect` or `proceed` threw: answer this request; the turn goes on with the others. */
  failed(error: unknown): void;
}

export class InspectionTurn {
  #jobs: TurnJob[] = [];
  /** The list the running turn emptied, reused for the next (no array per turn). */
  #spare: TurnJob[] = [];

  add(job: TurnJob): void {
    if (this.#jobs.push(job) === 1) setImmediate(this.#run);
  }

  readonly #run = (): void => {
    // Jobs added while this turn runs (a pipelined request parsed on a response's end) go to the next one.
    const jobs = this.#jobs;
    this.#jobs = this.#spare;
    let failures: Set<TurnJob> | null = null;
    for (const job of jobs) {
      try {
        job.inspect();
      } catch (error) {
        (failures ??= new Set()).add(job);
        job.failed(error);
      }
    }
    for (const job of jobs) {
      if (failures?.has(job) === true) continue;
      try {
        job.proceed();
      } catch (error) {
        job.failed(error);
      }
    }
    jobs.length = 0;
    this.#spare = jobs;
  };
}
