// A rule's action list (`id:942100,phase:2,block,t:none,t:urlDecodeUni,setvar:'tx.x=+5',ctl:…`) parsed once
// into typed fields: metadata, transformations, setvar / ctl operations, flow and the disruptive action.
// ./compile.ts merges the result with SecDefaultAction and builds the rule.

import { compileMacro, type Macro } from './macros.ts';
import type { BodyProcessorKind } from './body/index.ts';
import type { Ctl, Disruptive, Phase, SetVar, SetVarOp } from './ruleset.ts';
import type { ActionSpec } from './seclang/ast.ts';
import { parseIdRanges } from './seclang/parser.ts';
import { compileTextPattern, parseTargetFilter } from './selectors.ts';
import { parseMode, parseOnOff } from './settings.ts';
import { lookupTransform } from './transforms/index.ts';
import type { Transform } from './transforms/types.ts';
import { isStore, lookupVariable } from './variables.ts';

export interface TransformStep {
  readonly name: string;
  readonly fn: Transform;
}

/** A disruptive action as written; `block` is left for the compiler to resolve against SecDefaultAction. */
export type WrittenDisruptive = Disruptive | { readonly kind: 'block' };

export interface ParsedActions {
  id: number | null;
  phase: Phase | null;
  chain: boolean;
  disruptive: WrittenDisruptive | null;
  status: number | null;
  log: boolean | null;
  auditLog: boolean | null;
  msg: Macro | null;
  logdata: Macro | null;
  severity: number | null;
  tags: string[];
  ver: string | null;
  rev: string | null;
  maturity: number | null;
  accuracy: number | null;
  /** The transformations after the last `t:none`. */
  transforms: TransformStep[];
  /** A `t:none` was written: transformations of SecDefaultAction do not apply (ModSecurity v3 counts them). */
  transformsReset: boolean;
  multiMatch: boolean;
  capture: boolean;
  setvars: SetVar[];
  setenvs: SetVar[];
  ctls: Ctl[];
  skip: number;
  skipAfter: string | null;
}

export function emptyActions(): ParsedActions {
  return {
    id: null,
    phase: null,
    chain: false,
    disruptive: null,
    status: null,
    log: null,
    auditLog: null,
    msg: null,
    logdata: null,
    severity: null,
    tags: [],
    ver: null,
    rev: null,
    maturity: null,
    accuracy: null,
    transforms: [],
    transformsReset: false,
    multiMatch: false,
    capture: false,
    setvars: [],
    setenvs: [],
    ctls: [],
    skip: 0,
    skipAfter: null,
  };
}

/** Severity names ModSecurity accepts, by their number (0 = EMERGENCY). */
export const SEVERITY_NAMES = ['EMERGENCY', 'ALERT', 'CRITICAL', 'ERROR', 'WARNING', 'NOTICE', 'INFO', 'DEBUG'] as const;

/**
 * Actions accepted without effect here, and why:
 * - initcol / setsid / setuid: open persistent collections; IP, GLOBAL, SESSION and USER here live for one
 *   transaction and exist from its start, so there is nothing to open;
 * - expirevar / deprecatevar: age persistent values, which never outlive the transaction here;
 * - sanitise*: mask values in the audit log, which this engine does not write;
 * - xmlns: namespaces for XPath, of which only `/*` and `//@*` are supported (see ./selectors.ts);
 * - append / prepend: response-body injection, which ModSecurity v3 does not implement either.
 */
const IGNORED = new Set([
  'initcol',
  'setsid',
  'setuid',
  'expirevar',
  'deprecatevar',
  'sanitisearg',
  'sanitisematched',
  'sanitisematchedbytes',
  'sanitiserequestheader',
  'sanitiseresponseheader',
  'xmlns',
  'append',
  'prepend',
]);

/** Parses `specs` onto `into` (a fresh emptyActions(), or a rule's to apply SecRuleUpdateActionById). */
export function parseActionList(specs: readonly ActionSpec[], into: ParsedActions): string[] {
  const errors: string[] = [];
  for (const spec of specs) {
    const error = applyAction(spec, into);
    if (error !== null) errors.push(`action ${spec.name}${spec.value === undefined ? '' : `:${spec.value}`}: ${error}`);
  }
  return errors;
}

