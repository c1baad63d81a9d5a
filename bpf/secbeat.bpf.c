// SPDX-License-Identifier: GPL-2.0
/* SecBeat's XDP program: SYN-flood and volumetric filtering on a node's ingress, in the order issue 6 names:
 *
 *   allowlist (always wins) → blocklist (with expiry) → IPv4/IPv6 fragments and malformed headers →
 *   protected TCP ports: SYN answered with a SYN cookie SYN-ACK from XDP, a returning ACK whose cookie is valid
 *   passed on → per-source token bucket → UDP policy → ICMP budget → non-SYN to a protected port that is
 *   neither a known flow nor a valid cookie ACK dropped.
 *
 * The rest of a cookie connection is the kernel's: the ACK goes up to netfilter's SYNPROXY (configured by the
 * SYN-proxy actor, src/syn/), which checks the same cookie (bpf_tcp_raw_gen_syncookie_* computes the kernel's
 * own cookie with the kernel's secret), opens the connection to the local listener and translates sequence
 * numbers; conntrack then knows the flow, which is how later packets are recognised (bpf_xdp_ct_lookup). The
 * socket-bound alternative (bpf_sk_assign_tcp_reqsk) exists only at tc, not XDP, and a listener accepts a
 * cookie ACK only within two minutes of sending a cookie itself (tcp_synq_no_recent_overflow), which it never
 * does once XDP answers every SYN. This is the design of the kernel's own xdp_synproxy selftest.
 *
 * Every packet read is bounds-checked against data_end; headers are parsed from fixed offsets or through
 * bounded loops, so the verifier proves the program on any input. */
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_endian.h>
#include "secbeat.h"

#define ETH_P_IP 0x0800
#define ETH_P_IPV6 0x86DD
#define ETH_P_8021Q 0x8100
#define ETH_P_8021AD 0x88A8
#define ETH_HLEN 14
#define VLAN_HLEN 4
#define MAX_VLAN_TAGS 2

#define IP_MF 0x2000
#define IP_OFFSET 0x1fff

#define NEXTHDR_HOP 0
#define NEXTHDR_ROUTING 43
#define NEXTHDR_FRAGMENT 44
#define NEXTHDR_DEST 60
#define NEXTHDR_ICMP 58
#define MAX_IPV6_EXT 4

#define TCP_FIN 0x01
#define TCP_SYN 0x02
#define TCP_RST 0x04
#define TCP_PSH 0x08
#define TCP_ACK 0x10
#define TCP_URG 0x20
#define TCP_ECE 0x40
#define TCP_CWR 0x80

#define TCPOPT_EOL 0
#define TCPOPT_NOP 1
#define TCPOPT_MSS 2
#define TCPOPT_WINDOW 3
#define TCPOPT_SACK_PERM 4
#define TCPOPT_TIMESTAMP 8
#define TCP_MAX_WSCALE 14
#define TCP_MAX_HLEN 60

/* The kernel's timestamp cookie (net/ipv4/syncookies.c cookie_init_timestamp): the low 6 bits of our tsval
 * carry the client's window scale (0xf: none), SACK and ECN, which SYNPROXY reads back from the ACK's tsecr. */
#define TS_OPT_WSCALE_MASK 0xf
#define TS_OPT_SACK (1 << 4)
#define TS_OPT_ECN (1 << 5)
#define TSBITS 6
#define TSMASK ((1U << TSBITS) - 1)

#define BPF_F_CURRENT_NETNS (-1)

/* nf_conntrack_bpf.c's opts, declared here so the object does not depend on the module's BTF: the 12-byte
 * layout every kernel since 6.0 accepts (later kernels append zone fields and take either size). A buffer the
 * kernel reads by that fixed layout, so no CO-RE relocation applies to it. */
struct bpf_ct_opts___secbeat {
	s32 netns_id;
	s32 error;
	u8 l4proto;
	u8 dir;
	u8 reserved[2];
};

extern struct nf_conn *bpf_xdp_ct_lookup(struct xdp_md *xdp_ctx, struct bpf_sock_tuple *bpf_tuple, u32 len_tuple,
					 struct bpf_ct_opts___secbeat *opts, u32 len_opts) __ksym;
extern void bpf_ct_release(struct nf_conn *ct) __ksym;

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__type(key, __u32);
	__type(value, struct secbeat_config);
	__uint(max_entries, 1);
} sb_config SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__type(key, __u32);
	__type(value, struct secbeat_counter);
	__uint(max_entries, SECBEAT_REASON_COUNT);
} sb_counters SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_LPM_TRIE);
	__type(key, struct secbeat_lpm_key);
	__type(value, __u8);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__uint(max_entries, 65536);
} sb_allowlist SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_LPM_TRIE);
	__type(key, struct secbeat_lpm_key);
	__type(value, struct secbeat_block);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__uint(max_entries, 262144);
} sb_blocklist SEC(".maps");

