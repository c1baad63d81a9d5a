// Constant folding of the request phases. About half the rules a CRS request walks read only collection
// members that no request can change: REQUEST-901's defaults (`&TX:x "@eq 0"` → setvar), every file's
// paranoia-level gates (`TX:DETECTION_PARANOIA_LEVEL "@lt 2" skipAfter:…`), the 903.9xxx application gates.
// Their outcome is the same for every request, so the compiler works it out once, on what is known of the
// collections at each point of phases 1 and 2 over every path that reaches it:
//
// - a rule whose outcome is known and changes nothing is dropped; one that only jumps becomes a jump;
// - the known writes of consecutive folded rules become one SecAction of constant setvars (the members must
//   still hold those values: later rules and macros read them);
// - rules no path reaches (the gates of the paranoia levels above the configured one skip them) are dropped.
//
// What the transaction sees is unchanged: every member holds at every kept rule what it held before, and the
// same rules match in the same order. Not folded (kept as written): rules any ctl:ruleRemove* of the set could
// take away at run time, chains, captures, ctl, setenv, multiMatch, detection-mode rules, disruptive actions
// other than pass, and rules that would log or set a severity. Two things a folded rule no longer does, which
// CRS never reads: set MATCHED_VAR / MATCHED_VAR_NAME for rules after it, and spend evaluation budget.

import { expandMacro, literalMacro, type Macro, type MacroScope } from './macros.ts';
import type { CompiledRule, IdRange, KeyTest, SetVar } from './ruleset.ts';
import { textMatches } from './selectors.ts';
import { setVarResult } from './setvar.ts';
import { variable, type VariableDef } from './variables.ts';

/** A member as folded rules left it: its key as first written (the collection keeps that case) and value. */
interface Member {
  readonly key: string;
  readonly value: string;
}

const UNKNOWN = Symbol('unknown');

const TX = variable('TX');
/** Written by the transaction itself when an input is too long for a regex: never known. */
const PCRE_LIMIT_SLOT = slotOf(TX, 'msc_pcre_limits_exceeded');
/** What a capturing rule writes (TX:0 … TX:9). */
const CAPTURE_SLOTS = Array.from({ length: 10 }, (_, i) => slotOf(TX, String(i)));

function slotOf(collection: VariableDef, lowerKey: string): string {
  return `${collection.id}:${lowerKey}`;
}

/**
 * What is known of the collections at one point of a phase on every path to it. Every member starts unset;
 * a rule kept as written makes what it may write unknown: a member, or every member whose key begins with
 * the literal start of a key it builds from request data.
 */
class Knowledge implements MacroScope {
  readonly #slots: Map<string, Member | null | typeof UNKNOWN>;
  readonly #unknownPrefixes: string[];
  /** A member was written under a key built from request data: a collection may be full, so adding one may fail. */
  #mayBeFull: boolean;
  /** Set when a macro read an unknown member (#expand). */
  #readUnknown = false;

  constructor(
    slots = new Map<string, Member | null | typeof UNKNOWN>([[PCRE_LIMIT_SLOT, UNKNOWN]]),
    prefixes: string[] = [],
    mayBeFull = false,
  ) {
    this.#slots = slots;
    this.#unknownPrefixes = prefixes;
    this.#mayBeFull = mayBeFull;
  }

  /** Every member unknown. */
  static nothing(): Knowledge {
    return new Knowledge(new Map(), [''], true);
  }

