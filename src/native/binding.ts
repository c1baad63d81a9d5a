// The typed surface of the secbeat_native addon (native/) and its loader. TCP mode calls loadNative() once
// per thread and, when it fails, falls back to JS forwarding and logs the error's message (every path tried
// and why each failed). NativeTcpProxy (src/proxy/tcp-native.ts) is the caller of TcpEngine.
import { dirname, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { SecbeatError } from '../errors.ts';
import { candidatePaths, exportsCheck, loadAddon, type AddonLoadResult } from './load.ts';

/** Why a connection ended. `error:<ERRNO>` / `connect_error:<ERRNO>` carry the errno name, e.g. `error:ETIMEDOUT`. */
export type TcpCloseReason =
  | 'closed'
  | 'reset'
  | 'idle'
  | 'removed'
  | 'connect_refused'
  | 'connect_timeout'
  | `connect_error:${string}`
  | `error:${string}`;

/** A client the engine accepted. It waits, unread, for a verdict through decide(). */
export interface AcceptedClient {
  id: number;
  /** As node:net reports remoteAddress (an IPv4 client of a dual-stack listener is `::ffff:a.b.c.d`). */
  ip: string;
  ipv6: boolean;
}

/** An admitted connection that ended; reported exactly once per admitted id. */
export interface ClosedConnection {
  id: number;
  ip: string;
  /** Bytes delivered to the backend (read from the client), and to the client. */
  bytesIn: number;
  bytesOut: number;
  /** Admission to backend connected; -1 when the backend never connected. */
  connectMs: number;
  /** Accept to close. */
  durationMs: number;
  /**
   * `closed`: both directions ended with a FIN, each after its data was delivered. `reset`: a peer reset
   * (ECONNRESET, EPIPE, ECONNABORTED); the other peer is reset too. `idle`: nothing moved for
   * idleTimeoutMs. `removed`: removeAll() or close(). `connect_*`: the backend connect failed; the client is
   * reset. `error:<ERRNO>`: any other socket or pipe error; both peers are reset.
   */
  reason: TcpCloseReason;
}

export interface TcpEngineStats {
  /** Admitted connections whose closed event has not been delivered. */
  connections: number;
  /** Accepted clients delivered to JS and not yet judged. */
  waiting: number;
  /** Empty pipes kept for reuse. */
  pipesPooled: number;
  /** Pipes holding bytes in flight (a direction holds one only while it has data to move). */
  pipesInUse: number;
  /** Totals since the engine started, client → backend and backend → client (live, not per report). */
  bytesIn: number;
  bytesOut: number;
  /** accept(2) failures for lack of a resource (EMFILE, ENOBUFS …); the listener pauses 100 ms after each. */
  acceptErrors: number;
}

export interface TcpEngineOptions {
  /**
   * F_SETPIPE_SZ request for new pipes (default 262144); 0 keeps the kernel default (65536). Refusals
   * (over /proc/sys/fs/pipe-max-size or the user's pipe-user-pages-soft quota) keep the default.
   */
  pipeSizeBytes?: number;
}

export interface TcpEngineListenOptions {
  /** Numeric IPv4 or IPv6 address (`::` is dual-stack); names must be resolved first. */
  host: string;
  /** 0 picks a free port; listen() returns the bound one. */
  port: number;
  /** Default 4096. */
  backlog?: number;
  /** Numeric address of the backend. */
  backendHost: string;
  backendPort: number;
  /** Backend connect deadline; 0 leaves it to the kernel. Default 5000. */
  connectTimeoutMs?: number;
  /** Close a connection after this long without a byte moved either way; 0 (default) = never. */
  idleTimeoutMs?: number;
  /** TCP_NODELAY on both legs (default true). */
  noDelay?: boolean;
}

/**
 * TCP mode's data path on one native thread per engine (create one per JS thread): accepts on a
 * SO_REUSEPORT listener, asks JS for a verdict on each client in batches, connects admitted clients to the
 * backend and moves bytes both ways with splice(2). JS sees only the batches and the verdicts.
 */
export interface TcpEngine {
  /**
   * Binds (SO_REUSEADDR + SO_REUSEPORT) and listens; returns the bound port. Once per engine. Throws a
   * TypeError/RangeError on bad options, and a system error (code EADDRINUSE, EACCES …, syscall) when the
   * socket cannot be bound; nothing is listening then.
   */
  listen(options: TcpEngineListenOptions): number;
  /** Closes the listening socket; open connections go on. */
  stopListening(): void;
  /**
   * Verdicts on accepted clients, each id exactly once: admitted ones are connected and reported once in a
   * closed event; refused ones are reset and never reported. All or nothing: throws ERR_INVALID_ARG_VALUE
   * (and takes no verdict) when an id is not waiting, ERR_INVALID_STATE after close().
   */
  decide(admit: number[], refuse: number[]): void;
  /** Ends every admitted connection (reason `removed`). */
  removeAll(): void;
  stats(): TcpEngineStats;
  /**
   * Stops and joins the native thread and closes the listener; admitted connections still open are
   * reported as `removed` on a later turn, clients waiting for a verdict are reset. Idempotent. Also runs at
   * environment teardown (a terminated worker leaves no thread behind).
   */
  close(): void;
}

export interface TcpEngineConstructor {
  new (onEvents: (accepted: AcceptedClient[], closed: ClosedConnection[]) => void, options?: TcpEngineOptions): TcpEngine;
}

export interface NativeBinding {
  TcpEngine: TcpEngineConstructor;
  /** Bumped when the addon's JS surface changes incompatibly. */
  abiVersion: number;
}

/** The abiVersion this TypeScript surface describes. */
export const NATIVE_ABI_VERSION = 2;

export type NativeLoadResult = AddonLoadResult<NativeBinding>;

/** Environment variable naming the .node file to load instead of the build outputs. */
export const NATIVE_PATH_ENV = 'SECBEAT_NATIVE_PATH';

const NATIVE_DIR = resolve(dirname(fileURLToPath(import.meta.url)), '../../native');

/** Where the addon is looked for, in order; an explicit SECBEAT_NATIVE_PATH is the only candidate. */
export function nativeCandidates(env: NodeJS.ProcessEnv = process.env): string[] {
  return candidatePaths(env, NATIVE_PATH_ENV, [resolve(NATIVE_DIR, 'build/Release/secbeat_native.node'), resolve(NATIVE_DIR, 'build/Debug/secbeat_native.node')]);
}

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
  return loadAddon<NativeBinding>(candidates, 'native addon', hint, exportsCheck('TcpEngine', NATIVE_ABI_VERSION, 'secbeat_native'));
}
