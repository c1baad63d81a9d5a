// What the WAF is given about one request: the raw pieces a proxy already holds, as byte strings
// (see transforms/types.ts). The engine derives every SecLang variable (ARGS, REQUEST_FILENAME, …) from these
// lazily, so a rule set that never reads a variable never pays for it.

export interface WafRequest {
  /** As sent, e.g. `GET`. */
  method: string;
  /** The request target exactly as sent (`/a/b.php?x=1%27`), not decoded. */
  uri: string;
  /** `HTTP/1.0`, `HTTP/1.1` or `HTTP/2.0`. */
  protocol: string;
  /** Header names and values in arrival order, names as sent; repeated names stay separate entries. */
  headers: ReadonlyArray<readonly [name: string, value: string]>;
  remoteAddr: string;
  remotePort: number;
  serverAddr: string;
  serverPort: number;
}

/** A response as phase 3/4 rules see it (headers, status) and, when buffered, its body as a byte string. */
export interface WafResponse {
  status: number;
  protocol: string;
  headers: ReadonlyArray<readonly [name: string, value: string]>;
}
