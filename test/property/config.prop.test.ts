// Properties of loadConfig: arbitrary text, bytes, mutated real files and overrides never make it throw and
// always yield ok or clear issues; a generated valid config survives stringify → load with its defaults filled.
// Runs scale with FC_NUM_RUNS; a failure prints the seed (replay with FC_SEED).
import { mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import fc from 'fast-check';
import { stringify } from 'smol-toml';
import * as v from 'valibot';
import { afterAll, describe, expect, it } from 'vitest';
import { ERROR_CODES } from '../../src/errors.ts';
import { loadConfig, type ConfigSource, type LoadResult } from '../../src/config/load.ts';
import { ConfigSchema, type ConfigInput } from '../../src/config/schema.ts';
import { fcParams } from '../helpers/fc.ts';

const ROOT = resolve(import.meta.dirname, '../..');
const dir = mkdtempSync(join(tmpdir(), 'secbeat-config-prop-'));
const file = join(dir, 'node.toml');
afterAll(() => rmSync(dir, { recursive: true, force: true }));

const EXAMPLES = readdirSync(join(ROOT, 'config'), { recursive: true, encoding: 'utf8' })
  .filter((f) => f.endsWith('.toml'))
  .map((f) => readFileSync(join(ROOT, 'config', f), 'utf8'));

const SECTIONS = Object.keys(ConfigSchema.entries);
const KEY_PATHS = Object.entries(ConfigSchema.entries).flatMap(([section, schema]) => Object.keys(schema.wrapped.entries).map((k) => `${section}.${k}`));

function loadText(content: string | Uint8Array, rest: Omit<ConfigSource, 'file'> = {}): LoadResult {
  writeFileSync(file, content);
  return loadConfig({ file, cwd: dir, ...rest });
}

/** The contract every result meets, whatever the input. */
function expectWellFormed(result: LoadResult): void {
  if (result.ok) {
    expect(Object.isFrozen(result.config)).toBe(true);
    expect(v.is(ConfigSchema, result.config)).toBe(true);
    return;
  }
  expect(result.issues.length).toBeGreaterThan(0);
  for (const issue of result.issues) {
    expect(Object.hasOwn(ERROR_CODES, issue.code) && issue.code.startsWith('SECBEAT_ERR_CONFIG_')).toBe(true);
    expect(issue.message.trim()).not.toBe('');
    if (issue.line !== null) expect(issue.line).toBeGreaterThan(0);
  }
}

// ---------------------------------------------------------------------------------------------------------
// Arbitrary input

const tomlValue = fc.oneof(
  fc.integer().map(String),
  fc.boolean().map(String),
  fc.string({ maxLength: 30 }).map((s) => JSON.stringify(s)),
  fc.array(fc.integer({ min: 0, max: 70_000 }), { maxLength: 5 }).map((a) => `[${a.join(', ')}]`),
  fc.constantFrom('"${NATS_TOKEN}"', '"${UNSET_VAR}"', '"${constructor}"', '"$${X}"', '"127.0.0.1:9191"', '"nats://a:4222"', '{ a = 1 }', '1979-05-27', 'inf', '"""\nx\n"""'),
  fc.string({ maxLength: 20 }),
);
const tomlKey = fc.oneof(fc.constantFrom(...KEY_PATHS, ...SECTIONS), fc.string({ maxLength: 12 }), fc.stringMatching(/^[a-z_]{1,12}$/));

const mutation = fc.oneof(
  fc.record({ kind: fc.constant('insert' as const), at: fc.nat(), text: fc.string({ unit: 'binary', maxLength: 8 }) }),
  fc.record({ kind: fc.constant('delete' as const), at: fc.nat(), length: fc.integer({ min: 1, max: 16 }) }),
  fc.record({ kind: fc.constant('line' as const), at: fc.nat(), text: fc.tuple(tomlKey, tomlValue).map(([k, v]) => `${k} = ${v}`) }),
  fc.record({ kind: fc.constant('line' as const), at: fc.nat(), text: fc.oneof(fc.constantFrom(...SECTIONS), fc.string({ maxLength: 10 })).map((s) => `[${s}]`) }),
);
type Mutation = typeof mutation extends fc.Arbitrary<infer M> ? M : never;

function mutate(text: string, m: Mutation): string {
  const at = text.length === 0 ? 0 : m.at % (text.length + 1);
  switch (m.kind) {
    case 'insert':
      return text.slice(0, at) + m.text + text.slice(at);
    case 'delete':
      return text.slice(0, at) + text.slice(at + m.length);
    case 'line': {
      const lines = text.split('\n');
      lines.splice(m.at % (lines.length + 1), 0, m.text);
      return lines.join('\n');
    }
  }
}

describe('loadConfig on arbitrary input', () => {
  it('arbitrary strings never throw', () => {
    fc.assert(
      fc.property(fc.string({ unit: 'binary', maxLength: 400 }), (text) => expectWellFormed(loadText(text))),
      fcParams(200),
    );
  });

  it('arbitrary bytes (decoded as UTF-8 or not) never throw', () => {
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 400 }), (bytes) => expectWellFormed(loadText(bytes))),
      fcParams(200),
    );
  });

  it('mutations of the shipped configs never throw', () => {
    fc.assert(
      fc.property(
        fc.constantFrom(...EXAMPLES),
        fc.array(mutation, { minLength: 1, maxLength: 6 }),
        fc.boolean(),
        (base, mutations, withToken) => {
          const text = mutations.reduce(mutate, base);
          expectWellFormed(loadText(text, { env: withToken ? { NATS_TOKEN: 't' } : {} }));
        },
      ),
      fcParams(200),
    );
  });

  it('arbitrary env and command-line overrides never throw', () => {
    const name = fc.oneof(
      fc.constantFrom(...KEY_PATHS).map((p) => `SECBEAT_${p.replace('.', '__').toUpperCase()}`),
      fc.string({ maxLength: 12 }).map((s) => `SECBEAT_${s}`),
      fc.tuple(fc.constantFrom('SERVER', 'CONSTRUCTOR', '_PROTO_', 'X'), fc.constantFrom('CONSTRUCTOR', '__PROTO__', 'TOSTRING', 'MODE')).map(([a, b]) => `SECBEAT_${a}__${b}`),
      fc.constant('MITIGATION_MODE'),
    );
    const override = fc.oneof(
      fc.tuple(fc.constantFrom(...KEY_PATHS, 'server.constructor', '__proto__.x', 'server.__proto__', 'toString.valueOf'), tomlValue).map(([k, v]) => `${k}=${v}`),
      fc.string({ maxLength: 20 }),
    );
    fc.assert(
      fc.property(fc.dictionary(name, fc.oneof(tomlValue, fc.string())), fc.array(override, { maxLength: 4 }), (env, overrides) => {
        expectWellFormed(loadText('', { env, overrides }));
      }),
      fcParams(200),
    );
  });

  it('every file-level issue in a well-formed TOML document has a line', () => {
    const leaf = fc.oneof(fc.integer(), fc.boolean(), fc.string({ maxLength: 10 }), fc.array(fc.integer(), { maxLength: 3 }));
    const key = fc.oneof(fc.constantFrom(...SECTIONS, 'enabled', 'mode', 'urls', 'worker_threads'), fc.string({ unit: 'binary', minLength: 1, maxLength: 8 }));
    const doc = fc.dictionary(key, fc.oneof(leaf, fc.dictionary(key, fc.oneof(leaf, fc.dictionary(key, leaf, { maxKeys: 3 })), { maxKeys: 4 })), { maxKeys: 5 });
    fc.assert(
      fc.property(doc, (table) => {
        const result = loadText(stringify(table));
        expectWellFormed(result);
        if (result.ok) return;
        for (const issue of result.issues) {
          if (issue.code === 'SECBEAT_ERR_CONFIG_INVALID' && issue.file !== null && issue.path !== '') expect(issue.line, issue.path).not.toBeNull();
        }
      }),
      fcParams(200),
    );
  });
});

