#!/usr/bin/env node
// `palisade`: the command-line tool. All logic lives in program.ts.
import { processContext, runCli } from './program.js';

process.exitCode = await runCli(process.argv.slice(2), processContext('palisade'));