/* Per-source buckets, one map per family: an IPv4 source is keyed by its 4 bytes, which hash and compare in
 * less time than its mapped 16 (measured: the rate-limit drop path ~4 ns shorter). Userspace may resize both
 * before load (bpf_map__set_max_entries). */
struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__type(key, __u32);
	__type(value, struct secbeat_bucket);
	__uint(max_entries, 65536);
} sb_sources4 SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__type(key, struct in6_addr);
	__type(value, struct secbeat_bucket);
	__uint(max_entries, 65536);
} sb_sources6 SEC(".maps");

/* Sources found over their budget, per CPU, in slots chosen by a hash of the source: until `until_ns` (when the
 * bucket next holds a packet's cost) such a source is dropped from here, an array lookup the verifier inlines,
 * without the hash map's lookup (measured: the rate-limit drop path 4-6 ns shorter). Credit accrues at one ns per
 * ns whatever other CPUs do, so the bucket could not have passed any packet this drops: the verdicts are the
 * bucket's alone. An entry made under another packet cost (a live change of source_pps) is ignored, and a slot
 * two sources share only sends one of them back to the bucket. */
#define SECBEAT_DENIED_SLOTS 256

struct secbeat_denied {
	struct in6_addr source;
	__u64 until_ns;
	/* config.rate_cost_ns when the entry was made. */
	__u64 cost_ns;
};

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__type(key, __u32);
	__type(value, struct secbeat_denied);
	__uint(max_entries, SECBEAT_DENIED_SLOTS);
} sb_denied SEC(".maps");

/* The ICMP budget, one bucket per CPU (the configured rate is split across CPUs by userspace). */
struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__type(key, __u32);
	__type(value, struct secbeat_bucket);
	__uint(max_entries, 1);
} sb_icmp SEC(".maps");

/* What parsing learned about a packet. */
struct packet {
	void *data;
	void *data_end;
	__u64 len;
	/* Bytes of Ethernet + VLAN headers. */
	__u32 l2_len;
	/* 4 or 6. */
	__u8 family;
	__u8 l4proto;
	/* Offset of the transport header. */
	__u32 l4_off;
	struct iphdr *ip4;
	struct ipv6hdr *ip6;
	/* Source as an IPv6 address (IPv4 mapped): the allowlist and blocklist key (IPv4 buckets
	 * take its last 4 bytes). */
	struct in6_addr source;
};

static __always_inline int count(enum secbeat_reason reason, __u64 bytes, int action)
{
	__u32 key = reason;
	struct secbeat_counter *counter = bpf_map_lookup_elem(&sb_counters, &key);

	if (counter) {
		counter->packets++;
		counter->bytes += bytes;
	}
	return action;
}

static __always_inline int port_bit(const __u8 *bitmap, __u16 port)
{
	return (bitmap[(port >> 3) & (SECBEAT_PORT_BITMAP_BYTES - 1)] >> (port & 7)) & 1;
}

/* Clocks here are CLOCK_MONOTONIC_COARSE (bpf_ktime_get_coarse_ns: a few ns, where the precise clock costs ~25 ns
 * on a VM): a bucket refills in steps of one tick, the same credit on average; an expiry is late by a tick at
 * most; a timestamp cookie needs milliseconds only. Userspace writes expiries on CLOCK_MONOTONIC_COARSE too. */

/* Takes one packet's cost from a bucket; false when the bucket is empty. Racy across CPUs by design for the
 * shared per-source map: a lost update only lets a packet more through. */
static __always_inline bool take_token(struct secbeat_bucket *bucket, __u64 now, __u64 cost, __u64 capacity)
{
	__u64 credit;

	/* Same clock tick, bucket already short: nothing to refill or take, so nothing to write (the common case for
	 * a source far over its budget). */
	if (now == bucket->last_ns && bucket->credit_ns < cost)
		return false;
	credit = bucket->credit_ns + (now - bucket->last_ns);

	if (credit > capacity)
		credit = capacity;
	bucket->last_ns = now;
	if (credit < cost) {
		bucket->credit_ns = credit;
		return false;
	}
	bucket->credit_ns = credit - cost;
	return true;
}

static __always_inline bool same_source(const struct in6_addr *a, const struct in6_addr *b)
{
	const __u64 *x = (const __u64 *)a, *y = (const __u64 *)b;

	return x[0] == y[0] && x[1] == y[1];
}

