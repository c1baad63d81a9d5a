// Semantic checks that need more than the schema: the file system and relations between sections.
// load.ts runs them after the schema passes; they read files but bind, open and start nothing.
import { accessSync, constants, statSync } from 'node:fs';
import { dirname, resolve } from 'node:path';
import { parseCidr } from '../net/cidr.ts';
import { parseHostPort, type Config } from './schema.ts';

export interface CheckIssue {
  path: string[];
  message: string;
}

/**
 * sun_path is 108 bytes on Linux and 104 on macOS, NUL included; 100 leaves room on both. The path is
 * measured as written because that is the string handed to bind(2).
 */
const MAX_SOCKET_PATH_BYTES = 100;
/**
 * The admin server first binds at "<dir>/.sb-XXXXXX/s" (13 bytes past the directory) so the socket is 0600
 * before its name is visible, then links it into place; that path must fit too.
 */
const ADMIN_BIND_SUFFIX_BYTES = 13;

const WILDCARD_HOSTS = new Set(['0.0.0.0', '::']);

function unreadable(file: string, cwd: string): string | null {
  const absolute = resolve(cwd, file);
  try {
    if (!statSync(absolute).isFile()) return `${file} is not a regular file`;
    accessSync(absolute, constants.R_OK);
    return null;
  } catch (err) {
    return `cannot read ${file}: ${(err as NodeJS.ErrnoException).code ?? String(err)}`;
  }
}

/** Two addresses conflict when the ports match and the hosts match or either is a wildcard. */
function conflicts(a: string, b: string): boolean {
  const x = parseHostPort(a);
  const y = parseHostPort(b);
  if (!x || !y || x.port !== y.port) return false;
  const hx = x.host.toLowerCase();
  const hy = y.host.toLowerCase();
  return hx === hy || WILDCARD_HOSTS.has(hx) || WILDCARD_HOSTS.has(hy);
}

export function checkConfig(config: Config, cwd: string): CheckIssue[] {
  const issues: CheckIssue[] = [];
  if (config.tls.enabled) {
    for (const key of ['cert_path', 'key_path'] as const) {
      const file = config.tls[key];
      const problem = file === undefined ? null : unreadable(file, cwd);
      if (problem) issues.push({ path: ['tls', key], message: problem });
    }
  }
  const socketBytes = Buffer.byteLength(config.admin.socket_path);
  if (socketBytes > MAX_SOCKET_PATH_BYTES) {
    issues.push({
      path: ['admin', 'socket_path'],
      message: `${socketBytes} bytes; unix socket paths are limited to ${MAX_SOCKET_PATH_BYTES} bytes (use a shorter or relative path)`,
    });
  }
  const bindBytes = Buffer.byteLength(dirname(config.admin.socket_path)) + ADMIN_BIND_SUFFIX_BYTES;
  if (socketBytes <= MAX_SOCKET_PATH_BYTES && bindBytes > MAX_SOCKET_PATH_BYTES) {
    issues.push({
      path: ['admin', 'socket_path'],
      message: `its directory is too long: the socket is first bound at ${bindBytes} bytes, over the ${MAX_SOCKET_PATH_BYTES}-byte limit`,
    });
  }
  if (config.metrics.enabled && conflicts(config.metrics.bind_address, config.server.bind_address)) {
    issues.push({ path: ['metrics', 'bind_address'], message: `conflicts with server.bind_address (${config.server.bind_address})` });
  }
  if (config.server.mode === 'l7') issues.push(...checkL7(config, cwd));
  return issues;
}

function checkL7(config: Config, cwd: string): CheckIssue[] {
  const issues: CheckIssue[] = [];
  const { l7 } = config;
  if (config.tls.enabled && conflicts(l7.tls_bind_address, config.server.bind_address)) {
    issues.push({ path: ['l7', 'tls_bind_address'], message: `conflicts with server.bind_address (${config.server.bind_address})` });
  }
  l7.trusted_proxies.forEach((cidr, i) => {
    const parsed = parseCidr(cidr);
    if (!parsed.ok) issues.push({ path: ['l7', 'trusted_proxies', String(i)], message: parsed.reason });
  });
  // A host served by two routes would depend on their order: refuse it instead.
  const owner = new Map<string, number>();
  l7.routes.forEach((route, i) => {
    for (const name of route.hosts) {
      const host = name.toLowerCase();
      const first = owner.get(host);
      if (first === undefined) owner.set(host, i);
      else issues.push({ path: ['l7', 'routes', String(i), 'hosts'], message: `${host} is already served by l7.routes[${first}]` });
    }
    if ((route.cert_path === undefined) !== (route.key_path === undefined)) {
      issues.push({ path: ['l7', 'routes', String(i)], message: 'cert_path and key_path go together' });
    }
    for (const key of ['cert_path', 'key_path'] as const) {
      const file = route[key];
      const problem = file === undefined ? null : unreadable(file, cwd);
      if (problem) issues.push({ path: ['l7', 'routes', String(i), key], message: problem });
    }
  });
  return issues;
}
