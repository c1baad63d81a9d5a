// What each kind of entry of the fleet's tenant document (../crdt/config-doc.ts) means on a node: its schema,
// the name it is kept under (the key after the kind), and the checks beyond the schema. Used both for what an
// operator uploads (checked whole before anything is written) and for what arrives from other nodes (checked
// as it is applied; one that fails keeps its last good value).
//
//   domain     TenantDomain {host, origins, waf_mode?, rate_limit?, tls?}        name: the host, lower case
//   rule       a WAF custom rule {id, name, pattern, action, severity, targets, domains?}   name: the id
//   exclusion  {name, rule_ids, path?, parameter?, domains?}                     name: its name
//   allow      {name, cidr?, path?, domains?}: the WAF never inspects these      name: its name
//   block      {cidr, expires_at?, reason?}: refused at accept on every node    name: the canonical CIDR
//
// A rule is compiled on its own when checked, so a pattern the engine cannot run is refused with the
// compiler's message rather than left out on every thread; a domain's certificate is checked as the
// certificate loader checks files (chain parses, key matches) and must cover the host.
import * as v from 'valibot';
import { TenantDomainSchema, type TenantDomain } from '../config/schema.ts';
import type { EntryKind } from '../crdt/config-doc.ts';
import { WafAllowSchema, WafExclusionSchema, WafRuleSchema, type WafPolicy } from '../messages.ts';
import { canonicalCidr, formatCidr, parseCidr } from '../net/cidr.ts';
import { pairProblem } from '../tls/certificate-set.ts';
import { compileRuleSet } from '../waf/compile.ts';
import { policyDirectives } from '../waf/custom-rules.ts';
import { decode, strictObject } from '../validation.ts';

const EntryName = v.pipe(v.string(), v.regex(/^[A-Za-z0-9_.-]{1,64}$/, 'expected a name of 1-64 letters, digits, _ . -'));

export const FleetExclusionSchema = strictObject({ name: EntryName, ...WafExclusionSchema.entries });
export const FleetAllowSchema = strictObject({ name: EntryName, ...WafAllowSchema.entries });

/** A block as uploaded: for `duration_sec` from now, until `expires_at` (seconds since the epoch), or until removed. */
const BlockInputSchema = strictObject({
  cidr: v.pipe(v.string(), v.maxLength(64)),
  duration_sec: v.optional(v.pipe(v.number(), v.integer(), v.minValue(1), v.maxValue(366 * 86_400))),
  expires_at: v.optional(v.pipe(v.number(), v.integer(), v.minValue(0))),
  reason: v.optional(v.pipe(v.string(), v.maxLength(200))),
});

export interface FleetBlock {
  cidr: string;
  /** Seconds since the epoch; absent: until removed. */
  expires_at?: number;
  reason?: string;
}

export interface FleetValues {
  domain: TenantDomain;
  rule: WafPolicy['rules'][number];
  exclusion: v.InferOutput<typeof FleetExclusionSchema>;
  allow: v.InferOutput<typeof FleetAllowSchema>;
  block: FleetBlock;
}

export type Checked<K extends EntryKind> = { ok: true; name: string; value: FleetValues[K] } | { ok: false; problem: string };

/** An entry of `kind` (untrusted JSON), checked and in its stored form; `nowSec` turns a duration into an expiry. */
export function checkEntry<K extends EntryKind>(kind: K, raw: unknown, nowSec: number): Checked<K> {
  return CHECKS[kind](raw, nowSec) as Checked<K>;
}

/** A name as an operator may write it, as it is kept: a host in lower case, a network in canonical form. */
export function canonicalName(kind: EntryKind, name: string): string {
  if (kind === 'domain') return name.toLowerCase();
  if (kind !== 'block') return name;
  return canonicalCidr(name) ?? name;
}

const CHECKS: { [K in EntryKind]: (raw: unknown, nowSec: number) => Checked<K> } = {
  domain: (raw) => {
    const parsed = parse(TenantDomainSchema, raw);
    if (!parsed.ok) return parsed;
    const value = { ...parsed.value, host: parsed.value.host.toLowerCase() };
    const tls = value.tls === undefined ? null : pairProblem(Buffer.from(value.tls.cert), Buffer.from(value.tls.key), value.host);
    if (tls !== null) return { ok: false, problem: `tls: ${tls}` };
    return { ok: true, name: value.host, value };
  },
  rule: (raw) => {
    const parsed = parse(WafRuleSchema, raw);
    if (!parsed.ok) return parsed;
    const { errors } = compileRuleSet(policyDirectives({ rules: [parsed.value], exclusions: [], allowlist: [], rule_modes: [] }).after);
    if (errors.length > 0) return { ok: false, problem: `rule ${parsed.value.id}: ${errors.map((e) => e.message).join('; ')}` };
    return { ok: true, name: String(parsed.value.id), value: parsed.value };
  },
  exclusion: (raw) => {
    const parsed = parse(FleetExclusionSchema, raw);
    return parsed.ok ? { ok: true, name: parsed.value.name, value: parsed.value } : parsed;
  },
  allow: (raw) => {
    const parsed = parse(FleetAllowSchema, raw);
    if (!parsed.ok) return parsed;
    if (parsed.value.cidr !== undefined && !parseCidr(parsed.value.cidr).ok) return { ok: false, problem: `cidr: ${JSON.stringify(parsed.value.cidr)} is not a CIDR` };
    return { ok: true, name: parsed.value.name, value: parsed.value };
  },
  block: (raw, nowSec) => {
    const parsed = parse(BlockInputSchema, raw);
    if (!parsed.ok) return parsed;
    const { cidr, duration_sec: duration, expires_at: expires, reason } = parsed.value;
    const range = parseCidr(cidr);
    if (!range.ok) return { ok: false, problem: `cidr: ${range.reason}` };
    if (duration !== undefined && expires !== undefined) return { ok: false, problem: 'duration_sec and expires_at: give one' };
    const until = duration === undefined ? expires : nowSec + duration;
    const canonical = formatCidr(range.words, range.prefix);
    const value: FleetBlock = { cidr: canonical, ...(until === undefined ? {} : { expires_at: until }), ...(reason === undefined ? {} : { reason }) };
    return { ok: true, name: canonical, value };
  },
};

/** The project's decoding (its messages never quote what was received: a private key may be in it). */
function parse<const S extends v.GenericSchema>(schema: S, raw: unknown): { ok: true; value: v.InferOutput<S> } | { ok: false; problem: string } {
  const decoded = decode(schema, raw);
  return decoded.ok ? decoded : { ok: false, problem: decoded.issues.join('; ') };
}
