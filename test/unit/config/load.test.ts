// loadConfig end to end on real temp files: defaults, the shipped examples, error positions, precedence,
// overrides, interpolation, freezing and redaction. Each test passes its own env object; process.env is not read.
import { mkdirSync, mkdtempSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import * as v from 'valibot';
import { afterAll, describe, expect, it } from 'vitest';
import { EMBEDDED_CONFIG_PATH, formatConfigIssue, loadConfig, redactConfig, type ConfigIssue, type ConfigSource, type LoadResult } from '../../../src/config/load.ts';
import { ConfigSchema, parseHostPort, type Config } from '../../../src/config/schema.ts';
import { L7SettingsSource } from '../../../src/node/l7-settings.ts';
import { testCert } from '../../helpers/certs.ts';

const ROOT = resolve(import.meta.dirname, '../../..');
const dir = mkdtempSync(join(tmpdir(), 'secbeat-config-'));
let counter = 0;
afterAll(() => rmSync(dir, { recursive: true, force: true }));

function write(text: string | Uint8Array): string {
  const file = join(dir, `c${counter++}.toml`);
  writeFileSync(file, text);
  return file;
}

function ok(result: LoadResult): Readonly<Config> {
  if (!result.ok) throw new Error(`expected ok, got:\n${result.issues.map(formatConfigIssue).join('\n')}`);
  return result.config;
}

function issues(result: LoadResult): ConfigIssue[] {
  if (result.ok) throw new Error('expected issues, got ok');
  return result.issues;
}

function load(text: string, rest: Omit<ConfigSource, 'file'> = {}): LoadResult {
  return loadConfig({ file: write(text), cwd: dir, ...rest });
}

describe('defaults', () => {
  it('an empty file gives every schema default', () => {
    const config = ok(load(''));
    expect(config).toEqual(v.parse(ConfigSchema, {}));
    expect(config.server).toMatchObject({ mode: 'tcp', bind_address: '127.0.0.1:8443', backend_address: '127.0.0.1:8080', worker_threads: 2 });
    expect(config.platform).toEqual({ region: 'local', node_id: 'node-1', environment: 'development' });
    expect(config.nats).toEqual({ enabled: false, urls: [], cluster_urls: [] });
    expect(config.runtime.heartbeat_timeout_ms).toBe(5000);
  });

  it('without a file or MITIGATION_CONFIG the embedded config/secbeat.toml is used', () => {
    const result = loadConfig({ env: {} });
    expect(result).toMatchObject({ ok: true, file: null });
    expect(EMBEDDED_CONFIG_PATH).toBe(join(ROOT, 'config/secbeat.toml'));
    expect(ok(result).server.mode).toBe('tcp');
    expect(ok(result).metrics).toEqual({ enabled: true, bind_address: '127.0.0.1:9191' });
  });

  it('MITIGATION_CONFIG names the file; an explicit file wins over it; empty counts as unset', () => {
    const a = write('[platform]\nregion = "from-env"\n');
    const b = write('[platform]\nregion = "from-arg"\n');
    expect(ok(loadConfig({ env: { MITIGATION_CONFIG: a } })).platform.region).toBe('from-env');
    expect(loadConfig({ env: { MITIGATION_CONFIG: a } })).toMatchObject({ file: a });
    expect(ok(loadConfig({ file: b, env: { MITIGATION_CONFIG: a } })).platform.region).toBe('from-arg');
    expect(loadConfig({ env: { MITIGATION_CONFIG: '' } })).toMatchObject({ ok: true, file: null });
  });

  it('relative files resolve against cwd and come back absolute', () => {
    const file = write('');
    const result = loadConfig({ file: file.slice(dir.length + 1), cwd: dir });
    expect(result).toMatchObject({ ok: true, file });
  });
});

describe('shipped examples', () => {
  const files = readdirSync(join(ROOT, 'config'), { recursive: true, encoding: 'utf8' })
    .filter((f) => f.endsWith('.toml'))
    .sort();

  it('covers the embedded default, development, production and the three regions', () => {
    expect(files).toEqual(expect.arrayContaining(['secbeat.toml', 'development.toml', 'production.toml', 'regions/us-east.toml', 'regions/eu-west.toml', 'regions/apac.toml']));
  });

  it.each(files)('config/%s validates', (file) => {
    const config = ok(loadConfig({ file: join('config', file), cwd: ROOT, env: { NATS_TOKEN: 'test-token' } }));
    if (file.startsWith('regions/')) expect(config.platform.region).toBe(file.slice('regions/'.length, -'.toml'.length));
  });

  it('production reads its NATS token from the environment and fails without it', () => {
    expect(ok(loadConfig({ file: 'config/production.toml', cwd: ROOT, env: { NATS_TOKEN: 'abc' } })).nats.token).toBe('abc');
    const [issue] = issues(loadConfig({ file: 'config/production.toml', cwd: ROOT, env: {} }));
    expect(issue).toMatchObject({ code: 'SECBEAT_ERR_CONFIG_INTERPOLATION', path: 'nats.token', file: 'config/production.toml' });
  });
});

describe('unknown keys', () => {
  it('reports file, full key path, line, column and a suggestion', () => {
    const file = write('[platform]\nregion = "x"\n\n[server]\n  worker_thread = 4\n');
    const result = loadConfig({ file });
    expect(issues(result)).toEqual([
      { code: 'SECBEAT_ERR_CONFIG_INVALID', file, path: 'server.worker_thread', line: 5, column: 3, message: 'unknown key (did you mean worker_threads?)' },
    ]);
    expect(formatConfigIssue(issues(result)[0]!)).toBe(`${file}:5:3 server.worker_thread: unknown key (did you mean worker_threads?)`);
  });

  it('reports unknown sections, dotted keys, inline tables and keys far from any known one', () => {
    const found = issues(load('logging.levle = "info"\nnats = { enabled = false, zzz_unrelated = 1 }\n\n[sever]\nmode = "tcp"\n[waf]\n"quoted key" = 1\n'));
    expect(found.map((i) => [i.path, i.line, i.message])).toEqual([
      ['logging.levle', 1, 'unknown key (did you mean level?)'],
      ['nats.zzz_unrelated', 2, 'unknown key'],
      ['sever', 4, 'unknown section (did you mean server?)'],
      ['waf.quoted key', 7, 'unknown key'],
    ]);
  });

  it('reports every unknown key of a table, not just the first', () => {
    const found = issues(load('[server]\nfoo = 1\nmode = "tcp"\nbar = 2\n'));
    expect(found.map((i) => [i.path, i.line])).toEqual([
      ['server.foo', 2],
      ['server.bar', 4],
    ]);
  });

  it('does not count keys inside multi-line strings', () => {
    const found = issues(load('[tls]\nciphers = """\nbogus = 1\n"""\nbogus = 2\n'));
    expect(found.find((i) => i.path === 'tls.bogus')).toMatchObject({ line: 5 });
  });
});

describe('schema errors', () => {
  it('names the key path and line of a bad type, range or option, in file order', () => {
    const found = issues(load('[server]\nworker_threads = "four"\nmax_connections = 0\nmode = "udp"\nbind_address = "localhost"\n'));
    expect(found.map((i) => [i.path, i.line])).toEqual([
      ['server.worker_threads', 2],
      ['server.max_connections', 3],
      ['server.mode', 4],
      ['server.bind_address', 5],
    ]);
    expect(found.find((i) => i.path === 'server.worker_threads')!.message).toMatch(/expected number/);
    expect(found.find((i) => i.path === 'server.bind_address')!.message).toMatch(/host:port/);
  });

  it('names array elements and points at the array', () => {
    const [issue] = issues(load('[nats]\nurls = ["nats://a:4222", "http://b:80"]\n'));
    expect(issue).toMatchObject({ path: 'nats.urls.1', line: 2, message: 'expected nats://host:port' });
  });

  it('cross-field rules point at the section when the key is absent', () => {
    const found = issues(load('[tls]\nenabled = true\nkey_path = "k.pem"\n\n[runtime]\nheartbeat_interval_ms = 1000\nheartbeat_timeout_ms = 2000\nbackoff_initial_ms = 10\nbackoff_max_ms = 5\n\n[nats]\nenabled = true\n'));
    expect(found.map((i) => [i.path, i.line])).toEqual([
      ['tls.cert_path', 1],
      ['runtime.heartbeat_timeout_ms', 7],
      ['runtime.backoff_max_ms', 9],
      ['nats.urls', 11],
    ]);
  });

  it('a section that is not a table is reported as such, arrays included', () => {
    expect(issues(load('server = 5\n'))[0]).toMatchObject({ path: 'server', line: 1 });
    // valibot's object schemas take `[]` for `{}`; an empty array must not mean "all defaults".
    for (const text of ['server = []\n', '[[server]]\nmode = "tcp"\n']) {
      expect(issues(load(text))).toMatchObject([{ path: 'server', line: 1, message: 'Invalid input: expected object, received array' }]);
    }
  });
});

describe('semantic checks', () => {
  it('tls files must be readable when tls is enabled', () => {
    const found = issues(load('[tls]\nenabled = true\ncert_path = "missing.pem"\nkey_path = "."\n'));
    expect(found.map((i) => [i.path, i.line, i.message])).toEqual([
      ['tls.cert_path', 3, 'cannot read missing.pem: ENOENT'],
      ['tls.key_path', 4, '. is not a regular file'],
    ]);
    mkdirSync(join(dir, 'tls'), { recursive: true });
    writeFileSync(join(dir, 'tls/cert.pem'), 'cert');
    writeFileSync(join(dir, 'tls/key.pem'), 'key');
    expect(ok(load('[tls]\nenabled = true\ncert_path = "tls/cert.pem"\nkey_path = "tls/key.pem"\n')).tls.enabled).toBe(true);
  });

  it('l7 mode checks trusted proxies, hosts served twice, certificate pairs and what each certificate covers', async () => {
    const a = testCert(['a.example']);
    const fallback = testCert(['default.example']);
    mkdirSync(join(dir, 'l7'), { recursive: true });
    for (const [name, pem] of [['a', a], ['default', fallback]] as const) {
      writeFileSync(join(dir, `l7/${name}.pem`), pem.cert);
      writeFileSync(join(dir, `l7/${name}.key`), pem.key);
    }
    const tls = '[tls]\nenabled = true\ncert_path = "l7/default.pem"\nkey_path = "l7/default.key"\n';
    const found = issues(
      load(
        `[server]\nmode = "l7"\n${tls}[l7]\ntrusted_proxies = ["10.0.0.0/8", "10.0.0.0/99"]\n` +
          '[[l7.routes]]\nhosts = ["a.example"]\norigins = ["http://127.0.0.1:1"]\ncert_path = "l7/a.pem"\n' +
          '[[l7.routes]]\nhosts = ["A.example"]\norigins = ["http://127.0.0.1:2"]\n',
      ),
    );
    expect(found.map((i) => i.path)).toEqual(['l7.trusted_proxies.1', 'l7.routes.0', 'l7.routes.1.hosts']);
    // Paired and readable, but the certificate does not cover the route's second host: the file is valid,
    // and provisioning (start, validate-config) refuses it with the loader's message.
    const uncovered = ok(
      load(`[server]\nmode = "l7"\n${tls}[[l7.routes]]\nhosts = ["a.example", "b.example"]\norigins = ["http://127.0.0.1:1"]\ncert_path = "l7/a.pem"\nkey_path = "l7/a.key"\n`),
    );
    await expect(L7SettingsSource.load(uncovered, dir)).rejects.toThrow('does not cover b.example');
    const config = ok(load(`[server]\nmode = "l7"\n${tls}[[l7.routes]]\nhosts = ["a.example"]\norigins = ["http://127.0.0.1:1"]\ncert_path = "l7/a.pem"\nkey_path = "l7/a.key"\n`));
    expect(config.l7.routes[0]!.hosts).toEqual(['a.example']);
    expect((await L7SettingsSource.load(config, dir)).list(10).expiringFirst.map((c) => c.name)).toEqual(['a.example']);
  });

  it('admin.socket_path must fit a unix socket address', () => {
    const [issue] = issues(load(`[admin]\nsocket_path = "/${'x'.repeat(100)}.sock"\n`));
    expect(issue).toMatchObject({ path: 'admin.socket_path', line: 2 });
  });

  it('metrics cannot share the proxy address, wildcards included', () => {
    expect(issues(load('[metrics]\nbind_address = "127.0.0.1:8443"\n'))[0]).toMatchObject({ path: 'metrics.bind_address' });
    expect(issues(load('[server]\nbind_address = "0.0.0.0:9000"\n[metrics]\nbind_address = "127.0.0.1:9000"\n'))).toHaveLength(1);
    expect(ok(load('[metrics]\nenabled = false\nbind_address = "127.0.0.1:8443"\n')).metrics.enabled).toBe(false);
  });
});

describe('precedence: defaults < file < env < CLI', () => {
  const file = write('[logging]\nlevel = "warn"\n');

  it('each layer overrides the one before', () => {
    expect(ok(load('')).logging.level).toBe('info');
    expect(ok(loadConfig({ file })).logging.level).toBe('warn');
    expect(ok(loadConfig({ file, env: { SECBEAT_LOGGING__LEVEL: 'error' } })).logging.level).toBe('error');
    expect(ok(loadConfig({ file, env: { SECBEAT_LOGGING__LEVEL: 'error' }, overrides: ['logging.level=debug'] })).logging.level).toBe('debug');
  });

  it('MITIGATION_MODE sets server.mode; SECBEAT_SERVER__MODE and then the CLI win over it', () => {
    expect(ok(load('[server]\nmode = "tcp"\n', { env: { MITIGATION_MODE: 'l7' } })).server.mode).toBe('l7');
    expect(ok(load('', { env: { MITIGATION_MODE: 'l7', SECBEAT_SERVER__MODE: 'syn' } })).server.mode).toBe('syn');
    expect(ok(load('', { env: { MITIGATION_MODE: 'l7' }, overrides: ['server.mode="tcp"'] })).server.mode).toBe('tcp');
    const [issue] = issues(load('', { env: { MITIGATION_MODE: 'udp' } }));
    expect(issue).toMatchObject({ file: null, line: null, path: 'server.mode' });
    expect(issue!.message).toMatch(/set by MITIGATION_MODE/);
  });
});

describe('SECBEAT_<SECTION>__<KEY> and --set values', () => {
  it('parses ints, bools, arrays and strings as TOML, with a plain-string fallback', () => {
    const config = ok(
      load('', {
        env: {
          SECBEAT_SERVER__WORKER_THREADS: '4',
          SECBEAT_SERVER__TCP_NODELAY: 'false',
          SECBEAT_SYN_PROXY__PROTECTED_PORTS: '[8080, 8443]',
          SECBEAT_LOGGING__FORMAT: 'pretty',
          SECBEAT_PLATFORM__NODE_ID: '123',
          SECBEAT_PLATFORM__REGION: '"quoted"',
          SECBEAT_NATIVE_PATH: '/not/a/config/key',
        },
        overrides: ['nats.urls = ["nats://a:4222"]', 'nats.enabled=true', 'server.bind_address=[::1]:9443'],
      }),
    );
    expect(config.server.worker_threads).toBe(4);
    expect(config.server.tcp_nodelay).toBe(false);
    expect(config.syn_proxy.protected_ports).toEqual([8080, 8443]);
    expect(config.logging.format).toBe('pretty');
    expect(config.platform.node_id).toBe('123');
    expect(config.platform.region).toBe('quoted');
    expect(config.nats).toMatchObject({ enabled: true, urls: ['nats://a:4222'] });
    expect(config.server.bind_address).toBe('[::1]:9443');
  });

  it('a bad override value is reported against the variable, not the file', () => {
    const [issue] = issues(load('[server]\nworker_threads = 2\n', { env: { SECBEAT_SERVER__WORKER_THREADS: '99' } }));
    expect(issue).toMatchObject({ file: null, line: null, path: 'server.worker_threads' });
    expect(issue!.message).toMatch(/set by SECBEAT_SERVER__WORKER_THREADS/);
  });

  it('prototype member names are unknown keys, not crashes', () => {
    const found = issues(load('', { env: { SECBEAT_SERVER__CONSTRUCTOR: '1', SECBEAT___PROTO____X: '1' }, overrides: ['server.__proto__=1', 'toString.x=1'] }));
    expect(found.map((i) => [i.path, i.message])).toEqual([
      ['server.constructor', 'unknown key (set by SECBEAT_SERVER__CONSTRUCTOR)'],
      ['.proto..x', 'expected <section>.<key> (set by SECBEAT___PROTO____X)'],
      ['server.__proto__', 'unknown key (set by --set server.__proto__)'],
      ['toString.x', 'unknown section (set by --set toString.x)'],
    ]);
  });

  it('unknown sections and keys name the variable or flag and suggest', () => {
    const found = issues(load('', { env: { SECBEAT_SERVER__WORKER_THREAD: '4', SECBEAT_SERVR__MODE: 'tcp', SECBEAT_A__B__C: '1' }, overrides: ['loging.level=info', 'nonsense'] }));
    expect(found.map((i) => [i.file, i.path, i.message])).toEqual([
      [null, 'a.b.c', 'expected <section>.<key> (set by SECBEAT_A__B__C)'],
      [null, 'server.worker_thread', 'unknown key (did you mean worker_threads?) (set by SECBEAT_SERVER__WORKER_THREAD)'],
      [null, 'servr.mode', 'unknown section (did you mean server?) (set by SECBEAT_SERVR__MODE)'],
      [null, 'loging.level', 'unknown section (did you mean logging?) (set by --set loging.level)'],
      [null, '', '--set "nonsense": expected section.key=value'],
    ]);
  });
});

describe('${VAR} interpolation', () => {
  it('substitutes variables in string values; $${ is a literal ${', () => {
    const config = ok(
      load('[nats]\nuser = "${NATS_USER}"\npassword = "${P1}${P2}-$5"\nname = "$${NOT_A_VAR} $$"\n', { env: { NATS_USER: 'u', P1: 'a"b', P2: '\nc' } }),
    );
    expect(config.nats).toMatchObject({ user: 'u', password: 'a"b\nc-$5', name: '${NOT_A_VAR} $$' });
  });

  it('does not interpolate comments, keys or override values', () => {
    const config = ok(load('# ${UNSET} in a comment\n[admin]\napi_token = "x"\n', { env: { SECBEAT_ADMIN__API_TOKEN: '${UNSET}' } }));
    expect(config.admin.api_token).toBe('${UNSET}');
  });

  it('an undefined or malformed variable names the variable, key and line', () => {
    const found = issues(load('[platform]\nregion = "r"\n[admin]\napi_token = "${API_TOKEN}"\n[nats]\nname = "${bad name}"\ntoken = "${UNCLOSED"\nuser = "${constructor}"\n'));
    expect(found).toEqual([
      { code: 'SECBEAT_ERR_CONFIG_INTERPOLATION', file: expect.any(String), path: 'admin.api_token', line: 4, column: 1, message: 'environment variable API_TOKEN is not set' },
      expect.objectContaining({ path: 'nats.name', line: 6, message: expect.stringMatching(/invalid variable name/) }),
      expect.objectContaining({ path: 'nats.token', line: 7, message: expect.stringMatching(/unterminated/) }),
      expect.objectContaining({ path: 'nats.user', line: 8, message: 'environment variable constructor is not set' }),
    ]);
  });

  it('interpolates array items', () => {
    expect(ok(load('[nats]\nurls = ["nats://${NATS_HOST}:4222"]\n', { env: { NATS_HOST: 'n1' } })).nats.urls).toEqual(['nats://n1:4222']);
  });
});

describe('read and parse failures', () => {
  it('a TOML syntax error has line and column', () => {
    const file = write('[server]\nmode = "tcp"\nworker_threads = \n');
    const [issue] = issues(loadConfig({ file }));
    expect(issue).toMatchObject({ code: 'SECBEAT_ERR_CONFIG_PARSE', file, path: '', line: 3, column: 18 });
    expect(issue!.message).toMatch(/^invalid TOML: /);
    expect(issue!.message).not.toContain('\n');
  });

  it('missing, directory, oversized and non-UTF-8 files are issues, not exceptions', () => {
    expect(issues(loadConfig({ file: join(dir, 'nope.toml') }))[0]).toMatchObject({ code: 'SECBEAT_ERR_CONFIG_READ', message: 'cannot read: ENOENT' });
    expect(issues(loadConfig({ file: dir }))[0]).toMatchObject({ code: 'SECBEAT_ERR_CONFIG_READ', message: 'not a regular file' });
    expect(issues(loadConfig({ file: write(`# ${'x'.repeat(1024 * 1024)}\n`) }))[0]!.message).toMatch(/too large/);
    expect(issues(loadConfig({ file: write(new Uint8Array([0x61, 0x3d, 0x0a, 0x23, 0xff])) }))[0]).toMatchObject({ code: 'SECBEAT_ERR_CONFIG_PARSE', line: 2, column: 2 });
  });

  it('unsafe keys are refused rather than touching prototypes', () => {
    expect(issues(load('[__proto__]\nx = 1\n'))[0]).toMatchObject({ code: 'SECBEAT_ERR_CONFIG_PARSE' });
  });

  it('hostile 1 MiB documents end in issues with short paths', () => {
    const deep = issues(load(`[${Array.from({ length: 200_000 }, () => 'a').join('.')}]\nx = 1\n`));
    expect(deep).toMatchObject([{ path: 'a', line: 1, message: 'unknown section' }]);
    const [long] = issues(load(`[server]\n${'w'.repeat(900_000)} = 1\n`));
    expect(long).toMatchObject({ path: `server.${'w'.repeat(128)}…`, line: 2 });
    expect(issues(load(`a = ${'['.repeat(100_000)}${']'.repeat(100_000)}`))[0]).toMatchObject({ code: 'SECBEAT_ERR_CONFIG_PARSE' });
  });

  it('caps the issue list', () => {
    const text = Array.from({ length: 150 }, (_, i) => `k${i} = 1`).join('\n');
    const found = issues(load(text));
    expect(found).toHaveLength(101);
    expect(found.at(-1)!.message).toBe('50 more issue(s) not shown');
  });
});

describe('the result', () => {
  it('is deeply frozen', () => {
    const config = ok(load('[nats]\nurls = ["nats://a:4222"]\n'));
    expect(Object.isFrozen(config)).toBe(true);
    expect(Object.isFrozen(config.server)).toBe(true);
    expect(Object.isFrozen(config.nats.urls)).toBe(true);
    expect(() => {
      (config.server as { worker_threads: number }).worker_threads = 9;
    }).toThrow(TypeError);
  });

  it('redacts secrets and URL credentials in a copy', () => {
    const config = ok(
      load('[nats]\ntoken = "t"\nuser = "u"\npassword = "p"\n[admin]\napi_token = "a"\n[orchestrator]\nurl = "https://ops:pw@orch.example:8443/api"\n'),
    );
    const shown = redactConfig(config) as Config;
    expect(shown.nats).toMatchObject({ token: '[redacted]', user: 'u', password: '[redacted]' });
    expect(shown.admin.api_token).toBe('[redacted]');
    expect(shown.orchestrator.url).toBe('https://orch.example:8443/api');
    expect(config.nats.token).toBe('t');
    expect(JSON.stringify(redactConfig(ok(load(''))))).not.toContain('redacted');
  });
});

describe('formatConfigIssue and parseHostPort', () => {
  it('drops unknown parts', () => {
    const base = { code: 'SECBEAT_ERR_CONFIG_INVALID', message: 'm' } as const;
    expect(formatConfigIssue({ ...base, file: 'f.toml', path: 'a.b', line: 3, column: 7 })).toBe('f.toml:3:7 a.b: m');
    expect(formatConfigIssue({ ...base, file: 'f.toml', path: 'a.b', line: null, column: null })).toBe('f.toml a.b: m');
    expect(formatConfigIssue({ ...base, file: null, path: '', line: null, column: null })).toBe('m');
  });

  it.each([
    ['127.0.0.1:80', { host: '127.0.0.1', port: 80 }],
    ['[::1]:8443', { host: '::1', port: 8443 }],
    ['edge-1.example.com:65535', { host: 'edge-1.example.com', port: 65535 }],
    ['::1:80', null],
    ['[nothost]:80', null],
    ['host:0', null],
    ['host:65536', null],
    ['host:+80', null],
    [':80', null],
    ['host', null],
    ['bad_host:80', null],
  ])('parseHostPort(%j)', (text, expected) => {
    expect(parseHostPort(text)).toEqual(expected);
  });
});
