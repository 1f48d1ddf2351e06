// Make the CLI entry points executable after tsc (tsc does not set modes).
import { chmodSync, existsSync } from 'node:fs';
for (const f of ['dist/cli/src/main.js', 'dist/cli/src/kubectl-main.js']) {
  if (existsSync(f)) chmodSync(f, 0o755);
}
