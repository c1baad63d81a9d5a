// Every NATS subject SecBeat uses, built here and nowhere else. A subject is dot-separated tokens; region and
// node names may hold `.` (the actor-name alphabet, ../address.ts), so a name becomes a token with each `.`
// written `%2E` (the alphabet has no `%`, so the mapping is one-to-one and reversible).
//
//   secbeat.v1.deliver.<region>.<node>   deliveries (messages, ask replies, chaos crashes) for one node
//   secbeat.v1.rates                     every node's rate-limit counters (../crdt/rate-sync.ts), to all

const PREFIX = 'secbeat.v1';

function token(name: string): string {
  return name.replaceAll('.', '%2E');
}

/** Where deliveries for the node `node` of `region` are published; that node subscribes to it. */
export function deliverySubject(region: string, node: string): string {
  return `${PREFIX}.deliver.${token(region)}.${token(node)}`;
}

/** Where every node publishes its rate-limit counters and hears everyone else's. */
export function rateSubject(): string {
  return `${PREFIX}.rates`;
}
