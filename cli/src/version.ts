/** Kept in step with package.json "version" (read at build time would need I/O in every import). */
export const PALISADE_VERSION = '0.1.0';
