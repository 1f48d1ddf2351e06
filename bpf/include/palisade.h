/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Palisade datapath data: every struct the BPF programs and the TypeScript
 * compiler share. This header is the single source of truth for the layout;
 * policy-compiler/src/encode mirrors it and test/layout pins both sides
 * (sizes and offsets) so they can never drift.
 *
 * All multi-byte integers are host byte order unless the field says _be
 * (network byte order, needed where an LPM trie compares bits left to right).
 *
 * Lookup sequence for one packet and one direction (egress at the source
 * pod's from-pod hook, ingress at the destination pod's to-pod hook):
 *   0. conntrack(5-tuple)          -> checked at the current revision on this
 *                                     ifindex: pass, nothing else looked up
 *   1. endpoints[ifindex]          -> local identity, policy tables, node, flags
 *   2. ipcache LPM(peer address)   -> peer identity, namespace identity,
 *                                     CIDR identity, node number (WORLD/0 if no entry)
 *   3. conntrack hit otherwise     -> stale revision: re-check (4.); else pass
 *   4. policy[table_id] (inner LPM) looked up at most four times:
 *        (peer identity), (namespace identity if != 0), (CIDR identity if != 0),
 *        (ANY), each with (proto, port); per tier the match with the lowest
 *      non-zero rank wins; then the tiers are resolved (Admin, NetworkPolicy
 *      with isolation and the own-node exemption, Baseline, default allow).
 * Rule order, named ports and port ranges are resolved by the compiler, so
 * the datapath does these bounded lookups whatever the rule count.
 */
#ifndef PALISADE_H
#define PALISADE_H

#ifdef __BPF__
#include <linux/types.h>
#else
#include <stdint.h>
typedef uint8_t __u8;
typedef uint16_t __u16;
typedef uint32_t __u32;
typedef uint64_t __u64;
#endif

/* ---------------------------------------------------------------- limits */
/* Defaults; the loader may resize maps (max_entries) before load. */
#define PAL_MAX_ENDPOINTS 4096
#define PAL_MAX_IPCACHE 262144
#define PAL_MAX_TABLES 4096      /* outer policy array (subject x direction) */
#define PAL_MAX_TABLE_ENTRIES 65536 /* per inner table */
#define PAL_MAX_CONNTRACK 262144
#define PAL_MAX_COOKIES 65536    /* per-rule counters, index = cookie */
#define PAL_RINGBUF_BYTES (1 << 22)

/* ------------------------------------------------------------- identities */
/* Reserved identities; the compiler allocates from PAL_ID_FIRST_ALLOCATED. */
#define PAL_ID_ANY 0   /* wildcard in policy keys only */
#define PAL_ID_WORLD 1 /* addresses with no ipcache entry */
#define PAL_ID_FIRST_ALLOCATED 256

/* ---------------------------------------------------------------- ipcache */
/*
 * LPM trie key. IPv4 addresses are stored IPv4-mapped (::ffff:a.b.c.d) so v4
 * and v6 share one trie; a v4 /n prefix has prefixlen 96 + n.
 */
struct pal_ipcache_key {
	__u32 prefixlen;
	__u8 addr[16];
};

struct pal_ipcache_value {
	__u32 identity;      /* pod or node identity; PAL_ID_WORLD for a policy-prefix-only entry */
	__u32 ns_identity;   /* namespace identity of a pod address; 0 = none */
	__u32 cidr_identity; /* identity of the longest named policy prefix containing the address; 0 = none */
	__u32 node_id;       /* node addresses: the node's number (1..); 0 = not a node */
	__u32 flags;         /* PAL_IPC_F_* */
};
#define PAL_IPC_F_REMOTE_CLUSTER (1u << 0) /* address of another cluster */
#define PAL_IPC_F_NODE (1u << 1)

/* -------------------------------------------------------------- endpoints */
/* Keyed by the ifindex of the pod's host-side interface. */
struct pal_endpoint_key {
	__u32 ifindex;
};

