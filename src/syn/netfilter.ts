// The kernel's half of SYN mode: netfilter's SYNPROXY completes every handshake the XDP program started. XDP
// answers a SYN with a cookie SYN-ACK and passes the client's ACK once its cookie checks; conntrack has no
// entry for that ACK (nf_conntrack_tcp_loose = 0 keeps it from adopting the flow mid-stream), so it is
// "invalid", and the synproxy statement checks the cookie again, opens the connection to the local listener
// and translates sequence numbers for the rest of it. Every later packet then belongs to a conntrack flow,
// which is how the XDP program recognises it. The rules live in one nftables table of the node's own, added
// and deleted whole (`nft -f`), so the host's other rules are never touched.
import { execFile } from 'node:child_process';
import { readFile, writeFile } from 'node:fs/promises';
import { SecbeatError } from '../errors.ts';

export interface SynproxyRules {
  /** nftables table name (inet family): [A-Za-z0-9_], unique per node on the host. */
  table: string;
  interface: string;
  ports: readonly number[];
  /** What SYNPROXY tells the listener the client offered; equal to what the XDP SYN-ACK advertised. */
  mss4: number;
  mss6: number;
  wscale: number;
}

const LOOSE_SYSCTL = '/proc/sys/net/netfilter/nf_conntrack_tcp_loose';
const NFT_TIMEOUT_MS = 10_000;

/** The table's name for a node: nftables allows letters, digits and `_` only. */
export function synproxyTableName(nodeId: string): string {
  return `secbeat_syn_${nodeId.replace(/[^A-Za-z0-9_]/g, '_')}`.slice(0, 64);
}

/** The nft script that (re)creates the table: its previous version goes in the same transaction. */
export function synproxyRuleset(r: SynproxyRules): string {
  const iface = JSON.stringify(r.interface);
  const ports = `{ ${[...new Set(r.ports)].sort((a, b) => a - b).join(', ')} }`;
  const match = `iifname ${iface} tcp dport ${ports}`;
  const options = `wscale ${r.wscale} timestamp sack-perm`;
  return [
    `table inet ${r.table}`,
    `delete table inet ${r.table}`,
    `table inet ${r.table} {`,
    '  chain prerouting {',
    '    type filter hook prerouting priority raw; policy accept;',
    // A SYN that reaches the stack (an allowlisted source's) is left untracked for SYNPROXY to answer.
    `    ${match} tcp flags & (fin | syn | rst | ack) == syn notrack`,
    '  }',
    '  chain input {',
    '    type filter hook input priority filter; policy accept;',
    `    ${match} ct state { invalid, untracked } meta nfproto ipv4 synproxy mss ${r.mss4} ${options}`,
    `    ${match} ct state { invalid, untracked } meta nfproto ipv6 synproxy mss ${r.mss6} ${options}`,
    `    ${match} ct state invalid drop`,
    '  }',
    '}',
    '',
  ].join('\n');
}

function nft(script: string): Promise<void> {
  return new Promise((resolve, reject) => {
    const child = execFile('nft', ['-f', '-'], { timeout: NFT_TIMEOUT_MS }, (err, _stdout, stderr) => {
      if (err === null) return resolve();
      const missing = (err as NodeJS.ErrnoException).code === 'ENOENT';
      const why = missing ? 'the nft command is not installed (Debian: nftables)' : stderr.trim() || err.message;
      reject(new SecbeatError('SECBEAT_ERR_INTERNAL', `nftables: ${why}`, { cause: err }));
    });
    child.stdin?.end(script);
  });
}

/** Installs (or replaces) the node's SYNPROXY table. */
export async function installSynproxy(rules: SynproxyRules): Promise<void> {
  await nft(synproxyRuleset(rules));
}

/** Deletes the node's table if it is there. */
export async function removeSynproxy(table: string): Promise<void> {
  // Declaring the table first makes the delete succeed whether or not it existed.
  await nft(`table inet ${table}\ndelete table inet ${table}\n`);
}

/** Sets nf_conntrack_tcp_loose to 0 (what SYNPROXY needs); the previous value, to restore at stop. */
export async function strictConntrack(): Promise<string> {
  let previous: string;
  try {
    previous = (await readFile(LOOSE_SYSCTL, 'utf8')).trim();
  } catch (err) {
    throw new SecbeatError('SECBEAT_ERR_INTERNAL', `cannot read ${LOOSE_SYSCTL} (is conntrack in this kernel?): ${(err as Error).message}`, { cause: err });
  }
  if (previous !== '0') await writeFile(LOOSE_SYSCTL, '0');
  return previous;
}

export async function restoreConntrack(previous: string): Promise<void> {
  await writeFile(LOOSE_SYSCTL, previous);
}
