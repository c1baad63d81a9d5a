// Decoding what arrives from another node (src/messages.ts decodeDelivery): never throws on any JSON value,
// and accepts exactly the deliveries the runtime sends (an encoded delivery decodes to itself).
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { decodeDelivery, type Delivery } from '../../src/messages.ts';
import { fcParams } from '../helpers/fc.ts';

const name = fc.stringMatching(/^[A-Za-z0-9_.-]{1,12}$/);
const address = fc.record({ region: name, node: name, thread: name, actor: fc.oneof(name, fc.constant('$ask')) });

const delivery: fc.Arbitrary<Delivery> = fc.oneof(
  fc.record({
    kind: fc.constant('msg' as const),
    envelope: fc.record(
      { to: address, from: fc.option(address, { nil: null }), msg: fc.constant({ type: 'sys.ping' as const }), askId: fc.nat(), replyTo: address },
      { requiredKeys: ['to', 'from', 'msg'] },
    ),
  }),
  fc.record({
    kind: fc.constant('reply' as const),
    reply: fc.record({
      to: address,
      askId: fc.nat(),
      outcome: fc.oneof(
        fc.record({ ok: fc.constant(true as const), value: fc.jsonValue() }),
        fc.record({ ok: fc.constant(false as const), error: fc.record({ code: fc.constant('SECBEAT_ERR_INTERNAL' as const), message: fc.string() }) }),
      ),
    }),
  }),
  fc.record({ kind: fc.constant('crash' as const), to: address, ruleId: fc.string({ maxLength: 20 }) }),
);

describe('decodeDelivery (property)', () => {
  it('never throws, whatever JSON arrives', () => {
    fc.assert(
      fc.property(fc.jsonValue(), (value) => {
        const decoded = decodeDelivery(value);
        expect(typeof decoded.ok).toBe('boolean');
      }),
      fcParams(),
    );
  });

  it('decodes every delivery the runtime sends, through JSON, to itself', () => {
    fc.assert(
      fc.property(delivery, (d) => {
        const decoded = decodeDelivery(JSON.parse(JSON.stringify(d)));
        expect(decoded).toEqual({ ok: true, value: JSON.parse(JSON.stringify(d)) });
      }),
      fcParams(),
    );
  });
});
