// The valibot layer under messages.ts and config/: the wording of issue messages, strict objects that also
// refuse arrays, and issue paths as key lists. Main thread only: worker threads must not load valibot
// (about 3 MB of RSS per isolate; test/unit/architecture.test.ts keeps them free of it).
import * as v from 'valibot';

export type Issue = v.BaseIssue<unknown>;

/**
 * Parse options for every SecBeat schema: issues without a message of their own get `issueMessage`.
 * valibot's default messages quote the received value (`received "hunter2"`), which may be a secret or a
 * megabyte long; ours name only its type, in the wording operators, docs and golden files know from zod.
 */
export const PARSE: v.Config<Issue> = { message: issueMessage };

/** What a value is, as messages name it: typeof, refined for NaN/Infinity, null, arrays and class instances. */
function typeName(input: unknown): string {
  if (typeof input === 'number') return Number.isFinite(input) ? 'number' : String(input);
  if (typeof input !== 'object') return typeof input;
  if (input === null) return 'null';
  if (Array.isArray(input)) return 'array';
  const proto: unknown = Object.getPrototypeOf(input);
  // smol-toml dates are TomlDate instances; naming the class says more than "object".
  return proto === Object.prototype || proto === null ? 'object' : input.constructor.name || 'object';
}

function typeMessage(expected: string, input: unknown): string {
  return `Invalid input: expected ${expected}, received ${typeName(input)}`;
}

/** The options valibot lists in `expected` of a picklist or variant issue: `("a" | "b")` → ['"a"', '"b"']. */
function expectedOptions(expected: string | null): string[] {
  return (expected ?? '').replace(/^\((.*)\)$/, '$1').split(' | ');
}

function issueMessage(issue: Issue): string {
  const { input, requirement } = issue;
  const sized = Array.isArray(input) ? 'array to have' : 'string to have';
  const unit = Array.isArray(input) ? 'items' : 'characters';
  switch (issue.type) {
    case 'number':
    case 'string':
    case 'boolean':
    case 'array':
      return typeMessage(issue.type, input);
    case 'strict_object':
      return typeMessage('object', input);
    case 'variant':
      // With a path the object is fine and its discriminator is not.
      if (issue.path === undefined) return typeMessage('object', input);
      return `Invalid discriminator value. Expected ${expectedOptions(issue.expected)
        .map((o) => `'${o.slice(1, -1)}'`)
        .join(' | ')}`;
    case 'picklist':
      return `Invalid option: expected one of ${expectedOptions(issue.expected).join('|')}`;
    case 'integer':
      // v.number() lets ±Infinity through (TOML can write `inf`); say what it is rather than "not an int".
      return Number.isFinite(input) ? 'Invalid input: expected int, received number' : typeMessage('number', input);
    case 'min_value':
      return `Too small: expected number to be >=${String(requirement)}`;
    case 'max_value':
      return `Too big: expected number to be <=${String(requirement)}`;
    case 'min_length':
      return `Too small: expected ${sized} >=${String(requirement)} ${unit}`;
    case 'max_length':
      return `Too big: expected ${sized} <=${String(requirement)} ${unit}`;
    default:
      // Unions: no single option to blame. Checks and regexes always carry their own message.
      return 'Invalid input';
  }
}

/** An integer in [min, max]; TOML integers and JSON numbers both arrive as numbers. */
export function int(min: number, max: number) {
  return v.pipe(v.number(), v.integer(), v.minValue(min), v.maxValue(max));
}

/**
 * `schema`, refusing arrays where it expects an object. valibot's object and variant schemas accept any
 * non-null object, so `[]` would read as `{}` (valibot issue #1630, "intended") and `server = []` would
 * silently mean "all defaults". Copies the schema the way valibot's own `fallback` does, with the helpers
 * valibot's "Extend Valibot" guide documents for custom schemas; the exact version pin keeps them stable.
 */
export function refuseArrays<const S extends v.GenericSchema>(schema: S): S {
  return v._standardSchema<S>({
    ...schema,
    '~run'(dataset, config) {
      if (!Array.isArray(dataset.value)) return schema['~run'](dataset, config);
      v._addIssue(this, 'type', dataset, config);
      // _addIssue made the dataset a failure (issues set, typed false); valibot's own schemas return it as is.
      return dataset as unknown as v.OutputDataset<v.InferOutput<S>, v.InferIssue<S>>;
    },
  });
}

/**
 * v.strictObject that refuses arrays and words its own issues: a missing key reads as the field's complaint
 * about `undefined` ("address: Invalid input: expected string, received undefined"), and an unknown key
 * names every unknown key of the object (valibot's issue carries the first one only).
 */
export function strictObject<const E extends v.ObjectEntries>(entries: E) {
  return refuseArrays(v.strictObject(entries, (issue) => objectMessage(entries, issue)));
}

function objectMessage(entries: v.ObjectEntries, issue: v.StrictObjectIssue): string {
  const at = issue.path?.[0];
  if (at?.type !== 'object') return typeMessage('object', issue.input);
  if (isUnknownKeyIssue(issue)) {
    const unknown = Object.keys(at.input).filter((k) => !Object.hasOwn(entries, k));
    return `Unrecognized key${unknown.length > 1 ? 's' : ''}: ${unknown.map((k) => JSON.stringify(k)).join(', ')}`;
  }
  const field = entries[at.key];
  const complaint = field === undefined ? undefined : v.safeParse(field, undefined, PARSE).issues?.[0].message;
  // Only v.unknown() fields accept undefined, yet their key is still required.
  return complaint ?? 'Invalid input: a value is required';
}

/** An unknown key in a strict object; its path ends at that key, its message is about the object. */
export function isUnknownKeyIssue(issue: Issue): boolean {
  return issue.type === 'strict_object' && issue.expected === 'never';
}

/** The issue's path as keys: ['server', 'worker_threads'], ['nats', 'urls', 1]. */
export function issueKeys(issue: Issue): (string | number)[] {
  return (issue.path ?? []).map((item) => (typeof item.key === 'number' ? item.key : String(item.key)));
}

export type Decoded<T> = { ok: true; value: T } | { ok: false; issues: string[] };

/** Parses untrusted input without throwing; each issue becomes "path: message" (an unknown key at its object). */
export function decode<const S extends v.GenericSchema>(schema: S, input: unknown): Decoded<v.InferOutput<S>> {
  const r = v.safeParse(schema, input, PARSE);
  if (r.success) return { ok: true, value: r.output };
  return {
    ok: false,
    issues: r.issues.map((issue) => {
      const keys = issueKeys(issue);
      const path = (isUnknownKeyIssue(issue) ? keys.slice(0, -1) : keys).join('.');
      return path === '' ? issue.message : `${path}: ${issue.message}`;
    }),
  };
}
