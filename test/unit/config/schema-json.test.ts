import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { CONFIG_JSON_SCHEMA_PATH, configJsonSchema } from '../../../src/config/json-schema.ts';

describe('config/secbeat.schema.json', () => {
  it('matches the zod schema (regenerate with: node scripts/gen-config-schema.ts)', () => {
    expect(JSON.parse(readFileSync(CONFIG_JSON_SCHEMA_PATH, 'utf8'))).toEqual(configJsonSchema());
  });

  it('rejects unknown keys and documents defaults', () => {
    const schema = configJsonSchema() as { additionalProperties: boolean; properties: Record<string, { properties: Record<string, { default?: unknown }> }> };
    expect(schema.additionalProperties).toBe(false);
    expect(schema.properties['server']!.properties['worker_threads']!.default).toBe(2);
  });
});
