// Every NATS subject SecBeat uses, built here and nowhere else. A subject is dot-separated tokens; region and
// node names may hold `.` (the actor-name alphabet, ../address.ts), so a name becomes a token with each `.`
// written `%2E` (the alphabet has no `%`, so the mapping is one-to-one and reversible).
//
//   secbeat.v1.deliver.<region>.<node>   deliveries (messages, ask replies, chaos crashes) for one node
//   secbeat.v1.rates                     every node's rate-limit counters (../crdt/rate-sync.ts), to all
//   secbeat.v1.config.hello              every node's tenant-config heads (../crdt/config-sync.ts), to all
//   secbeat.v1.config.sync.<region>.<node>  tenant-config sync messages for one node

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

/** Where every node announces the heads of its tenant-config document. */
export function configHelloSubject(): string {
  return `${PREFIX}.config.hello`;
}

/** Where tenant-config sync messages for the node `node` of `region` are published. */
export function configSyncSubject(region: string, node: string): string {
  return `${PREFIX}.config.sync.${token(region)}.${token(node)}`;
}
