// Lets a child process run the TypeScript sources directly (Node 20 has no
// type stripping): `node --import ./ts-register.mjs child.ts`. Used for
// helper processes that must live in another network namespace (the
// datapath loader inside the node netns); transpile only, no type check.
import { register } from 'node:module';

register(new URL('./ts-hooks.mjs', import.meta.url));
