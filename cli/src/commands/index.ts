/**
 * Every command of the program, in help order. To add one: write
 * commands/<name>.ts exporting a CommandRegistrar and put it in this list
 * (replacing its notBuilt placeholder).
 */
import { agent } from './agent.js';
import { compileCommand } from './compile.js';
import { diff } from './diff.js';
import { flows } from './flows.js';
import { lab } from './lab.js';
import { lint } from './lint.js';
import { matrix } from './matrix.js';
import type { CommandRegistrar } from './registrar.js';
import { verdict } from './verdict.js';
import { tunnel } from './tunnel.js';

export type { CommandRegistrar } from './registrar.js';

export const commands: readonly CommandRegistrar[] = [
  lint,
  verdict,
  matrix,
  diff,
  compileCommand,
  flows,
  agent,
  tunnel,
  lab,
];
