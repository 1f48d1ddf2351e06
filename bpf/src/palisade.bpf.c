/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Palisade datapath: two tc (clsact) programs on the host-side interface of
 * each local pod.
 *   from_pod: ingress hook of the host-side veth = packets the pod sends
 *             (the pod's EGRESS policy, peer = destination address).
 *   to_pod:   egress hook of the host-side veth = packets the pod receives
 *             (the pod's INGRESS policy, peer = source address).
 * Every struct and the lookup sequence live in include/palisade.h; the
 * design (conntrack scopes, revisions, fragments, events) is in
 * docs/datapath.md. Each program is fast_path (established connections:
 * one conntrack lookup) and, when that does not decide, handle() (the
 * full sequence).
 */
#include <linux/bpf.h>
#include <linux/pkt_cls.h>
#include <linux/if_ether.h>
#include <linux/ip.h>
#include <linux/ipv6.h>
#include <linux/in.h>
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_endian.h>

#include "palisade.h"

char LICENSE[] SEC("license") = "GPL";

/* ------------------------------------------------------------------ maps */
/* Pinned maps carry state across agent restarts (LIBBPF_PIN_BY_NAME under
 * the pin root the loader chooses). */

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, PAL_MAX_ENDPOINTS);
	__type(key, struct pal_endpoint_key);
	__type(value, struct pal_endpoint_value);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} pal_endpoints SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_LPM_TRIE);
	__uint(max_entries, PAL_MAX_IPCACHE);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__type(key, struct pal_ipcache_key);
	__type(value, struct pal_ipcache_value);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} pal_ipcache SEC(".maps");

struct pal_policy_inner {
	__uint(type, BPF_MAP_TYPE_LPM_TRIE);
	__uint(max_entries, PAL_MAX_TABLE_ENTRIES);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	/* sizes, not __type: clang emits only forward BTF for types reached
	 * through __array, and libbpf cannot size those */
	__uint(key_size, sizeof(struct pal_policy_key));
	__uint(value_size, sizeof(struct pal_policy_value));
};

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY_OF_MAPS);
	__uint(max_entries, PAL_MAX_TABLES);
	__type(key, __u32);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
	__array(values, struct pal_policy_inner);
} pal_policy SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, PAL_MAX_CONNTRACK);
	__type(key, struct pal_ct_key);
	__type(value, struct pal_ct_value);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} pal_conntrack SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, PAL_MAX_FRAGS);
	__type(key, struct pal_frag_key);
	__type(value, struct pal_frag_value);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} pal_frags SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct pal_config);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} pal_config SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, PAL_MAX_COOKIES);
	__type(key, __u32);
	__type(value, struct pal_rule_counter);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} pal_rule_ctrs SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, PAL_DROP__MAX);
	__type(key, __u32);
	__type(value, struct pal_stat);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} pal_drops SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, PAL_STAT__MAX);
	__type(key, __u32);
	__type(value, struct pal_stat);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} pal_stats SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_RINGBUF);
	__uint(max_entries, PAL_RINGBUF_BYTES);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} pal_events SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct pal_ratelimit);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} pal_ratelimit SEC(".maps");

/* --------------------------------------------------------------- parsing */

#define ETH_HLEN_ 14
#define IPV6_EXT_MAX 8 /* extension headers walked before giving up */
#define NEXTHDR_HOP 0
#define NEXTHDR_ROUTING 43
#define NEXTHDR_FRAGMENT 44
#define NEXTHDR_AUTH 51
#define NEXTHDR_NONE 59
#define NEXTHDR_DEST 60
#define IPPROTO_ICMPV6_ 58

struct pkt {
	__u8 saddr[16];
	__u8 daddr[16];
	__u16 sport_be; /* conntrack ports (ICMP echo: the identifier on both) */
	__u16 dport_be;
	__u16 policy_port_be; /* port the policy sees: dport; 0 for ICMP */
	__u8 protocol;
	__u8 ip_version;
	__u8 tcp_flags;
	__u8 frag_first; /* first fragment of a fragmented datagram */
	__u8 frag_later; /* non-first fragment: no L4 header */
	__u8 bypass;     /* link-local control (ARP, ND, MLD): never policy */
	__u8 no_ct;      /* no connection to track (ICMP errors, ...) */
	__u8 pad;
	__u16 icmp_tc_be; /* ICMP type and code bytes, reported in events' sport_be */
	__u32 frag_id;
	__u32 len;
};

enum parse_result {
	PARSE_OK = 0,
	PARSE_BAD = 1,
};

static __always_inline void map_v4(__u8 *dst, __u32 addr_be)
{
	__builtin_memset(dst, 0, 10);
	dst[10] = 0xff;
	dst[11] = 0xff;
	__builtin_memcpy(dst + 12, &addr_be, 4);
}

/*
 * Headers are read in place (skb->data .. skb->data_end) instead of copied
 * out with bpf_skb_load_bytes: one bounds check per header, no helper call.
 * When the header is beyond the linear part (rare: veth and the stack put
 * the headers there), bpf_skb_pull_data makes it linear once; a packet too
 * short for the header fails like bpf_skb_load_bytes did (PARSE_BAD).
 * A pull invalidates every earlier packet pointer (the verifier enforces
 * that), so callers copy what they need before the next hdr().
 * HDR_OFF_MAX bounds the offset for the verifier (packet pointers carry at
 * most 0xffff of variable offset); real header chains end far below it
 * (8 IPv6 extension headers of at most 2 KiB each).
 */
