// AdminClient failure modes against real Unix sockets: nothing listening, no reply in time, the node going
// away mid-request, replies the node could not attribute to a request.
import { mkdtemp, rm } from 'node:fs/promises';
import { createServer, type Server, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { AdminClient } from '../../../src/admin/client.ts';

const cleanups: (() => Promise<void>)[] = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});

/** A scripted fake node: `onLine` sees each request line and may answer on the socket. */
async function fakeNode(onLine: (line: string, socket: Socket) => void): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), 'sb-client-'));
  const path = join(dir, 'admin.sock');
  const server: Server = createServer((socket) => {
    socket.on('error', () => undefined);
    let buffer = '';
    socket.on('data', (b) => {
      buffer += b.toString();
      for (let nl = buffer.indexOf('\n'); nl !== -1; nl = buffer.indexOf('\n')) {
        onLine(buffer.slice(0, nl), socket);
        buffer = buffer.slice(nl + 1);
      }
    });
  });
  await new Promise<void>((r) => server.listen(path, r));
  cleanups.push(async () => {
    server.close();
    await rm(dir, { recursive: true, force: true });
  });
  return path;
}

describe('AdminClient', () => {
  it('reports an unreachable socket as SECBEAT_ERR_ADMIN_CONNECT naming the path', async () => {
    const path = join(tmpdir(), `sb-nothing-${process.pid}.sock`);
    await expect(AdminClient.connect(path)).rejects.toMatchObject({
      code: 'SECBEAT_ERR_ADMIN_CONNECT',
      message: expect.stringMatching(new RegExp(`^cannot reach the admin socket at ${path}: .*ENOENT`)),
    });
  });

  it('sends numbered requests and times out with SECBEAT_ERR_ASK_TIMEOUT when no reply comes', async () => {
    const seen: unknown[] = [];
    const path = await fakeNode((line) => seen.push(JSON.parse(line)));
    await using client = await AdminClient.connect(path);
    await expect(client.request({ cmd: 'ping' }, 20)).rejects.toMatchObject({ code: 'SECBEAT_ERR_ASK_TIMEOUT', message: expect.stringMatching(/no reply to ping/) });
    await expect(client.request({ cmd: 'threads.list' }, 20)).rejects.toMatchObject({ code: 'SECBEAT_ERR_ASK_TIMEOUT' });
    expect(seen).toEqual([
      { cmd: 'ping', id: 1 },
      { cmd: 'threads.list', id: 2 },
    ]);
  });

  it('fails pending and later requests when the node closes the connection', async () => {
    const path = await fakeNode((_line, socket) => socket.end());
    await using client = await AdminClient.connect(path);
    await expect(client.request({ cmd: 'ping' })).rejects.toMatchObject({ code: 'SECBEAT_ERR_ADMIN_CONNECT', message: expect.stringMatching(/closed the connection/) });
    await expect(client.request({ cmd: 'ping' })).rejects.toMatchObject({ code: 'SECBEAT_ERR_ADMIN_CONNECT' });
  });

  it('close() rejects what is still pending', async () => {
    const path = await fakeNode(() => undefined);
    const client = await AdminClient.connect(path);
    const pending = client.request({ cmd: 'ping' });
    client.close();
    await expect(pending).rejects.toMatchObject({ code: 'SECBEAT_ERR_ADMIN_CONNECT' });
  });

  it('gives a reply without id to the only pending request, and to all of them when several are pending', async () => {
    const lineTooLong = `${JSON.stringify({ id: null, ok: false, error: { code: 'SECBEAT_ERR_ADMIN_LINE_TOO_LONG', message: 'too long' } })}\n`;
    let count = 0;
    const path = await fakeNode((_line, socket) => {
      count++;
      if (count === 1 || count === 3) socket.write(lineTooLong);
    });
    await using client = await AdminClient.connect(path);
    expect(await client.request({ cmd: 'ping' })).toMatchObject({ id: null, ok: false, error: { code: 'SECBEAT_ERR_ADMIN_LINE_TOO_LONG' } });
    const both = [client.request({ cmd: 'ping' }), client.request({ cmd: 'ping' })];
    expect(await Promise.all(both)).toEqual([
      expect.objectContaining({ id: null, ok: false }),
      expect.objectContaining({ id: null, ok: false }),
    ]);
  });

  it('keeps an unknown error code from a newer node in the message', async () => {
    const path = await fakeNode((line, socket) => {
      const { id } = JSON.parse(line) as { id: number };
      socket.write(`${JSON.stringify({ id, ok: false, error: { code: 'SECBEAT_ERR_FROM_THE_FUTURE', message: 'new' } })}\n`);
    });
    await using client = await AdminClient.connect(path);
    expect(await client.request({ cmd: 'ping' })).toEqual({
      id: 1,
      ok: false,
      error: { code: 'SECBEAT_ERR_INTERNAL', message: 'SECBEAT_ERR_FROM_THE_FUTURE: new' },
    });
  });
});
