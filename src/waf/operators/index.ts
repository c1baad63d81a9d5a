// The operator table the rule compiler looks names up in (`@rx` → rxOperator …), keyed by lower-cased name
// as SecLang operator names are case-insensitive. Aliases are libmodsecurity's (@pmf, @ipMatchF).
import { eqOperator, geOperator, gtOperator, leOperator, ltOperator } from './compare.ts';
import { ipMatchFromFileOperator, ipMatchOperator } from './ip.ts';
import { detectSqliOperator, detectXssOperator } from './libinjection.ts';
import {
  geoLookupOperator,
  noMatchOperator,
  rblOperator,
  unconditionalMatchOperator,
  validateDtdOperator,
  validateSchemaOperator,
} from './misc.ts';
import { pmFromFileOperator, pmOperator } from './pm.ts';
import { rxOperator } from './rx.ts';
import {
  beginsWithOperator,
  containsOperator,
  containsWordOperator,
  endsWithOperator,
  streqOperator,
  withinOperator,
} from './strings.ts';
import type { OperatorFactory } from './types.ts';
import {
  validateByteRangeOperator,
  validateUrlEncodingOperator,
  validateUtf8EncodingOperator,
} from './validate.ts';

export const OPERATORS: ReadonlyMap<string, OperatorFactory> = new Map<string, OperatorFactory>([
  ['rx', rxOperator],
  ['pm', pmOperator],
  ['pmfromfile', pmFromFileOperator],
  ['pmf', pmFromFileOperator],
  ['eq', eqOperator],
  ['ge', geOperator],
  ['gt', gtOperator],
  ['le', leOperator],
  ['lt', ltOperator],
  ['streq', streqOperator],
  ['contains', containsOperator],
  ['strmatch', containsOperator],
  ['containsword', containsWordOperator],
  ['beginswith', beginsWithOperator],
  ['endswith', endsWithOperator],
  ['within', withinOperator],
  ['ipmatch', ipMatchOperator],
  ['ipmatchfromfile', ipMatchFromFileOperator],
  ['ipmatchf', ipMatchFromFileOperator],
  ['validatebyterange', validateByteRangeOperator],
  ['validateurlencoding', validateUrlEncodingOperator],
  ['validateutf8encoding', validateUtf8EncodingOperator],
  ['detectsqli', detectSqliOperator],
  ['detectxss', detectXssOperator],
  ['unconditionalmatch', unconditionalMatchOperator],
  ['nomatch', noMatchOperator],
  ['rbl', rblOperator],
  ['geolookup', geoLookupOperator],
  ['validatedtd', validateDtdOperator],
  ['validateschema', validateSchemaOperator],
]);

/** The factory for an operator name as written (`rx`, `pmFromFile`, `detectSQLi`), or undefined. */
export function lookupOperator(name: string): OperatorFactory | undefined {
  return OPERATORS.get(name.toLowerCase());
}
