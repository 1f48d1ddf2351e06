/**
 * Flow sinks. Each takes batches in order from the pipeline (one batch at a
 * time, never concurrently), so a sink needs no locking.
 *  - NdjsonFileSink: native records, one JSON object a line, size-based rotation.
 *  - OcsfFileSink: OCSF 4001 events, same rotation; loss records are not
 *    flows and are left to the native sinks and metrics (see docs/enforcer.md).
 *  - StreamSink: NDJSON to a stream (stdout), honouring backpressure.
 */
import { once } from 'node:events';
import { open, rename, rm, stat, type FileHandle } from 'node:fs/promises';
import type { Writable } from 'node:stream';
import { toOcsf, type OcsfProduct } from './ocsf.js';
import { isFlowRecord, type AnyFlowRecord } from './record.js';

export interface FlowSink {
  /** Metric label (closed set: ndjson, ocsf, stdout, memory, other). */
  readonly kind: string;
  write(batch: readonly AnyFlowRecord[]): Promise<void>;
  close(): Promise<void>;
}

export interface RotationOptions {
  /** Rotate before a write would take the active file past this size. */
  readonly maxBytes: number;
  /** Rotated files kept (`<path>.1` newest … `<path>.<maxFiles>` oldest). */
  readonly maxFiles: number;
  /** File mode for new files; flow logs name workloads and addresses. */
  readonly mode?: number;
}

/** An append-only file that rotates by size and keeps a bounded number of old files. */
export class RotatingFile {
  private fh: FileHandle | undefined;
  private size = 0;
  constructor(
    readonly path: string,
    private readonly opts: RotationOptions,
  ) {
    if (!(opts.maxBytes > 0) || !Number.isInteger(opts.maxFiles) || opts.maxFiles < 0) {
      throw new Error(
        `rotation: maxBytes must be > 0 and maxFiles an integer >= 0 (got ${opts.maxBytes}, ${opts.maxFiles})`,
      );
    }
  }

  private async ensureOpen(): Promise<FileHandle> {
    if (!this.fh) {
      this.fh = await open(this.path, 'a', this.opts.mode ?? 0o640);
      this.size = (await this.fh.stat()).size;
    }
    return this.fh;
  }

  private async rotate(): Promise<void> {
    await this.fh?.close();
    this.fh = undefined;
    const { maxFiles } = this.opts;
    if (maxFiles === 0) {
      await rm(this.path, { force: true });
    } else {
      await rm(`${this.path}.${maxFiles}`, { force: true });
      for (let i = maxFiles - 1; i >= 1; i--) {
        await rename(`${this.path}.${i}`, `${this.path}.${i + 1}`).catch(
          (e: NodeJS.ErrnoException) => {
            if (e.code !== 'ENOENT') throw e;
          },
        );
      }
      await rename(this.path, `${this.path}.1`);
    }
  }

  /** Appends whole lines; a chunk never straddles two files. */
  async append(text: string, knownBytes?: number): Promise<void> {
    const bytes = knownBytes ?? Buffer.byteLength(text);
    await this.ensureOpen();
    if (this.size > 0 && this.size + bytes > this.opts.maxBytes) {
      await this.rotate();
      await this.ensureOpen();
    }
    await (this.fh as FileHandle).write(text);
    this.size += bytes;
  }

  async close(): Promise<void> {
    await this.fh?.close();
    this.fh = undefined;
  }
}

/** Splits a batch into chunks of whole lines no larger than maxBytes (one line may exceed it alone). */
async function appendLines(file: RotatingFile, lines: string[], maxBytes: number): Promise<void> {
  let chunk: string[] = [];
  let size = 0;
  for (const l of lines) {
    const n = Buffer.byteLength(l);
    if (chunk.length > 0 && size + n > maxBytes) {
      await file.append(chunk.join(''), size);
      chunk = [];
      size = 0;
    }
    chunk.push(l);
    size += n;
  }
  if (chunk.length > 0) await file.append(chunk.join(''), size);
}

export class NdjsonFileSink implements FlowSink {
  readonly kind = 'ndjson';
  private readonly file: RotatingFile;
  constructor(
    path: string,
    private readonly rotation: RotationOptions,
  ) {
    this.file = new RotatingFile(path, rotation);
  }
  async write(batch: readonly AnyFlowRecord[]): Promise<void> {
    await appendLines(
      this.file,
      batch.map((r) => `${JSON.stringify(r)}\n`),
      this.rotation.maxBytes,
    );
  }
  close(): Promise<void> {
    return this.file.close();
  }
}

export class OcsfFileSink implements FlowSink {
  readonly kind = 'ocsf';
  private readonly file: RotatingFile;
  constructor(
    path: string,
    private readonly rotation: RotationOptions,
    private readonly product?: OcsfProduct,
  ) {
    this.file = new RotatingFile(path, rotation);
  }
  async write(batch: readonly AnyFlowRecord[]): Promise<void> {
    const lines: string[] = [];
    for (const r of batch)
      if (isFlowRecord(r)) lines.push(`${JSON.stringify(toOcsf(r, this.product))}\n`);
    await appendLines(this.file, lines, this.rotation.maxBytes);
  }
  close(): Promise<void> {
    return this.file.close();
  }
}

export class StreamSink implements FlowSink {
  constructor(
    private readonly stream: Writable = process.stdout,
    readonly kind = 'stdout',
  ) {}
  async write(batch: readonly AnyFlowRecord[]): Promise<void> {
    const text = batch.map((r) => `${JSON.stringify(r)}\n`).join('');
    if (!this.stream.write(text)) await once(this.stream, 'drain');
  }
  async close(): Promise<void> {}
}

/** Bytes of a file, 0 when it does not exist (tests and status). */
export async function fileSize(path: string): Promise<number> {
  try {
    return (await stat(path)).size;
  } catch {
    return 0;
  }
}
