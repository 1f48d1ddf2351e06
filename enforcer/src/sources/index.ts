export * from './snapshot.js';
export * from './directory.js';
export * from './kubernetes.js';
export * from './status-writer.js';
export * from './mesh-store-records.js';
export * from './mesh-store-merge.js';
export * from './mesh-store-source.js';
export * from './mesh-store-publisher.js';