#define HDR_OFF_MAX 0x7fff

/* skb->data / skb->data_end as one load each from the context register:
 * clang otherwise keeps &skb->data in a register (a modified context
 * pointer, which the verifier refuses to dereference). */
#define SKB_FIELD(skb, field)                                                    \
	({                                                                       \
		void *ptr_;                                                      \
		asm volatile("%[res] = *(u32 *)(%[base] + %[off])"               \
			     : [res] "=r"(ptr_)                                  \
			     : [base] "r"(skb),                                  \
			       [off] "i"(__builtin_offsetof(struct __sk_buff, field))); \
		ptr_;                                                            \
	})

static __always_inline void *hdr(struct __sk_buff *skb, __u32 off, __u32 len)
{
	if (off > HDR_OFF_MAX)
		return 0;
	void *h = SKB_FIELD(skb, data) + off;
	/* keep h one register: the verifier marks the checked pointer's range,
	 * and a pointer clang recomputes from data + off would not carry it */
	asm volatile("" : "+r"(h));
	if (h + len > SKB_FIELD(skb, data_end)) {
		if (bpf_skb_pull_data(skb, off + len))
			return 0;
		h = SKB_FIELD(skb, data) + off;
		asm volatile("" : "+r"(h));
		if (h + len > SKB_FIELD(skb, data_end))
			return 0;
	}
	return h;
}

static __always_inline int parse_l4(struct __sk_buff *skb, __u32 off, struct pkt *p)
{
	switch (p->protocol) {
	case IPPROTO_TCP: {
		__u8 *h = hdr(skb, off, 14);
		if (!h)
			return PARSE_BAD;
		__builtin_memcpy(&p->sport_be, h, 2);
		__builtin_memcpy(&p->dport_be, h + 2, 2);
		p->tcp_flags = h[13];
		p->policy_port_be = p->dport_be;
		return PARSE_OK;
	}
	case IPPROTO_UDP:
	case IPPROTO_SCTP: {
		__u16 *ports = hdr(skb, off, 4);
		if (!ports)
			return PARSE_BAD;
		p->sport_be = ports[0];
		p->dport_be = ports[1];
		p->policy_port_be = p->dport_be;
		return PARSE_OK;
	}
	case IPPROTO_ICMP: {
		__u8 *h = hdr(skb, off, 6);
		if (!h)
			return PARSE_BAD;
		__builtin_memcpy(&p->icmp_tc_be, h, 2);
		/* echo request 8 / reply 0 are tracked by identifier */
		if (h[0] == 8 || h[0] == 0) {
			__builtin_memcpy(&p->sport_be, h + 4, 2);
			p->dport_be = p->sport_be;
		} else {
			p->no_ct = 1;
		}
		return PARSE_OK;
	}
	case IPPROTO_ICMPV6_: {
		__u8 *h = hdr(skb, off, 6);
		if (!h)
			return PARSE_BAD;
		__u8 type = h[0];
		__builtin_memcpy(&p->icmp_tc_be, h, 2);
		if (type == 128 || type == 129) {
			__builtin_memcpy(&p->sport_be, h + 4, 2);
			p->dport_be = p->sport_be;
		} else if ((type >= 133 && type <= 137) || (type >= 130 && type <= 132) ||
			   type == 143) {
			/* neighbour discovery and MLD: IPv6 does not work without */
			p->bypass = 1;
		} else {
			p->no_ct = 1;
		}
		return PARSE_OK;
	}
	default:
		/* other protocols: policy sees the protocol with port 0 */
		return PARSE_OK;
	}
}

static __always_inline int parse_ipv4(struct __sk_buff *skb, struct pkt *p)
{
	struct iphdr *ip = hdr(skb, ETH_HLEN_, sizeof(*ip));
	if (!ip)
		return PARSE_BAD;
	if (ip->version != 4 || ip->ihl < 5)
		return PARSE_BAD;
	p->ip_version = 4;
	map_v4(p->saddr, ip->saddr);
	map_v4(p->daddr, ip->daddr);
	p->protocol = ip->protocol;
	__u16 frag = bpf_ntohs(ip->frag_off);
	__u16 offset = frag & 0x1fff;
	p->frag_id = bpf_ntohs(ip->id);
	if (offset != 0) {
		p->frag_later = 1;
		return PARSE_OK;
	}
	if (frag & 0x2000)
		p->frag_first = 1;
	return parse_l4(skb, ETH_HLEN_ + ip->ihl * 4, p);
}

