// Hands pairs of connected net.Sockets to one SpliceEngine (one per thread) and gives them back: stops
// Node reading them, forwards what Node had already read, adds the fds to the engine, and destroys both
// sockets when the engine reports the connection closed. TCP mode's forwarder calls splice() per connection.
import type { Socket } from 'node:net';
import { SecbeatError } from '../errors.ts';
import { socketFd, type NativeBinding, type SpliceClosed, type SpliceEngine, type SpliceEngineOptions, type SpliceStats } from './binding.ts';

export interface SplicedConnection {
  id: number;
  /** Settles after both sockets were destroyed; never rejects. */
  closed: Promise<SpliceClosed>;
}

interface Owned {
  a: Socket;
  b: Socket;
  /** Bytes Node had read before the hand-off and JS forwarded itself; added to the engine's counts. */
  prefixAtoB: number;
  prefixBtoA: number;
  resolve: (event: SpliceClosed) => void;
}

/** The net.Socket internals touched to stop libuv reading; see stopReading(). */
interface StreamHandle {
  readStop(): number;
  reading: boolean;
}

const EMPTY = Buffer.alloc(0);

export class Splicer {
  readonly #engine: SpliceEngine;
  readonly #owned = new Map<number, Owned>();
  #nextId = 1;

  constructor(binding: NativeBinding, options: SpliceEngineOptions = {}) {
    this.#engine = new binding.SpliceEngine((events) => this.#onClosed(events), options);
  }

  /**
   * Moves `a` ⇄ `b` in the kernel until both directions end (FIN each way), a reset, an error, `idleTimeoutMs`
   * without traffic (0 = none) or remove(). Sockets should be created with `allowHalfOpen: true`, or Node
   * ends the write side itself on EOF it read before the hand-off. Bytes Node had already read are written
   * to the other side first. Rejects with SECBEAT_ERR_INTERNAL when the pair cannot be handed off (no fd,
   * engine closed, fd limit): the sockets are then readable again, intact, for a JS fallback (pipe them).
   * While the engine owns them, do not read, write, setTimeout or destroy them: use remove(id).
   */
  async splice(a: Socket, b: Socket, idleTimeoutMs: number): Promise<SplicedConnection> {
    const fdA = socketFd(a);
    const fdB = socketFd(b);
    if (fdA < 0 || fdB < 0) {
      throw new SecbeatError('SECBEAT_ERR_INTERNAL', `splice: socket ${fdA < 0 ? 'A' : 'B'} has no file descriptor (not connected or not TCP)`);
    }
    const handleA = stopReading(a);
    const handleB = stopReading(b);
    try {
      // Order matters: what Node read from A must reach B's kernel buffer before the engine splices
      // A's next bytes behind it.
      const fromA = drainReadable(a);
      const fromB = drainReadable(b);
      if (fromA.length > 0) b.write(fromA);
      if (fromB.length > 0) a.write(fromB);
      await Promise.all([flushed(a), flushed(b)]);
      const id = this.#nextId++;
      this.#engine.add(id, fdA, fdB, idleTimeoutMs);
      const closed = new Promise<SpliceClosed>((resolve) =>
        this.#owned.set(id, { a, b, prefixAtoB: fromA.length, prefixBtoA: fromB.length, resolve }),
      );
      return { id, closed };
    } catch (err) {
      resumeReading(handleA);
      resumeReading(handleB);
      if (err instanceof SecbeatError) throw err;
      throw new SecbeatError('SECBEAT_ERR_INTERNAL', `splice: hand-off failed: ${err instanceof Error ? err.message : String(err)}`, { cause: err });
    }
  }

  /** Aborts a spliced connection (drain deadline, admin kill); its `closed` settles with reason `removed`. */
  remove(id: number): boolean {
    return this.#engine.remove(id);
  }

  stats(): SpliceStats {
    return this.#engine.stats();
  }

  /** Stops the engine thread; owned connections settle with reason `removed` on a later turn. */
  close(): void {
    this.#engine.close();
  }

  #onClosed(events: SpliceClosed[]): void {
    for (const event of events) {
      const owned = this.#owned.get(event.id);
      if (owned === undefined) continue;
      this.#owned.delete(event.id);
      // A reset travels on as a reset (RST, via SO_LINGER 0), so the other peer sees what happened instead
      // of a clean end of stream that could pass truncated data off as complete.
      const reset = event.reason === 'reset' || event.reason.startsWith('error:');
      dispose(owned.a, reset);
      dispose(owned.b, reset);
      owned.resolve({ ...event, bytesAtoB: event.bytesAtoB + owned.prefixAtoB, bytesBtoA: event.bytesBtoA + owned.prefixBtoA });
    }
  }
}

/**
 * Stops libuv reading the socket. Socket.pause() alone does not: a paused net.Socket keeps reading until
 * its buffer reaches the high-water mark. `reading = true` (a lie) keeps net.Socket._read from calling
 * readStart() again while drainReadable() empties the buffer. Node-internal; verified on Node 24.
 */
function stopReading(socket: Socket): StreamHandle | null {
  socket.pause();
  socket.removeAllListeners('data');
  socket.removeAllListeners('readable');
  socket.setTimeout(0);
  const handle = (socket as unknown as { _handle?: Partial<StreamHandle> | null })._handle;
  if (handle && typeof handle.readStop === 'function') {
    handle.readStop();
    handle.reading = true;
    return handle as StreamHandle;
  }
  return null;
}

function resumeReading(handle: StreamHandle | null): void {
  // reading = false lets the next _read() (from resume() or pipe()) call readStart() again.
  if (handle !== null) handle.reading = false;
}

function drainReadable(socket: Socket): Buffer {
  const chunks: Buffer[] = [];
  for (let chunk: unknown = socket.read(); chunk !== null; chunk = socket.read()) {
    chunks.push(typeof chunk === 'string' ? Buffer.from(chunk) : (chunk as Buffer));
  }
  return chunks.length === 1 ? chunks[0]! : Buffer.concat(chunks);
}

/** Resolves when every byte written to the socket so far is in the kernel (write callbacks run in order). */
function flushed(socket: Socket): Promise<void> {
  if (socket.destroyed) return Promise.reject(new Error('socket destroyed before the hand-off'));
  if (socket.writableLength === 0) return Promise.resolve();
  return new Promise<void>((resolve, reject) => {
    const onClose = (): void => reject(new Error('socket closed before the hand-off'));
    socket.once('close', onClose);
    const done = (err?: Error | null): void => {
      socket.off('close', onClose);
      if (err) reject(err);
      else resolve();
    };
    if (socket.writableEnded) socket.once('finish', () => done());
    else socket.write(EMPTY, done);
  });
}

function dispose(socket: Socket, reset: boolean): void {
  if (socket.destroyed) return;
  if (reset && typeof socket.resetAndDestroy === 'function') {
    try {
      socket.resetAndDestroy();
      return;
    } catch {
      // Not a TCP handle (ERR_INVALID_HANDLE_TYPE): a plain destroy is all that is left.
    }
  }
  socket.destroy();
}
