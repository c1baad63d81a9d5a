// SPDX-License-Identifier: GPL-2.0
/* XDP_PASS for the far end of a veth pair in SYN mode's test bed and bench (test/helpers/netns.ts). A veth sends
 * an XDP_TX frame (the cookie SYN-ACK) to its peer only when the peer runs in NAPI mode, which an XDP program on
 * the peer turns on; without it those frames vanish. Physical NICs need nothing of the sort. */
#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>

SEC("xdp")
int peer_pass(struct xdp_md *ctx)
{
	return XDP_PASS;
}

char LICENSE[] SEC("license") = "GPL";
