// What a config asks of this build and machine beyond the schema: checked by `validate-config` (which binds
// nothing) and again before a node starts, so both refuse the same configs with the same words.
import type { Config } from '../config/schema.ts';
import { loadNative } from '../native/binding.ts';

/** Problems that prevent starting `config` here; empty when it can start. */
export function startRequirements(config: Readonly<Config>): string[] {
  const problems: string[] = [];
  if (config.server.mode === 'syn') {
    problems.push('server.mode = "syn" is not available in this build yet; run mode "tcp" or "l7"');
  }
  if (config.server.mode === 'tcp' && config.server.forwarding === 'splice') {
    const native = loadNative();
    if (!native.ok) problems.push(`server.forwarding = "splice" needs the native addon: ${native.error.message}`);
  }
  return problems;
}
