export * from './layout.js';
export * from './codec.js';
