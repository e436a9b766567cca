/**
 * Completions in the prompt box: the word being typed at the caret, the installed embeddings whose
 * names fit it, and the text once one is chosen. Plain functions (no DOM), so unit tests can drive them.
 *
 * An embedding is used when a prompt word equals its name (A1111 matches the name's tokens), so the
 * completion writes the name exactly, replacing the whole word under the caret.
 */

/** Letters, digits, `_` and `-`: what embedding file names are made of, and what a prompt word is. */
const WORD_CHAR = /[\p{L}\p{N}_-]/u;
/** Offer nothing for a single letter: every word would open the list. */
export const MIN_COMPLETION_PREFIX = 2;
/** At most this many suggestions are shown. */
export const MAX_COMPLETIONS = 8;

export interface CompletionWord {
  /** Where the word starts and ends (the caret lies between). */
  start: number;
  end: number;
  /** The part before the caret: what is matched. */
  prefix: string;
}

/** The word the caret is in or just after, when it is long enough to complete; null otherwise (a selection, a space). */
export function wordAtCaret(text: string, selectionStart: number, selectionEnd: number = selectionStart): CompletionWord | null {
  if (selectionStart !== selectionEnd) return null;
  let start = selectionStart;
  while (start > 0 && WORD_CHAR.test(text[start - 1]!)) start--;
  let end = selectionStart;
  while (end < text.length && WORD_CHAR.test(text[end]!)) end++;
  const prefix = text.slice(start, selectionStart);
  return prefix.length >= MIN_COMPLETION_PREFIX ? { start, end, prefix } : null;
}

/**
 * The names that fit a prefix, case-insensitively: names that start with it first, then names that
 * contain it, each group in the given order. A word already equal to a name offers nothing.
 */
export function matchCompletions(word: CompletionWord, text: string, names: readonly string[], limit = MAX_COMPLETIONS): string[] {
  const typed = text.slice(word.start, word.end);
  if (names.includes(typed)) return [];
  const p = word.prefix.toLowerCase();
  const starts = names.filter((n) => n.toLowerCase().startsWith(p));
  const contains = names.filter((n) => !n.toLowerCase().startsWith(p) && n.toLowerCase().includes(p));
  return [...starts, ...contains].slice(0, limit);
}

/** The text with the word replaced by the chosen name, and the caret after it. */
export function applyCompletion(text: string, word: CompletionWord, name: string): { text: string; caret: number } {
  return { text: text.slice(0, word.start) + name + text.slice(word.end), caret: word.start + name.length };
}
