/** Markdown helpers for job summaries (escaped so image refs and log lines cannot break tables). */
export function esc(s: string): string {
  return s.replace(/\|/g, '\\|').replace(/\n/g, ' ');
}

export function table(header: string[], rows: (string | number)[][]): string {
  const line = (cells: (string | number)[]) => `| ${cells.map((c) => esc(String(c))).join(' | ')} |`;
  return [line(header), `|${header.map(() => '---').join('|')}|`, ...rows.map(line)].join('\n') + '\n';
}

export function code(s: string): string {
  return `\`${s.replace(/`/g, "'")}\``;
}

export function section(title: string, body: string): string {
  return `### ${title}\n\n${body}\n`;
}

export function fence(text: string, lang = ''): string {
  return `\`\`\`${lang}\n${text.replace(/```/g, "'''")}\n\`\`\`\n`;
}

export function seconds(ms: number): string {
  return `${(ms / 1000).toFixed(1)} s`;
}