static __always_inline int parse_ipv6(struct __sk_buff *skb, struct pkt *p)
{
	struct ipv6hdr *ip6 = hdr(skb, ETH_HLEN_, sizeof(*ip6));
	if (!ip6)
		return PARSE_BAD;
	if (ip6->version != 6)
		return PARSE_BAD;
	p->ip_version = 6;
	__builtin_memcpy(p->saddr, &ip6->saddr, 16);
	__builtin_memcpy(p->daddr, &ip6->daddr, 16);
	__u8 nh = ip6->nexthdr;
	__u32 off = ETH_HLEN_ + sizeof(*ip6);
	int i;
	/* Bounded walk over extension headers; more than IPV6_EXT_MAX = malformed. */
	for (i = 0; i < IPV6_EXT_MAX; i++) {
		switch (nh) {
		case NEXTHDR_HOP:
		case NEXTHDR_ROUTING:
		case NEXTHDR_DEST: {
			__u8 *h = hdr(skb, off, 2);
			if (!h)
				return PARSE_BAD;
			nh = h[0];
			off += ((__u32)h[1] + 1) * 8;
			break;
		}
		case NEXTHDR_AUTH: {
			__u8 *h = hdr(skb, off, 2);
			if (!h)
				return PARSE_BAD;
			nh = h[0];
			off += ((__u32)h[1] + 2) * 4;
			break;
		}
		case NEXTHDR_FRAGMENT: {
			__u8 *h = hdr(skb, off, 8);
			if (!h)
				return PARSE_BAD;
			nh = h[0];
			__u16 fo = ((__u16)h[2] << 8) | h[3];
			__u32 id_be;
			__builtin_memcpy(&id_be, h + 4, 4);
			p->frag_id = bpf_ntohl(id_be);
			off += 8;
			if ((fo >> 3) != 0) {
				p->protocol = nh;
				p->frag_later = 1;
				return PARSE_OK;
			}
			if (fo & 1)
				p->frag_first = 1;
			break;
		}
		default:
			p->protocol = nh;
			return parse_l4(skb, off, p);
		}
	}
	return PARSE_BAD;
}

static __always_inline int parse(struct __sk_buff *skb, struct pkt *p, __u16 *eth_proto)
{
	__u16 *proto_be = hdr(skb, 12, 2);
	if (!proto_be)
		return PARSE_BAD;
	*eth_proto = bpf_ntohs(*proto_be);
	p->len = skb->len;
	if (*eth_proto == ETH_P_IP)
		return parse_ipv4(skb, p);
	if (*eth_proto == ETH_P_IPV6)
		return parse_ipv6(skb, p);
	if (*eth_proto == ETH_P_ARP) {
		p->bypass = 1;
		return PARSE_OK;
	}
	return PARSE_BAD;
}

/* ------------------------------------------------------------- counting */

static __always_inline void count_drop(__u32 reason, __u32 len)
{
	struct pal_stat *s = bpf_map_lookup_elem(&pal_drops, &reason);
	if (s) {
		s->packets++;
		s->bytes += len;
	}
}

static __always_inline void count_stat(__u32 index)
{
	struct pal_stat *s = bpf_map_lookup_elem(&pal_stats, &index);
	if (s)
		s->packets++;
}

static __always_inline void count_rule(__u32 cookie, __u32 len)
{
	struct pal_rule_counter *c = bpf_map_lookup_elem(&pal_rule_ctrs, &cookie);
	if (c) {
		c->packets++;
		c->bytes += len;
	}
}

/* ---------------------------------------------------------------- events */

struct verdict_info {
	__u32 local_identity;
	__u32 peer_identity;
	__u32 cookie;
	__u32 staged_cookie;
	__u8 verdict;
	__u8 staged;
	__u8 reason;
	__u8 pad;
};

/*
 * Deny-side events (DENY, REVOKED, and AUDIT of a denied packet) pass the
 * per-CPU limiter; suppressed ones are counted in PAL_STAT_EVENTS_SUPPRESSED
 * and reported in the next sent event's suppressed_before.
 * Returns the number to report, or -1 when this event must be suppressed.
 */
static __always_inline long ratelimit(const struct pal_config *cfg)
{
	__u32 zero = 0;
	struct pal_ratelimit *rl = bpf_map_lookup_elem(&pal_ratelimit, &zero);
	if (!rl)
		return 0;
	__u64 now = bpf_ktime_get_ns();
	if (now - rl->window_start_ns >= 1000000000ull) {
		rl->window_start_ns = now;
		rl->sent = 0;
	}
	__u32 limit = cfg ? cfg->deny_events_per_sec : 0;
	if (limit != 0 && rl->sent >= limit) {
		rl->suppressed++;
		count_stat(PAL_STAT_EVENTS_SUPPRESSED);
		return -1;
	}
	rl->sent++;
	long n = rl->suppressed;
	rl->suppressed = 0;
	return n;
}

