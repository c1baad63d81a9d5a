// Engine-wide settings that configuration directives set (SecRuleEngine, SecRequestBodyLimit …): their
// defaults in one place and the one function that applies a directive to them. The compiler calls it for
// every `setting` directive and reports what it returns as an error.

export type RuleEngineMode = 'On' | 'Off' | 'DetectionOnly';
export type BodyLimitAction = 'Reject' | 'ProcessPartial';

export interface EngineSettings {
  /** SecRuleEngine. */
  ruleEngine: RuleEngineMode;
  /** SecRequestBodyAccess. */
  requestBodyAccess: boolean;
  /** SecRequestBodyLimit: body bytes, files included. */
  requestBodyLimit: number;
  /** SecRequestBodyNoFilesLimit: body bytes of anything but a multipart body. */
  requestBodyNoFilesLimit: number;
  /** SecRequestBodyLimitAction. */
  requestBodyLimitAction: BodyLimitAction;
  /** SecRequestBodyJsonDepthLimit. */
  requestBodyJsonDepthLimit: number;
  /** SecArgumentsLimit: ARGS kept, query string and body together. */
  argumentsLimit: number;
  /** SecUploadFileLimit: file parts before MULTIPART_FILE_LIMIT_EXCEEDED. */
  uploadFileLimit: number;
  /** SecResponseBodyAccess. */
  responseBodyAccess: boolean;
  /** SecResponseBodyMimeType: media types (lower case, no parameters) whose bodies phase 4 inspects. */
  responseBodyMimeTypes: string[];
  /** SecResponseBodyLimit. */
  responseBodyLimit: number;
  /** SecResponseBodyLimitAction. */
  responseBodyLimitAction: BodyLimitAction;
  /** SecComponentSignature values (CRS announces its version with one). */
  componentSignatures: string[];
}

/**
 * ModSecurity's recommended configuration (modsecurity.conf-recommended) where it sets a value, with two
 * deliberate differences: the rule engine is On (a WAF loaded here is meant to block; DetectionOnly is one
 * directive or one option away) and request body access is On, which is also what libmodsecurity 3 does when
 * SecRequestBodyAccess is absent (Transaction::processRequestBody only skips the body when it is set Off).
 */
export function defaultSettings(): EngineSettings {
  return {
    ruleEngine: 'On',
    requestBodyAccess: true,
    requestBodyLimit: 13_107_200,
    requestBodyNoFilesLimit: 131_072,
    requestBodyLimitAction: 'Reject',
    requestBodyJsonDepthLimit: 512,
    argumentsLimit: 1000,
    uploadFileLimit: 100,
    responseBodyAccess: false,
    responseBodyMimeTypes: ['text/plain', 'text/html', 'text/xml'],
    responseBodyLimit: 524_288,
    responseBodyLimitAction: 'ProcessPartial',
    componentSignatures: [],
  };
}

/**
 * Directives accepted and deliberately without effect, each for a stated reason: logging and storage that
 * this engine does not do (its match log is returned to the caller, collections live per transaction),
 * tuning of engines it does not use (PCRE limits: the regex engine bounds its own work), and knobs whose
 * default is the only behaviour implemented.
 */
const IGNORED = new Set(
  [
    // Audit / debug logging: the engine returns its match records; the caller logs them.
    'SecAuditEngine', 'SecAuditLog', 'SecAuditLog2', 'SecAuditLogDirMode', 'SecAuditLogFileMode', 'SecAuditLogFormat',
    'SecAuditLogParts', 'SecAuditLogRelevantStatus', 'SecAuditLogStorageDir', 'SecAuditLogType', 'SecDebugLog',
    'SecDebugLogLevel',
    // Persistent storage: IP/GLOBAL/SESSION live for one transaction here.
    'SecCollectionTimeout', 'SecDataDir', 'SecTmpDir', 'SecUploadDir', 'SecUploadKeepFiles', 'SecUploadFileMode',
    'SecTmpSaveUploadedFiles', 'SecWebAppId', 'SecSensorId',
    // Regex engine limits: ../regex.ts bounds matching itself.
    'SecPcreMatchLimit', 'SecPcreMatchLimitRecursion',
    // Buffering: bodies are handed over whole, in memory.
    'SecRequestBodyInMemoryLimit',
    // Only the defaults are implemented: v0 cookies, no external entities, no unicode map file (urlDecodeUni
    // maps %u with the built-in best-fit table), no GeoIP database (GEO stays empty), no remote rules.
    'SecCookieFormat', 'SecCookieV0Separator', 'SecXmlExternalEntity', 'SecUnicodeMapFile', 'SecUnicodeCodePage',
    'SecGeoLookupDb', 'SecHttpBlKey', 'SecStatusEngine', 'SecServerSignature', 'SecConnEngine', 'SecHashEngine',
    'SecHashKey', 'SecHashParam', 'SecHashMethodRx', 'SecHashMethodPm', 'SecRemoteRules', 'SecRemoteRulesFailAction',
    'SecStreamInBodyInspection', 'SecStreamOutBodyInspection', 'SecDisableBackendCompression',
    'SecResponseBodyMimeTypesClear',
  ].map((name) => name.toLowerCase()),
);

