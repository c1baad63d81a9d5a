// Operators that decide without looking at the input: @unconditionalMatch and @noMatch, and the ones this
// engine leaves inert — they never match, and carry the reason for the rule compiler to log once.
import type { CompiledOperator, OperatorFactory } from './types.ts';

/** An operator that never matches because the engine does not implement what it needs. */
export interface InertOperator extends CompiledOperator {
  readonly inertReason: string;
}

/** The reason an operator never matches, or null for a working one. */
export function inertReason(operator: CompiledOperator): string | null {
  return 'inertReason' in operator && typeof operator.inertReason === 'string' ? operator.inertReason : null;
}

export const unconditionalMatchOperator: OperatorFactory = () => ({ match: () => true });

export const noMatchOperator: OperatorFactory = () => ({ match: () => false });

function inert(inertReason: string): OperatorFactory {
  const operator: InertOperator = { inertReason, match: () => false };
  return () => operator;
}

/** CRS uses it only when tx.block_search_ip / block_spammer_ip … are configured (REQUEST-910). */
export const rblOperator = inert('@rbl needs a DNS blocklist query per request, which this engine does not make');

/** CRS uses it only when tx.high_risk_country_codes is configured (REQUEST-910); GEO stays empty. */
export const geoLookupOperator = inert(
  '@geoLookup needs a GeoIP database (SecGeoLookupDb), which this engine does not load',
);

export const validateDtdOperator = inert('@validateDTD: XML validation against a DTD is not implemented');

export const validateSchemaOperator = inert('@validateSchema: XML validation against a schema is not implemented');
