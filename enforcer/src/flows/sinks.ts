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
import { recordJson } from './serialize.js';

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

  /** Bytes the active file can still take before a rotation (0 right after one that is full). */
  async room(): Promise<number> {
    await this.ensureOpen();
    return this.opts.maxBytes - this.size;
  }

  /** Appends whole lines; a chunk never straddles two files. */
  async append(text: string, knownBytes?: number): Promise<void> {
    const bytes = Buffer.from(text);
    if (knownBytes !== undefined && knownBytes !== bytes.byteLength)
      throw new Error(`append: ${knownBytes} bytes announced, ${bytes.byteLength} given`);
    await this.appendBytes(bytes, 0, bytes.byteLength);
  }

  /** Appends bytes [start, end) of buf (whole lines); rotates first if they would not fit. */
  async appendBytes(buf: Uint8Array, start: number, end: number): Promise<void> {
    const bytes = end - start;
    await this.ensureOpen();
    if (this.size > 0 && this.size + bytes > this.opts.maxBytes) {
      await this.rotate();
      await this.ensureOpen();
    }
    const fh = this.fh as FileHandle;
    for (let off = start; off < end;) {
      const { bytesWritten } = await fh.write(buf, off, end - off);
      if (bytesWritten <= 0) throw new Error(`${this.path}: write made no progress`);
      off += bytesWritten;
    }
    this.size += bytes;
  }

  async close(): Promise<void> {
    await this.fh?.close();
    this.fh = undefined;
  }
}

/**
 * A batch of lines encoded into one reusable buffer, with each line's end
 * offset: one UTF-8 encode per line, no joined string, and the line
 * boundaries that exact rotation needs come for free.
 */
export class LineBatch {
  private buf = Buffer.allocUnsafe(256 * 1024);
  private readonly ends: number[] = [];
  private length = 0;

  reset(): void {
    this.length = 0;
    this.ends.length = 0;
  }

  /** Adds one line (the caller includes the newline). */
  push(line: string): void {
    // a UTF-16 code unit is at most 3 UTF-8 bytes
    const worst = line.length * 3;
    if (this.length + worst > this.buf.byteLength) {
      const next = Buffer.allocUnsafe(Math.max(this.buf.byteLength * 2, this.length + worst));
      this.buf.copy(next, 0, 0, this.length);
      this.buf = next;
    }
    this.length += this.buf.write(line, this.length);
    this.ends.push(this.length);
  }

  get lines(): number {
    return this.ends.length;
  }

  /**
   * Appends the batch with one write when it fits the active file (the common
   * case); otherwise in chunks of whole lines no larger than maxBytes (one
   * line may exceed it alone), so rotation stays exact: a file never passes
   * maxBytes unless a single line does, and a line never straddles two files.
   */
  async writeTo(file: RotatingFile, maxBytes: number): Promise<void> {
    if (this.length === 0) return;
    if (this.length <= (await file.room())) {
      await file.appendBytes(this.buf, 0, this.length);
      return;
    }
    let start = 0;
    let prev = 0;
    for (const end of this.ends) {
      if (prev > start && end - start > maxBytes) {
        await file.appendBytes(this.buf, start, prev);
        start = prev;
      }
      prev = end;
    }
    if (prev > start) await file.appendBytes(this.buf, start, prev);
  }
}

export class NdjsonFileSink implements FlowSink {
  readonly kind = 'ndjson';
  private readonly file: RotatingFile;
  private readonly lines = new LineBatch();
  constructor(
    path: string,
    private readonly rotation: RotationOptions,
  ) {
    this.file = new RotatingFile(path, rotation);
  }
  async write(batch: readonly AnyFlowRecord[]): Promise<void> {
    // batches come one at a time (FlowSink contract), so the buffer is reused
    this.lines.reset();
    for (const r of batch) this.lines.push(`${recordJson(r)}\n`);
    await this.lines.writeTo(this.file, this.rotation.maxBytes);
  }
  close(): Promise<void> {
    return this.file.close();
  }
}

export class OcsfFileSink implements FlowSink {
  readonly kind = 'ocsf';
  private readonly file: RotatingFile;
  private readonly lines = new LineBatch();
  constructor(
    path: string,
    private readonly rotation: RotationOptions,
    private readonly product?: OcsfProduct,
  ) {
    this.file = new RotatingFile(path, rotation);
  }
  async write(batch: readonly AnyFlowRecord[]): Promise<void> {
    this.lines.reset();
    for (const r of batch)
      if (isFlowRecord(r)) this.lines.push(`${JSON.stringify(toOcsf(r, this.product))}\n`);
    await this.lines.writeTo(this.file, this.rotation.maxBytes);
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
    let text = '';
    for (const r of batch) text += `${recordJson(r)}\n`;
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
