/**
 * SARIF 2.1.0 for `palisade lint -o sarif`, as GitHub code scanning reads it
 * (FORMATS.md): every diagnostic code is a rule with descriptions and help,
 * every finding has a full region and a primaryLocationLineHash fingerprint.
 */
import { createHash } from 'node:crypto';
import {
  DIAGNOSTIC_CODES,
  type Diagnostic,
  type DiagnosticCode,
} from '../../../policy-compiler/src/index.js';
import { PALISADE_VERSION } from '../version.js';

export const SARIF_SCHEMA =
  'https://docs.oasis-open.org/sarif/sarif/v2.1.0/errata01/os/schemas/sarif-schema-2.1.0.json';
export const INFORMATION_URI = 'https://palisade.dev/docs/cli#lint';

const RULE_IDS = Object.keys(DIAGNOSTIC_CODES) as DiagnosticCode[];

/** Invalid policies are not enforced, which is a security matter: medium for errors, low for warnings. */
const SECURITY_SEVERITY = { error: '5.0', warning: '2.0' } as const;

function rules() {
  return RULE_IDS.map((id) => {
    const info = DIAGNOSTIC_CODES[id];
    return {
      id,
      name: info.name,
      shortDescription: { text: info.shortDescription },
      fullDescription: { text: info.fullDescription },
      help: { text: info.help },
      defaultConfiguration: { level: info.severity },
      properties: {
        tags: ['kubernetes', 'network-policy', 'validation'],
        precision: 'very-high',
        'security-severity': SECURITY_SEVERITY[info.severity],
      },
    };
  });
}

/**
 * GitHub-style line hash: sha256 of the whitespace-free text of the finding's
 * first line, its rule and field path, plus `:<n>` counting identical earlier
 * hashes, so fingerprints survive unrelated edits that move lines.
 */
function lineHashes(
  diagnostics: readonly Diagnostic[],
  texts: ReadonlyMap<string, string>,
): string[] {
  const lines = new Map<string, string[]>();
  const seen = new Map<string, number>();
  return diagnostics.map((d) => {
    let fileLines = lines.get(d.file);
    if (fileLines === undefined) {
      fileLines = (texts.get(d.file) ?? '').split(/\r?\n/);
      lines.set(d.file, fileLines);
    }
    const lineText = (fileLines[d.line - 1] ?? '').replace(/\s+/g, '');
    const hash = createHash('sha256')
      .update(`${d.code}\u0000${d.path}\u0000${lineText}`)
      .digest('hex')
      .slice(0, 32);
    const n = seen.get(hash) ?? 0;
    seen.set(hash, n + 1);
    return `${hash}:${n + 1}`;
  });
}

function region(d: Diagnostic) {
  if (d.line < 1) return undefined;
  const startColumn = Math.max(1, d.col);
  const endLine = Math.max(d.line, d.endLine);
  // SARIF's endColumn, like ours, is one past the last character.
  const endColumn =
    endLine === d.line ? Math.max(startColumn + 1, d.endCol) : Math.max(1, d.endCol);
  return { startLine: d.line, startColumn, endLine, endColumn };
}

/** The SARIF log; `texts` maps each file to its text (for fingerprints). */
export function toSarif(diagnostics: readonly Diagnostic[], texts: ReadonlyMap<string, string>) {
  const hashes = lineHashes(diagnostics, texts);
  return {
    $schema: SARIF_SCHEMA,
    version: '2.1.0',
    runs: [
      {
        tool: {
          driver: {
            name: 'palisade',
            version: PALISADE_VERSION,
            semanticVersion: PALISADE_VERSION,
            informationUri: INFORMATION_URI,
            rules: rules(),
          },
        },
        // The loader counts columns in UTF-16 code units (JavaScript strings).
        columnKind: 'utf16CodeUnits',
        results: diagnostics.map((d, i) => {
          const r = region(d);
          return {
            ruleId: d.code,
            ruleIndex: RULE_IDS.indexOf(d.code),
            level: d.severity,
            message: { text: d.path === '' ? d.message : `${d.path}: ${d.message}` },
            locations: [
              {
                physicalLocation: {
                  artifactLocation: { uri: toUri(d.file) },
                  ...(r === undefined ? {} : { region: r }),
                },
              },
            ],
            partialFingerprints: { primaryLocationLineHash: hashes[i] as string },
          };
        }),
      },
    ],
  };
}

/** Paths as given, with `/` separators and without a leading `./` (repo-relative URIs). */
function toUri(file: string): string {
  return encodeURI(file.replace(/\\/g, '/').replace(/^\.\//, ''));
}
