export * from './auth.js';
export * from './server.js';
export * from './types.js';
export { FLOW_CLIENT_SOURCE } from './routes-flows.js';
