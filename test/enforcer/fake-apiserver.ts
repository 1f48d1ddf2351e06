/**
 * A small Kubernetes API server double that speaks the real list/watch wire
 * protocol for collection paths (`/api/v1/pods`, `/apis/<g>/<v>/<plural>`):
 *  - GET list → `{kind: <Kind>List, apiVersion, metadata: {resourceVersion}, items}`
 *  - GET ?watch=true&resourceVersion=N → chunked newline-delimited
 *    `{type: ADDED|MODIFIED|DELETED|BOOKMARK|ERROR, object}` from N on, then live;
 *    a resourceVersion older than the compaction point gets an ERROR event
 *    with a 410 Expired Status and the stream ends (what etcd compaction does).
 *  - unknown paths → 404 Status. Bearer token checked when configured.
 * Test controls: add/update/remove objects, bookmark, expire (compact +
 * 410 active watches), dropWatches (destroy sockets), stop/restart.
 */
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { createServer as createTlsServer } from 'node:https';
import type { AddressInfo, Socket } from 'node:net';

interface Obj {
  apiVersion?: string;
  kind?: string;
  metadata: { name: string; namespace?: string; resourceVersion?: string; [k: string]: unknown };
  [k: string]: unknown;
}

interface Event {
  readonly rv: number;
  readonly type: 'ADDED' | 'MODIFIED' | 'DELETED';
  readonly object: Obj;
}

interface Collection {
  readonly apiVersion: string;
  readonly kind: string;
  readonly objects: Map<string, Obj>;
  readonly history: Event[];
  readonly watchers: Set<ServerResponse>;
}

export interface PatchLog {
  readonly path: string;
  readonly contentType: string;
  readonly query: Record<string, string>;
  readonly body: unknown;
}

export interface RequestLog {
  readonly path: string;
  readonly query: Record<string, string>;
}

const keyOf = (o: Obj): string => `${o.metadata.namespace ?? ''}/${o.metadata.name}`;

function status(code: number, reason: string, message: string) {
  return {
    kind: 'Status',
    apiVersion: 'v1',
    metadata: {},
    status: 'Failure',
    message,
    reason,
    code,
  };
}

export class FakeApiServer {
  private server: Server | undefined;
  private readonly sockets = new Set<Socket>();
  private readonly collections = new Map<string, Collection>();
  private rv = 100;
  /** Watches from a resourceVersion below this get 410 Gone. */
  private compactedRv = 0;
  readonly requests: RequestLog[] = [];
  readonly patches: PatchLog[] = [];
  port = 0;

  constructor(
    private readonly token?: string,
    /** Serve HTTPS with this key pair (PEM); plain HTTP otherwise. */
    private readonly tls?: { readonly key: string; readonly cert: string },
  ) {}

  /** Serves a collection path, e.g. ('/api/v1/pods', 'v1', 'Pod'). */
  serve(path: string, apiVersion: string, kind: string): this {
    this.collections.set(path, {
      apiVersion,
      kind,
      objects: new Map(),
      history: [],
      watchers: new Set(),
    });
    return this;
  }

  async start(port = 0): Promise<string> {
    const handler = (req: IncomingMessage, res: ServerResponse): void => this.handle(req, res);
    this.server = this.tls
      ? createTlsServer({ key: this.tls.key, cert: this.tls.cert }, handler)
      : createServer(handler);
    this.server.on(this.tls ? 'secureConnection' : 'connection', (s: Socket) => {
      this.sockets.add(s);
      s.on('close', () => this.sockets.delete(s));
    });
    await new Promise<void>((r) => this.server?.listen(port, '127.0.0.1', () => r()));
    this.port = (this.server.address() as AddressInfo).port;
    return this.url;
  }

  /**
   * Listens on a Unix socket instead (same protocol): a client in another
   * network namespace reaches it through a relay, since Unix sockets are not
   * network-namespaced.
   */
  async startUnix(path: string): Promise<void> {
    const handler = (req: IncomingMessage, res: ServerResponse): void => this.handle(req, res);
    this.server = this.tls
      ? createTlsServer({ key: this.tls.key, cert: this.tls.cert }, handler)
      : createServer(handler);
    this.server.on(this.tls ? 'secureConnection' : 'connection', (s: Socket) => {
      this.sockets.add(s);
      s.on('close', () => this.sockets.delete(s));
    });
    await new Promise<void>((r) => this.server?.listen(path, () => r()));
  }

  get url(): string {
    return `${this.tls ? 'https' : 'http'}://127.0.0.1:${this.port}`;
  }

  async stop(): Promise<void> {
    for (const c of this.collections.values()) c.watchers.clear();
    for (const s of this.sockets) s.destroy();
    await new Promise<void>((r) => (this.server ? this.server.close(() => r()) : r()));
    this.server = undefined;
  }

  add(path: string, obj: Obj): void {
    this.record(path, 'ADDED', obj);
  }
  update(path: string, obj: Obj): void {
    this.record(path, 'MODIFIED', obj);
  }
  remove(path: string, name: string, namespace?: string): void {
    const c = this.col(path);
    const o = c.objects.get(`${namespace ?? ''}/${name}`);
    if (!o) throw new Error(`no ${path} ${namespace}/${name}`);
    this.record(path, 'DELETED', o);
  }

  /** Sends a BOOKMARK with the current resourceVersion to every watch of a path. */
  bookmark(path: string): void {
    const c = this.col(path);
    const ev = {
      type: 'BOOKMARK',
      object: {
        kind: c.kind,
        apiVersion: c.apiVersion,
        metadata: { resourceVersion: String(this.rv) },
      },
    };
    for (const w of c.watchers) w.write(`${JSON.stringify(ev)}\n`);
  }