struct pal_endpoint_value {
	__u32 identity;      /* the pod's own identity */
	__u32 egress_table;  /* index into the outer policy array */
	__u32 ingress_table; /* index into the outer policy array */
	__u32 flags;         /* PAL_EP_F_* */
	__u32 node_id;       /* number of the pod's node (pal_ipcache_value.node_id); 0 = none */
};
#define PAL_EP_F_POLICY_READY (1u << 0) /* clear = fail closed: drop everything */
#define PAL_EP_F_HOST_NETWORK (1u << 1)
#define PAL_EP_F_EGRESS_ISOLATED (1u << 2)  /* a NetworkPolicy isolates the pod for egress */
#define PAL_EP_F_INGRESS_ISOLATED (1u << 3) /* a NetworkPolicy isolates the pod for ingress */
#define PAL_EP_F_EGRESS_AUDIT (1u << 4)     /* an Audit-mode policy applies (egress): staged verdicts */
#define PAL_EP_F_INGRESS_AUDIT (1u << 5)    /* the same for ingress */

/* ----------------------------------------------------------------- policy */
/*
 * Inner LPM trie key. The prefix runs over identity (32 bits), then
 * protocol (8 bits), then destination port (16 bits, big endian), contiguous:
 *   prefixlen 32      = any protocol, any port for this identity
 *   prefixlen 40      = this protocol, any port
 *   prefixlen 40 + k  = this protocol, ports sharing the first k bits
 * The prefixlen counts bits after the prefixlen field itself. The identity is
 * a pod/node identity, a namespace identity, a CIDR identity or PAL_ID_ANY.
 * identity_be and port_be are big endian so the trie compares them MSB first.
 */
struct pal_policy_key {
	__u32 prefixlen;
	__u32 identity_be;
	__u8 protocol; /* IPPROTO_TCP/UDP/SCTP/ICMP/ICMPV6 */
	__u8 port_be[2];
	__u8 pad;      /* after the prefix: never compared */
};
#define PAL_POLICY_KEY_FULL_PREFIX 56

enum pal_verdict {
	PAL_VERDICT_DENY = 0,
	PAL_VERDICT_ALLOW = 1,
};

enum pal_staged {
	PAL_STAGED_NONE = 0,  /* no Audit-mode policy applies */
	PAL_STAGED_DENY = 1,  /* an Audit policy would deny */
	PAL_STAGED_ALLOW = 2, /* an Audit policy would allow */
};

enum pal_action {
	PAL_ACTION_NONE = 0,
	PAL_ACTION_ACCEPT = 1,
	PAL_ACTION_DENY = 2,
	PAL_ACTION_PASS = 3,  /* Admin tier only */
	PAL_ACTION_ALLOW = 4, /* NetworkPolicy tier */
};

#define PAL_TIER_ADMIN 0
#define PAL_TIER_NETWORK_POLICY 1
#define PAL_TIER_BASELINE 2
#define PAL_TIERS 3

/* First rule of one tier that matched this key, port and protocol. */
struct pal_tier_match {
	__u32 rank;   /* position in the table's program, 1 = first; 0 = no rule matched */
	__u32 cookie;
	__u8 action;  /* enum pal_action */
	__u8 flags;   /* PAL_POL_F_* of that rule */
	__u8 pad[2];
};

struct pal_policy_value {
	struct pal_tier_match enforced[PAL_TIERS]; /* PAL_TIER_* */
	struct pal_tier_match staged[PAL_TIERS];   /* the same with Audit-mode policies enforced */
};
#define PAL_POL_F_LOG_ALLOW (1u << 0)
#define PAL_POL_F_LOG_DENY (1u << 1)
#define PAL_POL_F_ENCRYPT_REQUIRED (1u << 2) /* cross-cluster: must arrive/leave via the tunnel */
#define PAL_POL_F_EXPLICIT_DENY (1u << 3)    /* a Deny rule decided (else no allow rule) */

/* -------------------------------------------------------------- conntrack */
struct pal_ct_key {
	__u8 saddr[16]; /* IPv4-mapped for IPv4 */
	__u8 daddr[16];
	__u16 sport_be;
	__u16 dport_be;
	__u8 protocol;
	__u8 pad[3];
};

struct pal_ct_value {
	__u64 last_seen_ns; /* CLOCK_MONOTONIC at tick resolution (bpf_ktime_get_coarse_ns) */
	__u64 packets;
	__u64 bytes;
	__u32 revision; /* config.revision when last (re)checked; stale = re-evaluate */
	__u32 cookie;   /* rule that allowed the connection */
	__u32 flags;    /* PAL_CT_F_* */
	__u32 ifindex;  /* interface whose ready endpoint last checked it (0 = none) */
};
#define PAL_CT_F_SEEN_REPLY (1u << 0)

