// The admin actor owns the admin Unix socket. Requests are executed by the node's command table
// (src/node/commands.ts); this actor only holds the server's lifecycle, so a crash or restart of it closes
// and reopens the socket without touching the data plane.
import { assertNever } from '../errors.ts';
import type { SystemMsg } from '../messages.ts';
import { AdminServer, type AdminHandler } from '../admin/server.ts';
import type { Behavior } from '../runtime/actor.ts';

export interface AdminInput {
  socketPath: string;
  handler: AdminHandler;
}

interface AdminState {
  server: AdminServer;
}

export const adminActor: Behavior<AdminState, SystemMsg, AdminInput> = {
  name: 'admin',
  async init(ctx, input) {
    const server = new AdminServer({ path: input.socketPath, handler: input.handler, log: ctx.log });
    await server.listen();
    ctx.log.info({ socket: input.socketPath }, 'admin socket ready');
    return { server };
  },
  receive(state, msg) {
    // sys.* messages are answered by the runtime; nothing else is addressed to this actor.
    switch (msg.type) {
      case 'sys.ping':
        return state;
      default:
        return assertNever(msg.type);
    }
  },
  async stop(state) {
    await state.server.close();
  },
};
