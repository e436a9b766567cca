/**
 * LoRAs as the host and the renderer see them: the library's record of each file in `<data>/loras`
 * (made when it is imported, or first listed), and whether one fits a model — the same rule the engine
 * applies, so a LoRA of another family is refused before its job is queued and greyed in the picker.
 */
import type { ModelInfo } from './model.js';

/** The model family a LoRA was trained for, as far as its metadata or key shapes say. */
export type LoraFamily = 'sd1' | 'sd2' | 'sdxl' | 'unknown';

export interface LoraInfo {
  /** File name without extension: the name in `<lora:name:weight>`. */
  name: string;
  format: 'kohya' | 'peft';
  family: LoraFamily;
  /** Why the family is what it is (metadata key or key shapes); empty when unknown. */
  familyReason: string;
  /** kohya's `ss_tag_frequency` tags, most frequent first (at most 20). */
  triggerWords: string[];
  /** A1111's short hash (`Lora hashes:`). */
  hash: string;
  modules: number;
  /** An LCM-LoRA (named so): the LCM sampler, 4 steps and CFG 1 suit it. */
  lcm: boolean;
}

export const LORA_FAMILY_NAMES: Record<LoraFamily, string> = { sd1: 'SD 1.x', sd2: 'SD 2.x', sdxl: 'SDXL', unknown: 'unknown family' };

/** The LoRA family of a model: SDXL (base or refiner) by its family, SD 1.x / 2.x by its text encoder's width. */
export function modelLoraFamily(info: Pick<ModelInfo, 'family' | 'textHiddenSize'>): LoraFamily {
  if (info.family === 'sdxl' || info.family === 'sdxl-refiner') return 'sdxl';
  if (info.textHiddenSize === 768) return 'sd1';
  if (info.textHiddenSize === 1024) return 'sd2';
  return 'unknown';
}

/** Why the LoRA can't be applied to the model (its family is another), or null when it may be. */
export function loraFamilyProblem(lora: Pick<LoraInfo, 'name' | 'family' | 'familyReason'>, model: Pick<ModelInfo, 'family' | 'textHiddenSize' | 'name'>): string | null {
  const family = modelLoraFamily(model);
  if (lora.family === 'unknown' || lora.family === family) return null;
  // An SDXL LoRA needs an SDXL model (two text encoders) and an SDXL model takes no SD 1/2 LoRA, whatever
  // else is known; SD 1 against SD 2 only when both are known.
  if (family === 'unknown' && lora.family !== 'sdxl') return null;
  const is = family === 'unknown' ? 'not SDXL' : LORA_FAMILY_NAMES[family];
  return `<lora:${lora.name}> is ${lora.family === 'sd1' ? 'an' : 'a'} ${LORA_FAMILY_NAMES[lora.family]} LoRA${lora.familyReason ? ` (${lora.familyReason})` : ''}; ${model.name} is ${is}`;
}
