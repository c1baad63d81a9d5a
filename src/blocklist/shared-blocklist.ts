// The blocklist as the data planes consult it on every accepted connection: exact addresses
// (./shared-ip-set.ts), then ranges (./shared-cidr-table.ts), both shared by every thread. Built by the
// listener actor on each worker thread; the address is parsed once for both tables.
import { parseIp } from '../net/ip.ts';
import { SharedCidrTable } from './shared-cidr-table.ts';
import { SharedIpSet } from './shared-ip-set.ts';

export class SharedBlocklist {
  readonly #addresses: SharedIpSet;
  readonly #ranges: SharedCidrTable;
  readonly #key = new Uint32Array(4);

  constructor(ipSetState: SharedArrayBuffer, cidrTableState: SharedArrayBuffer) {
    this.#addresses = new SharedIpSet(ipSetState);
    this.#ranges = new SharedCidrTable(cidrTableState);
  }

  /** True when `address` is blocked now, by itself or by a range. net.BlockList's shape, as the proxies expect. */
  check(address: string, _family?: string): boolean {
    return parseIp(address, this.#key) && (this.#addresses.contains(this.#key) || this.#ranges.contains(this.#key));
  }
}
