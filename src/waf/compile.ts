// The rule compiler: SecLang directives (./seclang/ast.ts) → a CompiledRuleSet (./ruleset.ts). Chains are
// linked, SecDefaultAction merged, SecRuleRemove* / SecRuleUpdate* applied, SecMarker names turned into
// positions, and every transformation, operator and selector resolved, so a transaction does no lookups.
// Problems are collected with file and line; a rule with any problem is left out whole (with its chain), as
// ModSecurity refuses a configuration with it, and the rest still compiles.

import { readFileSync } from 'node:fs';
import { dirname, resolve } from 'node:path';
import { LiteralSets } from './aho-corasick.ts';
import { emptyActions, parseActionList, type ParsedActions, type TransformStep, type WrittenDisruptive } from './actions.ts';
import { foldConstantRules } from './fold.ts';
import { compileMacro } from './macros.ts';
import { memoized } from './memo.ts';
import { chainLowers, identityTriggers, transformTriggers } from './transforms/traits.ts';
import { lookupOperator } from './operators/index.ts';
import { inertReason } from './operators/misc.ts';
import type { CompiledOperator, OperatorContext, OperatorFactory } from './operators/types.ts';
import type { CompiledRule, CompiledRuleSet, Disruptive, KeyTest, LiteralIndex, Phase, RuleOperator, SetVar, StaleCaches, Target } from './ruleset.ts';
import type { Lifetime } from './variables.ts';
import type { Directive, IdRange, OperatorSpec, SecLangError, SourcePosition, VariableSelector } from './seclang/ast.ts';
import { compileTargets, compileTextPattern, textMatches } from './selectors.ts';
import { applySetting, defaultSettings } from './settings.ts';

export type ConfigError = SecLangError;

export interface CompileOptions {
  /** Reads a data file (`@pmFromFile`) by absolute path as a byte string; tests inject files. */
  readFile?: (path: string) => string;
  /**
   * Fold the rules whose outcome no request can change (./fold.ts); default true. False keeps every rule as
   * written: the test that folding changes no outcome compares both.
   */
  foldConstants?: boolean;
}

export interface CompileResult {
  ruleSet: CompiledRuleSet;
  errors: ConfigError[];
  /** Rules kept whose operator never matches here (@rbl, @geoLookup …: see ./operators/misc.ts). */
  warnings: ConfigError[];
}

/** A rule (or SecAction) as collected before compiling: its chain links and the actions parsed so far. */
interface Draft {
  at: SourcePosition;
  /** Links in order, the head first; each link's selectors and operator (null for SecAction). */
  links: { at: SourcePosition; variables: VariableSelector[]; operator: OperatorSpec | null; actions: ParsedActions }[];
  defaults: DefaultActions;
  errors: string[];
  /** Still expecting a chained rule. */
  open: boolean;
  /** In detection mode (shadow_by_id). */
  shadow?: boolean;
}

/** What SecDefaultAction gives the rules of its phase that follow it. */
interface DefaultActions {
  disruptive: WrittenDisruptive;
  status: number | null;
  log: boolean;
  auditLog: boolean;
  transforms: TransformStep[];
  tags: string[];
  setvars: SetVar[];
}

/** ModSecurity's built-in default: `phase:2,log,auditlog,pass`, for every phase without a SecDefaultAction. */
function builtInDefaults(): DefaultActions {
  return { disruptive: { kind: 'pass' }, status: null, log: true, auditLog: true, transforms: [], tags: [], setvars: [] };
}

/** In source order: a rule, or a marker that every phase's list gets. */
type Entry = { kind: 'rule'; draft: Draft } | { kind: 'marker'; name: string };

type Exception = Extract<
  Directive,
  { kind: 'remove_by_id' | 'remove_by_tag' | 'remove_by_msg' | 'update_target_by_id' | 'update_target_by_tag' | 'update_action_by_id' | 'shadow_by_id' }
>;

