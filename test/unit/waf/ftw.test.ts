// The CRS regression-suite runner's parts without the engine (test/conformance/): decoding every corpus file,
// building requests as ftw did, the web-server model, expectation checking against a fake log, the socket
// sender against a local node:http server, and the report's arithmetic.
import { once } from 'node:events';
import { createServer as createHttpServer } from 'node:http';
import { createServer as createTcpServer, type AddressInfo, type Server } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type Corpus, decodeFile, loadCorpus, type Stage, type StageInput, type StageOutput } from '../../conformance/ftw.ts';
import { compareWithKnown, summarize } from '../../conformance/report.ts';
import { buildRequest } from '../../conformance/request.ts';
import { checkOutcome, loggedRuleIds, runStage, runStages } from '../../conformance/runner.ts';
import { parseAsServer, type ServerView } from '../../conformance/server-parse.ts';
import { sendRaw, socketTarget } from '../../conformance/socket-target.ts';
import type { StageOutcome, Target } from '../../conformance/target.ts';

const input = (over: Partial<StageInput> = {}): StageInput => ({
  destAddr: '127.0.0.1',
  port: 80,
  protocol: 'http',
  method: 'GET',
  uri: '/',
  version: 'HTTP/1.1',
  headers: [['Host', 'localhost']],
  data: '',
  rawRequest: null,
  encodedRequest: null,
  stopMagic: false,
  ...over,
});
const output = (over: Partial<StageOutput> = {}): StageOutput => ({
  status: null,
  logContains: null,
  noLogContains: null,
  responseContains: null,
  expectError: false,
  ...over,
});
const stage = (over: Partial<Stage> = {}): Stage => ({
  id: 't-1',
  file: 'X/t.yaml',
  ruleFile: 'X',
  testTitle: 't-1',
  input: input(),
  output: output({ status: [200] }),
  ...over,
});
const bytes = (i: StageInput): string => {
  const built = buildRequest(i);
  if (!built.ok) throw new Error(built.error.message);
  return built.bytes.toString('latin1');
};
const decode = (yaml: string): Corpus => {
  const corpus: Corpus = { stages: [], issues: [], disabledTests: 0 };
  decodeFile(yaml, 'REQUEST-999-X/999.yaml', corpus);
  return corpus;
};
const META = 'meta: {author: a, enabled: true, name: x.yaml, description: d}\n';

describe('the CRS 3.3.4 corpus', () => {
  const corpus = loadCorpus();

  it('decodes every file with no issue: 2,396 enabled stages, 7 in disabled files', () => {
    expect(corpus.issues).toEqual([]);
    expect(corpus.stages).toHaveLength(2396);
    expect(corpus.disabledTests).toBe(7);
    expect(new Set(corpus.stages.map((s) => s.ruleFile)).size).toBe(14);
  });

  it('gives every stage a unique id (a repeated title gets ~2)', () => {
    expect(new Set(corpus.stages.map((s) => s.id)).size).toBe(corpus.stages.length);
    expect(corpus.stages.filter((s) => s.testTitle === '941160-10').map((s) => s.id)).toEqual(['941160-10', '941160-10~2']);
  });

  it('builds every stage as ftw would (no tooling error) and the server model reads each without throwing', () => {
    for (const s of corpus.stages) {
      const built = buildRequest(s.input);
      if (!built.ok) {
        expect(built.error.kind, s.id).toBe('test-error');
        continue;
      }
      expect(() => parseAsServer(built.bytes), s.id).not.toThrow();
    }
  });

  it('meets every expectation that needs no WAF with the server model alone, but two backend-specific statuses', async () => {
    // Stages judged only by status or error depend on the web server, not on the rules.
    const serverOnly = corpus.stages.filter((s) => s.output.logContains === null && s.output.noLogContains === null);
    const results = await runStages(serverOnly, serverModelTarget);
    expect(results.filter((r) => r.failures.length > 0).map((r) => r.stage.id)).toEqual(['920100-8', '920272-5']);
  });
});

