/**
 * Ctrl+Up / Ctrl+Down in a prompt box, as A1111's edit-attention does: the selection (or, without one, the
 * word under the caret, or the `(…:w)` group the caret is in) gets its weight raised or lowered by 0.1,
 * written as `(word:1.1)`; a weight brought back to 1 drops its brackets. Pure text in, text out.
 */

/** A1111's `keyedit_precision_attention` default. */
export const WEIGHT_STEP = 0.1;
/** Characters that end a word for the caret-only case (A1111's `keyedit_delimiters`, brackets included). */
const DELIMITERS = /[\s.,\\/!?%^*;:{}=`~()[\]<>|"]/;
const WEIGHTED_GROUP_END = /^:(-?\d+(?:\.\d+)?)\)/;

export interface PromptEdit {
  text: string;
  /** The new selection: the weighted text, without brackets or weight. */
  start: number;
  end: number;
}

export function adjustPromptWeight(text: string, start: number, end: number, delta: number): PromptEdit | null {
  let s = start;
  let e = end;
  if (s === e) {
    const group = enclosingGroup(text, s);
    if (group) {
      s = group.start;
      e = group.end;
    } else {
      while (s > 0 && !DELIMITERS.test(text[s - 1]!)) s--;
      while (e < text.length && !DELIMITERS.test(text[e]!)) e++;
    }
  }
  // Leading and trailing spaces stay outside the brackets.
  while (s < e && text[s] === ' ') s++;
  while (e > s && text[e - 1] === ' ') e--;
  if (s === e) return null;

  const inner = text.slice(s, e);
  const after = WEIGHTED_GROUP_END.exec(text.slice(e));
  if (text[s - 1] === '(' && after) {
    // Already weighted: change the number, or drop the brackets at 1.
    const weight = roundWeight(Number(after[1]) + delta);
    const groupEnd = e + after[0].length;
    if (weight === 1) return { text: text.slice(0, s - 1) + inner + text.slice(groupEnd), start: s - 1, end: e - 1 };
    return { text: `${text.slice(0, e)}:${formatWeight(weight)})${text.slice(groupEnd)}`, start: s, end: e };
  }
  const weight = roundWeight(1 + delta);
  return { text: `${text.slice(0, s)}(${inner}:${formatWeight(weight)})${text.slice(e)}`, start: s + 1, end: e + 1 };
}

/** The `(…:w)` group around `pos`, as the range of its text. */
function enclosingGroup(text: string, pos: number): { start: number; end: number } | null {
  const open = text.lastIndexOf('(', pos - 1);
  if (open < 0 || text.lastIndexOf(')', pos - 1) > open) return null;
  const colon = text.indexOf(':', pos);
  if (colon < 0 || !WEIGHTED_GROUP_END.test(text.slice(colon))) return null;
  if (text.slice(open + 1, colon).includes('(')) return null;
  return { start: open + 1, end: colon };
}

/** A1111 rounds the sum to the step's precision (1.1 + 0.1 = 1.2, not 1.2000000000000002). */
function roundWeight(w: number): number {
  return Math.round(w * 100) / 100;
}

function formatWeight(w: number): string {
  return String(w);
}
