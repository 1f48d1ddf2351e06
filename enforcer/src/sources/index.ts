export * from './snapshot.js';
export * from './directory.js';
export * from './kubernetes.js';
export * from './status-writer.js';