/** The in-process target without an engine: the web-server model's answer and an empty log. */
const serverModelTarget: Target = {
  name: 'server model',
  async exchange(_stage, request) {
    const view = parseAsServer(request);
    if (view.kind === 'refused') return { kind: 'response', status: view.status, raw: '', log: [] };
    if (view.kind === 'request') return { kind: 'response', status: view.status, raw: '', log: [] };
    return { kind: 'error', message: view.reason, log: [] };
  },
  async close() {},
};

describe('decoding ftw YAML', () => {
  it('reads header values through Python str() and keeps a repeated key first in place, last in value', () => {
    const c = decode(`${META}tests:
  - test_title: t-1
    stages:
      - stage:
          input: {headers: {Host: a, Content-Length: 7, X-On: yes, X-Null: null, Host: b}}
          output: {status: 200}
`);
    expect(c.issues).toEqual([]);
    expect(c.stages[0]!.input.headers).toEqual([
      ['Host', 'b'],
      ['Content-Length', '7'],
      ['X-On', 'True'],
      ['X-Null', 'None'],
    ]);
  });

  it('joins a data list with CRLF and applies ftw defaults', () => {
    const c = decode(`${META}tests:
  - test_title: t-1
    stages:
      - stage:
          input: {data: ['a=1', '', 'b'], autocomplete_headers: false}
          output: {log_contains: 'id "1"'}
`);
    const s = c.stages[0]!;
    expect(s.input).toMatchObject({ data: 'a=1\r\n\r\nb', method: 'GET', uri: '/', version: 'HTTP/1.1', destAddr: 'localhost', port: 80, stopMagic: true });
    expect(s.output).toEqual(output({ logContains: 'id "1"' }));
    expect(s.ruleFile).toBe('REQUEST-999-X');
  });

  it('reports what ftw would refuse instead of guessing', () => {
    const c = decode(`${META}tests:
  - test_title: t-1
    stages:
      - stage:
          input: {headers: {X: 1.5}, bogus: 1, data: [1]}
          output: {}
  - test_title: t-2
    stages:
      - stage:
          input: {uri: 5}
          output: {log_contains: '(?P<x>a)\\Z'}
`);
    expect(c.stages).toEqual([]);
    expect(c.issues.map((i) => i.message)).toEqual([
      'unknown input key "bogus"',
      'header X: number values are not reproduced',
      'input.data is neither a string nor a list of strings',
      'output checks nothing (ftw refuses such a stage)',
      'input.uri is not a string (ftw concatenates it)',
      'output.log_contains: anchors \\A and \\Z are not reproduced',
    ]);
  });

  it('skips disabled files and tests, and numbers the stages of a multi-stage test', () => {
    expect(decode(META.replace('true', 'false') + 'tests: [{test_title: a, stages: []}, {test_title: b}]\n').disabledTests).toBe(2);
    const c = decode(`${META}tests:
  - test_title: t-1
    stages:
      - stage: {input: {}, output: {status: 200}}
      - stage: {input: {}, output: {status: 200}}
  - test_title: t-off
    enabled: false
    stages: []
`);
    expect(c.stages.map((s) => s.id)).toEqual(['t-1/1', 't-1/2']);
    expect(c.disabledTests).toBe(1);
  });
});

