// Test children for supervisor tests: each start returns a handle whose `crash`/`finish` make the child exit
// on its own, and every start/stop is recorded in order.
import type { ChildSpec, ExitReason, RestartType } from '../../src/runtime/supervisor.ts';

export interface FakeChild {
  spec: ChildSpec;
  starts: number;
  stops: number;
  running: boolean;
  /** Makes the running instance exit abnormally. */
  crash(): void;
  /** Makes the running instance exit normally. */
  finish(): void;
  /** The next start rejects. */
  failNextStart: boolean;
}

export function fakeChild(id: string, restart: RestartType, events: string[]): FakeChild {
  let exited: ((r: ExitReason) => void) | null = null;
  const child: FakeChild = {
    starts: 0,
    stops: 0,
    running: false,
    failNextStart: false,
    crash() {
      const e = exited;
      exited = null;
      child.running = false;
      e?.({ kind: 'crash', error: { code: 'SECBEAT_ERR_INTERNAL', message: `${id} crashed` } });
    },
    finish() {
      const e = exited;
      exited = null;
      child.running = false;
      e?.({ kind: 'normal' });
    },
    spec: {
      id,
      restart,
      start: async (onExit) => {
        if (child.failNextStart) {
          child.failNextStart = false;
          events.push(`fail-start ${id}`);
          throw new Error(`${id} failed to start`);
        }
        child.starts++;
        child.running = true;
        exited = onExit;
        events.push(`start ${id}`);
        return {
          stop: async () => {
            child.stops++;
            child.running = false;
            exited = null;
            events.push(`stop ${id}`);
          },
        };
      },
    },
  };
  return child;
}

/** Lets queued promise continuations run (supervisor restarts are async after the clock fires). */
export async function settle(): Promise<void> {
  for (let i = 0; i < 10; i++) await new Promise<void>((r) => setImmediate(r));
}
