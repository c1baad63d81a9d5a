// Fault injection on message routes: drop, delay, duplicate, reorder and crash, decided by seeded rules so a
// run is reproducible from its seeds. It sits in the delivery path of the actor system (never in actor code)
// and applies only while chaos is enabled in config. Rules expire on their own.
import type { ChaosAction, ChaosRule, ChaosRuleSpec, Envelope } from '../messages.ts';
import type { Clock, TimerHandle } from './clock.ts';
import { assertNever } from '../errors.ts';

/** Mulberry32: tiny, fast, good enough for fault injection; the point is a fixed sequence per seed. */
export function seededRandom(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

const MAX_GLOB_STARS = 8;

/** Globs are restricted to name characters and `*` (schema-checked), so the regex is linear enough. */
export function compileGlob(glob: string): RegExp {
  const collapsed = glob.replace(/\*+/g, '*');
  if (collapsed.split('*').length - 1 > MAX_GLOB_STARS) throw new RangeError(`a glob may hold at most ${MAX_GLOB_STARS} *`);
  const body = collapsed
    .split('*')
    .map((part) => part.replace(/[.+?^${}()|[\]\\/]/g, '\\$&'))
    .join('.*');
  return new RegExp(`^${body}$`);
}

interface ActiveRule {
  rule: ChaosRule;
  from: RegExp | null;
  to: RegExp | null;
  type: RegExp | null;
  random: () => number;
  held: Envelope[];
  holdTimer: TimerHandle | null;
}

export interface ChaosSink {
  deliver(envelope: Envelope): void;
  drop(envelope: Envelope, ruleId: string): void;
  crash(envelope: Envelope, ruleId: string): void;
  /** Counted per action for secbeat_chaos_injected_total. */
  injected(action: ChaosAction['kind']): void;
}

export class ChaosFilter {
  readonly #clock: Clock;
  readonly #sink: ChaosSink;
  #rules: ActiveRule[] = [];
  #enabled: boolean;

  constructor(clock: Clock, sink: ChaosSink, enabled: boolean) {
    this.#clock = clock;
    this.#sink = sink;
    this.#enabled = enabled;
  }

  get enabled(): boolean {
    return this.#enabled;
  }

  /** Turns a spec into a rule with an absolute expiry on this clock. */
  static ruleFromSpec(spec: ChaosRuleSpec, now: number): ChaosRule {
    return { ...spec, expiresAt: now + spec.ttlMs };
  }

  /** Replaces the rule set (the main thread broadcasts the whole set; each thread keeps its own PRNG state). */
  setRules(rules: readonly ChaosRule[], enabled: boolean): void {
    this.#enabled = enabled;
    const kept = new Map(this.#rules.map((r) => [r.rule.id, r]));
    for (const old of this.#rules) if (!rules.some((r) => r.id === old.rule.id && sameRule(r, old.rule))) this.#flush(old);
    this.#rules = enabled
      ? rules.map((rule) => {
          const existing = kept.get(rule.id);
          if (existing && sameRule(existing.rule, rule)) return existing;
          return {
            rule,
            from: rule.match.from ? compileGlob(rule.match.from) : null,
            to: rule.match.to ? compileGlob(rule.match.to) : null,
            type: rule.match.type ? compileGlob(rule.match.type) : null,
            random: seededRandom(rule.seed),
            held: [],
            holdTimer: null,
          };
        })
      : [];
  }

  rules(): ChaosRule[] {
    this.#expire();
    return this.#rules.map((r) => r.rule);
  }

  /**
   * Routes one envelope through the first matching live rule (rules apply in the order they were set).
   * Addresses are matched as "region/node/thread/actor" strings.
   */
  apply(envelope: Envelope, to: string, from: string | null): void {
    if (this.#rules.length === 0) return this.#sink.deliver(envelope);
    this.#expire();
    const active = this.#rules.find(
      (r) =>
        (r.to === null || r.to.test(to)) &&
        (r.from === null || (from !== null && r.from.test(from))) &&
        (r.type === null || r.type.test(envelope.msg.type)),
    );
    if (active === undefined) return this.#sink.deliver(envelope);
    this.#act(active, envelope);
  }

  #act(active: ActiveRule, envelope: Envelope): void {
    const action = active.rule.action;
    const roll = active.random();
    switch (action.kind) {
      case 'drop':
        if (roll < action.probability) {
          this.#sink.injected('drop');
          return this.#sink.drop(envelope, active.rule.id);
        }
        return this.#sink.deliver(envelope);
      case 'crash':
        if (roll < action.probability) {
          this.#sink.injected('crash');
          return this.#sink.crash(envelope, active.rule.id);
        }
        return this.#sink.deliver(envelope);
      case 'duplicate':
        this.#sink.deliver(envelope);
        if (roll < action.probability) {
          this.#sink.injected('duplicate');
          for (let i = 0; i < action.copies; i++) this.#sink.deliver(envelope);
        }
        return;
      case 'delay': {
        const ms = action.ms + Math.floor(roll * (action.jitterMs + 1));
        this.#sink.injected('delay');
        this.#clock.setTimeout(() => this.#sink.deliver(envelope), ms);
        return;
      }
      case 'reorder':
        active.held.push(envelope);
        if (active.held.length >= action.window) this.#flush(active);
        else if (active.holdTimer === null) active.holdTimer = this.#clock.setTimeout(() => this.#flush(active), action.maxHoldMs);
        return;
      default:
        return assertNever(action);
    }
  }

  /** Releases a reorder rule's held messages in a seeded Fisher–Yates order. */
  #flush(active: ActiveRule): void {
    if (active.holdTimer !== null) {
      this.#clock.clearTimeout(active.holdTimer);
      active.holdTimer = null;
    }
    const held = active.held;
    active.held = [];
    for (let i = held.length - 1; i > 0; i--) {
      const j = Math.floor(active.random() * (i + 1));
      [held[i], held[j]] = [held[j]!, held[i]!];
    }
    if (held.length > 1) this.#sink.injected('reorder');
    for (const e of held) this.#sink.deliver(e);
  }

  #expire(): void {
    const now = this.#clock.now();
    if (!this.#rules.some((r) => r.rule.expiresAt <= now)) return;
    for (const r of this.#rules) if (r.rule.expiresAt <= now) this.#flush(r);
    this.#rules = this.#rules.filter((r) => r.rule.expiresAt > now);
  }
}

function sameRule(a: ChaosRule, b: ChaosRule): boolean {
  return JSON.stringify(a) === JSON.stringify(b);
}