describe('building requests as ftw did', () => {
  it('adds Content-Type and Content-Length and re-encodes form data through parse_qsl/urlencode', () => {
    expect(bytes(input({ method: 'POST', data: 'a=<b c>&empty=&novalue&x=1+2' }))).toBe(
      'POST / HTTP/1.1\r\nHost: localhost\r\nContent-Type: application/x-www-form-urlencoded\r\nContent-Length: 17\r\n\r\na=%3Cb+c%3E&x=1+2',
    );
  });

  it('leaves data holding a %XX escape as written, and counts Content-Length in code points', () => {
    expect(bytes(input({ data: 'a=%3C&b=é' }))).toContain('Content-Length: 9\r\n\r\na=%3C&b=Ã©');
    // Non-form data is sent as UTF-8 while the length counts characters, as Python's len() does.
    expect(bytes(input({ headers: [['Content-Type', 'text/plain']], data: 'é' }))).toBe(
      'GET / HTTP/1.1\r\nContent-Type: text/plain\r\nContent-Length: 1\r\n\r\nÃ©',
    );
    expect(bytes(input({ data: 'q=é' }))).toContain('\r\n\r\nq=%C3%A9');
  });

  it('matches header names exactly, as the Python dict does', () => {
    expect(bytes(input({ headers: [['content-type', 'text/xml']], data: '<a/>' }))).toBe(
      'GET / HTTP/1.1\r\ncontent-type: text/xml\r\nContent-Type: application/x-www-form-urlencoded\r\nContent-Length: 4\r\n\r\n<a/>',
    );
  });

  it('adds nothing with stop_magic, and keeps every character of the URI', () => {
    expect(bytes(input({ uri: "/$&$'", version: '', stopMagic: true, headers: [], data: 'a=<' }))).toBe("GET /$&$' \r\n\r\na=<");
  });

  it('sends raw_request through unicode_escape, double-encoding non-ASCII as ftw did', () => {
    const raw = buildRequest(input({ rawRequest: 'GET / HTTP/1.0\\r\\n\\x41\r\n\r\n\xac' }));
    expect(raw.ok && [...raw.bytes]).toEqual([...Buffer.from('GET / HTTP/1.0\r\nA\r\n\r\n', 'latin1'), 0xc3, 0x82, 0xc2, 0xac]);
    const bad = buildRequest(input({ rawRequest: 'x\\x4' }));
    expect(!bad.ok && bad.error.kind).toBe('exception');
  });

  it('sends encoded_request as decoded, and refuses raw and encoded together with ftw’s own error', () => {
    const encoded = buildRequest(input({ encodedRequest: Buffer.from('GET /\n\n').toString('base64') }));
    expect(encoded.ok && encoded.bytes.toString()).toBe('GET /\n\n');
    const both = buildRequest(input({ encodedRequest: 'QQ==', rawRequest: 'A' }));
    expect(both).toEqual({ ok: false, error: { kind: 'test-error', message: 'Cannot specify both raw and encoded modes' } });
  });

  it('sends ASCII data unchanged under an ASCII-compatible charset and reports what it does not reproduce', () => {
    const form = 'application/x-www-form-urlencoded; charset=';
    expect(bytes(input({ headers: [['Content-Type', `${form}windows-1252`]], data: 'a=b' }))).toContain('\r\n\r\na=b');
    for (const [charset, data] of [
      ['utf-16', 'a=b'],
      ['ibm037', 'a=b'],
      ['iso-8859-1', 'a=é'],
    ] as const) {
      const built = buildRequest(input({ headers: [['Content-Type', form + charset]], data }));
      expect(!built.ok && built.error.kind, charset).toBe('unsupported');
    }
  });
});

