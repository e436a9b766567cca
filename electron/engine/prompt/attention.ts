/**
 * AUTOMATIC1111's attention syntax (`modules/prompt_parser.py` `parse_prompt_attention`, wave2-reference §1a):
 *
 *   (x)    × 1.1          [x]    × (1/1.1)        (x:w)   weight set to × w
 *   \( \) \[ \] \\        literal brackets and backslash; a lone backslash disappears
 *   brackets left open apply to the end of the prompt; stray closers are plain text
 *   BREAK  (upper case, a word on its own, outside brackets) ends the current chunk
 *
 * Nesting multiplies, in place and in A1111's order, so the doubles (and so which neighbours merge) are the
 * same bit for bit. Adjacent fragments of exactly equal weight merge.
 */
import { InvalidRequestError } from '../../shared/errors.js';

/** One run of text and its weight; BREAK is `{ text: 'BREAK', weight: -1 }` (see isBreak). */
export interface WeightedFragment {
  text: string;
  weight: number;
}

export const ROUND_BRACKET_MULTIPLIER = 1.1;
/** A1111 multiplies by this precomputed constant (it never divides by 1.1). */
export const SQUARE_BRACKET_MULTIPLIER = 1 / 1.1;
const BREAK_TEXT = 'BREAK';
const BREAK_WEIGHT = -1;

/**
 * The token alternatives, tried in this order at each position (A1111's verbose `re_attention`):
 * escapes, a lone backslash, openers, "weight close" `:w)`, closers, a plain run, a lone colon.
 */
const ATTENTION = /\\\(|\\\)|\\\[|\\\]|\\\\|\\|\(|\[|:\s*([+-]?[.\d]+)\s*\)|\)|\]|[^\\()[\]:]+|:/gu;
/**
 * `\s*\bBREAK\b\s*`. Python's `\b` is Unicode-aware (letters, digits and `_` of any script are word
 * characters), JavaScript's is ASCII-only, hence the lookarounds.
 */
const BREAK_SPLIT = /\s*(?<![\p{L}\p{N}_])BREAK(?![\p{L}\p{N}_])\s*/u;

export function isBreak(fragment: WeightedFragment): boolean {
  return fragment.text === BREAK_TEXT && fragment.weight === BREAK_WEIGHT;
}

/**
 * Python's `float()` on the regex's `[+-]?[.\d]+`: `1.`, `.5`, `+1.5` parse; `1.2.3`, `.` do not, and
 * A1111 then fails the whole generation. `Number` is as strict here (unlike parseFloat).
 */
function parseWeight(text: string, prompt: string): number {
  const value = Number(text);
  if (Number.isNaN(value)) {
    throw new InvalidRequestError(`prompt weight "${text}" is not a number (in ${JSON.stringify(abbreviate(prompt))})`);
  }
  return value;
}

function abbreviate(text: string): string {
  return text.length > 80 ? `${text.slice(0, 77)}...` : text;
}

export function parsePromptAttention(text: string): WeightedFragment[] {
  const res: WeightedFragment[] = [];
  const roundBrackets: number[] = [];
  const squareBrackets: number[] = [];
  const multiplyRange = (start: number, multiplier: number): void => {
    for (let p = start; p < res.length; p++) res[p]!.weight *= multiplier;
  };

  for (const match of text.matchAll(ATTENTION)) {
    const t = match[0];
    const weight = match[1];
    if (t.startsWith('\\')) {
      res.push({ text: t.slice(1), weight: 1.0 });
    } else if (t === '(') {
      roundBrackets.push(res.length);
    } else if (t === '[') {
      squareBrackets.push(res.length);
    } else if (weight !== undefined && roundBrackets.length > 0) {
      multiplyRange(roundBrackets.pop()!, parseWeight(weight, text));
    } else if (t === ')' && roundBrackets.length > 0) {
      multiplyRange(roundBrackets.pop()!, ROUND_BRACKET_MULTIPLIER);
    } else if (t === ']' && squareBrackets.length > 0) {
      multiplyRange(squareBrackets.pop()!, SQUARE_BRACKET_MULTIPLIER);
    } else {
      t.split(BREAK_SPLIT).forEach((part, i) => {
        if (i > 0) res.push({ text: BREAK_TEXT, weight: BREAK_WEIGHT });
        res.push({ text: part, weight: 1.0 });
      });
    }
  }
  for (const pos of roundBrackets) multiplyRange(pos, ROUND_BRACKET_MULTIPLIER);
  for (const pos of squareBrackets) multiplyRange(pos, SQUARE_BRACKET_MULTIPLIER);

  if (res.length === 0) res.push({ text: '', weight: 1.0 });

  for (let i = 0; i + 1 < res.length; ) {
    if (res[i]!.weight === res[i + 1]!.weight) {
      res[i]!.text += res[i + 1]!.text;
      res.splice(i + 1, 1);
    } else {
      i++;
    }
  }
  return res;
}
