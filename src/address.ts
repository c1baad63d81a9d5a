// Actor addresses: region/node/thread/actor. Kept free of valibot so worker threads, which route by address
// on every delivery, do not load the schema library (about 3 MB of RSS per thread).

/** Actor and thread names: short, printable, no separators. */
export const NAME = /^[A-Za-z0-9_.-]{1,64}$/;

/** The pseudo-actor that receives a system's ask replies (outside NAME, so no real actor can take it). */
export const ASK_ACTOR = '$ask';

/** Location-transparent address of an actor. */
export interface Address {
  readonly region: string;
  readonly node: string;
  readonly thread: string;
  readonly actor: string;
}

export function formatAddress(a: Address): string {
  return `${a.region}/${a.node}/${a.thread}/${a.actor}`;
}

/**
 * Parses "region/node/thread/actor", or the shorter "thread/actor" and "actor" relative to `here`
 * (a bare actor name means the main thread's actor, the way operators name them in `secbeat ctl`).
 */
export function parseAddress(text: string, here: Omit<Address, 'actor' | 'thread'>): Address | null {
  const parts = text.split('/');
  if (!parts.every((p) => NAME.test(p))) return null;
  switch (parts.length) {
    case 1:
      return { ...here, thread: 'main', actor: parts[0]! };
    case 2:
      return { ...here, thread: parts[0]!, actor: parts[1]! };
    case 4:
      return { region: parts[0]!, node: parts[1]!, thread: parts[2]!, actor: parts[3]! };
    default:
      return null;
  }
}
