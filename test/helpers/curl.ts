// Debian's curl as a real HTTP client for integration tests: every run bounded by --max-time, stdout kept as
// bytes (binary bodies are hashed), stderr kept for the -v lines a test checks (what curl sent and received).
import { execFile } from 'node:child_process';
import type { Readable } from 'node:stream';

/** Downloads a test makes curl print stay well below this. */
const MAX_OUTPUT_BYTES = 64 * 1024 * 1024;

export interface CurlOutput {
  stdout: Buffer;
  stderr: string;
}

/** `curl -sS --max-time <s> ...args`, `stdin` piped in (for `-T -`); rejects with curl's stderr when it exits non-zero. */
export function curlRun(args: readonly string[], opts: { maxTimeSec?: number; stdin?: Readable } = {}): Promise<CurlOutput> {
  return new Promise((resolve, reject) => {
    const full = ['-sS', '--max-time', String(opts.maxTimeSec ?? 10), ...args];
    const child = execFile('curl', full, { encoding: 'buffer', maxBuffer: MAX_OUTPUT_BYTES }, (err, stdout, stderr) => {
      if (err === null) resolve({ stdout, stderr: stderr.toString() });
      else reject(new Error(`curl ${full.join(' ')}: ${err.message}\n${stderr.toString()}`, { cause: err }));
    });
    // curl may exit (failing) before it has read all of stdin: the broken pipe is reported by the exit above.
    child.stdin!.on('error', () => {});
    if (opts.stdin === undefined) child.stdin!.end();
    else opts.stdin.pipe(child.stdin!);
  });
}

/** One transfer: its status, HTTP version, TLS verification result (0 = verified or plain HTTP) and body. */
export async function curl(args: readonly string[]): Promise<{ status: number; version: string; sslVerify: number; body: string }> {
  const { stdout } = await curlRun(['-w', '\n%{http_code} %{http_version} %{ssl_verify_result}', ...args]);
  const text = stdout.toString();
  const cut = text.lastIndexOf('\n');
  const [status, version, sslVerify] = text.slice(cut + 1).split(' ');
  return { status: Number(status), version: version ?? '', sslVerify: Number(sslVerify), body: text.slice(0, cut) };
}