static __always_inline void emit(struct __sk_buff *skb, __u8 type, __u8 dir,
				 const struct pkt *p, const struct verdict_info *v,
				 const struct pal_config *cfg, int limited)
{
	long suppressed = 0;
	if (limited) {
		suppressed = ratelimit(cfg);
		if (suppressed < 0)
			return;
	}
	struct pal_event *e = bpf_ringbuf_reserve(&pal_events, sizeof(*e), 0);
	if (!e) {
		count_stat(PAL_STAT_EVENTS_LOST);
		return;
	}
	e->ts_ns = bpf_ktime_get_ns();
	e->type = type;
	e->direction = dir;
	e->verdict = v->verdict;
	e->staged_verdict = v->staged;
	e->protocol = p->protocol;
	e->drop_reason = v->reason;
	e->tcp_flags = p->tcp_flags;
	e->ip_version = p->ip_version;
	e->ifindex = skb->ifindex;
	if (dir == PAL_DIR_EGRESS) {
		e->src_identity = v->local_identity;
		e->dst_identity = v->peer_identity;
	} else {
		e->src_identity = v->peer_identity;
		e->dst_identity = v->local_identity;
	}
	e->cookie = v->cookie;
	e->staged_cookie = v->staged_cookie;
	e->revision = cfg ? cfg->revision : 0;
	__builtin_memcpy(e->saddr, p->saddr, 16);
	__builtin_memcpy(e->daddr, p->daddr, 16);
	if (p->protocol == IPPROTO_ICMP || p->protocol == IPPROTO_ICMPV6_) {
		/* flow records read ICMP type/code from sport, the echo id from dport */
		e->sport_be = p->icmp_tc_be;
		e->dport_be = p->sport_be;
	} else {
		e->sport_be = p->sport_be;
		e->dport_be = p->dport_be;
	}
	e->pkt_len = p->len;
	e->suppressed_before = (__u32)suppressed;
	e->pad = 0;
	bpf_ringbuf_submit(e, 0);
}

/* ---------------------------------------------------------------- policy */

/* What the ipcache says about the peer address (WORLD and zeros when no entry). */
struct peer_info {
	__u32 identity;
	__u32 ns_identity;
	__u32 cidr_identity;
	__u32 node_id;
	__u32 flags;
};

/* Per tier, the best (lowest non-zero rank) match among the lookups. */
struct tier_best {
	struct pal_tier_match enforced[PAL_TIERS];
	struct pal_tier_match staged[PAL_TIERS];
};

/* The outcome of resolve_tiers. */
struct decision {
	__u32 cookie;
	__u8 allow;
	__u8 flags;
};

static __always_inline void take_best(struct pal_tier_match *best, const struct pal_tier_match *m)
{
	if (m->rank != 0 && (best->rank == 0 || m->rank < best->rank))
		*best = *m;
}

static __always_inline void merge_value(struct tier_best *b, const struct pal_policy_value *v)
{
	if (!v)
		return;
#pragma unroll
	for (int t = 0; t < PAL_TIERS; t++) {
		take_best(&b->enforced[t], &v->enforced[t]);
		take_best(&b->staged[t], &v->staged[t]);
	}
}

/*
 * Up to four lookups in the subject's table, each longest-prefix over
 * (identity, protocol, port): the peer's identity, its namespace identity
 * and CIDR identity when it has them, and ANY; merged per tier. Returns 0
 * when the table is missing.
 * A global (noinline) function: the verifier checks it once, not once per
 * path of the caller (the per-tier merges branch a lot).
 */
__attribute__((noinline)) int policy_lookup(__u32 table, const struct peer_info *peer,
					   __u32 protocol, __u32 port_be, struct tier_best *out)
{
	if (!peer || !out)
		return 0;
	void *inner = bpf_map_lookup_elem(&pal_policy, &table);
	if (!inner)
		return 0;
	struct pal_policy_key k = {
		.prefixlen = PAL_POLICY_KEY_FULL_PREFIX,
		.identity_be = bpf_htonl(peer->identity),
		.protocol = (__u8)protocol,
		.pad = 0,
	};
	__u16 port16 = (__u16)port_be;
	__builtin_memcpy(k.port_be, &port16, 2);
	merge_value(out, bpf_map_lookup_elem(inner, &k));
	if (peer->ns_identity != 0) {
		k.identity_be = bpf_htonl(peer->ns_identity);
		merge_value(out, bpf_map_lookup_elem(inner, &k));
	}
	if (peer->cidr_identity != 0) {
		k.identity_be = bpf_htonl(peer->cidr_identity);
		merge_value(out, bpf_map_lookup_elem(inner, &k));
	}
	k.identity_be = bpf_htonl(PAL_ID_ANY);
	merge_value(out, bpf_map_lookup_elem(inner, &k));
	return 1;
}

static __always_inline void rule_decides(const struct pal_tier_match *m, struct decision *d)
{
	d->allow = m->action != PAL_ACTION_DENY;
	d->cookie = m->cookie;
	d->flags = m->flags;
}

/*
 * Tier resolution (policy-compiler/src/simulate/engine.ts resolveTiers): an
 * Admin match other than Pass decides; else, isolated by a NetworkPolicy in
 * this direction: a NetworkPolicy match allows, the pod's own node is
 * allowed (cookie 0), anything else denied (cookie 0); not isolated: a
 * Baseline match decides, else default allow (cookie 0).
 */
__attribute__((noinline)) int resolve_tiers(const struct tier_best *tb, int staged, int isolated,
					   int same_node, struct decision *d)
{
	if (!tb || !d)
		return 0;
	const struct pal_tier_match *best = staged ? tb->staged : tb->enforced;
	d->cookie = 0;
	d->flags = 0;
	if (best[PAL_TIER_ADMIN].rank != 0 && best[PAL_TIER_ADMIN].action != PAL_ACTION_PASS) {
		rule_decides(&best[PAL_TIER_ADMIN], d);
		return 0;
	}
	if (isolated) {
		if (best[PAL_TIER_NETWORK_POLICY].rank != 0) {
			rule_decides(&best[PAL_TIER_NETWORK_POLICY], d);
			return 0;
		}
		d->allow = same_node ? 1 : 0;
		return 0;
	}
	if (best[PAL_TIER_BASELINE].rank != 0) {
		rule_decides(&best[PAL_TIER_BASELINE], d);
		return 0;
	}
	d->allow = 1;
	return 0;
}

