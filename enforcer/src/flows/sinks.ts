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
import { recordJson, writeRecordJson } from './serialize.js';

export interface FlowSink {
  /** Metric label (closed set: ndjson, ocsf, stdout, memory, other). */
  readonly kind: string;
  write(batch: readonly AnyFlowRecord[]): Promise<void>;
  close(): Promise<void>;
  /**
   * Optional split of write into its CPU part and its I/O part, so the
   * pipeline can encode the next batch while this one is being written:
   * `writeEncoded(encode(b))` must do what `write(b)` does. The pipeline
   * encodes at most one batch ahead of the write in flight, and writes in
   * encode order, one at a time (so two alternating buffers suffice).
   */
  encode?(batch: readonly AnyFlowRecord[]): EncodedBatch;
  writeEncoded?(encoded: EncodedBatch): Promise<void>;
}

/** What a sink's encode returns: opaque to the pipeline. */
export interface EncodedBatch {
  readonly lines: number;
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
    this.room(line.length * 3); // a UTF-16 code unit is at most 3 UTF-8 bytes
    this.length += this.buf.write(line, this.length);
    this.ends.push(this.length);
  }

  /** Adds `text` and a newline: what push(text + '\n') does, without the joined string. */
  pushLine(text: string): void {
    this.room(text.length * 3 + 1);
    this.length += this.buf.write(text, this.length);
    this.buf[this.length++] = 0x0a;
    this.ends.push(this.length);
  }

  /** JsonByteWriter: a string's UTF-8 bytes (part of the current line). */
  text(s: string): void {
    this.room(s.length * 3);
    this.length += this.buf.write(s, this.length);
  }

  /** JsonByteWriter: bytes as they are (part of the current line). */
  bytes(b: Uint8Array): void {
    this.room(b.byteLength);
    this.buf.set(b, this.length);
    this.length += b.byteLength;
  }

  /** Ends the line that text/bytes wrote. */
  endLine(): void {
    this.room(1);
    this.buf[this.length++] = 0x0a;
    this.ends.push(this.length);
  }

  private room(worst: number): void {
    if (this.length + worst > this.buf.byteLength) {
      const next = Buffer.allocUnsafe(Math.max(this.buf.byteLength * 2, this.length + worst));
      this.buf.copy(next, 0, 0, this.length);
      this.buf = next;
    }
  }

  /** The bytes added since the last reset (a view, valid until the next change). */
  bytesView(): Uint8Array {
    return this.buf.subarray(0, this.length);
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

/**
 * A file sink of one line per record: encode fills one of two alternating
 * line buffers (the pipeline encodes batch N+1 while batch N is written,
 * FlowSink.encode), writeEncoded appends it with rotation.
 */
abstract class LineFileSink implements FlowSink {
  abstract readonly kind: string;
  private readonly file: RotatingFile;
  private readonly buffers = [new LineBatch(), new LineBatch()] as const;
  private next = 0;
  constructor(
    path: string,
    private readonly rotation: RotationOptions,
  ) {
    this.file = new RotatingFile(path, rotation);
  }
  /** Adds the batch's lines to `lines`. */
  protected abstract fill(lines: LineBatch, batch: readonly AnyFlowRecord[]): void;
  encode(batch: readonly AnyFlowRecord[]): LineBatch {
    const lines = this.buffers[this.next] as LineBatch;
    this.next ^= 1;
    lines.reset();
    this.fill(lines, batch);
    return lines;
  }
  writeEncoded(encoded: EncodedBatch): Promise<void> {
    return (encoded as LineBatch).writeTo(this.file, this.rotation.maxBytes);
  }
  write(batch: readonly AnyFlowRecord[]): Promise<void> {
    return this.writeEncoded(this.encode(batch));
  }
  close(): Promise<void> {
    return this.file.close();
  }
}

export class NdjsonFileSink extends LineFileSink {
  readonly kind = 'ndjson';
  protected fill(lines: LineBatch, batch: readonly AnyFlowRecord[]): void {
    for (const r of batch) {
      writeRecordJson(r, lines);
      lines.endLine();
    }
  }
}

export class OcsfFileSink extends LineFileSink {
  readonly kind = 'ocsf';
  constructor(
    path: string,
    rotation: RotationOptions,
    private readonly product?: OcsfProduct,
  ) {
    super(path, rotation);
  }
  protected fill(lines: LineBatch, batch: readonly AnyFlowRecord[]): void {
    for (const r of batch)
      if (isFlowRecord(r)) lines.pushLine(JSON.stringify(toOcsf(r, this.product)));
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
