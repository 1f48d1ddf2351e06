// Public surface of flow handling: events → records → filter → pipeline → sinks.
export * from './event-decode.js';
export * from './record.js';
export * from './serialize.js';
export * from './ocsf.js';
export * from './ocsf-validate.js';
export * from './filter.js';
export * from './sinks.js';
export * from './pipeline.js';
export * from './attribution.js';
export * from './ingest.js';
