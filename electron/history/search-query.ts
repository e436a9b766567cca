/**
 * Turns what a person types in the history search box into an FTS5 MATCH expression that can't be a
 * syntax error: every word becomes a quoted string (so `-`, `:`, `(`, `"` and FTS5 keywords like NEAR
 * or AND are just text), joined with AND.
 *
 *   cat                   → "cat"
 *   ca*                   → "ca"*                   prefix
 *   "red fox"             → "red fox"               phrase
 *   tag:portrait          → tags : "portrait"       one field (prompt:, negative:, tag:)
 *   -blurry               → … NOT "blurry"          exclusion (needs at least one other word)
 *
 * FTS5 query syntax: https://sqlite.org/fts5.html §3.
 */

const FIELDS: Readonly<Record<string, string>> = {
  prompt: 'prompt',
  negative: 'negative_prompt',
  neg: 'negative_prompt',
  tag: 'tags',
  tags: 'tags',
};

/** A quoted string, a field prefix, or a bare word, with an optional leading '-' and trailing '*'. */
const TERM = /(-?)(?:(\w+):)?(?:"([^"]*)"|([^\s"]+))/g;

export interface FtsQuery {
  match: string;
  /** The terms kept, for messages and tests. */
  terms: number;
}

function quote(text: string): string {
  return `"${text.replace(/"/g, '""')}"`;
}

/** Returns null when the text has no searchable word (the caller shows the unfiltered page). */
export function toFtsQuery(text: string): FtsQuery | null {
  const include: string[] = [];
  const exclude: string[] = [];
  for (const m of text.matchAll(TERM)) {
    const negated = m[1] === '-';
    let field = m[2] !== undefined ? FIELDS[m[2].toLowerCase()] : undefined;
    let body = m[3] ?? m[4] ?? '';
    if (m[2] !== undefined && field === undefined) {
      // `word:rest` with an unknown field is just text (A1111 prompts are full of `(word:1.2)`)
      body = `${m[2]}:${body}`;
      field = undefined;
    }
    let prefix = false;
    if (m[3] === undefined && body.endsWith('*')) {
      prefix = true;
      body = body.replace(/\*+$/, '');
    }
    // Keep only what the unicode61 tokenizer would index: letters and digits.
    if (!/[\p{L}\p{N}]/u.test(body)) continue;
    const term = `${field ? `${field} : ` : ''}${quote(body)}${prefix ? '*' : ''}`;
    (negated ? exclude : include).push(term);
  }
  if (include.length === 0) return null;
  const match = [`(${include.join(' AND ')})`, ...exclude.map((t) => `NOT ${t}`)].join(' ');
  return { match, terms: include.length + exclude.length };
}