/* ------------------------------------------------------------- fragments */
/* Non-first fragments follow the verdict and ports of the first. */
struct pal_frag_key {
	__u8 saddr[16];
	__u8 daddr[16];
	__u32 id; /* IPv4 id (16 bits) or IPv6 fragment id */
	__u8 protocol;
	__u8 pad[3];
};

struct pal_frag_value {
	__u16 sport_be;
	__u16 dport_be;
	__u8 verdict;
	__u8 pad[3];
};

/* ---------------------------------------------------------------- config */
struct pal_config {
	__u32 revision;            /* bumped on every policy sync; conntrack compares */
	__u32 flags;               /* PAL_CFG_F_* */
	__u32 deny_events_per_sec; /* per CPU; 0 = unlimited */
	__u32 pad;
};
#define PAL_CFG_F_AUDIT_EVENTS (1u << 0)

/* --------------------------------------------------------------- counters */
/* Per-CPU array indexed by cookie. */
struct pal_rule_counter {
	__u64 packets;
	__u64 bytes;
};

/* Per-CPU array indexed by enum pal_drop_reason; suppressed events included. */
enum pal_drop_reason {
	PAL_DROP_POLICY_DENIED = 0, /* no allow rule */
	PAL_DROP_POLICY_DENY = 1,   /* an explicit Deny rule */
	PAL_DROP_NO_ENDPOINT_POLICY = 2, /* fail closed: endpoint policy not loaded */
	PAL_DROP_UNENCRYPTED = 3,   /* encryption required, packet outside tunnel */
	PAL_DROP_PARSE = 4,         /* malformed packet */
	PAL_DROP_FRAG_UNKNOWN = 5,  /* non-first fragment with no first */
	PAL_DROP_REVOKED = 6,       /* established connection whose allow was removed */
	PAL_DROP__MAX = 7,
};

struct pal_stat {
	__u64 packets;
	__u64 bytes;
};

/* Per-CPU array; index = PAL_STAT_*. */
#define PAL_STAT_EVENTS_SUPPRESSED 0 /* deny events not sent because of the rate limit */
#define PAL_STAT_EVENTS_LOST 1       /* ringbuf full */
#define PAL_STAT__MAX 2

/* ----------------------------------------------------------------- events */
enum pal_event_type {
	PAL_EVENT_DENY = 1,
	PAL_EVENT_NEW_ALLOWED = 2,
	PAL_EVENT_AUDIT = 3, /* staged verdict differs from the enforced one */
	PAL_EVENT_REVOKED = 4,
};

enum pal_direction {
	PAL_DIR_EGRESS = 0,
	PAL_DIR_INGRESS = 1,
};

struct pal_event {
	__u64 ts_ns;
	__u8 type;      /* enum pal_event_type */
	__u8 direction; /* enum pal_direction */
	__u8 verdict;   /* enum pal_verdict */
	__u8 staged_verdict;
	__u8 protocol;
	__u8 drop_reason; /* enum pal_drop_reason, for DENY */
	__u8 tcp_flags;
	__u8 ip_version; /* 4 or 6 */
	__u32 ifindex;
	__u32 src_identity;
	__u32 dst_identity;
	__u32 cookie;
	__u32 staged_cookie;
	__u32 revision;
	__u8 saddr[16];
	__u8 daddr[16];
	__u16 sport_be;
	__u16 dport_be;
	__u32 pkt_len;
	__u32 suppressed_before; /* deny events suppressed on this CPU since the last one sent */
	__u32 pad;
};

/* ------------------------------------------ datapath additions (issue 5) */
/* Appended by the datapath; nothing above changed. */

#define PAL_MAX_FRAGS 8192 /* LRU of first-fragment verdicts */

/*
 * Conntrack and fragment keys use their first pad byte as the scope: the
 * direction (enum pal_direction) of the hook that evaluated the policy. An
 * entry made by the source pod's egress check is thus never found by the
 * destination pod's ingress check (docs/datapath.md, "conntrack scopes").
 */
#define PAL_CT_KEY_SCOPE_BYTE 0
#define PAL_FRAG_KEY_SCOPE_BYTE 0

/* skb->mark bit the tunnel sets on packets that arrived through WireGuard. */
#define PAL_SKB_MARK_TUNNELED (1u << 20)

/* Per-CPU deny-event limiter state (map pal_ratelimit, one entry). */
struct pal_ratelimit {
	__u64 window_start_ns;
	__u32 sent;       /* events sent in this one-second window */
	__u32 suppressed; /* suppressed since the last sent event */
};


#endif /* PALISADE_H */
