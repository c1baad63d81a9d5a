// Legitimate clients for SYN mode's test bed and bench, run inside the client's namespace: `count` connections
// to host:port, `concurrency` at a time, each writing a line and waiting for its echo, with a deadline per
// connection. With SPREAD_MS, connection i starts no earlier than i × SPREAD_MS / COUNT and none starts after
// SPREAD_MS: the latencies sample the whole of a flood, not its first moments, and a server that cannot answer
// does not stretch it. Prints one JSON line: how many were attempted and succeeded, failures by reason, and the
// connect latencies in ms.
//
//   node tcp-clients.ts HOST PORT COUNT CONCURRENCY TIMEOUT_MS [SPREAD_MS]
import { connect } from 'node:net';

const [host, portText, countText, concurrencyText, timeoutText, spreadText] = process.argv.slice(2);
const port = Number(portText);
const count = Number(countText);
const concurrency = Number(concurrencyText);
const timeoutMs = Number(timeoutText);

const connectMs: number[] = [];
const failures: Record<string, number> = {};
let ok = 0;

function once(i: number): Promise<void> {
  return new Promise((done) => {
    const started = performance.now();
    const socket = connect({ host, port });
    const message = `hello ${i}\n`;
    let echoed = '';
    const fail = (reason: string): void => {
      failures[reason] = (failures[reason] ?? 0) + 1;
      socket.destroy();
      done();
    };
    socket.setTimeout(timeoutMs, () => fail('timeout'));
    socket.once('error', (err: NodeJS.ErrnoException) => fail(err.code ?? 'error'));
    socket.once('connect', () => {
      connectMs.push(performance.now() - started);
      socket.write(message);
    });
    socket.on('data', (chunk) => {
      echoed += chunk.toString();
      if (echoed.length < message.length) return;
      if (echoed === message) ok++;
      else failures['wrong_echo'] = (failures['wrong_echo'] ?? 0) + 1;
      socket.end();
      done();
    });
  });
}

const spreadMs = spreadText === undefined ? 0 : Number(spreadText);
const startedAt = performance.now();
let next = 0;
async function worker(): Promise<void> {
  while (next < count) {
    const due = startedAt + (next * spreadMs) / count;
    const now = performance.now();
    if (spreadMs > 0 && now > startedAt + spreadMs) return;
    if (due > now) await new Promise((r) => setTimeout(r, due - now));
    await once(next++);
  }
}
await Promise.all(Array.from({ length: concurrency }, worker));
process.stdout.write(`${JSON.stringify({ attempted: next, ok, failures, connectMs })}\n`);
