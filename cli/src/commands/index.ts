/**
 * Every command of the program, in help order. To add one: write
 * commands/<name>.ts exporting a CommandRegistrar and put it in this list
 * (replacing its notBuilt placeholder).
 */
import { compileCommand } from './compile.js';
import { diff } from './diff.js';
import { flows } from './flows.js';
import { lab } from './lab.js';
import { lint } from './lint.js';
import { matrix } from './matrix.js';
import { notBuilt } from './not-built.js';
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
  notBuilt('agent', 7, 'run the node enforcer agent'),
  tunnel,
  lab,
];