function applyAction(spec: ActionSpec, to: ParsedActions): string | null {
  const value = spec.value ?? '';
  switch (spec.name) {
    case 'id': {
      if (!/^\d{1,15}$/.test(value) || Number(value) === 0) return 'rule ids are whole numbers above 0';
      to.id = Number(value);
      return null;
    }
    case 'phase': {
      const phase = parsePhase(value);
      if (phase === null) return 'phases are 1-5, request, response or logging';
      to.phase = phase;
      return null;
    }
    case 'chain':
      to.chain = true;
      return null;
    case 'pass':
    case 'deny':
    case 'drop':
    case 'block':
      to.disruptive = { kind: spec.name };
      return null;
    case 'allow': {
      const scope = value === '' ? 'all' : value.toLowerCase();
      if (scope !== 'all' && scope !== 'phase' && scope !== 'request') return 'allow takes no value, phase or request';
      to.disruptive = { kind: 'allow', scope };
      return null;
    }
    case 'redirect': {
      const url = macro(value);
      if (typeof url === 'string') return url;
      to.disruptive = { kind: 'redirect', url };
      return null;
    }
    case 'status': {
      if (!/^\d{3}$/.test(value)) return 'status takes an HTTP status code';
      to.status = Number(value);
      return null;
    }
    case 'log':
    case 'nolog':
      to.log = spec.name === 'log';
      return null;
    case 'auditlog':
    case 'noauditlog':
      to.auditLog = spec.name === 'auditlog';
      return null;
    case 'msg':
    case 'logdata': {
      const text = macro(value);
      if (typeof text === 'string') return text;
      if (spec.name === 'msg') to.msg = text;
      else to.logdata = text;
      return null;
    }
    case 'severity': {
      const severity = parseSeverity(value);
      if (severity === null) return `severities are 0-7 or ${SEVERITY_NAMES.join(', ')}`;
      to.severity = severity;
      return null;
    }
    case 'tag':
      to.tags.push(value);
      return null;
    case 'ver':
      to.ver = value;
      return null;
    case 'rev':
      to.rev = value;
      return null;
    case 'maturity':
    case 'accuracy': {
      if (!/^\d{1,2}$/.test(value)) return 'takes a number 1-9';
      if (spec.name === 'maturity') to.maturity = Number(value);
      else to.accuracy = Number(value);
      return null;
    }
    case 't':
      return applyTransform(value, to);
    case 'multimatch':
      to.multiMatch = true;
      return null;
    case 'capture':
      to.capture = true;
      return null;
    case 'setvar': {
      const setvar = parseSetVar(value);
      if (typeof setvar === 'string') return setvar;
      to.setvars.push(setvar);
      return null;
    }
    case 'setenv': {
      const setenv = parseAssignment('ENV', value);
      if (typeof setenv === 'string') return setenv;
      to.setenvs.push(setenv);
      return null;
    }
    case 'ctl': {
      const ctl = parseCtl(value);
      if (typeof ctl === 'string') return ctl;
      if (ctl !== null) to.ctls.push(ctl);
      return null;
    }
    case 'skip': {
      if (!/^\d{1,6}$/.test(value) || Number(value) === 0) return 'skip takes a number of rules above 0';
      to.skip = Number(value);
      return null;
    }
    case 'skipafter':
      if (value === '') return 'skipAfter takes a marker name';
      to.skipAfter = value;
      return null;
    default:
      return IGNORED.has(spec.name) ? null : 'unknown or unsupported action';
  }
}

function macro(text: string): Macro | string {
  const compiled = compileMacro(text);
  return compiled.ok ? compiled.macro : compiled.error;
}

function parsePhase(value: string): Phase | null {
  switch (value.toLowerCase()) {
    case '1':
      return 1;
    case '2':
    case 'request':
      return 2;
    case '3':
      return 3;
    case '4':
    case 'response':
      return 4;
    case '5':
    case 'logging':
      return 5;
    default:
      return null;
  }
}

function parseSeverity(value: string): number | null {
  if (/^[0-7]$/.test(value)) return Number(value);
  const index = SEVERITY_NAMES.indexOf(value.toUpperCase() as (typeof SEVERITY_NAMES)[number]);
  return index === -1 ? null : index;
}

function applyTransform(value: string, to: ParsedActions): string | null {
  const name = value.toLowerCase();
  if (name === 'none') {
    to.transforms = [];
    to.transformsReset = true;
    return null;
  }
  const fn = lookupTransform(name);
  if (fn === undefined) return 'unknown transformation';
  to.transforms.push({ name: value, fn });
  return null;
}

/**
 * `tx.name=value`, `tx.name=+n`, `tx.name=-n`, `!tx.name` or `tx.name` (set to 1), the forms
 * ModSecurity v3's SetVar knows. `=+` / `=-` are read from the text as written, before expansion.
 */
export function parseSetVar(text: string): SetVar | string {
  if (text.startsWith('!')) {
    const target = parseTargetName(text.slice(1));
    if (typeof target === 'string') return target;
    return { ...target, op: 'delete', value: EMPTY };
  }
  const equals = text.indexOf('=');
  if (equals === -1) {
    const target = parseTargetName(text);
    return typeof target === 'string' ? target : { ...target, op: 'set', value: ONE };
  }
  const target = parseTargetName(text.slice(0, equals));
  if (typeof target === 'string') return target;
  let rest = text.slice(equals + 1);
  let op: SetVarOp = 'set';
  if (rest.startsWith('+')) op = 'add';
  else if (rest.startsWith('-')) op = 'subtract';
  if (op !== 'set') rest = rest.slice(1);
  const value = macro(rest);
  return typeof value === 'string' ? value : { ...target, op, value };
}

