/**
 * A watched directory of manifests. One non-recursive fs.watch per directory
 * the scan walked triggers a debounced rescan; a periodic rescan catches what
 * watch misses (network filesystems, overflowed inotify queues). A snapshot is
 * emitted only when content changed. Hidden entries (`.x`, ConfigMap `..data`
 * directories) are not traversed, but visible symlinks into them are followed.
 *
 * Why not `fs.watch(dir, {recursive: true})`: on Linux, Node 20 emulates it and
 * reports only the first of repeated renames over one file (the atomic
 * replace every editor and `kubectl cp` does), so later changes waited for the
 * periodic rescan. Plain inotify watches per directory report every one.
 */
import { watch, type FSWatcher } from 'node:fs';
import { readdir, readFile, stat } from 'node:fs/promises';
import { extname, join, relative } from 'node:path';
import {
  makeSnapshot,
  type ManifestInput,
  type SourceProblem,
  type SourceSnapshot,
} from './snapshot.js';

export type { ManifestInput, SourceProblem, SourceSnapshot } from './snapshot.js';

export interface DirectorySourceOptions {
  readonly dir: string;
  readonly onSnapshot: (s: SourceSnapshot) => void;
  /** Wait this long after the last change before rescanning (default 200 ms). */
  readonly debounceMs?: number;
  /** Rescan this often whatever fs.watch says (default 30 s; 0 = never). */
  readonly rescanMs?: number;
  /** Use fs.watch (default true). */
  readonly watch?: boolean;
  readonly extensions?: readonly string[];
  /** Larger files are reported as problems, not read (default 4 MiB). */
  readonly maxFileBytes?: number;
  /** Files read at most per scan (default 10000). */
  readonly maxFiles?: number;
  /** Directories watched at most (default 1000); deeper trees rely on the rescan. */
  readonly maxWatchedDirs?: number;
}

export class DirectorySource {
  /** One watcher per directory the last scan walked (absolute path). */
  private readonly watchers = new Map<string, FSWatcher>();
  private debounce: NodeJS.Timeout | undefined;
  private interval: NodeJS.Timeout | undefined;
  private lastDigest: string | undefined;
  private scanning: Promise<void> | undefined;
  private again = false;
  private stopped = false;
  private readonly exts: ReadonlySet<string>;

  constructor(private readonly opts: DirectorySourceOptions) {
    this.exts = new Set(opts.extensions ?? ['.yaml', '.yml', '.json']);
  }

  /** Scans once (emits the first snapshot), then watches. */
  async start(): Promise<void> {
    this.stopped = false;
    await this.rescan();
    const every = this.opts.rescanMs ?? 30_000;
    if (every > 0) {
      this.interval = setInterval(() => void this.rescan(), every);
      this.interval.unref();
    }
  }

  stop(): void {
    this.stopped = true;
    for (const w of this.watchers.values()) w.close();
    this.watchers.clear();
    if (this.debounce) clearTimeout(this.debounce);
    if (this.interval) clearInterval(this.interval);
  }

  private changed(): void {
    if (this.stopped) return;
    if (this.debounce) clearTimeout(this.debounce);
    this.debounce = setTimeout(() => void this.rescan(), this.opts.debounceMs ?? 200);
  }

  /** Reads the directory now; concurrent calls coalesce into one more scan. */
  async rescan(): Promise<void> {
    if (this.scanning) {
      this.again = true;
      return this.scanning;
    }
    this.scanning = (async () => {
      do {
        this.again = false;
        const { snap, dirs } = await this.scan();
        this.watchDirs(dirs);
        if (!this.stopped && snap.digest !== this.lastDigest) {
          this.lastDigest = snap.digest;
          this.opts.onSnapshot(snap);
        }
      } while (this.again && !this.stopped);
    })().finally(() => (this.scanning = undefined));
    return this.scanning;
  }

  /** Watches exactly `dirs` (the directories the last scan walked). */
  private watchDirs(dirs: readonly string[]): void {
    if (this.stopped || this.opts.watch === false) return;
    const want = new Set(dirs.slice(0, this.opts.maxWatchedDirs ?? 1000));
    for (const [dir, w] of this.watchers) {
      if (!want.has(dir)) {
        w.close();
        this.watchers.delete(dir);
      }
    }
    for (const dir of want) {
      if (this.watchers.has(dir)) continue;
      try {
        const w = watch(dir, { persistent: false }, () => this.changed());
        // A watched directory that vanished: forget it, rescan (which re-walks).
        w.on('error', () => {
          w.close();
          this.watchers.delete(dir);
          this.changed();
        });
        this.watchers.set(dir, w);
      } catch {
        // Vanished between the walk and here; the next scan settles it.
      }
    }
  }

  private async scan(): Promise<{ snap: SourceSnapshot; dirs: string[] }> {
    const dirs: string[] = [];
    const inputs: ManifestInput[] = [];
    const problems: SourceProblem[] = [];
    const maxBytes = this.opts.maxFileBytes ?? 4 << 20;
    const maxFiles = this.opts.maxFiles ?? 10_000;
    const root = this.opts.dir;
    const walk = async (dir: string, depth: number): Promise<void> => {
      if (depth > 16) return;
      let names: string[];
      try {
        names = (await readdir(dir)).sort();
      } catch (e) {
        problems.push({
          file: relative(root, dir) || '.',
          message: `cannot read directory (${(e as NodeJS.ErrnoException).code})`,
        });
        return;
      }
      dirs.push(dir);
      for (const name of names) {
        if (name.startsWith('.')) continue;
        const full = join(dir, name);
        const rel = relative(root, full);
        let st;
        try {
          st = await stat(full);
        } catch {
          continue; // vanished or dangling symlink between readdir and stat
        }
        if (st.isDirectory()) {
          await walk(full, depth + 1);
          continue;
        }
        if (!st.isFile() || !this.exts.has(extname(name).toLowerCase())) continue;
        if (inputs.length >= maxFiles) {
          problems.push({ file: rel, message: `more than ${maxFiles} manifest files; not read` });
          continue;
        }
        if (st.size > maxBytes) {
          problems.push({ file: rel, message: `file is ${st.size} bytes, limit ${maxBytes}` });
          continue;
        }
        try {
          inputs.push({ file: full, text: await readFile(full, 'utf8') });
        } catch (e) {
          const code = (e as NodeJS.ErrnoException).code;
          if (code !== 'ENOENT') problems.push({ file: rel, message: `cannot read (${code})` });
        }
      }
    };
    await walk(root, 0);
    return { snap: makeSnapshot(inputs, problems), dirs };
  }
}