export function compileRuleSet(directives: readonly Directive[], options: CompileOptions = {}): CompileResult {
  const errors: ConfigError[] = [];
  const report = (at: SourcePosition, message: string) => errors.push({ file: at.file, line: at.line, message });
  const settings = defaultSettings();
  const defaults = new Map<Phase, DefaultActions>();
  const entries: Entry[] = [];
  const exceptions: Exception[] = [];
  let current: Draft | null = null;

  for (const directive of directives) {
    if (current?.open && directive.kind !== 'rule') {
      current.errors.push('chain ends without a chained SecRule');
      current.open = false;
    }
    switch (directive.kind) {
      case 'rule':
      case 'action': {
        const actions = emptyActions();
        const actionErrors = parseActionList(directive.actions, actions);
        const link = {
          at: { file: directive.file, line: directive.line },
          variables: directive.kind === 'rule' ? directive.variables : [],
          operator: directive.kind === 'rule' ? directive.operator : null,
          actions,
        };
        if (current?.open && directive.kind === 'rule') {
          current.links.push(link);
          current.errors.push(...actionErrors);
          current.open = actions.chain;
          break;
        }
        const phase = actions.phase ?? 2;
        current = { at: link.at, links: [link], defaults: defaults.get(phase) ?? builtInDefaults(), errors: actionErrors, open: actions.chain };
        entries.push({ kind: 'rule', draft: current });
        break;
      }
      case 'marker':
        entries.push({ kind: 'marker', name: directive.name });
        break;
      case 'default_action': {
        const parsed = emptyActions();
        const actionErrors = parseActionList(directive.actions, parsed);
        for (const error of actionErrors) report(directive, `SecDefaultAction: ${error}`);
        if (parsed.phase === null) report(directive, 'SecDefaultAction: needs a phase');
        else defaults.set(parsed.phase, defaultsFrom(parsed));
        break;
      }
      case 'include':
        report(directive, `Include ${directive.path}: includes are resolved by the loader (load.ts), not the compiler`);
        break;
      case 'setting': {
        const error = applySetting(settings, directive.name, directive.args);
        if (error !== null) report(directive, error);
        break;
      }
      default:
        exceptions.push(directive);
    }
  }
  if (current?.open) current.errors.push('chain ends without a chained SecRule');

  const drafts = entries.flatMap((entry) => (entry.kind === 'rule' ? [entry.draft] : []));
  const removed = applyExceptions(drafts, exceptions, report);
  const kept = entries.filter((entry) => entry.kind === 'marker' || (!removed.has(entry.draft) && isValid(entry.draft, report)));
  const warnings: ConfigError[] = [];
  const warn = (at: SourcePosition, message: string) => warnings.push({ file: at.file, line: at.line, message });
  const builder = new RuleBuilder(options.readFile ?? ((path) => readFileSync(path, 'latin1')));
  const lists = placeRules(kept, builder, report, warn);
  return {
    ruleSet: {
      phases: options.foldConstants === false ? lists : foldConstantRules(lists),
      selectionCount: builder.selectionCount,
      inputsCount: builder.inputsCount,
      staleAfter: { body: builder.staleAfter('body'), response: builder.staleAfter('response') },
      literals: builder.literalIndex(),
      settings: Object.freeze(settings),
      ruleCount: lists.reduce((sum, list) => sum + list.length, 0),
    },
    errors,
    warnings,
  };
}

function defaultsFrom(parsed: ParsedActions): DefaultActions {
  const base = builtInDefaults();
  return {
    disruptive: parsed.disruptive ?? base.disruptive,
    status: parsed.status,
    log: parsed.log ?? base.log,
    auditLog: parsed.auditLog ?? base.auditLog,
    transforms: parsed.transforms,
    tags: parsed.tags,
    setvars: parsed.setvars,
  };
}

/**
 * SecRuleRemoveById/ByTag/ByMsg and SecRuleUpdateTargetById/ByTag / UpdateActionById. They apply to every
 * rule of the set wherever they are written, as in ModSecurity v3, which keeps them as rule-set exceptions
 * consulted at run time; here they are applied once, at compile time. Returns the drafts removed.
 */
