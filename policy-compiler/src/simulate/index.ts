export * from './engine.js';
export * from './matrix.js';
