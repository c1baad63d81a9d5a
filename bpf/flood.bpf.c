// SPDX-License-Identifier: GPL-2.0
/* The SYN-flood generator of bench/syn: run with BPF_PROG_TEST_RUN in live-frames mode
 * (BPF_F_TEST_XDP_LIVE_FRAMES) on the attacker's veth, it turns each copy of a template SYN (Ethernet, IPv4
 * without options, TCP) into one from a random source address and sends it (XDP_TX): millions of packets a second
 * from one core, where hping3 makes tens of thousands, so that the server's receive path works in batches as it
 * does under a real flood. Checksums are updated incrementally (RFC 1624); frames keep what the previous run
 * wrote, so the update starts from whatever source the frame holds. A template whose IP id is FIXED_SOURCE_ID keeps
 * its source: one sender far over its budget (the rate-limit path). */
#include <linux/bpf.h>
#include <linux/if_ether.h>
#include <linux/ip.h>
#include <linux/tcp.h>
#include <bpf/bpf_helpers.h>

#define FIXED_SOURCE_ID 0x5346

static __always_inline __u16 csum_replace4(__u16 check, __u32 from, __u32 to)
{
	__u32 sum = (__u16)~check;

	sum += (__u16)~(from >> 16) + (__u16)~(from & 0xffff);
	sum += (to >> 16) + (to & 0xffff);
	sum = (sum & 0xffff) + (sum >> 16);
	sum = (sum & 0xffff) + (sum >> 16);
	return ~sum;
}

SEC("xdp")
int secbeat_flood(struct xdp_md *ctx)
{
	void *data = (void *)(long)ctx->data;
	void *data_end = (void *)(long)ctx->data_end;
	struct ethhdr *eth = data;
	struct iphdr *ip = data + sizeof(*eth);
	struct tcphdr *tcp = (void *)(ip + 1);
	__u32 from, to;

	if ((void *)(tcp + 1) > data_end)
		return XDP_ABORTED;
	if (ip->id == __builtin_bswap16(FIXED_SOURCE_ID))
		return XDP_TX;
	from = ip->saddr;
	/* Any unicast-looking IPv4 source: 1.0.0.0 – 223.255.255.255. */
	to = bpf_get_prandom_u32();
	to = (to & 0x00ffffff) | ((1 + (to >> 24) % 223) << 24);
	to = __builtin_bswap32(to);
	ip->saddr = to;
	ip->check = csum_replace4(ip->check, from, to);
	tcp->check = csum_replace4(tcp->check, from, to);
	return XDP_TX;
}

char LICENSE[] SEC("license") = "GPL";