static __always_inline int endpoint_isolated(const struct pal_endpoint_value *ep, __u8 dir)
{
	return !!(ep->flags &
		  (dir == PAL_DIR_EGRESS ? PAL_EP_F_EGRESS_ISOLATED : PAL_EP_F_INGRESS_ISOLATED));
}

static __always_inline int endpoint_audit(const struct pal_endpoint_value *ep, __u8 dir)
{
	return !!(ep->flags & (dir == PAL_DIR_EGRESS ? PAL_EP_F_EGRESS_AUDIT : PAL_EP_F_INGRESS_AUDIT));
}

static __always_inline void ct_key(struct pal_ct_key *k, const __u8 *s, const __u8 *d,
				   __u16 sport, __u16 dport, __u8 proto, __u8 scope)
{
	__builtin_memcpy(k->saddr, s, 16);
	__builtin_memcpy(k->daddr, d, 16);
	k->sport_be = sport;
	k->dport_be = dport;
	k->protocol = proto;
	k->pad[PAL_CT_KEY_SCOPE_BYTE] = scope;
	k->pad[1] = 0;
	k->pad[2] = 0;
}

static __always_inline void frag_record(const struct pkt *p, __u8 dir, __u8 verdict)
{
	if (!p->frag_first)
		return;
	struct pal_frag_key fk = {};
	__builtin_memcpy(fk.saddr, p->saddr, 16);
	__builtin_memcpy(fk.daddr, p->daddr, 16);
	fk.id = p->frag_id;
	fk.protocol = p->protocol;
	fk.pad[PAL_FRAG_KEY_SCOPE_BYTE] = dir;
	struct pal_frag_value fv = {
		.sport_be = p->sport_be,
		.dport_be = p->dport_be,
		.verdict = verdict,
	};
	bpf_map_update_elem(&pal_frags, &fk, &fv, BPF_ANY);
}

static __always_inline int drop(struct __sk_buff *skb, __u8 dir, const struct pkt *p,
				struct verdict_info *v, const struct pal_config *cfg,
				__u8 event_type)
{
	count_drop(v->reason, p->len);
	v->verdict = PAL_VERDICT_DENY;
	emit(skb, event_type, dir, p, v, cfg, 1);
	return TC_ACT_SHOT;
}

/* ipcache longest-prefix match of the peer; WORLD and zeros when no entry. */
static __always_inline void lookup_peer(const struct pkt *p, __u8 dir, struct verdict_info *v,
					struct peer_info *peer)
{
	struct pal_ipcache_key ik = { .prefixlen = 128 };
	__builtin_memcpy(ik.addr, dir == PAL_DIR_EGRESS ? p->daddr : p->saddr, 16);
	const struct pal_ipcache_value *ipc = bpf_map_lookup_elem(&pal_ipcache, &ik);
	if (ipc) {
		peer->identity = ipc->identity;
		peer->ns_identity = ipc->ns_identity;
		peer->cidr_identity = ipc->cidr_identity;
		peer->node_id = ipc->node_id;
		peer->flags = ipc->flags;
	} else {
		peer->identity = PAL_ID_WORLD;
		peer->ns_identity = 0;
		peer->cidr_identity = 0;
		peer->node_id = 0;
		peer->flags = 0;
	}
	v->peer_identity = peer->identity;
}

/* Clock of conntrack last_seen_ns: CLOCK_MONOTONIC at tick resolution. A
 * last-seen time needs no more, and the coarse clock is a read of the
 * timekeeper's base where bpf_ktime_get_ns reads the clocksource (rdtsc
 * plus pvclock arithmetic in a VM) on every packet. */
static __always_inline __u64 ct_now(void)
{
	return bpf_ktime_get_coarse_ns();
}

/* Per-packet bookkeeping of an established connection passing. */
static __always_inline int ct_pass(struct pal_ct_value *ct, const struct pkt *p, __u8 scope,
				   __u8 dir)
{
	ct->last_seen_ns = ct_now();
	ct->packets++;
	ct->bytes += p->len;
	if (scope != dir && !(ct->flags & PAL_CT_F_SEEN_REPLY))
		ct->flags |= PAL_CT_F_SEEN_REPLY;
	count_rule(ct->cookie, p->len);
	frag_record(p, dir, PAL_VERDICT_ALLOW);
	return TC_ACT_OK;
}

