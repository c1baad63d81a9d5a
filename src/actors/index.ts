// The behaviours table worker threads load by name (the runtime imports this module by URL, so it stays free
// of domain imports; src/node/ names it by URL too, so the main thread never loads the data plane).
// Main-thread actors are wired directly in src/node/.
import type { AnyBehavior } from '../runtime/actor.ts';
import { listener } from './listener.ts';

export const behaviors: Record<string, AnyBehavior> = { listener };
