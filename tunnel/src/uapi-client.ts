/**
 * One UAPI request over wireguard-go's unix socket
 * (/var/run/wireguard/<iface>.sock), bounded in time and size. A connection
 * carries one request; the answer ends with the `errno=N` line and a blank line.
 */
import { createConnection } from 'node:net';
import { UapiError } from './uapi-protocol.js';

export const UAPI_DIR = '/var/run/wireguard';
const MAX_ANSWER = 8 << 20;

export function uapiSocketPath(iface: string, dir = UAPI_DIR): string {
  return `${dir}/${iface}.sock`;
}

export function uapiRequest(
  socketPath: string,
  request: string,
  timeoutMs: number,
): Promise<string> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let size = 0;
    let done = false;
    const sock = createConnection({ path: socketPath });
    const finish = (err: Error | null, answer?: string): void => {
      if (done) return;
      done = true;
      clearTimeout(timer);
      sock.destroy();
      if (err) reject(err);
      else resolve(answer as string);
    };
    const timer = setTimeout(
      () => finish(new UapiError(`UAPI ${socketPath}: no answer within ${timeoutMs} ms`)),
      timeoutMs,
    );
    sock.on('connect', () => sock.write(request));
    sock.on('data', (d: Buffer) => {
      chunks.push(d);
      size += d.length;
      if (size > MAX_ANSWER)
        return finish(new UapiError(`UAPI ${socketPath}: answer larger than ${MAX_ANSWER} bytes`));
      const text = Buffer.concat(chunks).toString('utf8');
      if (/(?:^|\n)errno=-?\d+\n\n$/.test(text)) finish(null, text);
    });
    sock.on('end', () => {
      const text = Buffer.concat(chunks).toString('utf8');
      if (/(?:^|\n)errno=-?\d+\n/.test(text)) finish(null, text);
      else
        finish(
          new UapiError(`UAPI ${socketPath}: connection closed before the answer was complete`),
        );
    });
    sock.on('error', (e: NodeJS.ErrnoException) => {
      const why =
        e.code === 'ENOENT'
          ? 'no such socket (is wireguard-go running for this interface?)'
          : e.code === 'ECONNREFUSED'
            ? 'connection refused (stale socket: wireguard-go is not running)'
            : (e.code ?? e.message);
      finish(new UapiError(`UAPI ${socketPath}: ${why}`));
    });
  });
}
