/**
 * The prompt's `<lora:name:weight>` tags for the prompt panel's LoRA list (A1111 syntax, as the engine
 * reads it: electron/engine/lora/prompt-tags.ts): where each is, its weight, and edits that rewrite one
 * tag in place. Pure string functions; a tag whose weight is not a number is shown with NaN.
 */
export interface PromptLora {
  name: string;
  /** The weight shown and edited: the U-Net multiplier (the text-encoder one when only one is written). */
  weight: number;
  /** `<lora:name:te:unet>` with two different multipliers. */
  split: boolean;
  start: number;
  end: number;
}

const TAG = /<(lora|lyco):([^>]+)>/g;

export function promptLoras(prompt: string): PromptLora[] {
  const out: PromptLora[] = [];
  for (const m of prompt.matchAll(TAG)) {
    const args = m[2]!.split(':').filter((a) => !a.includes('='));
    const name = (args[0] ?? '').trim();
    if (name === '') continue;
    const te = args.length > 1 ? Number(args[1]!.trim() || NaN) : 1;
    const unet = args.length > 2 ? Number(args[2]!.trim() || NaN) : te;
    out.push({ name, weight: unet, split: args.length > 2 && te !== unet, start: m.index, end: m.index + m[0].length });
  }
  return out;
}

/** A weight as A1111 writes it: at most two decimals, no trailing zeros. */
export function formatLoraWeight(weight: number): string {
  return String(Math.round(weight * 100) / 100);
}

/** The prompt with `<lora:name:weight>` added at the end (after a space). */
export function insertLora(prompt: string, name: string, weight = 1): string {
  const tag = `<lora:${name}:${formatLoraWeight(weight)}>`;
  if (prompt.trim() === '') return tag;
  return `${prompt.replace(/\s+$/, '')} ${tag}`;
}

/** The prompt with one tag's weight set (both multipliers: the tag becomes `<lora:name:weight>`). */
export function setLoraWeight(prompt: string, lora: Pick<PromptLora, 'name' | 'start' | 'end'>, weight: number): string {
  return `${prompt.slice(0, lora.start)}<lora:${lora.name}:${formatLoraWeight(weight)}>${prompt.slice(lora.end)}`;
}

/** The prompt without one tag (and the space before it). */
export function removeLora(prompt: string, lora: Pick<PromptLora, 'start' | 'end'>): string {
  const before = prompt.slice(0, lora.start).replace(/ $/, '');
  return `${before}${prompt.slice(lora.end)}`;
}
