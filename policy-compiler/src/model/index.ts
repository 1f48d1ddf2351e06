export * from './labels.js';
export * from './source.js';
export * from './world.js';
export * from './policy.js';
export * from './endpoint.js';
export * from './order.js';
