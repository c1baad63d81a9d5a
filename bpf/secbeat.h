/* SecBeat's XDP program and its userspace (native/src/bpf_addon.cc, and through it TypeScript) share this
 * header: the verdict reasons the program counts, the map layouts and the configuration record. Each reason is
 * listed once, in SECBEAT_REASONS; the program indexes its per-CPU counters with the enum, and the addon exports
 * the names in the same order, so no other file numbers them. */
#ifndef SECBEAT_H
#define SECBEAT_H

/* X(enum suffix, name exported to userspace and used as the Prometheus `reason` label). The order is the
 * counter index; append only. */
#define SECBEAT_REASONS(X)                                                                                         \
	X(PASS, "pass")                         /* not ours to judge (other protocols, unprotected ports) */       \
	X(ALLOWLIST, "allowlist")               /* source on the allowlist: passed before any other check */       \
	X(FLOW, "flow")                         /* packet of a flow conntrack knows (TCP, UDP replies): passed */               \
	X(COOKIE_ACK, "cookie_ack")             /* ACK holding a valid SYN cookie: passed to SYNPROXY */           \
	X(SYNACK, "synack")                     /* SYN on a protected port: answered with a cookie SYN-ACK */      \
	X(BLOCKLIST, "blocklist")               /* source on the blocklist (unexpired): dropped */                 \
	X(FRAGMENT, "fragment")                 /* IPv4 or IPv6 fragment: dropped */                               \
	X(MALFORMED, "malformed")               /* truncated or inconsistent header, bad TCP flags: dropped */     \
	X(BAD_CHECKSUM, "bad_checksum")         /* SYN whose IP or TCP checksum is wrong: dropped */               \
	X(RATE_LIMIT, "rate_limit")             /* source over its packet budget: dropped */                       \
	X(UDP_AMPLIFICATION, "udp_amplification") /* UDP from a reflector port to a non-UDP service: dropped */  \
	X(UDP_CLOSED, "udp_closed")             /* UDP to a port with no service: dropped */                       \
	X(ICMP_RATE, "icmp_rate")               /* ICMP over the node's ICMP budget: dropped */                    \
	X(ACK_FLOOD, "ack_flood")               /* non-SYN to a protected port, no flow, no valid cookie: dropped */ \
	X(ABORTED, "aborted")                   /* a helper failed: XDP_ABORTED (never expected) */

#define SECBEAT_REASON_ENUM(name, label) SECBEAT_##name,
enum secbeat_reason { SECBEAT_REASONS(SECBEAT_REASON_ENUM) SECBEAT_REASON_COUNT };
#undef SECBEAT_REASON_ENUM

/* Per reason, per CPU. */
struct secbeat_counter {
	__u64 packets;
	__u64 bytes;
};

/* Allowlist and blocklist key: an IPv6 address, IPv4 ones mapped (::ffff:a.b.c.d, prefix 96 + IPv4 prefix). */
struct secbeat_lpm_key {
	__u32 prefixlen;
	__u8 addr[16];
};

/* Blocklist value: monotonic (CLOCK_MONOTONIC_COARSE / bpf_ktime_get_coarse_ns) expiry, 0 for never. */
struct secbeat_block {
	__u64 expires_ns;
};

/* Per-source token bucket, kept as nanoseconds of credit (a packet costs config.rate_cost_ns). */
struct secbeat_bucket {
	__u64 last_ns;
	__u64 credit_ns;
};

#define SECBEAT_PORT_BITMAP_BYTES 8192

#define SECBEAT_LIST_ALLOW 1
#define SECBEAT_LIST_BLOCK 2

/* The one entry of the `config` array map. Userspace computes the costs so the program never divides. */
struct secbeat_config {
	/* Per-source rate limit: cost of one packet and bucket size (burst × cost), in ns; cost 0 = off. */
	__u64 rate_cost_ns;
	__u64 rate_capacity_ns;
	/* ICMP budget, per CPU: cost 0 = off. */
	__u64 icmp_cost_ns;
	__u64 icmp_capacity_ns;
	/* What the cookie SYN-ACK advertises; must equal the SYNPROXY rule's (the kernel completes the handshake). */
	__u16 mss4;
	__u16 mss6;
	__u8 wscale;
	__u8 ttl;
	/* Non-zero: UDP to a port not in udp_open is dropped (else only reflector traffic is). */
	__u8 udp_closed_drop;
	/* SECBEAT_LIST_* bits: which lists hold entries. An empty list is not looked up (userspace keeps the bits). */
	__u8 lists;
	/* Bit p set: TCP port p is protected (SYN cookies, ACK validation); UDP port p has a service. */
	__u8 tcp_protected[SECBEAT_PORT_BITMAP_BYTES];
	__u8 udp_open[SECBEAT_PORT_BITMAP_BYTES];
};

#endif
