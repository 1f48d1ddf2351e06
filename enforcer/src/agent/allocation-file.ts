/**
 * The compiler's number allocation (identities, tables, cookies, nodes), kept on disk
 * beside the pins. A restarted agent compiles with it as `previous`, so every
 * unchanged endpoint, table and rule keeps its number: the first sync after a
 * restart then rewrites nothing, and no packet can see a new ipcache entry
 * next to an old table (applyFull is not one atomic step across maps).
 */
import { mkdirSync, readFileSync, renameSync, writeFileSync } from 'node:fs';
import { dirname } from 'node:path';
import type { Allocation } from '../../../policy-compiler/src/compile/compile.js';

const VERSION = 1;
const FIELDS = ['identities', 'tables', 'cookies'] as const;
/** Absent in files written before node numbers were kept (they are then numbered afresh). */
const OPTIONAL_FIELDS = ['nodes'] as const;
/** Far above any map size the datapath allows; a bigger file is not ours. */
const MAX_BYTES = 256 << 20;

type Serialized = { version: number } & Record<(typeof FIELDS)[number], [string, number][]> &
  Partial<Record<(typeof OPTIONAL_FIELDS)[number], [string, number][]>>;

export function serializeAllocation(a: Allocation): string {
  const out: Serialized = {
    version: VERSION,
    identities: [...a.identities],
    tables: [...a.tables],
    cookies: [...a.cookies],
    ...(a.nodes ? { nodes: [...a.nodes] } : {}),
  };
  return JSON.stringify(out);
}

/** Parses a saved allocation; an error names what is wrong (the caller then starts fresh). */
export function parseAllocation(text: string): Allocation | { error: string } {
  let doc: unknown;
  try {
    doc = JSON.parse(text);
  } catch (e) {
    return { error: `not JSON: ${(e as Error).message}` };
  }
  if (typeof doc !== 'object' || doc === null) return { error: 'not an object' };
  const d = doc as Record<string, unknown>;
  if (d['version'] !== VERSION) return { error: `version must be ${VERSION}` };
  type Field = (typeof FIELDS)[number] | (typeof OPTIONAL_FIELDS)[number];
  const maps: Partial<Record<Field, Map<string, number>>> = {};
  for (const f of [...FIELDS, ...OPTIONAL_FIELDS]) {
    const list = d[f];
    if (list === undefined && (OPTIONAL_FIELDS as readonly string[]).includes(f)) continue;
    if (!Array.isArray(list)) return { error: `${f} must be a list of [key, number]` };
    const m = new Map<string, number>();
    for (const [i, e] of list.entries()) {
      if (
        !Array.isArray(e) ||
        e.length !== 2 ||
        typeof e[0] !== 'string' ||
        !Number.isSafeInteger(e[1]) ||
        (e[1] as number) < 0
      ) {
        return { error: `${f}[${i}] must be [key, non-negative integer]` };
      }
      m.set(e[0], e[1] as number);
    }
    maps[f] = m;
  }
  return {
    identities: maps.identities!,
    tables: maps.tables!,
    cookies: maps.cookies!,
    ...(maps.nodes ? { nodes: maps.nodes } : {}),
  };
}

export function readAllocationFile(path: string): Allocation | { error: string } | null {
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') return null;
    return { error: (e as Error).message };
  }
  if (text.length > MAX_BYTES) return { error: `larger than ${MAX_BYTES} bytes` };
  return parseAllocation(text);
}

/** Atomic: a crash leaves the old file or the new one, never half of one. */
export function writeAllocationFile(path: string, a: Allocation): void {
  mkdirSync(dirname(path), { recursive: true });
  writeFileSync(`${path}.tmp`, serializeAllocation(a));
  renameSync(`${path}.tmp`, path);
}
