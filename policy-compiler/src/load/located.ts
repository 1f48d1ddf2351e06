/**
 * YAML text → plain JSON-like values that remember where every node came
 * from. Parsing goes through the CST first so that excessive nesting is
 * refused before the (recursive) composer sees it; aliases are expanded by
 * our own walk, which counts the nodes it produces.
 */
import {
  Composer,
  Lexer,
  LineCounter,
  Parser,
  isAlias,
  isMap,
  isPair,
  isScalar,
  isSeq,
} from 'yaml';
import type { Document, Node as YamlNode, CST } from 'yaml';

export type PathSegment = string | number;
export type FieldPath = readonly PathSegment[];

export interface Span {
  readonly line: number;
  readonly col: number;
  readonly endLine: number;
  readonly endCol: number;
}

/** Where one entry of a mapping or list sits: its key (mappings) and its value. */
interface EntrySpan {
  readonly key: Span | null;
  readonly value: Span;
}

export interface LoaderLimits {
  /** Bytes of UTF-8 per input text. */
  readonly maxBytes: number;
  /** Nesting of mappings and lists per document. */
  readonly maxDepth: number;
  /** Nodes per document after alias expansion. */
  readonly maxNodes: number;
  /** Alias references per document. */
  readonly maxAliases: number;
  /** Documents per input text. */
  readonly maxDocuments: number;
  /** YAML tokens per input text (bounds the parser's memory). */
  readonly maxTokens: number;
}

export const DEFAULT_LIMITS: LoaderLimits = Object.freeze({
  maxBytes: 16 * 1024 * 1024,
  maxDepth: 64,
  maxNodes: 1_000_000,
  maxAliases: 1_000,
  maxDocuments: 10_000,
  maxTokens: 2_000_000,
});

export interface ParseProblem {
  readonly kind: 'syntax' | 'limit' | 'duplicate-key' | 'encoding';
  readonly span: Span;
  /** Field path of the mapping concerned, when known. */
  readonly path?: FieldPath;
  readonly message: string;
}

/** One YAML document as a plain value plus positions. */
export class LocatedDocument {
  constructor(
    readonly file: string,
    readonly index: number,
    readonly value: unknown,
    readonly span: Span,
    private readonly entries: WeakMap<object, Map<PathSegment, EntrySpan>>,
  ) {}

  /** Span of the value at `path`, or of the deepest existing ancestor when it is absent. */
  spanOf(path: FieldPath, part: 'value' | 'key' = 'value'): Span {
    let cur: unknown = this.value;
    let span = this.span;
    for (const seg of path) {
      if (cur === null || typeof cur !== 'object') break;
      const e = this.entries.get(cur)?.get(seg);
      if (!e) break;
      span = part === 'key' && seg === path[path.length - 1] && e.key ? e.key : e.value;
      cur = (cur as Record<PathSegment, unknown>)[seg];
    }
    return span;
  }

  /** Span of the key of the entry at `path` (or its value for list items). */
  keySpanOf(path: FieldPath): Span {
    return this.spanOf(path, 'key');
  }

  /** A document for a sub-value (List items), sharing the position table. */
  child(index: number, value: unknown, span: Span): LocatedDocument {
    return new LocatedDocument(this.file, index, value, span, this.entries);
  }

  /** Span of the whole entry at `path` within its parent (used for List items). */
  entrySpan(path: FieldPath): Span {
    return this.spanOf(path);
  }
}

export interface ParsedText {
  readonly documents: LocatedDocument[];
  readonly problems: ParseProblem[];
}

const IDENT = /^[A-Za-z_][A-Za-z0-9_]*$/;

export function formatPath(path: FieldPath): string {
  let out = '';
  for (const seg of path) {
    if (typeof seg === 'number') out += `[${seg}]`;
    else if (IDENT.test(seg)) out += out === '' ? seg : `.${seg}`;
    else out += `[${seg}]`;
  }
  return out;
}

function spanFrom(lc: LineCounter, start: number, end: number): Span {
  const a = lc.linePos(start);
  const b = lc.linePos(Math.max(start, end));
  return { line: a.line, col: a.col, endLine: b.line, endCol: b.col };
}

/** Deepest nesting of a CST token, walked iteratively (never recursion on user input). */
function cstDepth(token: CST.Token, cap: number): number {
  let max = 0;
  const stack: Array<[CST.Token | undefined, number]> = [[token, 0]];
  while (stack.length > 0) {
    const [t, d] = stack.pop() as [CST.Token | undefined, number];
    if (!t) continue;
    if (d > max) max = d;
    if (max > cap) return max;
    switch (t.type) {
      case 'document':
        stack.push([t.value, d]);
        break;
      case 'block-map':
      case 'block-seq':
      case 'flow-collection':
        for (const it of t.items as Array<{ key?: CST.Token | null; value?: CST.Token }>) {
          if (it.key) stack.push([it.key, d + 1]);
          if (it.value) stack.push([it.value, d + 1]);
        }
        break;
      default:
        break;
    }
  }
  return max;
}

