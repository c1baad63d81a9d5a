// The four proxies bench/waf/run.ts compares, all started by bench/l7/proxies.ts on the proxy core in front of the
// same origin: nginx as a plain proxy, nginx with ModSecurity v3 and the OWASP CRS (Debian's module and rule
// set, the configuration written here), SecBeat L7 with the WAF off, and SecBeat L7 with the WAF on (CRS PL1,
// blocking).
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { startProxy, type L7Env, type L7ProxyKind, type ProxyOptions, type RunningServer } from '../l7/proxies.ts';

export const CONTENDERS = ['nginx', 'modsecurity', 'secbeat', 'secbeat-waf'] as const;
export type Contender = (typeof CONTENDERS)[number];

export const LABELS: Readonly<Record<Contender, string>> = {
  nginx: 'nginx',
  modsecurity: 'nginx+ModSecurity',
  secbeat: 'SecBeat',
  'secbeat-waf': 'SecBeat+WAF',
};

/** Contenders that must refuse the attack: the two with a WAF. */
export const WAF_CONTENDERS: readonly Contender[] = ['modsecurity', 'secbeat-waf'];

/** Debian 12's paths (libnginx-mod-http-modsecurity, modsecurity-crs); SecBeat's [waf] defaults name the same CRS. */
export const MODSECURITY_MODULE = '/usr/lib/nginx/modules/ngx_http_modsecurity_module.so';
const CRS_SETUP = '/etc/modsecurity/crs/crs-setup.conf';
const CRS_DIR = '/usr/share/modsecurity-crs';
const UNICODE_MAPPING = '/etc/nginx/unicode.mapping';
const PARANOIA_LEVEL = 1;

/**
 * ModSecurity's main configuration in `dir`: the directives of ModSecurity's recommended configuration (Debian
 * ships it as /etc/nginx/modsecurity.conf), with the engine On instead of DetectionOnly, then the CRS setup,
 * paranoia level 1 set explicitly (crs-setup.conf leaves rule 900000 commented out) and every CRS rule file.
 * Changed from the recommended file, each in ModSecurity's favour or neutral: no audit log (SecAuditEngine Off,
 * so disk writes do not penalise it), no response body inspection (SecResponseBodyAccess Off: SecBeat's WAF
 * inspects requests only), no status engine (its start-up DNS query). Temp and data files go to `dir`.
 * Returns the file's path, for `modsecurity_rules_file`.
 */
export function writeModsecurityRules(dir: string): string {
  const file = join(dir, 'modsecurity.conf');
  writeFileSync(
    file,
    [
      'SecRuleEngine On',
      'SecRequestBodyAccess On',
      `SecRule REQUEST_HEADERS:Content-Type "^(?:application(?:/soap\\+|/)|text/)xml" "id:200000,phase:1,t:none,t:lowercase,pass,nolog,ctl:requestBodyProcessor=XML"`,
      `SecRule REQUEST_HEADERS:Content-Type "^application/json" "id:200001,phase:1,t:none,t:lowercase,pass,nolog,ctl:requestBodyProcessor=JSON"`,
      'SecRequestBodyLimit 13107200',
      'SecRequestBodyNoFilesLimit 131072',
      'SecRequestBodyLimitAction Reject',
      'SecRequestBodyJsonDepthLimit 512',
      'SecArgumentsLimit 1000',
      `SecRule &ARGS "@ge 1000" "id:200007,phase:2,t:none,log,deny,status:400,msg:'Failed to fully parse request body due to large argument count',severity:2"`,
      `SecRule REQBODY_ERROR "!@eq 0" "id:200002,phase:2,t:none,log,deny,status:400,msg:'Failed to parse request body.',severity:2"`,
      `SecRule MULTIPART_STRICT_ERROR "!@eq 0" "id:200003,phase:2,t:none,log,deny,status:400,msg:'Multipart request body failed strict validation'"`,
      `SecRule MULTIPART_UNMATCHED_BOUNDARY "@eq 1" "id:200004,phase:2,t:none,log,deny,msg:'Multipart parser detected a possible unmatched boundary.'"`,
      'SecPcreMatchLimit 1000',
      'SecPcreMatchLimitRecursion 1000',
      `SecRule TX:/^MSC_/ "!@streq 0" "id:200005,phase:2,t:none,deny,msg:'ModSecurity internal error flagged: %{MATCHED_VAR_NAME}'"`,
      'SecResponseBodyAccess Off',
      `SecTmpDir ${dir}`,
      `SecDataDir ${dir}`,
      'SecAuditEngine Off',
      'SecArgumentSeparator &',
      'SecCookieFormat 0',
      `SecUnicodeMapFile ${UNICODE_MAPPING} 20127`,
      'SecStatusEngine Off',
      `Include ${CRS_SETUP}`,
      `SecAction "id:900000,phase:1,nolog,pass,t:none,setvar:tx.paranoia_level=${PARANOIA_LEVEL}"`,
      `Include ${CRS_DIR}/rules/*.conf`,
      '',
    ].join('\n'),
  );
  return file;
}

/**
 * SecBeat's [waf] table for the WAF column: the CRS at paranoia level 1, blocking, refusing rather than passing a
 * request whose evaluation fails. The other keys keep their defaults: crs-setup.conf at Debian's path, inbound
 * anomaly threshold 5 (CRS's default), 128 KiB of body inspected (ModSecurity's SecRequestBodyNoFilesLimit above).
 */
function secbeatWaf(enabled: boolean): string[] {
  return [
    '[waf]',
    `enabled = ${enabled}`,
    'mode = "blocking"',
    `paranoia_level = ${PARANOIA_LEVEL}`,
    `crs_path = "${CRS_DIR}"`,
    'fail_open = false',
  ];
}

/** Which of bench/l7's proxies each contender is, and what its config adds; `rules` is writeModsecurityRules()'s file. */
const SPECS: Readonly<Record<Contender, { proxy: L7ProxyKind; options(rules: string): ProxyOptions }>> = {
  nginx: { proxy: 'nginx', options: () => ({}) },
  modsecurity: {
    proxy: 'nginx',
    options: (rules) => ({
      nginxMain: [`load_module ${MODSECURITY_MODULE};`],
      nginxLocation: ['modsecurity on;', `modsecurity_rules_file ${rules};`],
    }),
  },
  secbeat: { proxy: 'secbeat', options: () => ({ secbeatToml: secbeatWaf(false) }) },
  'secbeat-waf': { proxy: 'secbeat', options: () => ({ secbeatToml: secbeatWaf(true) }) },
};

/** Starts `kind` on the proxy core in front of the origin; `modsecurityRules` is writeModsecurityRules()'s file. */
export function startContender(env: L7Env, kind: Contender, originPort: number, modsecurityRules: string): Promise<RunningServer> {
  const spec = SPECS[kind];
  return startProxy(env, spec.proxy, originPort, spec.options(modsecurityRules));
}