function applyExceptions(drafts: readonly Draft[], exceptions: readonly Exception[], report: (at: SourcePosition, message: string) => void): Set<Draft> {
  const removed = new Set<Draft>();
  const byId = (ranges: readonly IdRange[]) => drafts.filter((d) => inRanges(d.links[0]!.actions.id, ranges));
  const byPattern = (exception: Exception & { pattern: string }, pick: (d: Draft) => readonly string[]) => {
    const pattern = compileTextPattern(exception.pattern);
    if (!pattern.ok) {
      report(exception, pattern.error);
      return [];
    }
    return drafts.filter((d) => pick(d).some((text) => textMatches(pattern.value, text)));
  };
  const tags = (d: Draft) => d.links[0]!.actions.tags;
  for (const exception of exceptions) {
    switch (exception.kind) {
      case 'remove_by_id':
        for (const d of byId(exception.ranges)) removed.add(d);
        break;
      case 'remove_by_tag':
        for (const d of byPattern(exception, tags)) removed.add(d);
        break;
      case 'remove_by_msg':
        for (const d of byPattern(exception, (d) => [d.links[0]!.actions.msg?.source ?? ''])) removed.add(d);
        break;
      case 'update_target_by_id':
        for (const d of byId(exception.ranges)) updateTargets(d, exception);
        break;
      case 'shadow_by_id':
        for (const d of byId(exception.ranges)) d.shadow = true;
        break;
      case 'update_target_by_tag':
        for (const d of byPattern(exception, tags)) updateTargets(d, exception);
        break;
      case 'update_action_by_id': {
        const matching = byId([{ from: exception.id, to: exception.id }]);
        if (matching.length === 0) report(exception, `SecRuleUpdateActionById: no rule ${exception.id}`);
        for (const d of matching) {
          const head = d.links[0]!.actions;
          const before = { id: head.id, phase: head.phase, chain: head.chain };
          for (const error of parseActionList(exception.actions, head)) report(exception, `SecRuleUpdateActionById: ${error}`);
          // An update changes what a rule does, not which rule it is or where it runs.
          Object.assign(head, before);
        }
        break;
      }
    }
  }
  return removed;
}

/**
 * Adds selectors to a head's target list, or (with the third argument) puts them in place of the selectors
 * named there, as SecRuleUpdateTargetById does.
 */
function updateTargets(draft: Draft, update: { variables: VariableSelector[]; replaced?: VariableSelector[] }): void {
  const head = draft.links[0]!;
  if (update.replaced === undefined) {
    head.variables = [...head.variables, ...update.variables];
    return;
  }
  const replaced = update.replaced;
  const same = (a: VariableSelector, b: VariableSelector) =>
    a.collection === b.collection && a.count === b.count && a.exclude === b.exclude && keyOf(a) === keyOf(b);
  const kept = head.variables.filter((v) => !replaced.some((r) => same(v, r)));
  head.variables = [...kept, ...update.variables];
}

function keyOf(selector: VariableSelector): string {
  if (selector.key === undefined) return '';
  return selector.key.kind === 'name' ? `n:${selector.key.value.toLowerCase()}` : `r:${selector.key.pattern}`;
}

function inRanges(id: number | null, ranges: readonly IdRange[]): boolean {
  return id !== null && ranges.some((range) => id >= range.from && id <= range.to);
}

/** Checks what only a whole draft can tell; reports and returns false when it must be left out. */
function isValid(draft: Draft, report: (at: SourcePosition, message: string) => void): boolean {
  const head = draft.links[0]!.actions;
  if (head.id === null) draft.errors.push('rule has no id');
  for (const link of draft.links.slice(1)) {
    if (link.actions.id !== null) draft.errors.push('a chained rule cannot have an id');
    if (link.actions.disruptive !== null) draft.errors.push('only the chain head may have a disruptive action');
    if (link.actions.skipAfter !== null || link.actions.skip > 0) draft.errors.push('only the chain head may skip');
  }
  for (const error of draft.errors) report(draft.at, head.id === null ? error : `rule ${head.id}: ${error}`);
  return draft.errors.length === 0;
}

/**
 * Compiles the kept drafts into per-phase lists and resolves skipAfter: a marker belongs to every phase
 * (ModSecurity v3 inserts SecMarker into each phase's list), so `skipAfter:X` resumes at the first rule of
 * the rule's own phase that follows marker X.
 */