static __always_inline int handle(struct __sk_buff *skb, __u8 dir)
{
	__u32 zero = 0;
	const struct pal_config *cfg = bpf_map_lookup_elem(&pal_config, &zero);
	__u32 revision = cfg ? cfg->revision : 0;
	struct pkt p = {};
	struct verdict_info v = {};
	__u16 eth_proto = 0;
	__u8 other = dir == PAL_DIR_EGRESS ? PAL_DIR_INGRESS : PAL_DIR_EGRESS;
	__u32 ifindex = skb->ifindex;

	int parsed = parse(skb, &p, &eth_proto);

	/* 1. conntrack, first: this hook's own connections (scope = dir,
	 *    forward) and replies of connections this endpoint admitted in the
	 *    other direction (scope = other, reversed tuple). Lookups only; what
	 *    a hit means is decided below. */
	struct pal_ct_key ck;
	struct pal_ct_value *ct = 0;
	__u8 scope = dir;
	__u16 ct_port = p.policy_port_be;
	if (parsed == PARSE_OK && !p.bypass && !p.frag_later && !p.no_ct) {
		ct_key(&ck, p.saddr, p.daddr, p.sport_be, p.dport_be, p.protocol, dir);
		ct = bpf_map_lookup_elem(&pal_conntrack, &ck);
		if (!ct) {
			ct_key(&ck, p.daddr, p.saddr, p.dport_be, p.sport_be, p.protocol, other);
			ct = bpf_map_lookup_elem(&pal_conntrack, &ck);
			if (ct) {
				scope = other;
				/* the policy port of the original direction */
				ct_port = (p.protocol == IPPROTO_ICMP || p.protocol == IPPROTO_ICMPV6_)
						  ? 0
						  : p.sport_be;
			}
		}
		/* Fast path: checked at the current revision on this interface.
		 * The entry was created or re-checked with this interface's
		 * endpoint present and ready at that revision, and every write
		 * of pal_endpoints is followed by a revision bump (Datapath
		 * applyFull/applyDelta), so the endpoint lookup would say the
		 * same: skip it, and the ipcache and policy lookups with it. */
		if (ct && ct->revision == revision && ct->ifindex == ifindex)
			return ct_pass(ct, &p, scope, dir);
	}

	/* 2. endpoint: missing or not ready = fail closed */
	struct pal_endpoint_key ek = { .ifindex = ifindex };
	const struct pal_endpoint_value *ep = bpf_map_lookup_elem(&pal_endpoints, &ek);
	if (!ep || !(ep->flags & PAL_EP_F_POLICY_READY)) {
		v.reason = PAL_DROP_NO_ENDPOINT_POLICY;
		return drop(skb, dir, &p, &v, cfg, PAL_EVENT_DENY);
	}
	v.local_identity = ep->identity;
	if (parsed != PARSE_OK) {
		v.reason = PAL_DROP_PARSE;
		return drop(skb, dir, &p, &v, cfg, PAL_EVENT_DENY);
	}
	if (p.bypass)
		return TC_ACT_OK;

	/* 3. peer identity from the ipcache (WORLD when unknown): looked up
	 *    only where a decision or an event needs it, not for packets of
	 *    established connections (an LPM walk per packet saved) */
	struct peer_info peer; /* every field set by lookup_peer before use */

	/* non-first fragments follow the first one of the same datagram */
	if (p.frag_later) {
		struct pal_frag_key fk = {};
		__builtin_memcpy(fk.saddr, p.saddr, 16);
		__builtin_memcpy(fk.daddr, p.daddr, 16);
		fk.id = p.frag_id;
		fk.protocol = p.protocol;
		fk.pad[PAL_FRAG_KEY_SCOPE_BYTE] = dir;
		const struct pal_frag_value *fv = bpf_map_lookup_elem(&pal_frags, &fk);
		if (!fv) {
			lookup_peer(&p, dir, &v, &peer);
			v.reason = PAL_DROP_FRAG_UNKNOWN;
			return drop(skb, dir, &p, &v, cfg, PAL_EVENT_DENY);
		}
		p.sport_be = fv->sport_be;
		p.dport_be = fv->dport_be;
		if (fv->verdict != PAL_VERDICT_ALLOW) {
			lookup_peer(&p, dir, &v, &peer);
			v.reason = PAL_DROP_POLICY_DENIED;
			return drop(skb, dir, &p, &v, cfg, PAL_EVENT_DENY);
		}
		return TC_ACT_OK;
	}

	__u32 table = dir == PAL_DIR_EGRESS ? ep->egress_table : ep->ingress_table;

	/* 4. an established connection not on the fast path: stale revision
	 *    (re-check), or checked on another interface / by an older program
	 *    (ifindex not stamped): passes as before and is stamped with this
	 *    interface, whose endpoint is ready. */
	if (ct) {
		if (ct->revision != revision) {
			/* policy changed since this connection was checked: re-check it */
			struct tier_best tb = {};
			struct decision cd = {};
			__u32 st = scope == PAL_DIR_EGRESS ? ep->egress_table : ep->ingress_table;
			lookup_peer(&p, dir, &v, &peer);
			int have = policy_lookup(st, &peer, p.protocol, ct_port, &tb);
			if (have)
				resolve_tiers(&tb, 0, endpoint_isolated(ep, scope),
					      peer.node_id != 0 && peer.node_id == ep->node_id, &cd);
			if (!have || !cd.allow) {
				v.cookie = ct->cookie;
				bpf_map_delete_elem(&pal_conntrack, &ck);
				v.reason = PAL_DROP_REVOKED;
				return drop(skb, dir, &p, &v, cfg, PAL_EVENT_REVOKED);
			}
			ct->revision = revision;
			ct->cookie = cd.cookie;
		}
		ct->ifindex = ifindex;
		return ct_pass(ct, &p, scope, dir);
	}

	/* 5. policy of this endpoint for this direction */
	lookup_peer(&p, dir, &v, &peer);
	struct tier_best tb = {};
	struct decision d = {};
	struct decision sd = {};
	int found = policy_lookup(table, &peer, p.protocol, p.policy_port_be, &tb);
	int same_node = peer.node_id != 0 && peer.node_id == ep->node_id;
	int isolated = endpoint_isolated(ep, dir);
	int audit = found && endpoint_audit(ep, dir);
	if (found)
		resolve_tiers(&tb, 0, isolated, same_node, &d);
	if (audit)
		resolve_tiers(&tb, 1, isolated, same_node, &sd);
	int allowed = found && d.allow;
	v.cookie = d.cookie;
	v.staged = audit ? (sd.allow ? PAL_STAGED_ALLOW : PAL_STAGED_DENY) : PAL_STAGED_NONE;
	v.staged_cookie = audit ? sd.cookie : 0;
	if (found)
		count_rule(d.cookie, p.len);
	int disagree = audit && (!!sd.allow) != allowed;
	int audit_events = cfg && (cfg->flags & PAL_CFG_F_AUDIT_EVENTS);

	if (allowed && dir == PAL_DIR_INGRESS && (d.flags & PAL_POL_F_ENCRYPT_REQUIRED) &&
	    (peer.flags & PAL_IPC_F_REMOTE_CLUSTER) && !(skb->mark & PAL_SKB_MARK_TUNNELED))
		allowed = 0, v.reason = PAL_DROP_UNENCRYPTED;
	else if (!allowed)
		v.reason = (found && (d.flags & PAL_POL_F_EXPLICIT_DENY)) ? PAL_DROP_POLICY_DENY
									  : PAL_DROP_POLICY_DENIED;

	if (!allowed) {
		frag_record(&p, dir, PAL_VERDICT_DENY);
		if (disagree && audit_events) {
			v.verdict = PAL_VERDICT_DENY;
			emit(skb, PAL_EVENT_AUDIT, dir, &p, &v, cfg, 1);
		}
		return drop(skb, dir, &p, &v, cfg, PAL_EVENT_DENY);
	}

	v.verdict = PAL_VERDICT_ALLOW;
	if (!p.no_ct && !(p.protocol == IPPROTO_TCP && (p.tcp_flags & 0x04 /* RST */))) {
		struct pal_ct_value nv = {
			.last_seen_ns = ct_now(),
			.packets = 1,
			.bytes = p.len,
			.revision = revision,
			.cookie = d.cookie,
			.ifindex = ifindex,
		};
		ct_key(&ck, p.saddr, p.daddr, p.sport_be, p.dport_be, p.protocol, dir);
		bpf_map_update_elem(&pal_conntrack, &ck, &nv, BPF_ANY);
	}
	frag_record(&p, dir, PAL_VERDICT_ALLOW);
	emit(skb, PAL_EVENT_NEW_ALLOWED, dir, &p, &v, cfg, 0);
	if (disagree && audit_events)
		emit(skb, PAL_EVENT_AUDIT, dir, &p, &v, cfg, 0);
	return TC_ACT_OK;
}

