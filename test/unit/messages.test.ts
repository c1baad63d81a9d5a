// The decoders of src/messages.ts on bad input: every issue names its field and says what was expected,
// without quoting the value; objects refuse arrays; defaults are filled in.
import { describe, expect, it } from 'vitest';
import { decodeAdminRequest, decodeChaosRule, decodeMsg } from '../../src/messages.ts';

const issuesOf = (r: { ok: boolean; issues?: string[] }): string[] | undefined => (r.ok ? undefined : r.issues);

describe('decoders', () => {
  it.each([
    [{ type: 'listener.drain' }, ['timeoutMs: Invalid input: expected number, received undefined']],
    [{ type: 'listener.drain', timeoutMs: 1.5 }, ['timeoutMs: Invalid input: expected int, received number']],
    [{ type: 'config.validate', file: 'x'.repeat(5000) }, ['file: Too big: expected string to have <=4096 characters']],
    [{ type: 'sys.ping', a: 1, b: 2 }, ['Unrecognized keys: "a", "b"']],
    [{ type: 'nope' }, [expect.stringMatching(/^type: Invalid discriminator value\. Expected 'listener\.drain' \| /)]],
    [[], ['Invalid input: expected object, received array']],
    // What JSON can carry (actor.inject) is never a certificate table: that lives in shared memory.
    [
      { type: 'listener.reconfigure', l7: { routes: [], certificates: { defaultCert: { cert: 'x', key: 'y' }, table: { chunks: [], slots: [], notAfterMs: [], digests: [], names: [] } }, waf: null } },
      [
        'l7.certificates.defaultCert.cert: expected PEM bytes (a Uint8Array)',
        'l7.certificates.defaultCert.key: expected PEM bytes (a Uint8Array)',
        'l7.certificates.table.slots: expected a Uint32Array over a SharedArrayBuffer',
        'l7.certificates.table.notAfterMs: expected a Float64Array over a SharedArrayBuffer',
        'l7.certificates.table.digests: expected a Uint32Array over a SharedArrayBuffer',
      ],
    ],
  ])('message %j', (input, expected) => {
    expect(issuesOf(decodeMsg(input))).toEqual(expected);
  });

  it.each([
    [{ id: 'a', action: { kind: 'drop', probability: 1 }, match: [] }, ['match: Invalid input: expected object, received array']],
    [{ id: 'a', action: [] }, ['action: Invalid input: expected object, received array']],
    [{ id: 'a', action: { kind: 'drop', probability: 2 } }, ['action.probability: Too big: expected number to be <=1']],
    [{ id: 'a', action: { kind: 'delay', ms: 1 }, match: { x: 1 } }, ['match: Unrecognized key: "x"']],
  ])('chaos rule %j', (input, expected) => {
    expect(issuesOf(decodeChaosRule(input))).toEqual(expected);
  });

  it('chaos rule defaults', () => {
    expect(decodeChaosRule({ id: 'a', action: { kind: 'delay', ms: 5 } })).toEqual({
      ok: true,
      value: { id: 'a', match: {}, action: { kind: 'delay', ms: 5, jitterMs: 0 }, seed: 1, ttlMs: 60_000 },
    });
  });

  it.each([
    [{ id: 1, cmd: 'log.level', level: 'loud' }, ['level: Invalid option: expected one of "fatal"|"error"|"warn"|"info"|"debug"|"trace"|"silent"']],
    [{ id: 1, cmd: 'actor.inspect' }, ['address: Invalid input: expected string, received undefined']],
    [{ id: 1, cmd: 'actor.inject', address: 'x' }, ['message: Invalid input: a value is required']],
    [{ id: 1, cmd: 'block.add', ip: 'fe80::1%eth0' }, ['ip: Invalid input']],
    [{ id: 1, cmd: 'ping', secret: 'hunter2' }, ['Unrecognized key: "secret"']],
    [{ id: 1, cmd: 'deadletters.list', limit: 'hunter2' }, ['limit: Invalid input: expected number, received string']],
    [{ id: 1, cmd: 'cidr.block', cidr: '10.0.0.0' }, ['cidr: expected a network like 203.0.113.0/24 or 2001:db8::/32']],
    [{ id: 1, cmd: 'cidr.block', cidr: '10.0.0.0/33' }, ['cidr: expected a network like 203.0.113.0/24 or 2001:db8::/32']],
    [{ id: 1, cmd: 'cidr.unblock', cidr: '2001:db8::/129' }, ['cidr: expected a network like 203.0.113.0/24 or 2001:db8::/32']],
    [{ id: 1, cmd: 'cidr.unblock', cidr: 'fe80::%eth0/64' }, ['cidr: expected a network like 203.0.113.0/24 or 2001:db8::/32']],
    [{ id: 1, cmd: 'cidr.block', cidr: '10.0.0.0/08' }, ['cidr: expected a network like 203.0.113.0/24 or 2001:db8::/32']],
    [{ id: 1, cmd: 'events.list', type: 'scary' }, ['type: Invalid option: expected one of "all"|"attack"']],
  ])('admin request %j', (input, expected) => {
    expect(issuesOf(decodeAdminRequest(input))).toEqual(expected);
  });

  it('admin request defaults and IPv6 forms', () => {
    expect(decodeAdminRequest({ id: 7, cmd: 'node.drain' })).toEqual({ ok: true, value: { cmd: 'node.drain', timeoutMs: 30_000, id: 7 } });
    for (const ip of ['::ffff:1.2.3.4', '1:2:3:4:5:6:1.2.3.4', '::', '10.0.0.1']) expect(decodeAdminRequest({ id: 1, cmd: 'block.add', ip }).ok, ip).toBe(true);
    for (const cidr of ['10.0.0.0/8', '0.0.0.0/0', '::/0', '2001:db8::/32', '::ffff:10.0.0.0/104', '10.0.0.1/8']) {
      // Host bits (10.0.0.1/8) are the node's to refuse: src/net/cidr.ts says which network was meant.
      expect(decodeAdminRequest({ id: 1, cmd: 'cidr.block', cidr }).ok, cidr).toBe(true);
    }
    expect(decodeAdminRequest({ id: 2, cmd: 'events.list' })).toEqual({ ok: true, value: { cmd: 'events.list', type: 'all', limit: 100, id: 2 } });
  });
});
