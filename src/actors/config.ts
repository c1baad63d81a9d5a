// The config actor owns the running configuration: it answers show/validate/reload, and on reload applies
// what can change live (through `apply`) while keeping the last good config whenever loading fails.
import { assertNever, toErrorData } from '../errors.ts';
import type { ConfigCheck, ConfigMsg } from '../messages.ts';
import type { Config } from '../config/schema.ts';
import { formatConfigIssue, loadConfig, redactConfig, type ConfigSource } from '../config/load.ts';
import type { Behavior } from '../runtime/actor.ts';

export interface ConfigInput {
  /** How the running config was loaded; reload repeats it (optionally with another file). */
  source: ConfigSource;
  config: Readonly<Config>;
  /**
   * Applies a new config to the running node. Throws, having changed nothing, when a part it applies live
   * cannot be used (an unusable certificate): the reload is then refused.
   */
  apply: (next: Readonly<Config>, previous: Readonly<Config>) => Promise<ApplyReport>;
}

export interface ApplyReport {
  /** Keys that changed and take effect only after a restart. */
  restartOnly: string[];
  /** Live changes that did not reach part of the node, each said in full. */
  notApplied: string[];
}

interface ConfigState {
  source: ConfigSource;
  config: Readonly<Config>;
  version: number;
  apply: ConfigInput['apply'];
}

export const configActor: Behavior<ConfigState, ConfigMsg, ConfigInput> = {
  name: 'config',
  init(_ctx, input) {
    return { source: input.source, config: input.config, version: 1, apply: input.apply };
  },
  async receive(state, msg, ctx) {
    switch (msg.type) {
      case 'config.show':
        ctx.reply({ version: state.version, file: state.source.file ?? null, config: redactConfig(state.config) });
        return state;
      case 'config.validate': {
        const result = loadConfig(msg.file ? { ...state.source, file: msg.file } : state.source);
        ctx.reply({ ok: result.ok, issues: result.ok ? [] : result.issues.map(formatConfigIssue), version: state.version } satisfies ConfigCheck);
        return state;
      }
      case 'config.reload': {
        const source = msg.file ? { ...state.source, file: msg.file } : state.source;
        const result = loadConfig(source);
        if (!result.ok) {
          const issues = result.issues.map(formatConfigIssue);
          ctx.log.warn({ issues }, 'config reload rejected; the running config stays');
          ctx.reply({ ok: false, issues, version: state.version } satisfies ConfigCheck);
          return state;
        }
        let report: ApplyReport;
        try {
          report = await state.apply(result.config, state.config);
        } catch (err) {
          const issues = [toErrorData(err).message];
          ctx.log.warn({ issues }, 'config reload rejected; the running config stays');
          ctx.reply({ ok: false, issues, version: state.version } satisfies ConfigCheck);
          return state;
        }
        const next = { ...state, source, config: result.config, version: state.version + 1 };
        ctx.log.info({ version: next.version, ...report }, 'config reloaded');
        ctx.reply({
          ok: true,
          issues: [...report.restartOnly.map((k) => `${k}: changed; takes effect after a restart`), ...report.notApplied],
          version: next.version,
        } satisfies ConfigCheck);
        return next;
      }
      default:
        return assertNever(msg);
    }
  },
};
