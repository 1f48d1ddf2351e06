/**
 * A throwaway self-signed certificate for 127.0.0.1 (no CA): tests that speak TLS to a local
 * server make the client verify it, so a test cannot pass with verification switched off.
 */
import { execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';

export interface LoopbackCert {
  key: string;
  cert: string;
}

/** Writes the key and certificate to the given paths and returns both as PEM text. */
export function loopbackCert(keyPath: string, certPath: string): LoopbackCert {
  execFileSync(
    'openssl',
    [
      'req',
      '-x509',
      '-newkey',
      'ec',
      '-pkeyopt',
      'ec_paramgen_curve:prime256v1',
      '-nodes',
      '-days',
      '1',
      '-subj',
      '/CN=127.0.0.1',
      '-addext',
      'subjectAltName=IP:127.0.0.1',
      '-keyout',
      keyPath,
      '-out',
      certPath,
    ],
    { stdio: 'ignore' },
  );
  return { key: readFileSync(keyPath, 'utf8'), cert: readFileSync(certPath, 'utf8') };
}