class LimitError extends Error {
  constructor(
    message: string,
    readonly span: Span | null = null,
  ) {
    super(message);
  }
}

/** Raised while lexing: the whole text is refused, at the offset reached. */
class TextLimitError extends Error {
  constructor(
    message: string,
    readonly offset: number,
  ) {
    super(message);
  }
}

/**
 * The CST tokens of a text, driving lexer and parser one lexeme at a time so
 * that the parser's nesting stack and the token count stay bounded (a text of
 * 16 MiB of `[` would otherwise take gigabytes before any check could run).
 */
function* boundedCst(
  parser: Parser,
  text: string,
  limits: LoaderLimits,
  lc: LineCounter,
): Generator<CST.Token> {
  lc.addNewLine(0);
  let lexemes = 0;
  let offset = 0;
  for (const lexeme of new Lexer().lex(text, false)) {
    if (++lexemes > limits.maxTokens) {
      throw new TextLimitError(`more than ${limits.maxTokens} YAML tokens`, offset);
    }
    if (parser.stack.length > limits.maxDepth + 4) {
      throw new TextLimitError(`nesting deeper than ${limits.maxDepth} levels`, offset);
    }
    offset += lexeme.length;
    yield* parser.next(lexeme);
  }
  yield* parser.end();
}

/** Converts a composed YAML node to a plain value, recording spans. */
class Converter {
  nodes = 0;
  aliases = 0;
  readonly entries = new WeakMap<object, Map<PathSegment, EntrySpan>>();
  readonly problems: ParseProblem[] = [];

  constructor(
    private readonly doc: Document.Parsed,
    private readonly lc: LineCounter,
    private readonly limits: LoaderLimits,
  ) {}

  span(node: YamlNode | null | undefined, fallback: Span): Span {
    const r = node?.range;
    return r ? spanFrom(this.lc, r[0], r[1]) : fallback;
  }

  convert(
    node: unknown,
    depth: number,
    fallback: Span,
    resolving: Set<unknown>,
    path: PathSegment[] = [],
  ): unknown {
    if (++this.nodes > this.limits.maxNodes) {
      throw new LimitError(
        `document expands to more than ${this.limits.maxNodes} nodes (alias expansion?)`,
      );
    }
    if (depth > this.limits.maxDepth) {
      throw new LimitError(`nesting deeper than ${this.limits.maxDepth} levels`);
    }
    if (isAlias(node)) {
      if (++this.aliases > this.limits.maxAliases) {
        throw new LimitError(`more than ${this.limits.maxAliases} alias references`);
      }
      const target = node.resolve(this.doc);
      if (target === undefined || resolving.has(target)) {
        throw new LimitError(
          `unresolvable or recursive alias *${node.source}`,
          this.span(node, fallback),
        );
      }
      resolving.add(target);
      try {
        return this.convert(target, depth, fallback, resolving, path);
      } finally {
        resolving.delete(target);
      }
    }
    if (isScalar(node)) {
      const v = node.value;
      if (typeof v === 'bigint') return Number(v);
      if (v instanceof Uint8Array || v instanceof Date) return String(node.source ?? v);
      return v;
    }
    if (isMap(node)) {
      const out: Record<string, unknown> = Object.create(null) as Record<string, unknown>;
      const spans = new Map<PathSegment, EntrySpan>();
      const own = this.span(node, fallback);
      for (const item of node.items) {
        if (!isPair(item)) continue;
        const k = item.key as YamlNode | null;
        const keySpan = this.span(k, own);
        let key: string;
        if (k === null || k === undefined) key = '';
        else if (isScalar(k)) key = k.value === null ? 'null' : String(k.value);
        else if (isAlias(k) && isScalar(k.resolve(this.doc))) {
          key = String((k.resolve(this.doc) as { value: unknown }).value);
        } else {
          this.problems.push({
            kind: 'syntax',
            span: keySpan,
            path,
            message: 'mapping keys must be strings',
          });
          continue;
        }
        const v = item.value as YamlNode | null;
        const valueSpan = v ? this.span(v, keySpan) : keySpan;
        if (Object.prototype.hasOwnProperty.call(out, key)) {
          this.problems.push({
            kind: 'duplicate-key',
            span: keySpan,
            path,
            message: `duplicate key "${key}"`,
          });
          continue;
        }
        const value =
          v === null || v === undefined
            ? null
            : this.convert(v, depth + 1, valueSpan, resolving, [...path, key]);
        // A null value is the same as an absent field for the API server (pruned).
        if (value === null) continue;
        out[key] = value;
        spans.set(key, { key: keySpan, value: valueSpan });
      }
      // Plain prototype so consumers can use ordinary objects.
      const plain: Record<string, unknown> = {};
      for (const key of Object.keys(out)) {
        Object.defineProperty(plain, key, {
          value: out[key],
          enumerable: true,
          writable: true,
          configurable: true,
        });
      }
      this.entries.set(plain, spans);
      return plain;
    }
    if (isSeq(node)) {
      const out: unknown[] = [];
      const spans = new Map<PathSegment, EntrySpan>();
      const own = this.span(node, fallback);
      node.items.forEach((item, i) => {
        const s = this.span(item as YamlNode, own);
        spans.set(i, { key: null, value: s });
        out.push(
          item === null || item === undefined
            ? null
            : this.convert(item, depth + 1, s, resolving, [...path, i]),
        );
      });
      this.entries.set(out, spans);
      return out;
    }
    return null;
  }
}

