/**
 * The I/O half of loading: files, directories (recursive; *.yaml, *.yml,
 * *.json in sorted order) and `-` for stdin, decoded as strict UTF-8. Problems
 * come back as diagnostics, never as exceptions.
 */
import { readFile, readdir, stat } from 'node:fs/promises';
import { join } from 'node:path';
import type { Diagnostic, DiagnosticCode } from './diagnostics.js';
import { DEFAULT_LIMITS } from './located.js';
import type { LoadInput } from './world.js';

export interface ReadResult {
  readonly inputs: LoadInput[];
  readonly diagnostics: Diagnostic[];
}

const EXTENSIONS = ['.yaml', '.yml', '.json'];
const MAX_FILES = 100_000;

function problem(file: string, code: DiagnosticCode, message: string): Diagnostic {
  return {
    severity: 'error',
    code,
    file,
    line: 1,
    col: 1,
    endLine: 1,
    endCol: 1,
    path: '',
    message,
  };
}

/** Bytes → text: UTF-8 (BOM dropped); UTF-16/32 and invalid UTF-8 are refused. */
export function decodeBytes(
  file: string,
  bytes: Uint8Array,
): { text: string } | { error: Diagnostic } {
  const b0 = bytes[0];
  const b1 = bytes[1];
  if ((b0 === 0xff && b1 === 0xfe) || (b0 === 0xfe && b1 === 0xff)) {
    return {
      error: problem(
        file,
        'PAL002',
        'input is UTF-16 or UTF-32 (byte order mark found; allowed: UTF-8)',
      ),
    };
  }
  if (bytes.length >= 4 && b0 === 0 && b1 === 0 && bytes[2] === 0xfe && bytes[3] === 0xff) {
    return {
      error: problem(file, 'PAL002', 'input is UTF-32 (byte order mark found; allowed: UTF-8)'),
    };
  }
  const nul = bytes.indexOf(0);
  if (nul >= 0) {
    const hint = nul < 4 ? ' (UTF-16 or UTF-32 without byte order mark?)' : '';
    return {
      error: problem(
        file,
        'PAL002',
        `input contains NUL bytes at offset ${nul}: binary data or not UTF-8${hint} (allowed: UTF-8 text)`,
      ),
    };
  }
  try {
    const text = new TextDecoder('utf-8', { fatal: true, ignoreBOM: false }).decode(bytes);
    return { text };
  } catch {
    return { error: problem(file, 'PAL002', 'input is not valid UTF-8 (allowed: UTF-8 text)') };
  }
}

async function readStream(
  s: NodeJS.ReadableStream,
  max: number,
): Promise<Uint8Array | 'too-large'> {
  const chunks: Buffer[] = [];
  let n = 0;
  for await (const chunk of s) {
    const b =
      typeof chunk === 'string' ? Buffer.from(chunk, 'utf8') : Buffer.from(chunk as Uint8Array);
    n += b.length;
    if (n > max) return 'too-large';
    chunks.push(b);
  }
  return Buffer.concat(chunks);
}

/**
 * Collects *.yaml|*.yml|*.json below `dir` in sorted order. Hidden entries
 * (`.git`, the `..data` links of ConfigMap volumes) are skipped; symbolic
 * links to files are followed, links to directories are not (no loops).
 */
async function walk(dir: string, out: string[], diags: Diagnostic[]): Promise<void> {
  let entries;
  try {
    entries = await readdir(dir, { withFileTypes: true });
  } catch (e) {
    diags.push(
      problem(
        dir,
        'PAL002',
        `cannot read directory: ${(e as NodeJS.ErrnoException).code ?? String(e)}`,
      ),
    );
    return;
  }
  entries.sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
  for (const e of entries) {
    if (out.length >= MAX_FILES) return;
    if (e.name.startsWith('.')) continue;
    const p = join(dir, e.name);
    const wanted = EXTENSIONS.some((x) => e.name.endsWith(x));
    if (e.isDirectory()) await walk(p, out, diags);
    else if (e.isFile() && wanted) out.push(p);
    else if (e.isSymbolicLink() && wanted) {
      try {
        if ((await stat(p)).isFile()) out.push(p);
      } catch {
        diags.push(problem(p, 'PAL002', 'broken symbolic link'));
      }
    }
  }
}

/**
 * Reads every path: a file as given, a directory recursively, `-` from stdin.
 * Each file is refused when larger than `maxBytes` (default 16 MiB).
 */
export async function readInputs(
  paths: readonly string[],
  stdin: NodeJS.ReadableStream = process.stdin,
  maxBytes: number = DEFAULT_LIMITS.maxBytes,
): Promise<ReadResult> {
  const inputs: LoadInput[] = [];
  const diagnostics: Diagnostic[] = [];
  const tooLarge = (file: string, size: number | string) =>
    diagnostics.push(
      problem(file, 'PAL003', `input too large (allowed: at most ${maxBytes} bytes, got: ${size})`),
    );
  const addBytes = (file: string, bytes: Uint8Array) => {
    const r = decodeBytes(file, bytes);
    if ('error' in r) diagnostics.push(r.error);
    else inputs.push({ file, text: r.text });
  };
  let stdinUsed = false;
  for (const path of paths) {
    if (path === '-') {
      if (stdinUsed) continue;
      stdinUsed = true;
      try {
        const bytes = await readStream(stdin, maxBytes);
        if (bytes === 'too-large') tooLarge('<stdin>', `more than ${maxBytes}`);
        else addBytes('<stdin>', bytes);
      } catch (e) {
        diagnostics.push(
          problem(
            '<stdin>',
            'PAL002',
            `cannot read stdin: ${e instanceof Error ? e.message : String(e)}`,
          ),
        );
      }
      continue;
    }
    let st;
    try {
      st = await stat(path);
    } catch (e) {
      const code = (e as NodeJS.ErrnoException).code;
      diagnostics.push(
        problem(
          path,
          'PAL002',
          code === 'ENOENT' ? 'no such file or directory' : `cannot read: ${code ?? String(e)}`,
        ),
      );
      continue;
    }
    const files: string[] = [];
    if (st.isDirectory()) await walk(path, files, diagnostics);
    else files.push(path);
    for (const f of files) {
      try {
        const fst = f === path ? st : await stat(f);
        if (fst.size > maxBytes) {
          tooLarge(f, fst.size);
          continue;
        }
        addBytes(f, await readFile(f));
      } catch (e) {
        diagnostics.push(
          problem(f, 'PAL002', `cannot read: ${(e as NodeJS.ErrnoException).code ?? String(e)}`),
        );
      }
    }
  }
  return { inputs, diagnostics };
}