describe('the web-server model (Apache httpd 2.4, strict)', () => {
  const view = (text: string): ServerView => parseAsServer(Buffer.from(text, 'latin1'));
  const status = (text: string): number | string => {
    const v = view(text);
    return v.kind === 'refused' || v.kind === 'request' ? v.status : v.kind;
  };

  it('passes a request on with its parts as sent', () => {
    expect(view('\r\nPOST /a?b=1 HTTP/1.0\r\nHost: x\r\nX-A:  1 \r\nx-a: 2\r\n  more\r\nContent-Length: 3\r\n\r\nabcdef')).toEqual({
      kind: 'request',
      status: 200,
      request: {
        method: 'POST',
        uri: '/a?b=1',
        protocol: 'HTTP/1.0',
        headers: [
          ['Host', 'x'],
          ['X-A', '1'],
          ['x-a', '2 more'],
          ['Content-Length', '3'],
        ],
        body: 'abc',
      },
    });
  });

  it.each([
    ['leading spaces before the method', '     GET / HTTP/1.1\r\nHost: x\r\n\r\n', 400],
    ['a tab before the method', '\tGET / HTTP/1.1\r\nHost: x\r\n\r\n', 400],
    ['|GET, a token method', '|GET / HTTP/1.1\r\nHost: x\r\n\r\n', 200],
    ['two spaces after the method', 'GET  / HTTP/1.1\r\nHost: x\r\n\r\n', 400],
    ['no version: HTTP/0.9', 'GET /\r\n\r\n', 'http09'],
    ['an empty version: HTTP/0.9', 'GET / \r\nHost: x\r\n\r\n', 'http09'],
    ['explicit HTTP/0.9', 'GET / HTTP/0.9\r\nHost: x\r\n\r\n', 400],
    ['backslashes in target and version', 'GET \\index.html HTTP\\1.0\r\nHost: x\r\n\r\n', 400],
    ['HTTP/2 without minor', 'GET / HTTP/2\r\nHost: x\r\n\r\n', 400],
    ['JUNK/1.0', 'GET / JUNK/1.0\r\nHost: x\r\n\r\n', 400],
    ['HTTP/3.0', 'GET / HTTP/3.0\r\nHost: x\r\n\r\n', 200],
    ['target \\', 'GET \\ HTTP/1.1\r\nHost: x\r\n\r\n', 400],
    ['a target that is only a query (httpd makes the path /)', 'POST ?x=1 HTTP/1.1\r\nHost: x\r\n\r\n', 200],
    ['OPTIONS *', 'OPTIONS * HTTP/1.1\r\nHost: x\r\n\r\n', 200],
    ['absolute-form target', 'GET http://x/y HTTP/1.1\r\nHost: x\r\n\r\n', 200],
    ['CONNECT host:port', 'CONNECT 1.2.3.4:80 HTTP/1.1\r\nHost: x\r\n\r\n', 405],
    ['CONNECT without a port', 'CONNECT www.cnn.com HTTP/1.1\r\nHost: x\r\n\r\n', 400],
    ['bare LF line ends', 'GET / HTTP/1.1\nHost: x\n\n', 400],
    ['a CR inside a header value', 'GET / HTTP/1.1\r\nHost: x\r\nA: b\rC: d\r\n\r\n', 400],
    ['space before the colon', 'GET / HTTP/1.1\r\nHost: x\r\nA : b\r\n\r\n', 400],
    ['HTTP/1.1 without Host', 'GET / HTTP/1.1\r\n\r\n', 400],
    ['HTTP/1.0 without Host', 'GET / HTTP/1.0\r\n\r\n', 200],
    ['Host with %00', 'GET / HTTP/1.1\r\nHost: localhost%00\r\n\r\n', 400],
    ['empty Host', 'GET / HTTP/1.1\r\nHost: \r\n\r\n', 400],
    ['IPv6 Host', 'GET / HTTP/1.1\r\nHost: [::1]:80\r\n\r\n', 200],
    ['Content-Length \'3;\'', 'GET / HTTP/1.1\r\nHost: x\r\nContent-Length: 3;\r\n\r\nabc', 400],
    ['body shorter than Content-Length', 'GET / HTTP/1.1\r\nHost: x\r\nContent-Length: 50\r\n\r\n', 'incomplete'],
    ['Transfer-Encoding gzip', 'GET / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: gzip\r\n\r\n', 501],
    ['chunked body cut short', 'GET / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nab', 'incomplete'],
    ['bad chunk size', 'GET / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n', 400],
    ['header block cut short', 'GET / HTTP/1.1\r\nHost: x\r\n', 400],
    ['request line over 8190 bytes', `GET /${'a'.repeat(8190)} HTTP/1.1\r\nHost: x\r\n\r\n`, 414],
    ['101 header fields', `GET / HTTP/1.1\r\nHost: x\r\n${'A: b\r\n'.repeat(100)}\r\n`, 400],
  ])('%s → %s', (_label, text, expected) => {
    expect(status(text)).toBe(expected);
  });

  it('de-chunks a body and hides the Content-Length that came with it', () => {
    const v = view('POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 7\r\nTransfer-Encoding: chunked\r\n\r\n7\r\nfoo=bar\r\n2;x=y\r\n&a\r\n0\r\nT: 1\r\n\r\n');
    expect(v.kind === 'request' && v.request).toMatchObject({
      headers: [
        ['Host', 'x'],
        ['Transfer-Encoding', 'chunked'],
      ],
      body: 'foo=bar&a',
    });
  });
});

