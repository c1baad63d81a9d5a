// Writes config/secbeat.schema.json from the valibot schema (editor completion for TOML via taplo and similar).
// test/unit/config/schema-json.test.ts fails when the committed file drifts from the schema.
import { writeFileSync } from 'node:fs';
import { configJsonSchema, CONFIG_JSON_SCHEMA_PATH } from '../src/config/json-schema.ts';

writeFileSync(CONFIG_JSON_SCHEMA_PATH, `${JSON.stringify(configJsonSchema(), null, 2)}\n`);
console.log(`wrote ${CONFIG_JSON_SCHEMA_PATH}`);
