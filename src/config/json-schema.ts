// The config schema as JSON Schema, generated from the zod schema so the two cannot disagree. Operators'
// editors use config/secbeat.schema.json for completion; scripts/gen-config-schema.ts writes it.
import { fileURLToPath } from 'node:url';
import { z } from 'zod';
import { ConfigSchema } from './schema.ts';

export const CONFIG_JSON_SCHEMA_PATH = fileURLToPath(new URL('../../config/secbeat.schema.json', import.meta.url));

export function configJsonSchema(): Record<string, unknown> {
  return {
    ...z.toJSONSchema(ConfigSchema, { io: 'input', unrepresentable: 'any' }),
    title: 'SecBeat node configuration',
  };
}
