export * from './compile.js';
export { allocate, type IdentityInfo, type IdentityResult } from './identities.js';
export { portRangeCover, type PortPrefix } from './port-ranges.js';
export { allocateNumbers, type Numbering } from './allocate.js';
export * from './incremental.js';
