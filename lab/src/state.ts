/**
 * The lab's state file: everything `up` made, written (synchronously, by
 * rename) before and after each step, so `down` can remove it all even after
 * `up` was killed with SIGKILL half-way.
 */
import { existsSync, mkdirSync, readFileSync, renameSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { LabOptions } from './plan.js';

export const DEFAULT_LAB_DIR = '/run/palisade-lab';

export type ProcessRole = 'etcd-keeper' | 'etcd' | 'gateway' | 'enforcer' | 'listener';

export interface TrackedProcess {
  readonly role: ProcessRole;
  readonly pid: number;
  /** what it serves: a cluster, node or pod id */
  readonly of: string;
  /** /proc/<pid>/stat start time (clock ticks since boot): a reused pid is not ours */
  readonly startTicks: number | null;
  readonly netns: string | null;
}

export interface LabState {
  readonly version: 1;
  /** unique per `up`; every process the lab starts carries it in its argv */
  runId: string;
  phase: 'creating' | 'up' | 'failed';
  options: LabOptions;
  createdAtMs: number;
  /** every namespace the plan names, recorded before any is created */
  plannedNamespaces: string[];
  namespaces: string[];
  processes: TrackedProcess[];
  pinDirs: string[];
  /** directories and files the lab made (besides the lab dir itself) */
  paths: string[];
  etcdEndpoint: string | null;
  lastError: string | null;
}

export function statePath(labDir: string): string {
  return join(labDir, 'state.json');
}

export function readState(labDir: string): LabState | null {
  const p = statePath(labDir);
  if (!existsSync(p)) return null;
  try {
    const s = JSON.parse(readFileSync(p, 'utf8')) as LabState;
    return s.version === 1 ? s : null;
  } catch {
    return null;
  }
}

export function writeState(labDir: string, s: LabState): void {
  mkdirSync(labDir, { recursive: true, mode: 0o700 });
  const p = statePath(labDir);
  writeFileSync(`${p}.tmp`, JSON.stringify(s, null, 2), { mode: 0o600 });
  renameSync(`${p}.tmp`, p);
}

export function newState(runId: string, options: LabOptions, planned: string[]): LabState {
  return {
    version: 1,
    runId,
    phase: 'creating',
    options,
    createdAtMs: Date.now(),
    plannedNamespaces: planned,
    namespaces: [],
    processes: [],
    pinDirs: [],
    paths: [],
    etcdEndpoint: null,
    lastError: null,
  };
}
