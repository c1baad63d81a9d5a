// Configuration loading (src/waf/load.ts) over an in-memory file tree: Include resolves relative to the
// including file, globs expand in name order, cycles and missing files are errors with file and line, and
// @pmFromFile data files are read relative to the rule file that names them.
import { describe, expect, it } from 'vitest';
import { createWaf } from '../../../src/waf/engine.ts';
import { loadConfigFiles, loadCrs, type FileAccess } from '../../../src/waf/load.ts';

function memoryFiles(tree: Record<string, string>): FileAccess & { read: string[] } {
  const read: string[] = [];
  return {
    read,
    readFile(path) {
      read.push(path);
      const text = tree[path];
      if (text === undefined) throw new Error(`ENOENT: ${path}`);
      return text;
    },
    glob(pattern) {
      const regex = new RegExp(`^${pattern.replace(/[.+^${}()|\\]/g, '\\$&').replace(/\*/g, '[^/]*').replace(/\?/g, '[^/]')}$`);
      return Object.keys(tree)
        .filter((path) => regex.test(path))
        .sort();
    },
  };
}

const rule = (id: number) => `SecAction "id:${id},phase:1,pass,log"\n`;

describe('loadConfigFiles', () => {
  it('follows Include relative to the including file, globs in name order', () => {
    const files = memoryFiles({
      '/etc/waf/main.conf': `${rule(1)}Include rules/*.conf\nInclude /opt/extra.conf\n${rule(9)}`,
      '/etc/waf/rules/b.conf': rule(3),
      '/etc/waf/rules/a.conf': `${rule(2)}Include ../tail.conf`,
      '/etc/waf/tail.conf': rule(4),
      '/opt/extra.conf': rule(5),
    });
    const loaded = loadConfigFiles(['/etc/waf/main.conf'], files);
    expect(loaded.errors).toEqual([]);
    const ids = loaded.directives.map((d) => ('actions' in d ? d.actions.find((a) => a.name === 'id')?.value : d.kind));
    expect(ids).toEqual(['1', '2', '4', '3', '5', '9']);
  });

  it('reports missing files, empty globs and include cycles at the Include line', () => {
    const files = memoryFiles({
      '/w/main.conf': `Include missing.conf\nInclude none/*.conf\nInclude loop.conf\n`,
      '/w/loop.conf': 'Include main.conf\n',
    });
    const { errors } = loadConfigFiles(['/w/main.conf'], files);
    expect(errors.map((e) => `${e.file}:${e.line} ${e.message.split(':')[0]}`)).toEqual([
      '/w/main.conf:1 cannot read /w/missing.conf',
      '/w/main.conf:2 Include none/*.conf',
      '/w/loop.conf:1 /w/main.conf includes itself',
    ]);
  });

  it('reads @pmFromFile data relative to the rule file', () => {
    const files = memoryFiles({
      '/etc/waf/rules/r.conf': 'SecRule ARGS "@pmFromFile words.data" "id:1,phase:1,deny"\n',
      '/etc/waf/rules/words.data': 'evil\n',
    });
    const { ruleSet, errors } = createWaf({ files: ['/etc/waf/rules/r.conf'], fileAccess: files });
    expect(errors).toEqual([]);
    expect(files.read).toContain('/etc/waf/rules/words.data');
    const tx = ruleSet.begin({
      method: 'GET',
      uri: '/?q=so+evil',
      protocol: 'HTTP/1.1',
      headers: [],
      remoteAddr: '192.0.2.1',
      remotePort: 1,
      serverAddr: '192.0.2.2',
      serverPort: 80,
    });
    expect(tx.requestHeaders()?.ruleId).toBe(1);
  });

  it('reports a missing data file as an error of its rule', () => {
    const files = memoryFiles({ '/w/r.conf': 'SecRule ARGS "@pmFromFile nowhere.data" "id:1,phase:1,deny"\n' });
    const { ruleSet, errors } = createWaf({ files: ['/w/r.conf'], fileAccess: files });
    expect(errors).toEqual([{ file: '/w/r.conf', line: 1, message: expect.stringContaining('nowhere.data') }]);
    expect(ruleSet.ruleCount).toBe(0);
  });
});