function placeRules(
  entries: readonly Entry[],
  builder: RuleBuilder,
  report: (at: SourcePosition, message: string) => void,
  warn: (at: SourcePosition, message: string) => void,
): CompiledRule[][] {
  const lists: CompiledRule[][] = [[], [], [], [], [], []];
  /** Per phase, per marker name, the list positions the marker stands at. */
  const markers: Map<string, number[]>[] = lists.map(() => new Map());
  const seenIds = new Set<number>();
  for (const entry of entries) {
    if (entry.kind === 'marker') {
      lists.forEach((list, phase) => {
        const byName = markers[phase]!;
        byName.set(entry.name, [...(byName.get(entry.name) ?? []), list.length]);
      });
      continue;
    }
    const { draft } = entry;
    const id = draft.links[0]!.actions.id!;
    if (seenIds.has(id)) {
      report(draft.at, `rule ${id}: duplicate id, this rule is left out`);
      continue;
    }
    seenIds.add(id);
    const rule = builder.build(draft, draft.links[0]!.actions.phase ?? 2);
    if (typeof rule === 'string') {
      report(draft.at, `rule ${id}: ${rule}`);
      continue;
    }
    lists[rule.phase]!.push(rule);
    for (let link: CompiledRule | null = rule; link !== null; link = link.chain) {
      const reason = link.operator?.compiled ? inertReason(link.operator.compiled) : null;
      if (reason !== null) warn(link, `rule ${id}: never matches: ${reason}`);
    }
  }
  for (const [phase, list] of lists.entries()) {
    list.forEach((rule, index) => {
      if (rule.skipAfter === null) return;
      let skipTo = markers[phase]!.get(rule.skipAfter)?.find((position) => position > index);
      if (skipTo === undefined) {
        report(rule, `rule ${rule.id}: skipAfter:${rule.skipAfter} names no SecMarker after it in phase ${phase}; it skips the rest of the phase`);
        skipTo = list.length;
      }
      list[index] = { ...rule, skipTo };
    });
  }
  return lists;
}

/** Builds compiled rules, numbering transformation chains, selections and inputs across the whole set. */
class RuleBuilder {
  readonly #readFile: (path: string) => string;
  readonly #chainKeys = new Map<string, number>();
  readonly #selections = new Map<string, number>();
  readonly #inputs = new Map<string, number>();
  /** Per selection id, the lifetimes of its variables; per inputs id, its selection. */
  readonly #selectionLifetimes: Set<Lifetime>[] = [];
  readonly #inputsSelection: number[] = [];
  /** Every rule link's required literal clauses, one set per clause, in the order links were built. */
  readonly #literalSets: (readonly string[])[] = [];
  /** Per literal group (selection and transformation chain), the words of a mark its links' sets lie in. */
  readonly #literalGroups = new Map<string, { id: number; first: number; last: number; selection: number }>();

  constructor(readFile: (path: string) => string) {
    this.#readFile = readFile;
  }

  get selectionCount(): number {
    return this.#selections.size;
  }

  get inputsCount(): number {
    return this.#inputs.size;
  }

