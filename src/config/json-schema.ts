// The config schema as JSON Schema, generated from the valibot schema so the two cannot disagree. Operators'
// editors use config/secbeat.schema.json for completion; scripts/gen-config-schema.ts writes it. Only that
// script and its drift test import this module, so @valibot/to-json-schema is a dev dependency.
import { fileURLToPath } from 'node:url';
import { toJsonSchema } from '@valibot/to-json-schema';
import { ConfigSchema } from './schema.ts';

export const CONFIG_JSON_SCHEMA_PATH = fileURLToPath(new URL('../../config/secbeat.schema.json', import.meta.url));

export function configJsonSchema(): Record<string, unknown> {
  return {
    ...toJsonSchema(ConfigSchema, {
      target: 'draft-2020-12',
      // Cross-field rules (forward + partialCheck), host:port and URL checks are code, which JSON Schema
      // cannot say; the URL trim changes the value, not its shape. Any other unconvertible part still throws.
      ignoreActions: ['check', 'partial_check', 'transform'],
    }),
    title: 'SecBeat node configuration',
  };
}