/** Parses every document of one text. Never throws on any input. */
export function parseYamlText(
  file: string,
  text: string,
  limits: LoaderLimits = DEFAULT_LIMITS,
): ParsedText {
  const lc = new LineCounter();
  const documents: LocatedDocument[] = [];
  const problems: ParseProblem[] = [];
  const atStart: Span = { line: 1, col: 1, endLine: 1, endCol: 1 };
  try {
    const parser = new Parser(lc.addNewLine);
    // Parser.parse() would call lc.addNewLine(0) itself; boundedCst does.
    const composer = new Composer({
      prettyErrors: false,
      // Duplicate keys are reported by the converter (with the key's position).
      uniqueKeys: false,
      strict: true,
      version: '1.2',
      schema: 'core',
      merge: false,
    });
    const composed: Document.Parsed[] = [];
    let count = 0;
    for (const token of boundedCst(parser, text, limits, lc)) {
      if (token.type === 'document') {
        if (++count > limits.maxDocuments) {
          problems.push({
            kind: 'limit',
            span: atStart,
            message: `more than ${limits.maxDocuments} documents`,
          });
          break;
        }
        const depth = cstDepth(token, limits.maxDepth);
        if (depth > limits.maxDepth) {
          const s = spanFrom(lc, token.offset, token.offset);
          problems.push({
            kind: 'limit',
            span: s,
            message: `nesting deeper than ${limits.maxDepth} levels`,
          });
          continue;
        }
      }
      for (const d of composer.next(token)) composed.push(d);
    }
    for (const d of composer.end()) composed.push(d);

    composed.forEach((doc, i) => {
      // Position of a document = its contents (after any `---` marker).
      const r = (doc.contents as YamlNode | null)?.range ?? doc.range;
      const docSpan = r ? spanFrom(lc, r[0], r[1]) : atStart;
      let fatal = false;
      for (const e of doc.errors) {
        const s = spanFrom(lc, e.pos[0], e.pos[1]);
        if (e.code === 'RESOURCE_EXHAUSTION') {
          problems.push({ kind: 'limit', span: s, message: 'nesting too deep to parse' });
          fatal = true;
        } else {
          problems.push({ kind: 'syntax', span: s, message: firstLine(e.message) });
          fatal = true;
        }
      }
      if (fatal) return;
      const conv = new Converter(doc, lc, limits);
      try {
        const value = conv.convert(doc.contents, 0, docSpan, new Set());
        problems.push(...conv.problems);
        // Empty documents (only comments, or `---` with nothing) are skipped like kubectl does.
        if (value === null && doc.contents === null) return;
        if (value === null && isScalar(doc.contents) && doc.contents.value === null) return;
        documents.push(new LocatedDocument(file, i, value, docSpan, conv.entries));
      } catch (e) {
        if (e instanceof LimitError)
          problems.push({ kind: 'limit', span: e.span ?? docSpan, message: e.message });
        else if (e instanceof RangeError)
          problems.push({ kind: 'limit', span: docSpan, message: 'document too complex to load' });
        else throw e;
      }
    });
  } catch (e) {
    if (e instanceof TextLimitError) {
      const s = spanFrom(lc, e.offset, e.offset);
      return { documents: [], problems: [{ kind: 'limit', span: s, message: e.message }] };
    }
    problems.push({
      kind: 'syntax',
      span: atStart,
      message: `cannot parse: ${e instanceof Error ? firstLine(e.message) : String(e)}`,
    });
  }
  return { documents, problems };
}

function firstLine(s: string): string {
  const line = s.split('\n', 1)[0] ?? '';
  return line.length > 200 ? `${line.slice(0, 200)}…` : line;
}