static __always_inline bool source_over_rate(struct packet *pkt, const struct secbeat_config *cfg)
{
	struct secbeat_bucket *bucket;
	struct secbeat_denied *denied;
	__u32 slot;
	__u64 now;
	bool over;

	if (cfg->rate_cost_ns == 0)
		return false;
	now = bpf_ktime_get_coarse_ns();
	/* Fibonacci hashing of the folded address: the top 8 bits pick one of the 256 slots. */
	slot = ((pkt->source.in6_u.u6_addr32[0] ^ pkt->source.in6_u.u6_addr32[1] ^ pkt->source.in6_u.u6_addr32[2] ^
		 pkt->source.in6_u.u6_addr32[3]) * 0x9E3779B1u) >> 24;
	denied = bpf_map_lookup_elem(&sb_denied, &slot);
	if (denied && now < denied->until_ns && denied->cost_ns == cfg->rate_cost_ns && same_source(&denied->source, &pkt->source))
		return true;
	/* One call per map, not one call on a chosen map: the verifier inlines a lookup only where the map is known,
	 * and the indirect call costs more than the smaller key saves (measured). */
	if (pkt->family == 4)
		bucket = bpf_map_lookup_elem(&sb_sources4, &pkt->source.in6_u.u6_addr32[3]);
	else
		bucket = bpf_map_lookup_elem(&sb_sources6, &pkt->source);
	if (!bucket) {
		/* A new source starts with a full bucket, less this packet. */
		struct secbeat_bucket fresh = { .last_ns = now, .credit_ns = cfg->rate_capacity_ns - cfg->rate_cost_ns };

		if (cfg->rate_capacity_ns < cfg->rate_cost_ns)
			fresh.credit_ns = 0;
		if (pkt->family == 4)
			bpf_map_update_elem(&sb_sources4, &pkt->source.in6_u.u6_addr32[3], &fresh, BPF_ANY);
		else
			bpf_map_update_elem(&sb_sources6, &pkt->source, &fresh, BPF_ANY);
		return cfg->rate_capacity_ns < cfg->rate_cost_ns;
	}
	over = !take_token(bucket, now, cfg->rate_cost_ns, cfg->rate_capacity_ns);
	if (over && denied) {
		denied->source = pkt->source;
		denied->until_ns = bucket->last_ns + cfg->rate_cost_ns - bucket->credit_ns;
		denied->cost_ns = cfg->rate_cost_ns;
	}
	return over;
}

static __always_inline bool icmp_over_rate(const struct secbeat_config *cfg)
{
	__u32 key = 0;
	struct secbeat_bucket *bucket;
	__u64 now;

	if (cfg->icmp_cost_ns == 0)
		return false;
	now = bpf_ktime_get_coarse_ns();
	bucket = bpf_map_lookup_elem(&sb_icmp, &key);
	if (!bucket)
		return false;
	if (bucket->last_ns == 0) {
		bucket->last_ns = now;
		bucket->credit_ns = cfg->icmp_capacity_ns;
	}
	return !take_token(bucket, now, cfg->icmp_cost_ns, cfg->icmp_capacity_ns);
}

/* Ethernet, up to two VLAN tags, then IPv4 or IPv6 up to the transport header. Returns a reason to drop with
 * (MALFORMED, FRAGMENT), PASS for what is not IP, or -1 when the packet is IP and parsed. */
static __always_inline int parse(struct packet *pkt)
{
	struct ethhdr *eth = pkt->data;
	__u16 proto;
	__u32 off = ETH_HLEN;

	if ((void *)(eth + 1) > pkt->data_end)
		return SECBEAT_MALFORMED;
	proto = bpf_ntohs(eth->h_proto);
#pragma unroll
	for (int i = 0; i < MAX_VLAN_TAGS; i++) {
		struct vlan_hdr *vlan;

		if (proto != ETH_P_8021Q && proto != ETH_P_8021AD)
			break;
		vlan = pkt->data + off;
		if ((void *)(vlan + 1) > pkt->data_end)
			return SECBEAT_MALFORMED;
		proto = bpf_ntohs(vlan->h_vlan_encapsulated_proto);
		off += VLAN_HLEN;
	}
	/* A third tag would hide the packet from every check below: no legitimate frame here carries one. */
	if (proto == ETH_P_8021Q || proto == ETH_P_8021AD)
		return SECBEAT_MALFORMED;
	pkt->l2_len = off;

	if (proto == ETH_P_IP) {
		struct iphdr *ip = pkt->data + off;
		__u32 ihl;

		if ((void *)(ip + 1) > pkt->data_end)
			return SECBEAT_MALFORMED;
		ihl = ip->ihl * 4;
		if (ip->version != 4 || ihl < sizeof(*ip) || bpf_ntohs(ip->tot_len) < ihl ||
		    off + bpf_ntohs(ip->tot_len) > pkt->len)
			return SECBEAT_MALFORMED;
		pkt->family = 4;
		pkt->ip4 = ip;
		pkt->l4proto = ip->protocol;
		pkt->l4_off = off + ihl;
		pkt->source.in6_u.u6_addr32[2] = bpf_htonl(0xffff);
		pkt->source.in6_u.u6_addr32[3] = ip->saddr;
		if (ip->frag_off & bpf_htons(IP_MF | IP_OFFSET))
			return SECBEAT_FRAGMENT;
		return -1;
	}
	if (proto == ETH_P_IPV6) {
		struct ipv6hdr *ip6 = pkt->data + off;
		__u8 next;

		if ((void *)(ip6 + 1) > pkt->data_end)
			return SECBEAT_MALFORMED;
		if (ip6->version != 6 || off + sizeof(*ip6) + bpf_ntohs(ip6->payload_len) > pkt->len)
			return SECBEAT_MALFORMED;
		pkt->family = 6;
		pkt->ip6 = ip6;
		__builtin_memcpy(&pkt->source, &ip6->saddr, sizeof(pkt->source));
		next = ip6->nexthdr;
		off += sizeof(*ip6);
		/* Hop-by-hop, routing and destination options are stepped over; a fragment header is a fragment. */
#pragma unroll
		for (int i = 0; i < MAX_IPV6_EXT; i++) {
			struct ipv6_opt_hdr *ext;

			if (next == NEXTHDR_FRAGMENT)
				return SECBEAT_FRAGMENT;
			if (next != NEXTHDR_HOP && next != NEXTHDR_ROUTING && next != NEXTHDR_DEST)
				break;
			ext = pkt->data + off;
			if ((void *)(ext + 1) > pkt->data_end)
				return SECBEAT_MALFORMED;
			next = ext->nexthdr;
			off += (ext->hdrlen + 1) * 8;
		}
		if (next == NEXTHDR_HOP || next == NEXTHDR_ROUTING || next == NEXTHDR_DEST || next == NEXTHDR_FRAGMENT)
			return SECBEAT_MALFORMED; /* more extension headers than any legitimate packet carries */
		pkt->l4proto = next;
		pkt->l4_off = off;
		return -1;
	}
	return SECBEAT_PASS;
}

