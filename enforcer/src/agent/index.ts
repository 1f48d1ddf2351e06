export * from './config.js';
export * from './discovery.js';
export * from './agent.js';
