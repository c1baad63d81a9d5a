// Free loopback ports for tests that must name a port up front (several threads share one with reusePort,
// so port 0 cannot be used there).
export { freePort } from '../../scripts/lib/loopback.ts';