/* ------------------------------------------------------------ fast path */
/*
 * Most packets belong to an established TCP, UDP or SCTP connection over
 * IPv4 or IPv6 without extension headers, in the linear part of the skb.
 * fast_path reads just what the conntrack key needs, straight into the key,
 * and passes the packet when its entry was checked at the current revision
 * on this interface; anything else (no entry, stale, fragments, options it
 * does not read, ICMP, ARP, short or non-linear headers) goes to handle(),
 * which decides exactly as before. For the packets fast_path passes,
 * handle() would have taken the same entry (same keys, same lookup order)
 * and passed with the same bookkeeping; headers too short for handle()'s
 * parse (TCP needs 14 bytes for the flags) are left to handle() too.
 * handle() sits behind a call (noinline) so its stack and register use do
 * not leak into this path: inlined together, clang zeroed the whole parse
 * state on every branch of the header checks.
 */
#define FAST_MISS (-1)

/* (s, d, sport, dport) -> (d, s, dport, sport) with the given scope. */
static __always_inline void ct_key_reverse(struct pal_ct_key *k, __u8 scope)
{
	__u64 s0, s1, d0, d1;
	__builtin_memcpy(&s0, k->saddr, 8);
	__builtin_memcpy(&s1, k->saddr + 8, 8);
	__builtin_memcpy(&d0, k->daddr, 8);
	__builtin_memcpy(&d1, k->daddr + 8, 8);
	__builtin_memcpy(k->saddr, &d0, 8);
	__builtin_memcpy(k->saddr + 8, &d1, 8);
	__builtin_memcpy(k->daddr, &s0, 8);
	__builtin_memcpy(k->daddr + 8, &s1, 8);
	__u16 p = k->sport_be;
	k->sport_be = k->dport_be;
	k->dport_be = p;
	k->pad[PAL_CT_KEY_SCOPE_BYTE] = scope;
}

