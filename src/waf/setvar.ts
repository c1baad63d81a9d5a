// What a setvar leaves in its member, shared by the transaction (./transaction.ts), which runs it, and the
// constant folder (./fold.ts), which runs it at compile time on members no request can change.

import type { SetVarOp } from './ruleset.ts';

/** Members a single collection may hold; setvar keys can be built from request data (`%{MATCHED_VAR_NAME}`). */
export const MAX_STORE_ENTRIES = 10_000;

/**
 * The member's new value after `op` with the expanded right-hand side `operand`, given its current value
 * (undefined: unset); null for `delete`, which removes it.
 */
export function setVarResult(op: SetVarOp, current: string | undefined, operand: string): string | null {
  switch (op) {
    case 'delete':
      return null;
    case 'set':
      return operand;
    case 'add':
    case 'subtract': {
      // ModSecurity v3 reads both sides with std::stoi, 0 when that fails.
      const delta = leadingInteger(operand);
      const value = leadingInteger(current ?? '0');
      return String(op === 'add' ? value + delta : value - delta);
    }
  }
}

/**
 * std::stoi as ModSecurity uses it: leading blanks, a sign, digits; 0 when there are none. Values past
 * 15 digits are cut there so the sum stays exact.
 */
export function leadingInteger(text: string): number {
  const found = /^\s*([+-]?)(\d{1,15})/.exec(text);
  if (found === null) return 0;
  const magnitude = Number(found[2]);
  return found[1] === '-' ? -magnitude : magnitude;
}
