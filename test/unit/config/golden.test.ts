// Golden files (Caddy's *.caddyfiletest): each test/fixtures/config/<name>.toml loads to the redacted config
// or the formatted issues stored in <name>.json. UPDATE_GOLDEN=1 rewrites the JSON after a deliberate change.
import { existsSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { describe, expect, it } from 'vitest';
import { formatConfigIssue, loadConfig, redactConfig } from '../../../src/config/load.ts';

const FIXTURES = resolve(import.meta.dirname, '../../fixtures/config');
const ENV = { NATS_TOKEN: 'golden-token' };

function normalized(name: string): unknown {
  const result = loadConfig({ file: name, cwd: FIXTURES, env: ENV });
  return result.ok ? { config: redactConfig(result.config) } : { issues: result.issues.map(formatConfigIssue) };
}

describe('golden configs', () => {
  const cases = readdirSync(FIXTURES).filter((f) => f.endsWith('.toml'));

  it('has fixtures', () => {
    expect(cases.length).toBeGreaterThanOrEqual(3);
  });

  it.each(cases)('%s', (name) => {
    const actual = normalized(name);
    const expectedFile = join(FIXTURES, name.replace(/\.toml$/, '.json'));
    if (process.env['UPDATE_GOLDEN'] === '1') writeFileSync(expectedFile, `${JSON.stringify(actual, null, 2)}\n`);
    expect(existsSync(expectedFile), `${expectedFile} missing; run with UPDATE_GOLDEN=1`).toBe(true);
    expect(actual).toEqual(JSON.parse(readFileSync(expectedFile, 'utf8')));
  });
});
