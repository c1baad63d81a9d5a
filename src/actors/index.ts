// The behaviours table worker threads load by name (the runtime imports this module by URL, so it stays free
// of domain imports). Main-thread actors are wired directly in src/node/.
import type { AnyBehavior } from '../runtime/actor.ts';
import { listener } from './listener.ts';

export const behaviors: Record<string, AnyBehavior> = { listener };

export const BEHAVIORS_MODULE = import.meta.url;