// ---------------------------------------------------------------------------------------------------------
// Round trip: generated valid input → TOML → loadConfig equals the schema's reading of that input.

const name = fc.stringMatching(/^[A-Za-z0-9_.-]{1,64}$/);
const host = fc.oneof(fc.ipV4(), fc.domain(), fc.ipV6().map((h) => `[${h}]`));
// Disjoint port ranges keep metrics and the proxy from colliding, which the semantic check rejects.
const proxyAddress = fc.tuple(host, fc.integer({ min: 1, max: 30_000 })).map(([h, p]) => `${h}:${p}`);
const metricsAddress = fc.tuple(host, fc.integer({ min: 30_001, max: 65_535 })).map(([h, p]) => `${h}:${p}`);
const anyAddress = fc.tuple(host, fc.integer({ min: 1, max: 65_535 })).map(([h, p]) => `${h}:${p}`);
// Half the strings lean on the characters interpolation and TOML escaping care about.
const text = (max: number) =>
  fc
    .oneof(fc.string({ unit: 'binary', minLength: 1, maxLength: max }), fc.string({ unit: fc.constantFrom('$', '{', '}', 'a', '"', "'", '\\', '\n'), minLength: 1, maxLength: max }))
    .filter((s) => !s.includes('\0'));
const int = (min: number, max: number) => fc.integer({ min, max });
const optional = { requiredKeys: [] as never[] };

