import type { Schema } from './types.js';

/** One served version of one of our CRDs, as read from crds/. */
export interface CrdSchema {
  readonly file: string;
  readonly group: string;
  readonly version: string;
  readonly kind: string;
  readonly scope: 'Cluster' | 'Namespaced';
  readonly statusSubresource: boolean;
  readonly schema: Schema;
}