  /**
   * Compacts history: every resourceVersion so far is too old. Active watches
   * get an ERROR 410 event and are closed, as the real server does.
   */
  expire(): void {
    this.compactedRv = this.rv;
    for (const c of this.collections.values()) {
      for (const w of c.watchers) {
        w.end(
          `${JSON.stringify({ type: 'ERROR', object: status(410, 'Expired', 'too old resource version') })}\n`,
        );
      }
      c.watchers.clear();
      c.history.length = 0;
    }
  }

  /** Kills every watch connection mid-stream (network failure, apiserver restart). */
  dropWatches(): void {
    for (const c of this.collections.values()) {
      for (const w of c.watchers) w.socket?.destroy();
      c.watchers.clear();
    }
  }

  watchCount(path: string): number {
    return this.col(path).watchers.size;
  }

  /** Changes an object without telling watchers (only a relist can see it). */
  silentlySet(path: string, obj: Obj): void {
    this.rv++;
    const c = this.col(path);
    const o = { ...obj, metadata: { ...obj.metadata, resourceVersion: String(this.rv) } };
    c.objects.set(keyOf(o), o);
  }

  private col(path: string): Collection {
    const c = this.collections.get(path);
    if (!c) throw new Error(`not served: ${path}`);
    return c;
  }

  private record(path: string, type: Event['type'], obj: Obj): void {
    const c = this.col(path);
    this.rv++;
    const o: Obj = {
      apiVersion: c.apiVersion,
      kind: c.kind,
      ...obj,
      metadata: { ...obj.metadata, resourceVersion: String(this.rv) },
    };
    if (type === 'DELETED') c.objects.delete(keyOf(o));
    else c.objects.set(keyOf(o), o);
    const ev: Event = { rv: this.rv, type, object: o };
    c.history.push(ev);
    for (const w of c.watchers) w.write(`${JSON.stringify({ type, object: o })}\n`);
  }

  /**
   * Server-side apply of a status subresource, reduced to what the status
   * writer uses: `status.nodes` merged as a list-map keyed by (cluster, node).
   */
  private patchStatus(
    req: IncomingMessage,
    u: URL,
    query: Record<string, string>,
    send: (code: number, body: unknown) => void,
  ): void {
    let raw = '';
    req.setEncoding('utf8');
    req.on('data', (c: string) => (raw += c));
    req.on('end', () => {
      const parts = u.pathname.split('/'); // '', apis, g, v, plural, name, status
      const name = parts[parts.length - 2] as string;
      const path = parts.slice(0, parts.length - 2).join('/');
      let body: { status?: { nodes?: Record<string, unknown>[] } };
      try {
        body = JSON.parse(raw);
      } catch {
        send(400, status(400, 'BadRequest', 'body is not JSON/YAML'));
        return;
      }
      this.patches.push({
        path: u.pathname,
        contentType: String(req.headers['content-type']),
        query,
        body,
      });
      const c = this.collections.get(path);
      const obj = c?.objects.get(`/${name}`);
      if (!c || !obj) {
        send(404, status(404, 'NotFound', `${name} not found`));
        return;
      }
      const nodes = [
        ...((obj.status as { nodes?: Record<string, unknown>[] } | undefined)?.nodes ?? []),
      ];
      for (const n of body.status?.nodes ?? []) {
        const i = nodes.findIndex((x) => x.cluster === n.cluster && x.node === n.node);
        if (i >= 0) nodes[i] = n;
        else nodes.push(n);
      }
      const updated = { ...obj, status: { ...((obj.status as object) ?? {}), nodes } };
      this.record(path, 'MODIFIED', updated);
      send(200, c.objects.get(`/${name}`));
    });
  }

  private handle(req: IncomingMessage, res: ServerResponse): void {
    const u = new URL(req.url ?? '/', 'http://x');
    const query = Object.fromEntries(u.searchParams);
    this.requests.push({ path: u.pathname, query });
    const send = (code: number, body: unknown): void => {
      res.writeHead(code, { 'content-type': 'application/json' });
      res.end(JSON.stringify(body));
    };
    if (this.token && req.headers.authorization !== `Bearer ${this.token}`) {
      send(401, status(401, 'Unauthorized', 'Unauthorized'));
      return;
    }
    if (req.method === 'PATCH' && u.pathname.endsWith('/status')) {
      this.patchStatus(req, u, query, send);
      return;
    }
    const c = this.collections.get(u.pathname);
    if (!c || req.method !== 'GET') {
      send(
        404,
        status(404, 'NotFound', `the server could not find the requested resource (${u.pathname})`),
      );
      return;
    }
    const watching = query.watch === 'true' || query.watch === '1';
    if (!watching) {
      send(200, {
        kind: `${c.kind}List`,
        apiVersion: c.apiVersion,
        metadata: { resourceVersion: String(this.rv) },
        items: [...c.objects.values()].map(({ apiVersion: _a, kind: _k, ...rest }) => rest),
      });
      return;
    }
    const from = Number(query.resourceVersion ?? '0');
    res.writeHead(200, { 'content-type': 'application/json', 'transfer-encoding': 'chunked' });
    if (query.resourceVersion && from < this.compactedRv) {
      res.end(
        `${JSON.stringify({ type: 'ERROR', object: status(410, 'Expired', `too old resource version: ${from} (${this.compactedRv})`) })}\n`,
      );
      return;
    }
    res.flushHeaders();
    for (const ev of c.history) {
      if (ev.rv > from) res.write(`${JSON.stringify({ type: ev.type, object: ev.object })}\n`);
    }
    c.watchers.add(res);
    res.on('close', () => c.watchers.delete(res));
  }
}
