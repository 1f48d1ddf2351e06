/** Where an object or field came from, for errors and explanations (1-based). */
export interface SourcePos {
  readonly file: string;
  readonly line: number;
  readonly col: number;
}

export const NO_SOURCE: SourcePos = Object.freeze({ file: '<none>', line: 0, col: 0 });

export function formatPos(p: SourcePos): string {
  return `${p.file}:${p.line}:${p.col}`;
}