  /**
   * Every link's sets in one automaton: one scan of an input marks the clauses of every rule, and an input
   * that several rules share (the same value under chains that leave it alone) is scanned once for all.
   */
  literalIndex(): LiteralIndex {
    const groups = [...this.#literalGroups.values()].map(({ first, last }) => ({ first, words: last - first + 1 }));
    return { sets: literalSetsMemo(JSON.stringify(this.#literalSets)), groups };
  }

  /**
   * The sets of a rule link whose operator names required literals, and its literal group when its values come
   * from a selection; -1s and 0 otherwise. Left out: negated operators (no match is their match) and operators
   * with an input length limit (a too-long input must still be seen to be reported). multiMatch links have
   * sets but no group: they run the operator on intermediate transformations too, each checked on its own.
   */
  #literalSlot(
    operator: RuleOperator | null,
    selection: number,
    chainKey: number,
    multiMatch: boolean,
  ): { literalGroup: number; literalSlot: number; literalCount: number } {
    const literals = operator?.compiled?.literals;
    if (literals == null || operator!.negated || operator!.maxInputLength !== Infinity) {
      return { literalGroup: -1, literalSlot: -1, literalCount: 0 };
    }
    const slot = this.#literalSets.length;
    this.#literalSets.push(...literals);
    if (selection === -1 || multiMatch) return { literalGroup: -1, literalSlot: slot, literalCount: literals.length };
    const key = `${selection}:${chainKey}`;
    const first = slot >>> 5;
    const last = (slot + literals.length - 1) >>> 5;
    let group = this.#literalGroups.get(key);
    if (group === undefined) {
      group = { id: this.#literalGroups.size, first, last, selection };
      this.#literalGroups.set(key, group);
    }
    group.first = Math.min(group.first, first);
    group.last = Math.max(group.last, last);
    return { literalGroup: group.id, literalSlot: slot, literalCount: literals.length };
  }

  /** The chain head and its links, or why it cannot be built. */
  build(draft: Draft, phase: Phase): CompiledRule | string {
    let chain: CompiledRule | null = null;
    const head = draft.links[0]!.actions;
    for (let i = draft.links.length - 1; i >= 0; i--) {
      const link = draft.links[i]!;
      const built = this.#link(link, head, draft.defaults, phase, chain, draft.shadow === true);
      if (typeof built === 'string') return i === 0 ? built : `chained rule at line ${link.at.line}: ${built}`;
      chain = built;
    }
    return chain!;
  }

  #link(
    link: Draft['links'][number],
    head: ParsedActions,
    defaults: DefaultActions,
    phase: Phase,
    chain: CompiledRule | null,
    shadow: boolean,
  ): CompiledRule | string {
    const { actions } = link;
    const targets = compileTargets(link.variables);
    if (targets.errors.length > 0) return targets.errors.join('; ');
    let operator: RuleOperator | null = null;
    if (link.operator !== null) {
      const built = this.#operator(link.operator, link.at.file);
      if (typeof built === 'string') return built;
      operator = built;
    }
    const steps = actions.transformsReset ? actions.transforms : [...defaults.transforms, ...actions.transforms];
    const transformKeys = this.#transformKeys(steps);
    const selection = this.#selection(targets.targets);
    const targetSelections = selection === -1 ? [] : targets.targets.map((target) => this.#selection([target]));
    const inputs = selection === -1 || steps.length === 0 ? -1 : intern(this.#inputs, `${selection}:${transformKeys.at(-1)}`);
    if (inputs !== -1) this.#inputsSelection[inputs] = selection;
    const stepTriggers = steps.map((step) => transformTriggers(step.name));
    const stepIdentities = steps.map((step) => identityTriggers(step.name));
    const isHead = actions === head;
    const written = head.disruptive ?? defaults.disruptive;
    return {
      id: head.id!,
      phase,
      file: link.at.file,
      line: link.at.line,
      targets: targets.targets,
      operator,
      transforms: steps.map((step) => step.fn),
      transformKeys,
      transformNames: steps.map((step) => step.name),
      transformTriggers: stepTriggers.reduce((all, triggers) => all | triggers, 0),
      transformStepTriggers: stepTriggers,
      transformIdentities: stepIdentities,
      transformIdentity: stepIdentities.reduce((all, triggers) => all | triggers, 0),
      transformLowers: chainLowers(steps.map((step) => step.name)),
      transformStepLowers: steps.map((step) => chainLowers([step.name])),
      selection,
      targetSelections,
      inputs,
      ...this.#literalSlot(operator, selection, transformKeys.at(-1) ?? -1, actions.multiMatch),
      multiMatch: actions.multiMatch,
      capture: actions.capture,
      setvars: isHead ? [...defaults.setvars, ...actions.setvars] : actions.setvars,
      setenvs: actions.setenvs,
      ctls: actions.ctls,
      chain,
      shadow,
      disruptive: resolveDisruptive(written, defaults),
      actionName: written.kind,
      status: head.status ?? defaults.status,
      skip: head.skip,
      skipAfter: head.skipAfter,
      skipTo: -1,
      log: head.log ?? defaults.log,
      auditLog: head.auditLog ?? defaults.auditLog,
      msg: head.msg,
      logdata: head.logdata,
      severity: head.severity,
      tags: [...defaults.tags, ...head.tags],
      ver: head.ver ?? '',
      rev: head.rev ?? '',
      maturity: head.maturity,
      accuracy: head.accuracy,
    };
  }

  #transformKeys(steps: readonly TransformStep[]): number[] {
    let prefix = '';
    return steps.map((step) => {
      prefix += `${step.name.toLowerCase()},`;
      return intern(this.#chainKeys, prefix);
    });
  }

  /** The selection id of a target list whose values a transaction computes once; -1 for any other. */
  #selection(targets: readonly Target[]): number {
    if (targets.length === 0 || targets.some((t) => t.count || t.variable.lifetime === 'live')) return -1;
    const keyText = (test: KeyTest | null) => (test === null ? '' : test.kind === 'name' ? `n${test.lower}` : test.kind === 'regex' ? `r${test.source}` : `x${test.path}`);
    const text = targets.map((t) => `${t.variable.name}\0${keyText(t.key)}\0${t.exclusions.map(keyText).join('\0')}`).join('\n');
    const id = intern(this.#selections, text);
    // Interned: every rule naming the same list (or target, for targetSelections) gets this id again.
    this.#selectionLifetimes[id] ??= new Set(targets.map((t) => t.variable.lifetime));
    return id;
  }

  /** The caches a transaction drops when variables of `lifetime` change (StaleCaches). */
  staleAfter(lifetime: 'body' | 'response'): StaleCaches {
    const stale = (selection: number) => this.#selectionLifetimes[selection]!.has(lifetime);
    const selections = [...this.#selections.values()].filter(stale);
    const inputs = [...this.#inputs.values()].filter((id) => stale(this.#inputsSelection[id]!));
    const groups = [...this.#literalGroups.values()].filter((group) => stale(group.selection)).map((group) => group.id);
    return { selections, inputs, groups };
  }

  #operator(spec: OperatorSpec, file: string): RuleOperator | string {
    const factory = lookupOperator(spec.name);
    if (factory === undefined) return `unknown operator @${spec.name}`;
    const context: OperatorContext = { readDataFile: (name) => this.#readFile(resolve(dirname(file), name)) };
    const argument = compileMacro(spec.argument);
    if (!argument.ok) return `operator @${spec.name}: ${argument.error}`;
    const base = { name: spec.name, argument: spec.argument, negated: spec.negated };
    if (argument.macro.constant !== null) {
      const compiled = buildOperator(factory, spec.argument, context);
      if (typeof compiled === 'string') return `operator @${spec.name}: ${compiled}`;
      const maxInputLength = 'maxInputLength' in compiled && typeof compiled.maxInputLength === 'number' ? compiled.maxInputLength : Infinity;
      return { ...base, compiled, maxInputLength, dynamic: null };
    }
    const dynamic = { argument: argument.macro, build: memoizedBuilder(factory, context) };
    return { ...base, compiled: null, maxInputLength: Infinity, dynamic };
  }
}

/**
 * The literal automaton of a rule set's sets (JSON), built once per thread for the last two rule sets: a reload
 * that leaves every rule's literals as they were (the usual case) takes the one it has instead of building it
 * again (the CRS at PL1: 25,500 states over 80 byte classes, 4 MB, 65–100 ms to build on the test VM).
 */
const literalSetsMemo = memoized((key) => new LiteralSets(JSON.parse(key) as string[][]), 2);

/**
 * `block` does what the phase's SecDefaultAction says (CRS sets `pass` there, so its rules score and
 * 949110 decides); a rule with no disruptive action takes the default's too, as the SecLang reference
 * defines (libmodsecurity 3 alone applies the default only to `block`; with CRS both read the same).
 */
function resolveDisruptive(written: WrittenDisruptive, defaults: DefaultActions): Disruptive {
  if (written.kind !== 'block') return written;
  return defaults.disruptive.kind === 'block' ? { kind: 'pass' } : defaults.disruptive;
}

/** The number standing for `text` in `table`, allocated on first sight. */
function intern(table: Map<string, number>, text: string): number {
  let id = table.get(text);
  if (id === undefined) {
    id = table.size;
    table.set(text, id);
  }
  return id;
}

function buildOperator(factory: OperatorFactory, argument: string, context: OperatorContext): CompiledOperator | string {
  try {
    const built = factory(argument, context);
    return 'error' in built ? built.error : built;
  } catch (error) {
    // readDataFile throws for a missing data file: a configuration error of this rule, not of the loader.
    return error instanceof Error ? error.message : String(error);
  }
}

/** Expanded arguments seen per rule before the memo starts over; CRS's expand to one value per config. */
const MAX_MEMOIZED_ARGUMENTS = 16;

function memoizedBuilder(factory: OperatorFactory, context: OperatorContext): (expanded: string) => CompiledOperator | null {
  const memo = new Map<string, CompiledOperator | null>();
  return (expanded) => {
    let built = memo.get(expanded);
    if (built === undefined) {
      const result = buildOperator(factory, expanded, context);
      built = typeof result === 'string' ? null : result;
      if (memo.size >= MAX_MEMOIZED_ARGUMENTS) memo.clear();
      memo.set(expanded, built);
    }
    return built;
  };
}