  copy(): Knowledge {
    return new Knowledge(new Map(this.#slots), [...this.#unknownPrefixes], this.#mayBeFull);
  }

  get mayBeFull(): boolean {
    return this.#mayBeFull;
  }

  /** The member, null when it is known to be unset, undefined when unknown. */
  read(slot: string): Member | null | undefined {
    const known = this.#slots.get(slot);
    if (known !== undefined) return known === UNKNOWN ? undefined : known;
    return this.#unknownPrefixes.some((prefix) => slot.startsWith(prefix)) ? undefined : null;
  }

  write(slot: string, member: Member | null): void {
    this.#slots.set(slot, member);
  }

  forget(slot: string): void {
    this.#slots.set(slot, UNKNOWN);
  }

  forgetPrefix(prefix: string): void {
    this.#unknownPrefixes.push(prefix);
    this.#mayBeFull = true;
    for (const slot of this.#slots.keys()) if (slot.startsWith(prefix)) this.#slots.delete(slot);
  }

  /** What holds on both paths. */
  meet(other: Knowledge): Knowledge {
    const prefixes = [...new Set([...this.#unknownPrefixes, ...other.#unknownPrefixes])];
    const met = new Knowledge(new Map(), prefixes, this.#mayBeFull || other.#mayBeFull);
    for (const slot of new Set([...this.#slots.keys(), ...other.#slots.keys()])) {
      const mine = this.read(slot);
      const theirs = other.read(slot);
      met.#slots.set(slot, mine !== undefined && theirs !== undefined && sameMember(mine, theirs) ? mine : UNKNOWN);
    }
    return met;
  }

  /** A macro expanded on known members; undefined when it reads an unknown one or anything but a collection member. */
  expand(macro: Macro): string | undefined {
    if (macro.constant !== null) return macro.constant;
    if (macro.parts.some((part) => typeof part !== 'string' && (part.variable.shape !== 'store' || part.key === null))) return undefined;
    this.#readUnknown = false;
    const text = expandMacro(macro, this);
    return this.#readUnknown ? undefined : text;
  }

  /** MacroScope, for #expand: only collection members with a key reach here. */
  macroValue(ref: { variable: VariableDef; key: string | null }): string {
    const member = this.read(slotOf(ref.variable, ref.key!));
    if (member === undefined) this.#readUnknown = true;
    return member?.value ?? '';
  }
}

function sameMember(a: Member | null, b: Member | null): boolean {
  return a === b || (a !== null && b !== null && a.key === b.key && a.value === b.value);
}

/** A folded rule's outcome: the setvars it ran (as constants) and where evaluation goes on. */
interface Folded {
  readonly writes: readonly SetVar[];
  readonly after: Knowledge;
  readonly next: number;
}

/**
 * Phases 1 and 2 folded (see the top of this file); the other phases as they were. `lists` is indexed by
 * phase, as CompiledRuleSet.phases.
 */
export function foldConstantRules(lists: readonly (readonly CompiledRule[])[]): CompiledRule[][] {
  // Which rules a ctl may take away depends on which rules can run, which folding decides: the 903.9xxx
  // exclusions remove whole ranges (941000-942999), but sit behind gates that fold away when disabled. Start
  // from every ctl of the set and fold again with those of the rules kept until they no longer change (each
  // round keeps a subset of the last one's rules, so a handful of rounds end it).
  let removals = runTimeRemovals(lists);
  for (let round = 0; round < MAX_ROUNDS; round++) {
    const folded = foldWith(lists, removals);
    const left = runTimeRemovals(folded);
    if (left.count === removals.count) return folded;
    removals = left;
  }
  return lists.map((list) => [...list]);
}

/** Rounds of foldConstantRules before it gives up folding (CRS takes two). */
const MAX_ROUNDS = 8;

function foldWith(lists: readonly (readonly CompiledRule[])[], removals: Removals): CompiledRule[][] {
  const folded = lists.map((list) => [...list]);
  let entry = new Knowledge();
  for (const phase of [1, 2] as const) {
    const { rules, next } = foldPhase(lists[phase]!, entry, removals.covers);
    folded[phase] = rules;
    entry = next;
  }
  return folded;
}

/** The phase's rules folded, and what is known when the next phase begins. */
function foldPhase(
  rules: readonly CompiledRule[],
  entry: Knowledge,
  removable: (rule: CompiledRule) => boolean,
): { rules: CompiledRule[]; next: Knowledge } {
  const n = rules.length;
  const known: (Knowledge | undefined)[] = new Array<Knowledge | undefined>(n + 1);
  /** Positions some jump lands on: a batch of constant setvars may not run across them. */
  const landings = new Array<boolean>(n + 1).fill(false);
  /** Per position: its folded outcome, null when kept as written, undefined when no path reaches it. */
  const outcomes: (Folded | null | undefined)[] = new Array<Folded | null | undefined>(n);
  known[0] = entry;
  let phaseExits: Knowledge | undefined;
  const reach = (to: number, state: Knowledge, from: number) => {
    known[to] = known[to] === undefined ? state : known[to]!.meet(state);
    if (to !== from + 1) landings[to] = true;
  };
  for (let i = 0; i < n; i++) {
    const state = known[i];
    if (state === undefined) continue;
    const rule = rules[i]!;
    const outcome = removable(rule) ? null : foldRule(rule, i, n, state);
    outcomes[i] = outcome;
    if (outcome !== null) {
      reach(outcome.next, outcome.after, i);
      continue;
    }
    const after = state.copy();
    forgetWrites(rule, after);
    reach(i + 1, after, i);
    const target = jumpOf(rule, i, n);
    if (target !== null) reach(target, after, i);
    // allow:phase ends this phase; the next one begins from there (allow:request and allow skip it).
    if (rule.disruptive.kind === 'allow' && rule.disruptive.scope === 'phase') {
      phaseExits = phaseExits === undefined ? after : phaseExits.meet(after);
    }
  }
  // Every path reaches the end or an exit; were none to, nothing would be known there.
  const end = known[n] ?? Knowledge.nothing();
  return { rules: emit(rules, outcomes, landings), next: phaseExits === undefined ? end : end.meet(phaseExits) };
}

/** Where a rule that matched goes when it jumps (skipAfter, skip), else null. */
function jumpOf(rule: CompiledRule, at: number, n: number): number | null {
  if (rule.skipTo !== -1) return rule.skipTo;
  if (rule.skip > 0) return Math.min(at + 1 + rule.skip, n);
  return null;
}

/** The rule's outcome when the members it reads are known and it may be folded, else null. */
function foldRule(rule: CompiledRule, at: number, n: number, state: Knowledge): Folded | null {
  const after = state.copy();
  const writes: SetVar[] = [];
  // As the transaction runs a chain: a link's setvars run when it matched, the next link only then.
  let matched = true;
  for (let link: CompiledRule | null = rule; link !== null && matched; link = link.chain) {
    const linkMatched = foldLink(link, after, writes);
    if (linkMatched === null) return null;
    matched = linkMatched;
  }
  if (!matched) return { writes, after, next: at + 1 };
  // A rule that matches must do nothing a constant setvar would not: no disruptive action, no log, no severity.
  if (rule.shadow || rule.disruptive.kind !== 'pass' || rule.log || rule.severity !== null) return null;
  return { writes, after, next: jumpOf(rule, at, n) ?? at + 1 };
}

/** Whether one link matched, its setvars run on `state`; null when that cannot be known here. */
function foldLink(link: CompiledRule, state: Knowledge, writes: SetVar[]): boolean | null {
  if (link.ctls.length > 0 || link.setenvs.length > 0 || link.multiMatch || link.capture) return null;
  const operator = link.operator;
  if (operator === null) return runSetvars(link, state, writes) ? true : null;
  let matched = false;
  for (const target of link.targets) {
    const key = target.key;
    if (target.variable.shape !== 'store' || key === null || key.kind !== 'name' || target.exclusions.length > 0) return null;
    const member = state.read(slotOf(target.variable, key.lower));
    if (member === undefined) return null;
    if (member === null && !target.count) continue;
    let input = target.count ? (member === null ? '0' : '1') : member!.value;
    for (const transform of link.transforms) input = transform(input);
    if (input.length > operator.maxInputLength) return null;
    let compiled = operator.compiled;
    if (compiled === null) {
      const argument = state.expand(operator.dynamic!.argument);
      if (argument === undefined) return null;
      compiled = operator.dynamic!.build(argument);
    }
    if (compiled === null || compiled.match(input, null) === operator.negated) continue;
    matched = true;
    if (!runSetvars(link, state, writes)) return null;
  }
  return matched;
}

/** The rule's setvars on known members, recorded as constants in `writes`; false when one cannot be known. */
function runSetvars(rule: CompiledRule, state: Knowledge, writes: SetVar[]): boolean {
  for (const setvar of rule.setvars) {
    const key = state.expand(setvar.key);
    if (key === undefined) return false;
    const lower = setvar.keyLower ?? key.toLowerCase();
    const slot = slotOf(setvar.collection, lower);
    const existing = state.read(slot);
    if (existing === undefined || slot === PCRE_LIMIT_SLOT) return false;
    const operand = setvar.op === 'delete' ? '' : state.expand(setvar.value);
    if (operand === undefined) return false;
    const value = setVarResult(setvar.op, existing?.value, operand);
    // The transaction refuses a new member to a full collection: whether it is full is not known here.
    if (value !== null && existing === null && state.mayBeFull) return false;
    state.write(slot, value === null ? null : { key: existing?.key ?? key, value });
    writes.push({
      collection: setvar.collection,
      key: literalMacro(key),
      keyLower: lower,
      op: value === null ? 'delete' : 'set',
      value: literalMacro(value ?? ''),
    });
  }
  return true;
}

/** A kept rule may write what its links' setvars and setenvs name, and TX:0 … TX:9 when a link captures. */
function forgetWrites(rule: CompiledRule, state: Knowledge): void {
  for (let link: CompiledRule | null = rule; link !== null; link = link.chain) {
    for (const setvar of [...link.setvars, ...link.setenvs]) {
      const first = setvar.key.parts[0];
      if (setvar.key.constant !== null) state.forget(slotOf(setvar.collection, setvar.keyLower ?? setvar.key.constant.toLowerCase()));
      else state.forgetPrefix(slotOf(setvar.collection, typeof first === 'string' ? first.toLowerCase() : ''));
    }
    if (link.capture) for (const slot of CAPTURE_SLOTS) state.forget(slot);
  }
}

interface Removals {
  /** How many ctl:ruleRemove* actions the rules hold. */
  readonly count: number;
  /** Whether one of them could take a rule, or some of its targets, away at run time. */
  readonly covers: (rule: CompiledRule) => boolean;
}

function runTimeRemovals(lists: readonly (readonly CompiledRule[])[]): Removals {
  const ranges: IdRange[] = [];
  const tags: KeyTest[] = [];
  let count = 0;
  for (const list of lists) {
    for (const head of list) {
      for (let link: CompiledRule | null = head; link !== null; link = link.chain) {
        for (const ctl of link.ctls) {
          if (ctl.kind === 'ruleRemoveById' || ctl.kind === 'ruleRemoveTargetById') ranges.push(...ctl.ranges);
          else if (ctl.kind === 'ruleRemoveByTag' || ctl.kind === 'ruleRemoveTargetByTag') tags.push(ctl.tag);
          else continue;
          count++;
        }
      }
    }
  }
  const covers = (rule: CompiledRule) =>
    ranges.some((range) => rule.id >= range.from && rule.id <= range.to) || tags.some((tag) => rule.tags.some((t) => textMatches(tag, t)));
  return { count, covers };
}

/**
 * The phase's list after folding: kept rules as they were (their jumps re-aimed), folded writes batched into
 * SecActions between landings, folded jumps as SecActions that jump.
 */
function emit(
  rules: readonly CompiledRule[],
  outcomes: readonly (Folded | null | undefined)[],
  landings: readonly boolean[],
): CompiledRule[] {
  const n = rules.length;
  const out: CompiledRule[] = [];
  /** Per position, where its rules begin in `out` (read only for landings, where no batch is pending). */
  const starts = new Array<number>(n + 1).fill(0);
  const jumps: { index: number; target: number }[] = [];
  let batch: { first: CompiledRule; writes: SetVar[] } | null = null;
  const flush = () => {
    if (batch !== null) out.push(constantAction(batch.first, batch.writes));
    batch = null;
  };
  for (let i = 0; i < n; i++) {
    if (landings[i]) flush();
    starts[i] = out.length;
    const outcome = outcomes[i];
    if (outcome === undefined) continue;
    const rule = rules[i]!;
    if (outcome === null) {
      flush();
      out.push(rule);
      const target = jumpOf(rule, i, n);
      if (target !== null) jumps.push({ index: out.length - 1, target });
      continue;
    }
    if (outcome.writes.length > 0) {
      batch ??= { first: rule, writes: [] };
      batch.writes.push(...outcome.writes);
    }
    // A jump over rules no path reaches (the gates of higher paranoia levels) lands where the list goes on anyway.
    if (outcomes.slice(i + 1, outcome.next).some((skipped) => skipped !== undefined)) {
      const jumping: { first: CompiledRule; writes: SetVar[] } = batch ?? { first: rule, writes: [] };
      batch = null;
      out.push(constantAction(jumping.first, jumping.writes));
      jumps.push({ index: out.length - 1, target: outcome.next });
    }
  }
  flush();
  starts[n] = out.length;
  for (const { index, target } of jumps) out[index] = { ...out[index]!, skipTo: starts[target]!, skip: 0 };
  return out;
}

/** A SecAction that runs constant setvars, standing for folded rules from `first` on (its id and place). */
function constantAction(first: CompiledRule, writes: readonly SetVar[]): CompiledRule {
  return {
    ...first,
    targets: [],
    operator: null,
    transforms: [],
    transformKeys: [],
    transformNames: [],
    transformTriggers: 0,
    transformStepTriggers: [],
    transformIdentities: [],
    transformIdentity: 0,
    transformLowers: false,
    transformStepLowers: [],
    selection: -1,
    targetSelections: [],
    inputs: -1,
    literalGroup: -1,
    literalSlot: -1,
    literalCount: 0,
    multiMatch: false,
    capture: false,
    setvars: writes,
    setenvs: [],
    ctls: [],
    chain: null,
    shadow: false,
    disruptive: { kind: 'pass' },
    actionName: 'pass',
    status: null,
    skip: 0,
    skipAfter: null,
    skipTo: -1,
    log: false,
    auditLog: false,
    msg: null,
    logdata: null,
    severity: null,
    tags: [],
  };
}
