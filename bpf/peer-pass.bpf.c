// SPDX-License-Identifier: GPL-2.0
/* The far end of a veth pair in SYN mode's test bed and bench (test/helpers/netns.ts): the switch's port facing the
 * server, and the one facing the attacker. Two jobs:
 *  - A veth sends an XDP_TX frame (the cookie SYN-ACK, the bench's generated flood) to its peer only when the peer
 *    runs in NAPI mode, which an XDP program on the peer turns on; without one those frames vanish.
 *  - It stands in for the upstream router a flood comes through, which has no route to the sources the flood made
 *    up: an IPv4 frame to an address outside 10.0.0.0/8 (the bed's) is dropped here, so the replies to spoofed
 *    sources cost the same little for every contender the bench compares, instead of a trip across the bridge
 *    into the attacker's stack that would bury the server's own work in the figures.
 * Physical NICs need nothing of the sort. */
#include <linux/bpf.h>
#include <linux/if_ether.h>
#include <linux/ip.h>
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_endian.h>

SEC("xdp")
int peer_pass(struct xdp_md *ctx)
{
	void *data = (void *)(long)ctx->data;
	void *data_end = (void *)(long)ctx->data_end;
	struct ethhdr *eth = data;
	struct iphdr *ip = data + sizeof(*eth);

	if ((void *)(ip + 1) > data_end || eth->h_proto != bpf_htons(ETH_P_IP))
		return XDP_PASS;
	return (bpf_ntohl(ip->daddr) >> 24) == 10 ? XDP_PASS : XDP_DROP;
}

char LICENSE[] SEC("license") = "GPL";
