// WAF inspections run together, once per event-loop turn, before any of their requests goes on to I/O.
//
// Why: a request's CRS evaluation touches a large working set (rule objects, the literal automaton, compiled
// regexes, the engine's own code), and the socket writes between two requests (the kernel's network stack,
// Node's HTTP code) push it out of the CPU caches: in the proxy the WAF cost about twice what it costs in a
// loop. Run for the requests one turn parses back to back (about 20 under bench/waf's GET load), it costs close
// to the loop's figure: this turn alone took bench/waf/run.ts's GET from 4,150–4,500 to 6,500–6,900 requests
// per proxy CPU-second (`--quick` runs; docs/bench.md, which also describes the experiment that found the
// cause). This is cohort scheduling (Larus & Parkes, USENIX 2002): the same stage for many requests while its
// state is warm.
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
