/**
 * `palisade compile -f PATH... -o json|stats`: the compiled datapath tables
 * (hex-encoded map entries exactly as loaded into the BPF maps, plus the
 * cookie registry and the side metadata) or their sizes per map.
 * Exit codes: 0 ok, 2 usage, input or capacity error.
 */
import type { Command } from 'commander';
import {
  compile,
  DEFAULT_LIMITS,
  type Compiled,
  type Limits,
} from '../../../policy-compiler/src/compile/index.js';
import {
  decodeIpcacheKey,
  decodeIpcacheValue,
  decodePolicyKey,
  decodePolicyValue,
  type TierMatch,
  hex,
} from '../../../policy-compiler/src/encode/codec.js';
import { CliError, type CliContext } from '../context.js';
import { loadValidWorld } from '../world-input.js';
import { filenameOption, outputOption } from './options.js';

interface CompileCliOptions {
  filename: string[];
  output: 'json' | 'stats';
  cluster?: string;
  limit?: string[];
}

const LIMIT_NAMES: readonly (keyof Limits)[] = [
  'endpoints',
  'ipcache',
  'tables',
  'tableEntries',
  'cookies',
];

function parseLimits(specs: readonly string[]): Partial<Limits> {
  const out: Record<string, number> = {};
  for (const s of specs) {
    const m = /^([a-zA-Z]+)=(\d+)$/.exec(s);
    const name = m?.[1] as keyof Limits | undefined;
    if (m === null || name === undefined || !LIMIT_NAMES.includes(name) || Number(m[2]) < 1) {
      throw new CliError(
        `bad --limit "${s}" (allowed: ${LIMIT_NAMES.map((n) => `${n}=N`).join(', ')}, N >= 1)`,
      );
    }
    out[name] = Number(m[2]);
  }
  return out;
}

function mapEntriesJson(
  entries: readonly { key: Uint8Array; value: Uint8Array }[],
): { key: string; value: string }[] {
  return entries.map((e) => ({ key: hex(e.key), value: hex(e.value) }));
}

const TIER_NAMES = ['admin', 'networkPolicy', 'baseline'] as const;
const ACTION_NAMES = ['None', 'Accept', 'Deny', 'Pass', 'Allow'] as const;

/** Policy entries: hex bytes plus the decoded key and the per-tier matches (rank 0 = none, left out). */
function tableEntriesJson(entries: readonly { key: Uint8Array; value: Uint8Array }[]): unknown[] {
  return mapEntriesJson(entries).map((x, i) => {
    const e = entries[i] as { key: Uint8Array; value: Uint8Array };
    const k = decodePolicyKey(e.key);
    const v = decodePolicyValue(e.value);
    const tiers = (ms: readonly TierMatch[]): Record<string, unknown> => {
      const out: Record<string, unknown> = {};
      ms.forEach((m, t) => {
        if (m.rank === 0) return;
        out[TIER_NAMES[t] as string] = {
          rank: m.rank,
          cookie: m.cookie,
          action: ACTION_NAMES[m.action] ?? m.action,
          flags: m.flags,
        };
      });
      return out;
    };
    return {
      ...x,
      prefixlen: k.prefixlen,
      identity: k.identity,
      protocol: k.protocol,
      port: k.port,
      enforced: tiers(v.enforced),
      staged: tiers(v.staged),
    };
  });
}

/** Stable JSON of docs/compiler.md ("palisade compile -o json"). */
export function compiledJson(c: Compiled): unknown {
  const e = c.encoded;
  return {
    stats: c.stats,
    ipcache: e.ipcache.map((x) => {
      const k = decodeIpcacheKey(x.key);
      const v = decodeIpcacheValue(x.value);
      return {
        key: hex(x.key),
        value: hex(x.value),
        prefixlen: k.prefixlen,
        identity: v.identity,
        nsIdentity: v.nsIdentity,
        cidrIdentity: v.cidrIdentity,
        nodeId: v.nodeId,
        flags: v.flags,
      };
    }),
    endpoints: e.endpoints,
    tables: e.tables.map((t) => {
      const m = c.meta.tables.get(t.table);
      return {
        table: t.table,
        direction: m?.direction,
        subject: m?.subject,
        isolatedBy: m?.isolatedBy,
        hasAudit: m?.hasAudit,
        members: m?.members,
        entries: tableEntriesJson(t.entries),
      };
    }),
    cookies: [...e.cookies].sort((a, b) => a[0] - b[0]).map(([cookie, rule]) => ({ cookie, rule })),
    identities: [...c.meta.identities.values()]
      .sort((a, b) => a.number - b.number)
      .map((i) => ({
        identity: i.number,
        kind: i.kind,
        cluster: i.cluster,
        namespace: i.namespace,
        labels: i.labels,
        ...(i.kind === 'namespace' ? { nsLabels: i.nsLabels, clusterLabels: i.clusterLabels } : {}),
        node: i.node,
        cidrs: [...i.cidrs].sort(),
      })),
  };
}

export function compileCommand(program: Command, ctx: CliContext): void {
  program
    .command('compile')
    .description(
      'compile policies into datapath tables (identities, ipcache, per-subject policy tables)',
    )
    .addOption(filenameOption())
    .addOption(outputOption(['json', 'stats'], 'stats'))
    .option(
      '--cluster <name>',
      "the local cluster: other clusters' addresses get the remote-cluster flag",
    )
    .option('--limit <name=N...>', `map size override (${LIMIT_NAMES.join(', ')})`)
    .addHelpText(
      'after',
      `\nExit codes: 0 ok, 2 usage, input or capacity error (nothing is truncated).\nExamples:\n  ${ctx.displayName} compile -f examples/world -o stats\n  ${ctx.displayName} compile -f examples/world -o json --limit tableEntries=1024\n`,
    )
    .action(async (opts: CompileCliOptions) => {
      const limits = parseLimits(opts.limit ?? []);
      const world = await loadValidWorld(opts.filename, ctx);
      const r = compile(world, { limits, localCluster: opts.cluster ?? null });
      if (!r.ok) throw new CliError(`${ctx.displayName} compile: ${r.error.message}`);
      if (opts.output === 'json') {
        ctx.stdout.write(`${JSON.stringify(compiledJson(r.compiled), null, 2)}\n`);
        return;
      }
      const s = r.compiled.stats;
      const lim: Limits = { ...DEFAULT_LIMITS, ...limits };
      ctx.stdout.write(
        `${JSON.stringify(
          {
            maps: {
              ipcache: { entries: s.ipcacheEntries, limit: lim.ipcache },
              endpoints: { entries: s.endpoints, limitPerNode: lim.endpoints },
              policy: {
                tables: s.tables,
                tableLimit: lim.tables,
                entries: s.policyEntries,
                maxTableEntries: s.maxTableEntries,
                tableEntriesLimit: lim.tableEntries,
              },
              cookies: { entries: s.cookies, limit: lim.cookies },
            },
            identities: s.identities,
          },
          null,
          2,
        )}\n`,
      );
    });
}