/* The transport header, `size` bytes of it checked against the packet's end; NULL when truncated. */
static __always_inline void *l4_header(struct packet *pkt, __u32 size)
{
	__u32 off = pkt->l4_off;
	void *header;

	/* l4_off went through the stack: bound it again for the verifier (Ethernet + VLANs + IPv6 + extensions). */
	if (off > 4096)
		return NULL;
	header = pkt->data + off;
	if (header + size > pkt->data_end)
		return NULL;
	return header;
}

static __always_inline bool listed(void *map, struct packet *pkt)
{
	struct secbeat_lpm_key key = { .prefixlen = 128 };

	__builtin_memcpy(key.addr, &pkt->source, sizeof(key.addr));
	return bpf_map_lookup_elem(map, &key) != NULL;
}

/* The clock is read only for an entry that expires: most blocks do not, and a drop path should cost little. */
static __always_inline bool blocked(struct packet *pkt)
{
	struct secbeat_lpm_key key = { .prefixlen = 128 };
	struct secbeat_block *block;

	__builtin_memcpy(key.addr, &pkt->source, sizeof(key.addr));
	block = bpf_map_lookup_elem(&sb_blocklist, &key);
	return block && (block->expires_ns == 0 || block->expires_ns > bpf_ktime_get_coarse_ns());
}

/* Whether conntrack knows the flow: the reply of a SYNPROXY'd TCP connection, a reply to the node's own UDP query. */
static __always_inline bool known_flow(struct xdp_md *ctx, struct packet *pkt, __u8 proto, __be16 sport, __be16 dport)
{
	struct bpf_ct_opts___secbeat opts = { .netns_id = BPF_F_CURRENT_NETNS, .l4proto = proto };
	struct bpf_sock_tuple tuple = {};
	struct nf_conn *ct;
	__u32 size;
	bool confirmed;

	if (pkt->family == 4 && pkt->ip4) {
		tuple.ipv4.saddr = pkt->ip4->saddr;
		tuple.ipv4.daddr = pkt->ip4->daddr;
		tuple.ipv4.sport = sport;
		tuple.ipv4.dport = dport;
		size = sizeof(tuple.ipv4);
	} else if (pkt->ip6) {
		__builtin_memcpy(tuple.ipv6.saddr, &pkt->ip6->saddr, sizeof(tuple.ipv6.saddr));
		__builtin_memcpy(tuple.ipv6.daddr, &pkt->ip6->daddr, sizeof(tuple.ipv6.daddr));
		tuple.ipv6.sport = sport;
		tuple.ipv6.dport = dport;
		size = sizeof(tuple.ipv6);
	} else {
		return false;
	}
	ct = bpf_xdp_ct_lookup(ctx, &tuple, size, &opts, sizeof(opts));
	if (!ct)
		return false;
	confirmed = ct->status & IPS_CONFIRMED;
	bpf_ct_release(ct);
	return confirmed;
}

static __always_inline __u16 csum_fold(__u64 sum)
{
	/* Fold until 16 bits are left: three 32-bit folds leave at most 2^32 - 1, three 16-bit folds at most 0xffff. */
	sum = (sum & 0xffffffff) + (sum >> 32);
	sum = (sum & 0xffffffff) + (sum >> 32);
	sum = (sum & 0xffffffff) + (sum >> 32);
	sum = (sum & 0xffff) + (sum >> 16);
	sum = (sum & 0xffff) + (sum >> 16);
	sum = (sum & 0xffff) + (sum >> 16);
	return (__u16)~sum;
}

