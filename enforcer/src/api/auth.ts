/**
 * Bearer-token auth. The token file must be private (mode 0600 or stricter):
 * anything group/other-readable is refused, as ssh does with keys. The token
 * is compared in constant time and never logged or echoed.
 */
import { createHash, timingSafeEqual } from 'node:crypto';
import { readFile, stat } from 'node:fs/promises';
import type { FastifyReply, FastifyRequest } from 'fastify';

export class TokenFileError extends Error {
  constructor(
    readonly path: string,
    message: string,
  ) {
    super(`${path}: ${message}`);
    this.name = 'TokenFileError';
  }
}

/** Reads a token file; refuses a file others can read or write, or an empty token. */
export async function loadTokenFile(path: string): Promise<string> {
  let st;
  try {
    st = await stat(path);
  } catch (e) {
    throw new TokenFileError(
      path,
      `cannot read token file (${(e as NodeJS.ErrnoException).code ?? 'error'})`,
    );
  }
  if (!st.isFile()) throw new TokenFileError(path, 'token file is not a regular file');
  const mode = st.mode & 0o777;
  if ((mode & 0o077) !== 0) {
    throw new TokenFileError(
      path,
      `token file mode is ${mode.toString(8).padStart(4, '0')}, must be 0600 (chmod 600 ${path})`,
    );
  }
  const token = (await readFile(path, 'utf8')).trim();
  if (token.length < 16) throw new TokenFileError(path, 'token must be at least 16 characters');
  if (/\s/.test(token)) throw new TokenFileError(path, 'token must be one line without spaces');
  return token;
}

const digest = (s: string): Buffer => createHash('sha256').update(s).digest();

/** Constant-time comparison: both sides hashed to equal length first. */
export function tokenMatches(expected: string, presented: string): boolean {
  return timingSafeEqual(digest(expected), digest(presented));
}

/** onRequest hook enforcing `Authorization: Bearer <token>`. */
export function bearerAuth(token: string) {
  const expected = digest(token);
  return async (req: FastifyRequest, reply: FastifyReply): Promise<void> => {
    const h = req.headers.authorization;
    const m = typeof h === 'string' ? /^Bearer\s+(\S+)\s*$/i.exec(h) : null;
    if (!m) {
      reply.header('www-authenticate', 'Bearer realm="palisade"');
      await reply
        .code(401)
        .send({ statusCode: 401, error: 'Unauthorized', message: 'bearer token required' });
      return reply;
    }
    if (!timingSafeEqual(expected, digest(m[1] as string))) {
      reply.header('www-authenticate', 'Bearer realm="palisade", error="invalid_token"');
      await reply
        .code(401)
        .send({ statusCode: 401, error: 'Unauthorized', message: 'invalid token' });
      return reply;
    }
  };
}