describe('checking a stage’s expectations as ftw did', () => {
  const line = (id: string): string => `ModSecurity: Warning. Matched [file "x.conf"] [line "1"] [id "${id}"] [msg "m"]`;
  const response = (status: number, ids: string[] = []): StageOutcome => ({ kind: 'response', status, raw: '', log: ids.map(line) });
  const error: StageOutcome = { kind: 'error', message: 'timeout', log: [line('920340')] };

  it('searches log lines for log_contains and no_log_contains', () => {
    expect(checkOutcome(output({ logContains: 'id "942100"' }), response(200, ['920450', '942100']))).toEqual([]);
    expect(checkOutcome(output({ logContains: 'id "942100"' }), response(200, ['942101']))).toEqual([
      { cause: 'missed-detection', detail: 'no log line matches /id "942100"/' },
    ]);
    expect(checkOutcome(output({ noLogContains: 'id "942100"' }), response(200, ['942100']))[0]!.cause).toBe('false-positive');
    // A pattern ftw's authors wrote that can never match a ModSecurity line passes, as it did for them.
    expect(checkOutcome(output({ noLogContains: 'id:921140' }), response(400, ['921140']))).toEqual([]);
  });

  it('accepts any listed status and treats an ftw error as its own outcome', () => {
    expect(checkOutcome(output({ status: [403, 400] }), response(400))).toEqual([]);
    expect(checkOutcome(output({ status: [403, 400] }), response(200))[0]).toEqual({ cause: 'status', detail: 'status 200, expected 403 or 400' });
    expect(checkOutcome(output({ expectError: true, logContains: 'id "920340"' }), error)).toEqual([]);
    expect(checkOutcome(output({ expectError: true }), response(200))[0]!.cause).toBe('no-error');
    expect(checkOutcome(output({ logContains: 'id "920340"' }), error)[0]!.cause).toBe('error');
    expect(checkOutcome(output({ expectError: true, status: [400] }), error)[0]!.cause).toBe('error');
  });

  it('says when a target has no log to judge by, and searches the raw response', () => {
    expect(checkOutcome(output({ logContains: 'x' }), { kind: 'response', status: 200, raw: '', log: null })[0]!.cause).toBe('no-log');
    expect(checkOutcome(output({ responseContains: 'hello-[a-z]orld' }), { kind: 'response', status: 200, raw: 'hello-world', log: [] })).toEqual([]);
  });

  it('runs a stage through a target, and an ftw build error without sending', async () => {
    const sent: string[] = [];
    const fake: Target = {
      name: 'fake',
      async exchange(_s, request) {
        sent.push(request.toString('latin1'));
        return response(200, ['942100']);
      },
      async close() {},
    };
    const ok = await runStage(stage({ output: output({ logContains: 'id "942100"' }) }), fake);
    expect(ok.failures).toEqual([]);
    expect(sent).toEqual(['GET / HTTP/1.1\r\nHost: localhost\r\n\r\n']);
    const refused = await runStage(stage({ input: input({ rawRequest: 'A', encodedRequest: 'QQ==' }), output: output({ expectError: true }) }), fake);
    expect(refused).toMatchObject({ failures: [], outcome: { kind: 'error', log: [] } });
    const unsupported = await runStage(stage({ input: input({ headers: [['Content-Type', 'a; charset=utf-16']], data: 'x' }) }), fake);
    expect(unsupported.failures[0]!.cause).toBe('tooling');
    expect(sent).toHaveLength(1);
    expect(loggedRuleIds([line('1'), `${line('2')} ${line('1')}`])).toEqual(['1', '2']);
  });
});

