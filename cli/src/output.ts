/**
 * Writing large outputs without holding them as one string: a matrix of
 * 500 pods is ~1.3 M probes, more than one JavaScript string can hold as
 * JSON. Text is written in chunks of about 1 MiB, waiting for the stream to
 * drain when it asks to.
 */
import type { TextSink } from './context.js';

const CHUNK = 1 << 20;

interface DrainableSink extends TextSink {
  once?(event: 'drain', listener: () => void): unknown;
}

async function flush(sink: DrainableSink, text: string): Promise<void> {
  const ok = sink.write(text);
  if (ok === false && typeof sink.once === 'function') {
    await new Promise<void>((resolve) => sink.once?.('drain', resolve));
  }
}

/** Writes every piece in order, batching small pieces into ~1 MiB writes. */
export async function writeAll(sink: TextSink, pieces: Iterable<string>): Promise<void> {
  let buf = '';
  for (const piece of pieces) {
    buf += piece;
    if (buf.length >= CHUNK) {
      await flush(sink, buf);
      buf = '';
    }
  }
  if (buf !== '') await flush(sink, buf);
}

/**
 * `{"probes":[` + one compact JSON object per line + `]` + the keys of
 * `rest` + `}`: valid JSON, and line-oriented so `grep` and `jq -c` stay
 * usable on large matrices.
 */
export function* jsonArrayLines(
  key: string,
  items: Iterable<unknown>,
  rest: Record<string, unknown> = {},
): Generator<string> {
  yield `{${JSON.stringify(key)}:[`;
  let first = true;
  for (const item of items) {
    yield `${first ? '\n' : ',\n'}${JSON.stringify(item)}`;
    first = false;
  }
  yield first ? ']' : '\n]';
  for (const [k, v] of Object.entries(rest)) yield `,${JSON.stringify(k)}:${JSON.stringify(v)}`;
  yield '}\n';
}
