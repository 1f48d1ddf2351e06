// Public surface of the loader: texts → World + diagnostics, and reading inputs.
export { loadWorldFromTexts } from './world.js';
export type { LoadInput, LoadOptions, LoadResult, LoadedObject } from './world.js';
export {
  DIAGNOSTIC_CODES,
  formatDiagnostic,
  hasErrors,
  type Diagnostic,
  type DiagnosticCode,
  type DiagnosticCodeInfo,
  type Severity,
} from './diagnostics.js';
export { DEFAULT_LIMITS, type LoaderLimits } from './located.js';
export { readInputs, type ReadResult } from './read.js';
export { ParseCache } from './parse-cache.js';