describe('the report', () => {
  it('counts per rule file, tells paranoia scope from missed detections, and compares with the known failures', () => {
    const miss = (id: string, rule: string, ruleFile = 'F1') => ({
      stage: stage({ id, ruleFile, output: output({ logContains: `id "${rule}"` }) }),
      outcome: null,
      failures: [{ cause: 'missed-detection' as const, detail: '' }],
    });
    const results = [miss('a', '942100'), miss('b', '942490', 'F2'), { stage: stage({ id: 'c', ruleFile: 'F1' }), outcome: null, failures: [] }];
    const summary = summarize(results, 1, new Map([[942490, 3]]));
    expect(summary).toMatchObject({ total: 3, passed: 1 });
    expect(summary.byRuleFile).toEqual(
      new Map([
        ['F1', { total: 2, passed: 1 }],
        ['F2', { total: 1, passed: 0 }],
      ]),
    );
    expect([...summary.byCause].map(([cause, r]) => [cause, r.map((x) => x.stage.id)])).toEqual([
      ['missed-detection', ['a']],
      ['paranoia-scope', ['b']],
    ]);
    expect(compareWithKnown(results, { target: 't', paranoiaLevel: 4, stages: { b: 'why', d: 'gone' } })).toEqual({ unexpected: ['a'], fixed: ['d'] });
  });
});

describe('sending raw bytes over a socket', () => {
  let http: ReturnType<typeof createHttpServer>;
  let silent: Server;
  let garbage: Server;
  const port = (s: { address(): unknown }): number => (s.address() as AddressInfo).port;

  beforeAll(async () => {
    http = createHttpServer((req, res) => {
      res.setHeader('x-method', req.method ?? '');
      res.end(req.url === '/nobody' ? undefined : 'hello');
    });
    silent = createTcpServer(() => {});
    garbage = createTcpServer((socket) => socket.end('hello there\r\n\r\n'));
    for (const s of [http, silent, garbage]) {
      s.listen(0, '127.0.0.1');
      await once(s, 'listening');
    }
  });
  afterAll(() => {
    http.closeAllConnections();
    for (const s of [http, silent, garbage]) s.close();
  });

  const send = (p: number, request: string, timeoutMs = 2_000) =>
    sendRaw({ host: '127.0.0.1', port: p, tls: false, request: Buffer.from(request, 'latin1'), timeoutMs });

  it('reads a whole response, keep-alive or not, HEAD included', async () => {
    const get = await send(port(http), 'GET / HTTP/1.1\r\nHost: x\r\n\r\n');
    expect(get).toMatchObject({ kind: 'response', status: 200 });
    expect(get.kind === 'response' && get.raw.endsWith('\r\n\r\nhello')).toBe(true);
    expect(await send(port(http), 'HEAD / HTTP/1.0\r\n\r\n')).toMatchObject({ kind: 'response', status: 200 });
  });

  it('reports what ftw would raise on: the server’s own 400, silence, a response without a status line', async () => {
    expect(await send(port(http), 'GET / HTTP/1.1\r\nHost: x\r\nA: b\rc\r\n\r\n')).toMatchObject({ kind: 'response', status: 400 });
    expect(await send(port(silent), 'GET / HTTP/1.1\r\n\r\n', 200)).toEqual({ kind: 'error', message: 'No response from server within 200 ms' });
    expect(await send(port(garbage), 'GET /\r\n\r\n')).toMatchObject({ kind: 'error', message: expect.stringContaining('unparsable response') });
    expect(await send(1, 'GET / HTTP/1.1\r\n\r\n')).toMatchObject({ kind: 'error', message: expect.stringContaining('socket') });
  });

  it('brackets each exchange with the match log it is given', async () => {
    const calls: string[] = [];
    const target = socketTarget({
      host: '127.0.0.1',
      port: port(http),
      log: {
        async mark(s) {
          calls.push(`mark ${s.id}`);
          return 7;
        },
        async linesSince(mark, s) {
          calls.push(`read ${s.id} from ${String(mark)}`);
          return ['[id "942100"]'];
        },
      },
    });
    const result = await runStage(stage({ output: output({ logContains: 'id "942100"', status: [200] }) }), target);
    expect(result.failures).toEqual([]);
    expect(calls).toEqual(['mark t-1', 'read t-1 from 7']);
    const noLog = await runStage(stage({ output: output({ logContains: 'x' }) }), socketTarget({ host: '127.0.0.1', port: port(http) }));
    expect(noLog.failures[0]!.cause).toBe('no-log');
  });
});
