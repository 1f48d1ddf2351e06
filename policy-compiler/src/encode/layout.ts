/**
 * The byte layout of every struct the compiler writes, mirrored from
 * bpf/include/palisade.h. test/layout compiles a C program against the
 * header and checks this table field by field, so the two cannot drift.
 */
export interface FieldLayout {
  readonly offset: number;
  readonly size: number;
}

export interface StructLayout {
  readonly size: number;
  readonly fields: Readonly<Record<string, FieldLayout>>;
}

export const LAYOUT = {
  pal_ipcache_key: {
    size: 20,
    fields: { prefixlen: { offset: 0, size: 4 }, addr: { offset: 4, size: 16 } },
  },
  pal_ipcache_value: {
    size: 20,
    fields: {
      identity: { offset: 0, size: 4 },
      ns_identity: { offset: 4, size: 4 },
      cidr_identity: { offset: 8, size: 4 },
      node_id: { offset: 12, size: 4 },
      flags: { offset: 16, size: 4 },
    },
  },
  pal_endpoint_key: { size: 4, fields: { ifindex: { offset: 0, size: 4 } } },
  pal_endpoint_value: {
    size: 20,
    fields: {
      identity: { offset: 0, size: 4 },
      egress_table: { offset: 4, size: 4 },
      ingress_table: { offset: 8, size: 4 },
      flags: { offset: 12, size: 4 },
      node_id: { offset: 16, size: 4 },
    },
  },
  pal_policy_key: {
    size: 12,
    fields: {
      prefixlen: { offset: 0, size: 4 },
      identity_be: { offset: 4, size: 4 },
      protocol: { offset: 8, size: 1 },
      port_be: { offset: 9, size: 2 },
      pad: { offset: 11, size: 1 },
    },
  },
  pal_tier_match: {
    size: 12,
    fields: {
      rank: { offset: 0, size: 4 },
      cookie: { offset: 4, size: 4 },
      action: { offset: 8, size: 1 },
      flags: { offset: 9, size: 1 },
      pad: { offset: 10, size: 2 },
    },
  },
  pal_policy_value: {
    size: 72,
    fields: {
      enforced: { offset: 0, size: 36 },
      staged: { offset: 36, size: 36 },
    },
  },
} as const satisfies Record<string, StructLayout>;

/** #define values of palisade.h the compiler depends on (also pinned by test/layout). */
export const PAL = {
  ID_ANY: 0,
  ID_WORLD: 1,
  ID_FIRST_ALLOCATED: 256,
  MAX_ENDPOINTS: 4096,
  MAX_IPCACHE: 262144,
  MAX_TABLES: 4096,
  MAX_TABLE_ENTRIES: 65536,
  MAX_COOKIES: 65536,
  POLICY_KEY_FULL_PREFIX: 56,
  IPC_F_REMOTE_CLUSTER: 1,
  IPC_F_NODE: 2,
  EP_F_POLICY_READY: 1,
  EP_F_HOST_NETWORK: 2,
  EP_F_EGRESS_ISOLATED: 4,
  EP_F_INGRESS_ISOLATED: 8,
  EP_F_EGRESS_AUDIT: 16,
  EP_F_INGRESS_AUDIT: 32,
  VERDICT_DENY: 0,
  VERDICT_ALLOW: 1,
  STAGED_NONE: 0,
  STAGED_DENY: 1,
  STAGED_ALLOW: 2,
  ACTION_NONE: 0,
  ACTION_ACCEPT: 1,
  ACTION_DENY: 2,
  ACTION_PASS: 3,
  ACTION_ALLOW: 4,
  TIER_ADMIN: 0,
  TIER_NETWORK_POLICY: 1,
  TIER_BASELINE: 2,
  TIERS: 3,
  POL_F_LOG_ALLOW: 1,
  POL_F_LOG_DENY: 2,
  POL_F_ENCRYPT_REQUIRED: 4,
  POL_F_EXPLICIT_DENY: 8,
} as const;

/** IANA protocol numbers used in policy keys. */
export const IPPROTO = { TCP: 6, UDP: 17, SCTP: 132 } as const;