static __always_inline int fast_path(struct __sk_buff *skb, __u8 dir)
{
	void *data = SKB_FIELD(skb, data);
	void *end = SKB_FIELD(skb, data_end);
	__u8 *eth = data;
	struct pal_ct_key k;
	__u8 proto;
	__u8 *l4;

	if ((void *)(eth + ETH_HLEN_ + sizeof(struct iphdr)) > end)
		return FAST_MISS;
	__u16 eth_proto = *(__u16 *)(eth + 12);
	if (eth_proto == bpf_htons(ETH_P_IP)) {
		struct iphdr *ip = (void *)(eth + ETH_HLEN_);
		__u8 vihl = *(__u8 *)ip;
		if ((vihl & 0xf0) != 0x40 || (vihl & 0x0f) < 5)
			return FAST_MISS;
		if (ip->frag_off & bpf_htons(0x3fff)) /* any fragment: frag_record */
			return FAST_MISS;
		proto = ip->protocol;
		l4 = (__u8 *)ip + (vihl & 0x0f) * 4;
		__u64 z = 0;
		__u32 mapped = bpf_htonl(0x0000ffff); /* ::ffff:a.b.c.d */
		__builtin_memcpy(k.saddr, &z, 8);
		__builtin_memcpy(k.saddr + 8, &mapped, 4);
		__builtin_memcpy(k.saddr + 12, &ip->saddr, 4);
		__builtin_memcpy(k.daddr, &z, 8);
		__builtin_memcpy(k.daddr + 8, &mapped, 4);
		__builtin_memcpy(k.daddr + 12, &ip->daddr, 4);
	} else if (eth_proto == bpf_htons(ETH_P_IPV6)) {
		struct ipv6hdr *ip6 = (void *)(eth + ETH_HLEN_);
		if ((void *)(ip6 + 1) > end)
			return FAST_MISS;
		if ((*(__u8 *)ip6 & 0xf0) != 0x60)
			return FAST_MISS;
		proto = ip6->nexthdr; /* extension headers: not one of the three below */
		l4 = (__u8 *)(ip6 + 1);
		__builtin_memcpy(k.saddr, &ip6->saddr, 16);
		__builtin_memcpy(k.daddr, &ip6->daddr, 16);
	} else {
		return FAST_MISS;
	}
	__u32 l4len;
	if (proto == IPPROTO_TCP)
		l4len = 14; /* what parse_l4 reads: the flags byte included */
	else if (proto == IPPROTO_UDP || proto == IPPROTO_SCTP)
		l4len = 4;
	else
		return FAST_MISS;
	if ((void *)(l4 + l4len) > end)
		return FAST_MISS;
	__u16 sport = ((__u16 *)l4)[0], dport = ((__u16 *)l4)[1];
	k.sport_be = sport;
	k.dport_be = dport;
	k.protocol = proto;
	k.pad[PAL_CT_KEY_SCOPE_BYTE] = dir;
	k.pad[1] = 0;
	k.pad[2] = 0;

	/* One key on the stack (the slow path's frame comes on top of this
	 * one, within the 512 bytes): reversed in place for the reply lookup. */
	__u8 scope = dir;
	struct pal_ct_value *ct = bpf_map_lookup_elem(&pal_conntrack, &k);
	if (!ct) {
		scope = dir == PAL_DIR_EGRESS ? PAL_DIR_INGRESS : PAL_DIR_EGRESS;
		ct_key_reverse(&k, scope);
		ct = bpf_map_lookup_elem(&pal_conntrack, &k);
		if (!ct)
			return FAST_MISS;
	}
	__u32 zero = 0;
	const struct pal_config *cfg = bpf_map_lookup_elem(&pal_config, &zero);
	__u32 revision = cfg ? cfg->revision : 0;
	if (ct->revision != revision || ct->ifindex != skb->ifindex)
		return FAST_MISS;
	__u32 len = skb->len;
	ct->last_seen_ns = ct_now();
	ct->packets++;
	ct->bytes += len;
	if (scope != dir && !(ct->flags & PAL_CT_F_SEEN_REPLY))
		ct->flags |= PAL_CT_F_SEEN_REPLY;
	count_rule(ct->cookie, len);
	return TC_ACT_OK;
}

/*
 * Each path in its own BPF function (noinline): the verifier adds up the
 * stack frames of a call chain (512 bytes at most), and handle() needs
 * most of that; as siblings under a frameless program the fast path's key
 * and handle()'s frame never stack up. The price is one BPF-to-BPF call.
 */
__attribute__((noinline)) static int fast_from_pod(struct __sk_buff *skb)
{
	return fast_path(skb, PAL_DIR_EGRESS);
}

__attribute__((noinline)) static int fast_to_pod(struct __sk_buff *skb)
{
	return fast_path(skb, PAL_DIR_INGRESS);
}

__attribute__((noinline)) static int slow_from_pod(struct __sk_buff *skb)
{
	return handle(skb, PAL_DIR_EGRESS);
}

__attribute__((noinline)) static int slow_to_pod(struct __sk_buff *skb)
{
	return handle(skb, PAL_DIR_INGRESS);
}

SEC("tc")
int from_pod(struct __sk_buff *skb)
{
	int r = fast_from_pod(skb);
	return r != FAST_MISS ? r : slow_from_pod(skb);
}

SEC("tc")
int to_pod(struct __sk_buff *skb)
{
	int r = fast_to_pod(skb);
	return r != FAST_MISS ? r : slow_to_pod(skb);
}
