// The phases an L7 request goes through, in order, as plain function calls on one thread (src/http/proxy.ts).
// Guards, the rate limiter and the WAF plug in at a phase; each either lets the request continue
// or ends it with a response (an outcome, not an error). The WAF inspects a request once it is whole (its
// request_headers and request_body phases together), for all requests of an event-loop turn back to back
// (./inspection-turn.ts).
//
//   accept ─▶ tls ─▶ request_headers ─▶ request_body ─▶ upstream ─▶ response
//   (conn caps,  (SNI →   (route, client    (size limit,    (origin pick,  (headers and
//    blocklist)   cert)    identity, limits) streamed)       retry once)    body streamed back)
export const L7_PHASES = ['accept', 'tls', 'request_headers', 'request_body', 'upstream', 'response'] as const;
export type L7Phase = (typeof L7_PHASES)[number];

/** Client-facing error statuses and their fixed reason codes (the body says only these and an error id). */
export const L7_ERRORS = {
  400: 'bad_request',
  408: 'request_timeout',
  /** The WAF refused the request (src/http/waf-gate.ts). */
  403: 'forbidden',
  /** CONNECT: a reverse proxy opens no tunnels (src/http/proxy.ts). */
  405: 'method_not_allowed',
  413: 'payload_too_large',
  /** Over the rate limit, or a client the fleet blocked (../ratelimit). */
  429: 'too_many_requests',
  431: 'request_header_fields_too_large',
  /** A bug of the proxy's own, caught before it could take the thread down (logged at error level). */
  500: 'internal_error',
  502: 'bad_gateway',
  503: 'service_unavailable',
  504: 'gateway_timeout',
} as const;
export type L7ErrorStatus = keyof typeof L7_ERRORS;
