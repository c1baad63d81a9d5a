import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { CONFIG_JSON_SCHEMA_PATH, configJsonSchema } from '../../../src/config/json-schema.ts';

describe('config/secbeat.schema.json', () => {
  it('matches the valibot schema (regenerate with: node scripts/gen-config-schema.ts)', () => {
    expect(JSON.parse(readFileSync(CONFIG_JSON_SCHEMA_PATH, 'utf8'))).toEqual(configJsonSchema());
  });

  it('rejects unknown keys and documents every key: description, default, enum, range', () => {
    interface Node {
      additionalProperties?: boolean;
      properties: Record<string, Node>;
      description?: string;
      default?: unknown;
      enum?: unknown[];
      type?: string;
      minimum?: number;
      maximum?: number;
    }
    const schema = configJsonSchema() as unknown as Node;
    expect(schema.additionalProperties).toBe(false);
    for (const [name, section] of Object.entries(schema.properties)) {
      expect(section.additionalProperties, name).toBe(false);
      for (const [key, field] of Object.entries(section.properties)) expect(field.description, `${name}.${key}`).toMatch(/\S/);
    }
    const server = schema.properties['server']!.properties;
    expect(server['worker_threads']).toMatchObject({ default: 2, type: 'integer', minimum: 1, maximum: 64 });
    expect(server['mode']).toMatchObject({ default: 'tcp', enum: ['tcp', 'syn', 'l7'] });
  });
});
