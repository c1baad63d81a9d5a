// Exit codes of `secbeat ctl`, part of its stable interface: scripts branch on them, so a value is never
// reused for another meaning. Returned by runCtl (src/cli/ctl.ts).
export const EXIT_CODES = {
  /** The node ran the command. */
  OK: 0,
  /** The node answered with `ok: false` (including the node's own timeouts, such as an ask that expired). */
  COMMAND_FAILED: 1,
  /** Bad arguments, or no way to know which socket to use; usage goes to stderr. */
  USAGE: 2,
  /** Nothing answers on the admin socket, or the connection broke before the reply. */
  UNREACHABLE: 3,
  /** Connected, but no reply within `--timeout`. */
  TIMEOUT: 4,
} as const;

export type ExitCode = (typeof EXIT_CODES)[keyof typeof EXIT_CODES];
