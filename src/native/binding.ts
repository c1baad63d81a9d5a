// The typed surface of the secbeat_native addon (native/) and its loader. TCP mode calls loadNative() once
// per thread and, when it fails, falls back to JS forwarding and logs the error's message (every path tried
// and why each failed). The Splicer (./splicer.ts) is the intended caller of SpliceEngine.
import { createRequire } from 'node:module';
import type { Socket } from 'node:net';
import { dirname, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { SecbeatError } from '../errors.ts';

/** Why the engine gave a connection back. `error:<ERRNO>` carries the errno name, e.g. `error:ETIMEDOUT`. */
export type SpliceCloseReason = 'closed' | 'reset' | 'idle' | 'removed' | `error:${string}`;

/**
 * One connection handed back by the engine; reported exactly once per `add`. After it, the engine no
 * longer touches either socket and the caller must destroy both.
 */
export interface SpliceClosed {
  id: number;
  /** Bytes delivered to B's socket (accepted by its kernel send buffer), read from A. */
  bytesAtoB: number;
  bytesBtoA: number;
  /**
   * `closed`: both directions ended with a FIN, each after its data was delivered. `reset`: a peer reset
   * (ECONNRESET, EPIPE, ECONNABORTED). `idle`: nothing moved for idleTimeoutMs. `removed`: remove() or
   * close() (also engine teardown). `error:<ERRNO>`: any other socket or pipe error.
   */
  reason: SpliceCloseReason;
}

export interface SpliceStats {
  /** Connections added and not yet delivered in a closed batch. */
  connections: number;
  /** Empty pipes kept for reuse. */
  pipesPooled: number;
  /** Pipes holding bytes in flight (a direction holds one only while it has data to move). */
  pipesInUse: number;
}

export interface SpliceEngineOptions {
  /**
   * F_SETPIPE_SZ request for new pipes (default 262144); 0 keeps the kernel default (65536). Refusals
   * (over /proc/sys/fs/pipe-max-size or the user's pipe-user-pages-soft quota) keep the default.
   */
  pipeSizeBytes?: number;
}

/**
 * Moves bytes between pairs of connected TCP sockets with splice(2) on one native thread per engine
 * (create one per JS thread). JS sees only add() and the closed batches.
 */
export interface SpliceEngine {
  /**
   * Hands the two sockets' fds to the engine, which forwards A→B and B→A until both directions have ended,
   * an error, the idle timeout (0 = none) or remove(). The engine works on its own duplicates of the fds
   * and never closes the caller's. Throws TypeError/RangeError on bad arguments, an Error with code
   * ERR_INVALID_STATE after close(), ERR_INVALID_ARG_VALUE for an id it still owns, and a system error
   * (code ENOTSOCK, EMFILE, ENOTCONN …, syscall) when the fds cannot be taken; nothing was taken then.
   */
  add(id: number, fdA: number, fdB: number, idleTimeoutMs: number): void;
  /** Aborts a connection (reported as `removed` unless it closed otherwise first). True if a report is still to come. */
  remove(id: number): boolean;
  stats(): SpliceStats;
  /**
   * Stops and joins the native thread; connections still owned are reported as `removed` on a later turn.
   * Idempotent. Also runs at environment teardown (a terminated worker leaves no thread behind).
   */
  close(): void;
}

export interface SpliceEngineConstructor {
  new (onClosed: (events: SpliceClosed[]) => void, options?: SpliceEngineOptions): SpliceEngine;
}

export interface NativeBinding {
  SpliceEngine: SpliceEngineConstructor;
  /** Bumped when the addon's JS surface changes incompatibly. */
  abiVersion: number;
}

/** The abiVersion this TypeScript surface describes. */
export const NATIVE_ABI_VERSION = 1;

export type NativeLoadResult =
  | { ok: true; binding: NativeBinding; path: string }
  | { ok: false; error: SecbeatError };

/** Environment variable naming the .node file to load instead of the build outputs. */
export const NATIVE_PATH_ENV = 'SECBEAT_NATIVE_PATH';

const NATIVE_DIR = resolve(dirname(fileURLToPath(import.meta.url)), '../../native');

/**
 * Where the addon is looked for, in order. An explicit SECBEAT_NATIVE_PATH is the only candidate: an
 * operator who names a file wants that file, and silently loading a different build would hide the mistake.
 */
export function nativeCandidates(env: NodeJS.ProcessEnv = process.env): string[] {
  const explicit = env[NATIVE_PATH_ENV];
  if (explicit !== undefined && explicit !== '') return [resolve(explicit)];
  return [
    resolve(NATIVE_DIR, 'build/Release/secbeat_native.node'),
    resolve(NATIVE_DIR, 'build/Debug/secbeat_native.node'),
  ];
}

const requireNative = createRequire(import.meta.url);
let cached: NativeLoadResult | null = null;

/**
 * Loads the addon for this thread (the result is cached). Never throws: on failure the error's message
 * lists every path tried and why each failed, so the caller can log it once and fall back to JS forwarding.
 */
export function loadNative(): NativeLoadResult {
  cached ??= loadNativeFrom(nativeCandidates(), process.env[NATIVE_PATH_ENV] ? `(from ${NATIVE_PATH_ENV})` : '(run `npm run build:native` to build it)');
  return cached;
}

/** loadNative() without the cache, over explicit candidates; `hint` ends the first line of the error. */
export function loadNativeFrom(candidates: readonly string[], hint = ''): NativeLoadResult {
  if (process.platform !== 'linux') {
    return { ok: false, error: new SecbeatError('SECBEAT_ERR_INTERNAL', `native addon: splice(2) needs Linux, this is ${process.platform}`) };
  }
  const failures: string[] = [];
  const causes: unknown[] = [];
  for (const path of candidates) {
    try {
      const binding: unknown = requireNative(path);
      const problem = checkBinding(binding);
      if (problem === null) return { ok: true, binding: binding as NativeBinding, path };
      failures.push(`${path}: ${problem}`);
    } catch (err) {
      causes.push(err);
      failures.push(`${path}: ${describeLoadError(err)}`);
    }
  }
  const message = `native addon unavailable${hint ? ` ${hint}` : ''}; tried:\n  ${failures.join('\n  ')}`;
  return { ok: false, error: new SecbeatError('SECBEAT_ERR_INTERNAL', message, { cause: new AggregateError(causes) }) };
}

function checkBinding(binding: unknown): string | null {
  if (typeof binding !== 'object' || binding === null) return 'did not export an object';
  const b = binding as Partial<Record<keyof NativeBinding, unknown>>;
  if (typeof b.SpliceEngine !== 'function') return 'does not export SpliceEngine (not a secbeat_native build?)';
  if (b.abiVersion !== NATIVE_ABI_VERSION) return `abiVersion ${String(b.abiVersion)}, expected ${NATIVE_ABI_VERSION} (stale build: rebuild)`;
  return null;
}

function describeLoadError(err: unknown): string {
  if (typeof err === 'object' && err !== null) {
    const e = err as { code?: unknown; message?: unknown };
    // require() reports a missing .node file as MODULE_NOT_FOUND with a long stack-ish message.
    if (e.code === 'MODULE_NOT_FOUND') return 'not found';
    if (typeof e.message === 'string') return e.message.split('\n')[0] ?? e.message;
  }
  return String(err);
}

/**
 * The OS file descriptor under a connected net.Socket, or -1 when there is none (not connected yet,
 * destroyed, or not a TCP/pipe handle, e.g. a TLS socket wrapping a JS stream).
 *
 * `_handle.fd` is Node-internal (TCPWrap exposes it as a getter on Linux); verified on Node 24. It is the
 * only way to reach the fd of a socket Node created, which is why it is read here and nowhere else.
 */
export function socketFd(socket: Socket): number {
  const handle = (socket as unknown as { _handle?: { fd?: unknown } | null })._handle;
  const fd = handle?.fd;
  return typeof fd === 'number' && Number.isInteger(fd) && fd >= 0 ? fd : -1;
}