/* The SYN-ACK built on the stack, then written over the packet: L2 (with the SYN's VLAN tags), IP, TCP. */
struct synack {
	/* Ethernet and VLAN headers take at most 22 bytes; 32 lets a length masked with 0x1f index it. */
	__u8 l2[32];
	union {
		struct iphdr ip4;
		struct ipv6hdr ip6;
	};
	struct tcphdr tcp;
	__be32 options[5];
};

/* The SYN's TCP header (options included) and what its options ask for, as the kernel reads them. */
struct syn_options {
	__u8 header[64];
	__u32 len;
	__u32 off;
	__be32 tsval;
	__u8 wscale;
	bool timestamp;
	bool sack;
};

/* One option per call (bpf_loop), so the verifier checks the step once instead of every unrolled path. */
static long read_syn_option(__u32 index, void *data)
{
	struct syn_options *opts = data;
	__u32 off = opts->off;
	__u8 kind, size;

	if (off >= opts->len || off >= TCP_MAX_HLEN)
		return 1;
	kind = opts->header[off & 63];
	if (kind == TCPOPT_EOL)
		return 1;
	if (kind == TCPOPT_NOP) {
		opts->off = off + 1;
		return 0;
	}
	size = opts->header[(off + 1) & 63];
	if (size < 2 || off + size > opts->len)
		return 1;
	if (kind == TCPOPT_WINDOW && size == 3) {
		__u8 wscale = opts->header[(off + 2) & 63];

		opts->wscale = wscale < TCP_MAX_WSCALE ? wscale : TCP_MAX_WSCALE;
	} else if (kind == TCPOPT_SACK_PERM && size == 2) {
		opts->sack = true;
	} else if (kind == TCPOPT_TIMESTAMP && size == 10) {
		__u32 at = (off + 2) & 63;

		if (at <= sizeof(opts->header) - 4) {
			opts->timestamp = true;
			__builtin_memcpy(&opts->tsval, &opts->header[at], 4);
		}
	}
	opts->off = off + size;
	return 0;
}

/* The options Linux puts in every SYN, in its order and nothing else: MSS, SACK_PERM, TIMESTAMP, NOP, WSCALE (20
 * bytes). Read at fixed offsets, they skip the general walk (a bpf_loop call per option) for most of a flood's
 * SYNs and most clients'; false leaves the walk to read whatever else a SYN carries. */
static __always_inline bool linux_syn_options(struct syn_options *opts)
{
	const __u8 *o = opts->header + sizeof(struct tcphdr);

	if (opts->len != sizeof(struct tcphdr) + 20)
		return false;
	if (o[0] != TCPOPT_MSS || o[1] != 4 || o[4] != TCPOPT_SACK_PERM || o[5] != 2 || o[6] != TCPOPT_TIMESTAMP ||
	    o[7] != 10 || o[16] != TCPOPT_NOP || o[17] != TCPOPT_WINDOW || o[18] != 3)
		return false;
	opts->sack = true;
	opts->timestamp = true;
	__builtin_memcpy(&opts->tsval, o + 8, 4);
	opts->wscale = o[19] < TCP_MAX_WSCALE ? o[19] : TCP_MAX_WSCALE;
	return true;
}

/* The one's complement sum over `len` bytes of the stack (a multiple of 4, at most 64). */
static __always_inline __s64 stack_csum(void *from, __u32 len)
{
	return bpf_csum_diff(0, 0, from, len & 0x7c, 0);
}

/* Answers a SYN on a protected port with a cookie SYN-ACK (XDP_TX), as the kernel answers with tcp_syncookies:
 * the client's MSS goes into the cookie, and window scale, SACK and ECN into the timestamp when the client sent
 * one. The reply is written over the packet, grown (or shrunk) at the head: XDP guarantees headroom on every
 * driver, tailroom it does not. A global function, so the verifier checks it once, apart from the main path; a
 * global function gets no packet pointer from its caller, so it takes offsets and copies the headers it reads
 * (bpf_xdp_load_bytes) onto its stack. */
