// Public surface of the policy compiler: pure functions over the model.
export * from './model/index.js';
export * from './engine.js';
export * from './semantics/index.js';
export * from './load/index.js';