describe('loadCrs', () => {
  const crs = {
    '/crs/setup.conf': 'SecDefaultAction "phase:2,log,pass"\n',
    '/crs/rules/REQUEST-901-INITIALIZATION.conf': 'SecRule &TX:paranoia_level "@eq 0" "id:901120,phase:1,pass,nolog,setvar:tx.paranoia_level=1"\n',
    '/crs/rules/REQUEST-949-BLOCKING-EVALUATION.conf': rule(949110),
    '/crs/rules/notes.txt': 'not a rule file',
  };

  it('loads setup, the settings SecAction, extras and rules in CRS order', () => {
    const files = memoryFiles(crs);
    const loaded = loadCrs(
      {
        setupFile: '/crs/setup.conf',
        rulesDir: '/crs/rules',
        paranoiaLevel: 3,
        anomalyThresholds: { inbound: 10, outbound: 8 },
        extra: { before: rule(100), after: rule(200) },
        bodyProcessorRules: false,
      },
      files,
    );
    expect(loaded.errors).toEqual([]);
    const ids = loaded.directives.map((d) => ('actions' in d ? d.actions.find((a) => a.name === 'id')?.value : d.kind));
    expect(ids).toEqual([undefined, '900995', '100', '901120', '949110', '200']);
    const settings = loaded.directives[1]!;
    expect('actions' in settings && settings.actions.filter((a) => a.name === 'setvar').map((a) => a.value)).toEqual([
      'tx.paranoia_level=3',
      'tx.executing_paranoia_level=3',
      'tx.inbound_anomaly_score_threshold=10',
      'tx.outbound_anomaly_score_threshold=8',
    ]);
  });

  it('sets the paranoia level before REQUEST-901 defaults it', () => {
    const { ruleSet, errors } = createWaf({
      crs: { setupFile: '/crs/setup.conf', rulesDir: '/crs/rules', paranoiaLevel: 2, bodyProcessorRules: false },
      fileAccess: memoryFiles(crs),
    });
    expect(errors).toEqual([]);
    const tx = ruleSet.begin({ method: 'GET', uri: '/', protocol: 'HTTP/1.1', headers: [], remoteAddr: '', remotePort: 0, serverAddr: '', serverPort: 0 });
    tx.requestHeaders();
    expect(tx.txValue('paranoia_level')).toBe('2');
  });

  it('merges a supplement directory into the CRS files by file name', () => {
    const files = memoryFiles({ ...crs, '/sup/REQUEST-945-LOCAL.conf': rule(945001), '/sup/ZZZ-LAST.conf': rule(999001), '/sup/readme.txt': 'no' });
    const loaded = loadCrs({ setupFile: '/crs/setup.conf', rulesDir: '/crs/rules', paranoiaLevel: 1, bodyProcessorRules: false, supplementDir: '/sup' }, files);
    expect(loaded.errors).toEqual([]);
    const ids = loaded.directives.map((d) => ('actions' in d ? d.actions.find((a) => a.name === 'id')?.value : d.kind));
    expect(ids).toEqual([undefined, '900995', '901120', '945001', '949110', '999001']);
  });

  it('says so when the supplement directory holds no rule file', () => {
    const { errors } = loadCrs({ setupFile: '/crs/setup.conf', rulesDir: '/crs/rules', paranoiaLevel: 1, supplementDir: '/nothing' }, memoryFiles(crs));
    expect(errors).toEqual([{ file: '/nothing', line: 0, message: 'no rule files (*.conf) in /nothing' }]);
  });

  it('says so when the rules directory holds no rule file', () => {
    const { errors } = loadCrs({ setupFile: '/crs/setup.conf', rulesDir: '/empty', paranoiaLevel: 1 }, memoryFiles(crs));
    expect(errors).toEqual([{ file: '/empty', line: 0, message: 'no CRS rule files (*.conf) in /empty' }]);
  });
});