/** Applies one setting directive; returns why it could not, or null. */
export function applySetting(settings: EngineSettings, name: string, args: readonly string[]): string | null {
  const key = name.toLowerCase();
  if (IGNORED.has(key)) return null;
  const arg = args[0] ?? '';
  switch (key) {
    case 'secruleengine': {
      const mode = parseMode(arg);
      if (mode === null) return `${name} takes On, Off or DetectionOnly, not "${arg}"`;
      settings.ruleEngine = mode;
      return null;
    }
    case 'secrequestbodyaccess':
      return setFlag(name, arg, (on) => (settings.requestBodyAccess = on));
    case 'secresponsebodyaccess':
      return setFlag(name, arg, (on) => (settings.responseBodyAccess = on));
    case 'secrequestbodylimit':
      return setCount(name, arg, (n) => (settings.requestBodyLimit = n));
    case 'secrequestbodynofileslimit':
      return setCount(name, arg, (n) => (settings.requestBodyNoFilesLimit = n));
    case 'secrequestbodyjsondepthlimit':
      return setCount(name, arg, (n) => (settings.requestBodyJsonDepthLimit = n));
    case 'secargumentslimit':
      return setCount(name, arg, (n) => (settings.argumentsLimit = n));
    case 'secuploadfilelimit':
      return setCount(name, arg, (n) => (settings.uploadFileLimit = n));
    case 'secresponsebodylimit':
      return setCount(name, arg, (n) => (settings.responseBodyLimit = n));
    case 'secrequestbodylimitaction':
      return setLimitAction(name, arg, (action) => (settings.requestBodyLimitAction = action));
    case 'secresponsebodylimitaction':
      return setLimitAction(name, arg, (action) => (settings.responseBodyLimitAction = action));
    case 'secresponsebodymimetype':
      settings.responseBodyMimeTypes = args.flatMap((a) => a.split(/\s+/)).filter((t) => t !== '').map((t) => t.toLowerCase());
      return null;
    case 'seccomponentsignature':
      settings.componentSignatures.push(arg);
      return null;
    case 'secargumentseparator':
      // libmodsecurity 3 reads the setting but ../body/urlencoded.ts splits on `&` only; any other separator
      // would silently change what ARGS holds, so it is refused rather than half-applied.
      return arg === '&' ? null : `${name} other than "&" is not supported`;
    default:
      return `unknown directive ${name}`;
  }
}

export function parseMode(text: string): RuleEngineMode | null {
  switch (text.toLowerCase()) {
    case 'on':
      return 'On';
    case 'off':
      return 'Off';
    case 'detectiononly':
      return 'DetectionOnly';
    default:
      return null;
  }
}

/** `On` / `Off` in any case, as ModSecurity's configuration parser accepts them. */
export function parseOnOff(text: string): boolean | null {
  const lower = text.toLowerCase();
  return lower === 'on' ? true : lower === 'off' ? false : null;
}

function setFlag(name: string, arg: string, set: (on: boolean) => void): string | null {
  const on = parseOnOff(arg);
  if (on === null) return `${name} takes On or Off, not "${arg}"`;
  set(on);
  return null;
}

function setCount(name: string, arg: string, set: (n: number) => void): string | null {
  if (!/^\d{1,15}$/.test(arg)) return `${name} takes a whole number, not "${arg}"`;
  set(Number(arg));
  return null;
}

function setLimitAction(name: string, arg: string, set: (action: BodyLimitAction) => void): string | null {
  const lower = arg.toLowerCase();
  if (lower === 'reject') set('Reject');
  else if (lower === 'processpartial') set('ProcessPartial');
  else return `${name} takes Reject or ProcessPartial, not "${arg}"`;
  return null;
}
