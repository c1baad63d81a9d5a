// The `secbeat` command: `run` starts a node, `validate-config` (or `run --validate-config`) loads and checks
// a config without binding anything, `ctl` talks to a running node's admin socket. Exit codes: 0 ok,
// 1 runtime failure, 2 invalid configuration or usage.
import { parseArgs } from 'node:util';
import { formatConfigIssue, loadConfig, type ConfigSource } from './config/load.ts';
import { runCtl } from './cli/ctl.ts';
import { l7SettingsFor, SecbeatNode } from './node/node.ts';
import { startRequirements } from './node/requirements.ts';
import { createRootLogger } from './telemetry/log.ts';

const USAGE = `usage:
  secbeat run [--config FILE] [--mode tcp|syn|l7] [--set section.key=value]... [--validate-config]
  secbeat validate-config [FILE] [--set section.key=value]...
  secbeat ctl [--socket PATH | --config FILE] [--json] COMMAND ...   (secbeat ctl --help)

Config precedence: defaults < file (--config, else $MITIGATION_CONFIG, else config/secbeat.toml)
  < environment ($MITIGATION_MODE, $SECBEAT_<SECTION>__<KEY>) < command line (--mode, --set).`;

async function main(argv: string[]): Promise<number> {
  const [command, ...rest] = argv;
  switch (command) {
    case 'run':
      return run(rest, false);
    case 'validate-config':
      return run(rest, true);
    case 'ctl':
      return runCtl(rest, { stdout: (s) => process.stdout.write(s), stderr: (s) => process.stderr.write(s), env: process.env }, ctlSocketFromConfig);
    case '-h':
    case '--help':
    case 'help':
      process.stdout.write(`${USAGE}\n`);
      return 0;
    default:
      process.stderr.write(`${command === undefined ? 'missing command' : `unknown command ${JSON.stringify(command)}`}\n${USAGE}\n`);
      return 2;
  }
}

function ctlSocketFromConfig(file: string | null): string | null {
  const result = loadConfig({ file, env: process.env });
  return result.ok ? result.config.admin.socket_path : null;
}

async function run(args: string[], validateOnly: boolean): Promise<number> {
  let parsed;
  try {
    parsed = parseArgs({
      args,
      allowPositionals: validateOnly,
      options: {
        config: { type: 'string', short: 'c' },
        mode: { type: 'string' },
        set: { type: 'string', multiple: true },
        'validate-config': { type: 'boolean' },
      },
    });
  } catch (err) {
    process.stderr.write(`${(err as Error).message}\n${USAGE}\n`);
    return 2;
  }
  const { values, positionals } = parsed;
  const overrides = [...(values.mode ? [`server.mode=${JSON.stringify(values.mode)}`] : []), ...(values.set ?? [])];
  const source: ConfigSource = { file: values.config ?? positionals[0] ?? null, env: process.env, overrides };
  const result = loadConfig(source);
  if (!result.ok) {
    for (const issue of result.issues) process.stderr.write(`${formatConfigIssue(issue)}\n`);
    process.stderr.write(`configuration invalid: ${result.issues.length} problem(s)\n`);
    return 2;
  }
  if (validateOnly || values['validate-config']) {
    // Configs for modes later issues add are valid files; that this build cannot run them is a note here
    // and a refusal at start.
    for (const problem of startRequirements(result.config)) process.stdout.write(`note: ${problem}\n`);
    try {
      // What start provisions before binding anything (L7: certificates read and checked) is checked too.
      await l7SettingsFor({ config: result.config, source });
    } catch (err) {
      process.stderr.write(`${(err as Error).message}\nconfiguration invalid: 1 problem(s)\n`);
      return 2;
    }
    process.stdout.write(`configuration ok: ${result.file ?? 'embedded default'} (mode ${result.config.server.mode})\n`);
    return 0;
  }

  const config = result.config;
  const log = createRootLogger(
    { level: config.logging.level, format: config.logging.format },
    { region: config.platform.region, node: config.platform.node_id, thread: 'main' },
  );
  let node: SecbeatNode;
  try {
    node = await SecbeatNode.start({ config, source: { ...source, file: result.file } });
  } catch (err) {
    log.fatal({ err }, 'node failed to start');
    return (err as { code?: string }).code === 'SECBEAT_ERR_CONFIG_INVALID' ? 2 : 1;
  }
  const onSignal = (signal: NodeJS.Signals): void => {
    log.info({ signal }, 'signal received; draining');
    void node.shutdown();
  };
  process.once('SIGTERM', onSignal);
  process.once('SIGINT', onSignal);
  return node.stopped;
}

process.exitCode = await main(process.argv.slice(2));
// Leftover handles (a hung backend socket, a timer) must not keep a stopped node alive.
setTimeout(() => process.exit(), 2_000).unref();