const EMPTY = { source: '', parts: [], constant: '' } satisfies Macro;
const ONE = { source: '1', parts: ['1'], constant: '1' } satisfies Macro;

/** `collection.key` of a setvar, the key possibly holding macros (`tx.%{rule.id}-…`). */
function parseTargetName(text: string): Pick<SetVar, 'collection' | 'key' | 'keyLower'> | string {
  const dot = text.indexOf('.');
  if (dot <= 0 || dot === text.length - 1) return `"${text}" is not collection.name`;
  const collection = lookupVariable(text.slice(0, dot));
  if (collection === undefined || !isStore(collection) || collection.name === 'ENV') {
    return `setvar writes TX, IP, GLOBAL, SESSION, USER or RESOURCE, not ${text.slice(0, dot)}`;
  }
  const key = macro(text.slice(dot + 1));
  return typeof key === 'string' ? key : { collection, key, keyLower: key.constant?.toLowerCase() ?? null };
}

/** `name=value` of setenv. */
function parseAssignment(collectionName: 'ENV', text: string): SetVar | string {
  const equals = text.indexOf('=');
  const collection = lookupVariable(collectionName)!;
  const key = macro(equals === -1 ? text : text.slice(0, equals));
  const value = equals === -1 ? ONE : macro(text.slice(equals + 1));
  if (typeof key === 'string') return key;
  if (typeof value === 'string') return value;
  if (key.source === '') return 'setenv takes name=value';
  return { collection, key, keyLower: key.constant?.toLowerCase() ?? null, op: 'set', value };
}

const BODY_PROCESSORS: readonly BodyProcessorKind[] = ['URLENCODED', 'MULTIPART', 'XML', 'JSON'];

/**
 * One `ctl:option=value`. Returns null for the options accepted without effect: auditEngine and
 * auditLogParts (no audit log here), debugLogLevel (no debug log).
 */
export function parseCtl(text: string): Ctl | null | string {
  const equals = text.indexOf('=');
  if (equals <= 0) return 'ctl takes option=value';
  const option = text.slice(0, equals).toLowerCase();
  const value = text.slice(equals + 1);
  switch (option) {
    case 'ruleremovebyid': {
      const ranges = parseIdRanges(value);
      return ranges.ok ? { kind: 'ruleRemoveById', ranges: ranges.value } : ranges.reason;
    }
    case 'ruleremovebytag': {
      const tag = compileTextPattern(value);
      return tag.ok ? { kind: 'ruleRemoveByTag', tag: tag.value } : tag.error;
    }
    case 'ruleremovetargetbyid':
    case 'ruleremovetargetbytag': {
      const semicolon = value.indexOf(';');
      if (semicolon <= 0) return `${option} takes subject;VARIABLE[:key]`;
      const target = parseTargetFilter(value.slice(semicolon + 1));
      if (!target.ok) return target.error;
      if (option === 'ruleremovetargetbyid') {
        const ranges = parseIdRanges(value.slice(0, semicolon));
        return ranges.ok ? { kind: 'ruleRemoveTargetById', ranges: ranges.value, target: target.value } : ranges.reason;
      }
      const tag = compileTextPattern(value.slice(0, semicolon));
      return tag.ok ? { kind: 'ruleRemoveTargetByTag', tag: tag.value, target: target.value } : tag.error;
    }
    case 'ruleengine': {
      const mode = parseMode(value);
      return mode === null ? 'ruleEngine takes On, Off or DetectionOnly' : { kind: 'ruleEngine', mode };
    }
    case 'requestbodyprocessor': {
      const processor = BODY_PROCESSORS.find((name) => name === value.toUpperCase());
      return processor === undefined ? `body processors are ${BODY_PROCESSORS.join(', ')}` : { kind: 'requestBodyProcessor', processor };
    }
    case 'requestbodyaccess':
    case 'forcerequestbodyvariable': {
      const on = parseOnOff(value);
      if (on === null) return `${option} takes On or Off`;
      return option === 'requestbodyaccess' ? { kind: 'requestBodyAccess', on } : { kind: 'forceRequestBodyVariable', on };
    }
    case 'requestbodylimit':
      return /^\d{1,15}$/.test(value) ? { kind: 'requestBodyLimit', bytes: Number(value) } : 'requestBodyLimit takes a number of bytes';
    case 'auditengine':
    case 'auditlogparts':
    case 'debugloglevel':
      return null;
    default:
      return `unknown ctl option ${text.slice(0, equals)}`;
  }
}