const validInput: fc.Arbitrary<ConfigInput> = fc.record(
  {
    platform: fc.record({ region: name, node_id: name, environment: fc.constantFrom('development', 'production') }, optional),
    server: fc.record(
      {
        mode: fc.constantFrom('tcp', 'syn', 'l7'),
        bind_address: proxyAddress,
        backend_address: anyAddress,
        worker_threads: int(1, 64),
        max_connections: int(1, 10_000_000),
        per_ip_max_connections: int(0, 1_000_000),
        connect_timeout_ms: int(1, 120_000),
        idle_timeout_ms: int(1000, 86_400_000),
        drain_timeout_ms: int(0, 3_600_000),
        tcp_nodelay: fc.boolean(),
      },
      optional,
    ),
    tls: fc.record({ enabled: fc.constant(false), cert_path: text(60), key_path: text(60), min_version: fc.constantFrom('TLSv1.2', 'TLSv1.3'), ciphers: fc.stringMatching(/^[A-Za-z0-9:+!@_.-]{1,80}$/) }, optional),
    syn_proxy: fc.record(
      { enabled: fc.boolean(), interface: fc.stringMatching(/^[A-Za-z0-9_.:@-]{1,15}$/), protected_ports: fc.array(int(1, 65_535), { maxLength: 8 }), xdp_mode: fc.constantFrom('native', 'generic', 'auto') },
      optional,
    ),
    waf: fc.record({ enabled: fc.boolean(), mode: fc.constantFrom('off', 'detection', 'blocking'), paranoia_level: int(1, 4), crs_path: text(80), fail_open: fc.boolean() }, optional),
    orchestrator: fc
      .record({ enabled: fc.boolean(), url: fc.tuple(fc.constantFrom('http', 'https'), fc.domain(), int(1, 65_535)).map(([s, d, p]) => `${s}://${d}:${p}/v1`), heartbeat_interval_ms: int(100, 600_000) }, optional)
      .filter((o) => !o.enabled || o.url !== undefined),
    metrics: fc.record({ enabled: fc.boolean(), bind_address: metricsAddress }, optional),
    logging: fc.record({ level: fc.constantFrom('fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'), format: fc.constantFrom('json', 'pretty') }, optional),
    nats: fc
      .record(
        {
          enabled: fc.boolean(),
          urls: fc.array(anyAddress.map((a) => `nats://${a}`), { maxLength: 3 }),
          cluster_urls: fc.array(fc.tuple(fc.constantFrom('nats', 'nats-route'), anyAddress).map(([s, a]) => `${s}://${a}`), { maxLength: 3 }),
          token: text(40),
          credentials: fc.tuple(text(20), text(40)),
          name: text(128),
        },
        optional,
      )
      .filter((n) => !n.enabled || (n.urls?.length ?? 0) > 0)
      .map(({ credentials, ...n }) => (credentials ? { ...n, user: credentials[0], password: credentials[1] } : n)),
    // ASCII so the 100-byte unix socket limit holds; other paths take any text.
    state: fc.record({ dir: text(80) }, optional),
    admin: fc.record({ socket_path: fc.string({ minLength: 1, maxLength: 100 }), api_token: text(40) }, optional),
    chaos: fc.record({ enabled: fc.boolean() }, optional),
    runtime: fc
      .record({
        mailbox_capacity: int(1, 1_000_000),
        ask_timeout_ms: int(1, 600_000),
        heartbeat_interval_ms: int(100, 60_000),
        timeout_extra: int(1, 100_000),
        max_restarts: int(0, 1000),
        restart_period_ms: int(1, 3_600_000),
        backoff_initial_ms: int(0, 300_000),
        backoff_extra: int(0, 300_000),
        dead_letter_capacity: int(0, 1_000_000),
      })
      .map(({ timeout_extra, backoff_extra, ...r }) => ({
        ...r,
        heartbeat_timeout_ms: 2 * r.heartbeat_interval_ms + timeout_extra,
        backoff_max_ms: r.backoff_initial_ms + backoff_extra,
      })),
  },
  optional,
);

/** The inverse of interpolation for literal text: every "${" is written "$${". */
function escapeVars(value: unknown): unknown {
  // A replacer function, because '$$' in a replacement string means a single '$'.
  if (typeof value === 'string') return value.replaceAll('${', () => '$${');
  if (Array.isArray(value)) return value.map(escapeVars);
  if (typeof value === 'object' && value !== null) return Object.fromEntries(Object.entries(value).map(([k, v]) => [k, escapeVars(v)]));
  return value;
}

describe('round trip', () => {
  it('a valid config stringified and loaded equals the input with defaults', () => {
    fc.assert(
      fc.property(validInput, (input) => {
        const result = loadText(stringify(escapeVars(input)));
        if (!result.ok) expect.fail(JSON.stringify(result.issues));
        expect(result.config).toEqual(v.parse(ConfigSchema, input));
      }),
      fcParams(200),
    );
  });
});