__attribute__((noinline)) int secbeat_answer_syn(struct xdp_md *ctx, __u32 l2_len, __u32 l4_off, __u32 family)
{
	struct syn_options opts = { .off = sizeof(struct tcphdr), .wscale = TS_OPT_WSCALE_MASK };
	struct synack reply = {};
	struct tcphdr *syn = (struct tcphdr *)opts.header;
	struct secbeat_config *cfg;
	__u32 key = 0, ip_len, tcp_len, seg_len, opt_words = 0, tsval = 0;
	__u64 pkt_len = (__u64)ctx->data_end - ctx->data;
	__u64 sum = 0;
	__s64 cookie, partial;
	__u8 flags = TCP_SYN | TCP_ACK;
	__u16 mss;

	cfg = bpf_map_lookup_elem(&sb_config, &key);
	l2_len &= 0x1f;
	if (!cfg || l2_len < ETH_HLEN || l4_off > 4096)
		return SECBEAT_ABORTED;
	if (bpf_xdp_load_bytes(ctx, 0, reply.l2, l2_len))
		return SECBEAT_MALFORMED;
	{
		/* The data offset straight from the packet (the caller checked the fixed header is there): one copy of
		 * the header, its options included, instead of two. */
		__u8 *doff = (void *)(long)ctx->data + (l4_off & 0xfff) + 12;

		if ((void *)(doff + 1) > (void *)(long)ctx->data_end)
			return SECBEAT_MALFORMED;
		tcp_len = (*doff >> 2) & 0x3c;
	}
	if (tcp_len < sizeof(struct tcphdr))
		return SECBEAT_MALFORMED;
	if (bpf_xdp_load_bytes(ctx, l4_off, opts.header, tcp_len))
		return SECBEAT_MALFORMED;
	opts.len = tcp_len;

	if (family == 4) {
		if (bpf_xdp_load_bytes(ctx, l2_len, &reply.ip4, sizeof(reply.ip4)))
			return SECBEAT_MALFORMED;
		/* The SYN's IP header checksum (checked when it has no options, the usual case). */
		if (reply.ip4.ihl == 5) {
			partial = stack_csum(&reply.ip4, sizeof(reply.ip4));
			if (partial < 0)
				return SECBEAT_ABORTED;
			if (csum_fold(partial) != 0)
				return SECBEAT_BAD_CHECKSUM;
		}
		seg_len = bpf_ntohs(reply.ip4.tot_len) - reply.ip4.ihl * 4;
		sum = (__u64)reply.ip4.saddr + reply.ip4.daddr;
		cookie = bpf_tcp_raw_gen_syncookie_ipv4(&reply.ip4, syn, tcp_len);
	} else {
		if (bpf_xdp_load_bytes(ctx, l2_len, &reply.ip6, sizeof(reply.ip6)))
			return SECBEAT_MALFORMED;
		seg_len = bpf_ntohs(reply.ip6.payload_len) - (l4_off - l2_len - sizeof(struct ipv6hdr));
#pragma unroll
		for (int i = 0; i < 4; i++)
			sum += (__u64)reply.ip6.saddr.in6_u.u6_addr32[i] + reply.ip6.daddr.in6_u.u6_addr32[i];
		cookie = bpf_tcp_raw_gen_syncookie_ipv6(&reply.ip6, syn, tcp_len);
	}
	/* A SYN without data is checksummed here; one with data (TCP Fast Open) is answered as the kernel answers
	 * it under a flood, without its data, which the cookie cannot hold: its data are not read. */
	if (seg_len == tcp_len) {
		partial = stack_csum(opts.header, tcp_len);
		if (partial < 0)
			return SECBEAT_ABORTED;
		if (csum_fold(sum + bpf_htonl(tcp_len) + bpf_htonl(IPPROTO_TCP) + (__u64)partial) != 0)
			return SECBEAT_BAD_CHECKSUM;
	}
	if (cookie < 0)
		return SECBEAT_ABORTED;
	/* The cookie holds the client's MSS (the kernel reads it back from the ACK); the SYN-ACK advertises ours. */
	mss = family == 4 ? cfg->mss4 : cfg->mss6;
	if (!linux_syn_options(&opts))
		bpf_loop(40, read_syn_option, &opts, 0);

	/* L2: the SYN's, addresses swapped (its VLAN tags and EtherType stay). */
	{
		__u8 mac[6];

		__builtin_memcpy(mac, reply.l2, 6);
		__builtin_memcpy(reply.l2, reply.l2 + 6, 6);
		__builtin_memcpy(reply.l2 + 6, mac, 6);
	}

	/* TCP options, ordered as the kernel's SYN-ACK: MSS, [SACK_PERM | NOP NOP] TIMESTAMP, [NOP WSCALE]. */
	reply.options[opt_words++] = bpf_htonl((TCPOPT_MSS << 24) | (4 << 16) | mss);
	if (opts.timestamp) {
		tsval = (__u32)(bpf_ktime_get_coarse_ns() / 1000000) & ~TSMASK;
		tsval |= opts.wscale & TS_OPT_WSCALE_MASK;
		if (opts.sack)
			tsval |= TS_OPT_SACK;
		if ((opts.header[13] & (TCP_ECE | TCP_CWR)) == (TCP_ECE | TCP_CWR)) {
			tsval |= TS_OPT_ECN;
			flags |= TCP_ECE;
		}
		reply.options[opt_words++] = bpf_htonl(((opts.sack ? (TCPOPT_SACK_PERM << 8) | 2 : (TCPOPT_NOP << 8) | TCPOPT_NOP) << 16) |
						       (TCPOPT_TIMESTAMP << 8) | 10);
		reply.options[opt_words++] = bpf_htonl(tsval);
		reply.options[opt_words++] = opts.tsval;
		if (opts.wscale != TS_OPT_WSCALE_MASK)
			reply.options[opt_words++] = bpf_htonl((TCPOPT_NOP << 24) | (TCPOPT_WINDOW << 16) | (3 << 8) | cfg->wscale);
	}
	tcp_len = sizeof(struct tcphdr) + opt_words * 4;

	reply.tcp.source = syn->dest;
	reply.tcp.dest = syn->source;
	reply.tcp.seq = bpf_htonl((__u32)cookie);
	reply.tcp.ack_seq = bpf_htonl(bpf_ntohl(syn->seq) + 1);
	((__u8 *)&reply.tcp)[12] = (5 + opt_words) << 4;
	((__u8 *)&reply.tcp)[13] = flags;

	if (family == 4) {
		__be32 client = reply.ip4.saddr;

		ip_len = sizeof(struct iphdr);
		reply.ip4.saddr = reply.ip4.daddr;
		reply.ip4.daddr = client;
		reply.ip4.ihl = 5;
		reply.ip4.tos = 0;
		reply.ip4.id = 0;
		reply.ip4.tot_len = bpf_htons(ip_len + tcp_len);
		reply.ip4.frag_off = bpf_htons(0x4000); /* DF, as the kernel sends a SYN-ACK */
		reply.ip4.ttl = cfg->ttl;
		reply.ip4.check = 0;
		partial = stack_csum(&reply.ip4, sizeof(reply.ip4));
		if (partial < 0)
			return SECBEAT_ABORTED;
		reply.ip4.check = csum_fold(partial);
	} else {
		struct in6_addr client = reply.ip6.saddr;

		ip_len = sizeof(struct ipv6hdr);
		reply.ip6.saddr = reply.ip6.daddr;
		reply.ip6.daddr = client;
		*(__be32 *)&reply.ip6 = bpf_htonl(0x60000000);
		reply.ip6.payload_len = bpf_htons(tcp_len);
		reply.ip6.nexthdr = IPPROTO_TCP;
		reply.ip6.hop_limit = cfg->ttl;
	}
	/* The pseudo-header's addresses are the SYN's swapped: the same sum. */
	partial = stack_csum(&reply.tcp, tcp_len);
	if (partial < 0)
		return SECBEAT_ABORTED;
	reply.tcp.check = csum_fold(sum + bpf_htonl(tcp_len) + bpf_htonl(IPPROTO_TCP) + (__u64)partial);

	/* Grow or shrink at the head so the packet is the reply's length, then write the reply over it. */
	if (bpf_xdp_adjust_head(ctx, (int)pkt_len - (int)(l2_len + ip_len + tcp_len)))
		return SECBEAT_ABORTED;
	if (bpf_xdp_store_bytes(ctx, 0, reply.l2, l2_len))
		return SECBEAT_ABORTED;
	if (family == 4) {
		if (bpf_xdp_store_bytes(ctx, l2_len, &reply.ip4, sizeof(struct iphdr)))
			return SECBEAT_ABORTED;
	} else if (bpf_xdp_store_bytes(ctx, l2_len, &reply.ip6, sizeof(struct ipv6hdr))) {
		return SECBEAT_ABORTED;
	}
	tcp_len &= 0x3c;
	if (tcp_len > sizeof(reply.tcp) + sizeof(reply.options) ||
	    bpf_xdp_store_bytes(ctx, l2_len + ip_len, &reply.tcp, tcp_len))
		return SECBEAT_ABORTED;
	return SECBEAT_SYNACK;
}

