#!/usr/bin/env node
// Placeholder entry point; the real CLI is built in cli/src/program.ts.
console.error('palisade: not built yet');
process.exit(2);
