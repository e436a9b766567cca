/**
 * A1111's extra-network tags in a prompt (modules/extra_networks.py, extensions-builtin/Lora):
 * every `<type:arg:arg…>` matching `<(\w+):([^>]+)>` is cut out of the text before the prompt is parsed
 * and encoded. Arguments split on `:`; one with `=` is named (`te=0.5`), the others positional.
 * For `lora` (alias `lyco`): name, then the text-encoder multiplier (default 1), then the U-Net
 * multiplier (default: the text-encoder one); named `te=` / `unet=` override those.
 * Pure: no file system; names are resolved to files elsewhere (lora/resolve.ts).
 */
import { InvalidRequestError } from '../../shared/errors.js';

export interface LoraTag {
  /** The file name without extension, as written in the tag. */
  name: string;
  /** Multiplier for the text encoder(s). */
  te: number;
  /** Multiplier for the U-Net. */
  unet: number;
}

export interface ExtractedTags {
  /** The prompt with every tag removed (A1111 replaces each with ""). */
  prompt: string;
  loras: LoraTag[];
}

const EXTRA_NETWORK = /<(\w+):([^>]+)>/g;
const LORA_TYPES = new Set(['lora', 'lyco']);

function multiplier(text: string, tag: string): number {
  const value = Number(text.trim());
  if (text.trim() === '' || !Number.isFinite(value)) {
    throw new InvalidRequestError(`${tag}: "${text}" is not a number (write <lora:name:weight>, e.g. <lora:name:0.8>)`);
  }
  return value;
}

export function extractLoraTags(prompt: string): ExtractedTags {
  const loras: LoraTag[] = [];
  const stripped = prompt.replace(EXTRA_NETWORK, (whole: string, type: string, args: string) => {
    if (!LORA_TYPES.has(type)) {
      throw new InvalidRequestError(`${whole}: "${type}" extra networks are not supported; only <lora:name:weight> is`);
    }
    const positional: string[] = [];
    const named = new Map<string, string>();
    for (const item of args.split(':')) {
      const eq = item.indexOf('=');
      if (eq >= 0) named.set(item.slice(0, eq), item.slice(eq + 1));
      else positional.push(item);
    }
    const name = positional[0]?.trim() ?? '';
    if (name === '') throw new InvalidRequestError(`${whole}: the LoRA has no name`);
    let te = positional.length > 1 ? multiplier(positional[1]!, whole) : 1;
    if (named.has('te')) te = multiplier(named.get('te')!, whole);
    let unet = positional.length > 2 ? multiplier(positional[2]!, whole) : te;
    if (named.has('unet')) unet = multiplier(named.get('unet')!, whole);
    loras.push({ name, te, unet });
    return '';
  });
  return { prompt: stripped, loras };
}

/** The prompt text that is encoded: the tags removed. */
export function stripLoraTags(prompt: string): string {
  return extractLoraTags(prompt).prompt;
}

export { isLcmLoraName } from '../../shared/model-checks.js';