/* UDP source ports of the services attackers reflect off (chargen, DNS, NTP, SNMP, NetBIOS, CLDAP, SSDP, WS-Discovery,
 * memcached, mDNS): traffic from them is an answer, legitimate only to a UDP service the node runs. */
static __always_inline bool reflector_port(__u16 port)
{
	switch (port) {
	case 17: case 19: case 53: case 123: case 137: case 161: case 389: case 1900: case 3702: case 5353: case 11211:
		return true;
	}
	return false;
}

/* Drops what a bad TCP header makes meaningless: SYN with FIN or RST, FIN with RST, no flag at all. */
static __always_inline bool bad_tcp_flags(__u8 flags)
{
	if ((flags & TCP_SYN) && (flags & (TCP_FIN | TCP_RST)))
		return true;
	if ((flags & (TCP_FIN | TCP_RST)) == (TCP_FIN | TCP_RST))
		return true;
	return (flags & (TCP_FIN | TCP_SYN | TCP_RST | TCP_ACK | TCP_PSH | TCP_URG)) == 0;
}

static __always_inline int judge(struct xdp_md *ctx, struct packet *pkt, const struct secbeat_config *cfg)
{
	int reason = parse(pkt);

	/* Not IP (PASS), or not IP enough to have a source (MALFORMED): nothing below applies. */
	if (pkt->family == 0)
		return reason;
	/* The source is known from here on: the lists come before any judgement of the packet itself. */
	if ((cfg->lists & SECBEAT_LIST_ALLOW) && listed(&sb_allowlist, pkt))
		return SECBEAT_ALLOWLIST;
	if ((cfg->lists & SECBEAT_LIST_BLOCK) && blocked(pkt))
		return SECBEAT_BLOCKLIST;
	if (reason >= 0)
		return reason;

	if (pkt->l4proto == IPPROTO_TCP) {
		struct tcphdr *tcp = l4_header(pkt, sizeof(struct tcphdr));
		bool protected, flow = false;
		__u8 flags;

		if (!tcp || tcp->doff < 5)
			return SECBEAT_MALFORMED;
		flags = ((__u8 *)tcp)[13];
		if (bad_tcp_flags(flags))
			return SECBEAT_MALFORMED;
		protected = port_bit(cfg->tcp_protected, bpf_ntohs(tcp->dest));
		if (protected) {
			if ((flags & (TCP_SYN | TCP_ACK)) == TCP_SYN)
				return secbeat_answer_syn(ctx, pkt->l2_len, pkt->l4_off, pkt->family);
			flow = known_flow(ctx, pkt, IPPROTO_TCP, tcp->source, tcp->dest);
			if (!flow && (flags & (TCP_SYN | TCP_ACK | TCP_RST)) == TCP_ACK) {
				long err;

				if (pkt->family == 4 && pkt->ip4)
					err = bpf_tcp_raw_check_syncookie_ipv4(pkt->ip4, tcp);
				else if (pkt->ip6)
					err = bpf_tcp_raw_check_syncookie_ipv6(pkt->ip6, tcp);
				else
					return SECBEAT_ABORTED;
				if (err == 0)
					return SECBEAT_COOKIE_ACK;
			}
		}
		if (source_over_rate(pkt, cfg))
			return SECBEAT_RATE_LIMIT;
		if (protected && !flow)
			return SECBEAT_ACK_FLOOD;
		return flow ? SECBEAT_FLOW : SECBEAT_PASS;
	}

	if (source_over_rate(pkt, cfg))
		return SECBEAT_RATE_LIMIT;

	if (pkt->l4proto == IPPROTO_UDP) {
		struct udphdr *udp = l4_header(pkt, sizeof(struct udphdr));
		__u16 dport;

		if (!udp || bpf_ntohs(udp->len) < sizeof(*udp))
			return SECBEAT_MALFORMED;
		dport = bpf_ntohs(udp->dest);
		if (port_bit(cfg->udp_open, dport))
			return SECBEAT_PASS;
		if (known_flow(ctx, pkt, IPPROTO_UDP, udp->source, udp->dest))
			return SECBEAT_FLOW;
		if (reflector_port(bpf_ntohs(udp->source)))
			return SECBEAT_UDP_AMPLIFICATION;
		return cfg->udp_closed_drop ? SECBEAT_UDP_CLOSED : SECBEAT_PASS;
	}

	if ((pkt->family == 4 && pkt->l4proto == IPPROTO_ICMP) || (pkt->family == 6 && pkt->l4proto == NEXTHDR_ICMP)) {
		__u8 *type = l4_header(pkt, 4);

		if (!type)
			return SECBEAT_MALFORMED;
		/* IPv6 neighbour discovery (router/neighbour solicitation and advertisement, redirect) is how the node
		 * stays reachable: never rationed. */
		if (pkt->family == 6 && *type >= 133 && *type <= 137)
			return SECBEAT_PASS;
		return icmp_over_rate(cfg) ? SECBEAT_ICMP_RATE : SECBEAT_PASS;
	}
	return SECBEAT_PASS;
}

static __always_inline int action_of(int reason)
{
	switch (reason) {
	case SECBEAT_PASS:
	case SECBEAT_ALLOWLIST:
	case SECBEAT_FLOW:
	case SECBEAT_COOKIE_ACK:
		return XDP_PASS;
	case SECBEAT_SYNACK:
		return XDP_TX;
	case SECBEAT_ABORTED:
		return XDP_ABORTED;
	default:
		return XDP_DROP;
	}
}

SEC("xdp")
int secbeat_xdp(struct xdp_md *ctx)
{
	struct packet pkt = {};
	__u32 key = 0;
	struct secbeat_config *cfg;
	int reason;

	pkt.data = (void *)(long)ctx->data;
	pkt.data_end = (void *)(long)ctx->data_end;
	pkt.len = pkt.data_end - pkt.data;
	cfg = bpf_map_lookup_elem(&sb_config, &key);
	if (!cfg)
		return count(SECBEAT_ABORTED, pkt.len, XDP_ABORTED);
	reason = judge(ctx, &pkt, cfg);
	return count(reason, pkt.len, action_of(reason));
}

char LICENSE[] SEC("license") = "GPL";
