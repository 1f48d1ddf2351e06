#!/usr/bin/env node
// `kubectl-palisade`: the same program installed as a kubectl plugin, so
// kubectl finds it as `kubectl palisade …` and help text says so.
import { processContext, runCli } from './program.js';

process.exitCode = await runCli(process.argv.slice(2), processContext('kubectl palisade'));
