// Public surface of the policy compiler: pure functions over the model.
export * from './model/index.js';
export * from './engine.js';
export * from './semantics/index.js';
export * from './load/index.js';
export * from './compiled.js';
export {
  compile,
  DEFAULT_LIMITS as DEFAULT_MAP_LIMITS,
  initialState,
  recompile,
  compileIncremental,
  applyChange,
  diffTables,
  allocate,
  portRangeCover,
  allocateNumbers,
  type Limits as MapLimits,
  type Allocation,
  type CompileOptions,
  type CompileError,
  type CompileResult,
  type Compiled,
  type CompiledMeta,
  type CompileStats,
  type TableMeta,
  type EndpointAddresses,
  type CompilerState,
  type RecompileResult,
  type StateResult,
  type WorldChange,
  type IdentityInfo,
  type IdentityResult,
  type PortPrefix,
  type Numbering,
} from './compile/index.js';
export * from './simulate/index.js';
export * from './encode/index.js';
