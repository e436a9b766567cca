import { test } from 'node:test';
import assert from 'node:assert/strict';
import { formatA1111Parameters, parseA1111Parameters } from '../../../electron/shared/a1111.js';
import type { GenerationParams } from '../../../electron/shared/generation.js';

const base: GenerationParams = {
  mode: 'txt2img',
  prompt: 'a cat',
  negativePrompt: 'blurry',
  seed: 123,
  steps: 20,
  cfg: 7,
  sampler: 'euler_a',
  width: 512,
  height: 512,
  strength: 1,
  maskBlur: 4,
};

test('formats the A1111 infotext layout', () => {
  assert.equal(
    formatA1111Parameters(base, { name: 'name', hash: 'abcd1234ef5678' }),
    'a cat\nNegative prompt: blurry\nSteps: 20, Sampler: Euler a, CFG scale: 7, Seed: 123, Size: 512x512, Model hash: abcd1234ef, Model: name',
  );
  assert.equal(
    formatA1111Parameters({ ...base, mode: 'inpaint', negativePrompt: '', strength: 0.75, sampler: 'pndm' }),
    'a cat\nSteps: 20, Sampler: PLMS, CFG scale: 7, Seed: 123, Size: 512x512, Denoising strength: 0.75, Mask blur: 4',
  );
});

test('every sampler name round-trips', () => {
  for (const sampler of ['euler', 'euler_a', 'ddim', 'pndm', 'dpmpp_2m', 'dpmpp_2m_karras', 'lcm'] as const) {
    assert.equal(parseA1111Parameters(formatA1111Parameters({ ...base, sampler })).params.sampler, sampler);
  }
});

test('multi-line prompts, multi-line negatives and values that need quotes round-trip', () => {
  const params: GenerationParams = {
    ...base,
    mode: 'inpaint',
    prompt: 'line one, with commas\n(line two:1.3)\nthird: line',
    negativePrompt: 'bad hands\nextra fingers, lowres',
    strength: 0.55,
    maskBlur: 8,
  };
  const text = formatA1111Parameters(params, { name: 'my: model, v2' }, { Version: 'Latent Studio 0.1.0' });
  assert.match(text, /Model: "my: model, v2"/);
  const parsed = parseA1111Parameters(text);
  assert.deepEqual({ ...parsed.params }, params);
  assert.equal(parsed.model.name, 'my: model, v2');
  assert.equal(parsed.settings['Version'], 'Latent Studio 0.1.0');
  assert.equal(parsed.mode, 'inpaint');
});

test('parses a real-world A1111 v1.10 string: schedule type, quoted hashes, unknown keys kept', () => {
  const text =
    'masterpiece, best quality, 1girl, <lora:add_detail:0.5>\n' +
    'Negative prompt: (worst quality:1.4), easynegative\n' +
    'Steps: 30, Sampler: DPM++ 2M, Schedule type: Karras, CFG scale: 5.5, Seed: 2715487264, Size: 512x768, ' +
    'Model hash: 7f96a1a9ca, Model: AnythingV5, VAE hash: 735e4c3a44, VAE: kl-f8-anime2.safetensors, ' +
    'Denoising strength: 0.45, Clip skip: 2, Hires upscale: 2, Hires steps: 15, Hires upscaler: R-ESRGAN 4x+ Anime6B, ' +
    'Lora hashes: "add_detail: 7c6bdd4b4b9a", TI hashes: "easynegative: c74b4e810b03", Version: v1.10.1';
  const p = parseA1111Parameters(text);
  assert.equal(p.prompt, 'masterpiece, best quality, 1girl, <lora:add_detail:0.5>');
  assert.equal(p.negativePrompt, '(worst quality:1.4), easynegative');
  assert.equal(p.params.sampler, 'dpmpp_2m_karras');
  assert.equal(p.samplerLabel, 'DPM++ 2M');
  assert.equal(p.params.seed, 2715487264);
  assert.equal(p.params.cfg, 5.5);
  assert.equal(p.params.width, 512);
  assert.equal(p.params.height, 768);
  assert.equal(p.mode, 'txt2img', 'a Denoising strength from hires fix is not img2img');
  assert.deepEqual(p.model, { name: 'AnythingV5', hash: '7f96a1a9ca' });
  assert.equal(p.settings['Lora hashes'], 'add_detail: 7c6bdd4b4b9a');
  assert.equal(p.settings['Hires upscaler'], 'R-ESRGAN 4x+ Anime6B');
  assert.equal(p.settings['Clip skip'], '2');
});

test('an unknown sampler keeps its label and maps to nothing', () => {
  const p = parseA1111Parameters('x\nSteps: 20, Sampler: DPM++ SDE Karras, CFG scale: 7, Seed: 1, Size: 64x64');
  assert.equal(p.params.sampler, undefined);
  assert.equal(p.samplerLabel, 'DPM++ SDE Karras');
});

test('no negative prompt, and a prompt with no settings line at all', () => {
  const p = parseA1111Parameters('a house\nSteps: 12, Sampler: Euler, CFG scale: 3, Seed: -1, Size: 64x32, Denoising strength: 0.3');
  assert.equal(p.negativePrompt, '');
  assert.equal(p.params.steps, 12);
  assert.equal(p.params.seed, -1);
  assert.equal(p.mode, 'img2img');

  // fewer than 3 settings on the last line: it is part of the prompt, as in A1111
  const q = parseA1111Parameters('portrait of a knight\nstyle: oil, detail: high');
  assert.equal(q.prompt, 'portrait of a knight\nstyle: oil, detail: high');
  assert.deepEqual(q.settings, {});
  assert.equal(q.params.steps, undefined);
});

test('Windows line endings and surrounding whitespace are tolerated', () => {
  const p = parseA1111Parameters('  a tree\r\nNegative prompt: fog\r\nSteps: 5, Sampler: DDIM, CFG scale: 2, Seed: 9, Size: 8x8 \r\n');
  assert.equal(p.prompt, 'a tree');
  assert.equal(p.negativePrompt, 'fog');
  assert.equal(p.params.sampler, 'ddim');
  assert.equal(p.params.width, 8);
});

test('hires fix: written with A1111 keys and read back to the same settings', () => {
  const base = { mode: 'txt2img', prompt: 'a castle', negativePrompt: '', seed: 5, steps: 20, cfg: 7, sampler: 'euler_a', width: 512, height: 512, strength: 1, maskBlur: 0 } as const;
  const byScale = { ...base, hires: { upscaler: 'Latent (bicubic)', scale: 2, resizeWidth: 0, resizeHeight: 0, steps: 10, strength: 0.55 } };
  const text = formatA1111Parameters(byScale);
  assert.equal(text, 'a castle\nSteps: 20, Sampler: Euler a, CFG scale: 7, Seed: 5, Size: 512x512, Denoising strength: 0.55, Hires upscale: 2, Hires steps: 10, Hires upscaler: Latent (bicubic)');
  const p = parseA1111Parameters(text);
  assert.equal(p.mode, 'txt2img');
  assert.deepEqual(p.params.hires, byScale.hires);
  assert.equal(p.params.strength, undefined, "the hires strength is not the run's own");

  // A target size: "Hires resize" instead of "Hires upscale"; Hires steps 0 (= the first pass's) left out, as A1111 does.
  const byResize = { ...base, hires: { upscaler: 'Lanczos', scale: 2, resizeWidth: 1024, resizeHeight: 768, steps: 0, strength: 0.7 } };
  const text2 = formatA1111Parameters(byResize);
  assert.match(text2, /Denoising strength: 0\.7, Hires resize: 1024x768, Hires upscaler: Lanczos$/);
  assert.deepEqual(parseA1111Parameters(text2).params.hires, byResize.hires);

  // No hires: nothing written; an img2img text is not read as hires (A1111's paste would turn it on).
  assert.doesNotMatch(formatA1111Parameters(base), /Hires|Denoising/);
  assert.equal(parseA1111Parameters('x\nSteps: 2, Sampler: Euler, CFG scale: 7, Seed: 1, Size: 64x64, Denoising strength: 0.4').params.hires, undefined);
});

test("hires fix from A1111's own text: missing keys take its defaults", () => {
  const p = parseA1111Parameters('x\nSteps: 28, Sampler: DPM++ 2M, Schedule type: Karras, CFG scale: 7, Seed: 1, Size: 512x768, Denoising strength: 0.45, Hires upscale: 1.5, Hires upscaler: R-ESRGAN 4x+ Anime6B, Version: v1.10.1');
  assert.deepEqual(p.params.hires, { upscaler: 'R-ESRGAN 4x+ Anime6B', scale: 1.5, resizeWidth: 0, resizeHeight: 0, steps: 0, strength: 0.45 });
});

test('soft inpainting: "Soft inpainting enabled: True" written for a soft inpaint and read back (A1111 knobs kept as settings)', () => {
  const params = { mode: 'inpaint', prompt: 'a door', negativePrompt: '', seed: 5, steps: 20, cfg: 7, sampler: 'euler', width: 512, height: 512, strength: 0.8, maskBlur: 8, softInpaint: true } as const;
  const text = formatA1111Parameters(params);
  assert.match(text, /Denoising strength: 0\.8, Mask blur: 8, Soft inpainting enabled: True$/);
  assert.equal(parseA1111Parameters(text).params.softInpaint, true);
  assert.doesNotMatch(formatA1111Parameters({ ...params, softInpaint: undefined }), /Soft inpainting/);
  const a1111 = parseA1111Parameters('x\nSteps: 20, Sampler: Euler, CFG scale: 7, Seed: 1, Size: 512x512, Denoising strength: 0.75, Mask blur: 4, Soft inpainting enabled: True, Soft inpainting schedule bias: 1, Soft inpainting preservation strength: 0.5, Soft inpainting transition contrast boost: 4');
  assert.equal(a1111.mode, 'inpaint');
  assert.equal(a1111.params.softInpaint, true);
  assert.equal(a1111.settings['Soft inpainting schedule bias'], '1');
  assert.equal(parseA1111Parameters('x\nSteps: 20, Sampler: Euler, CFG scale: 7, Seed: 1, Size: 64x64, Denoising strength: 0.75, Mask blur: 4').params.softInpaint, undefined);
});

test('Emphasis: written when not Original and a prompt has brackets (as A1111), read back; Original and unknown values mean the default', () => {
  const weighted = { ...base, prompt: '(a cat:1.2)', emphasis: 'No norm' as const };
  const text = formatA1111Parameters(weighted);
  assert.match(text, /, Emphasis: No norm$/);
  assert.equal(parseA1111Parameters(text).params.emphasis, 'No norm');
  // A1111 writes it only when a text uses emphasis: a prompt without brackets runs the same under every option but None.
  assert.doesNotMatch(formatA1111Parameters({ ...base, emphasis: 'Ignore' }), /Emphasis/);
  assert.match(formatA1111Parameters({ ...base, negativePrompt: '[blurry]', emphasis: 'None' }), /Emphasis: None/);
  assert.doesNotMatch(formatA1111Parameters({ ...weighted, emphasis: 'Original' }), /Emphasis/);
  const line = 'Steps: 20, Sampler: Euler a, CFG scale: 7, Seed: 1, Size: 512x512';
  assert.equal(parseA1111Parameters(`(a cat:1.2)\n${line}, Emphasis: Original`).params.emphasis, undefined);
  assert.equal(parseA1111Parameters(`(a cat:1.2)\n${line}, Emphasis: Sideways`).params.emphasis, undefined);
  assert.equal(parseA1111Parameters(`(a cat:1.2)\n${line}, Emphasis: Ignore`).params.emphasis, 'Ignore');
});

test('Pad conds: "Pad conds: True" when the run padded, read back; absent otherwise', () => {
  const text = formatA1111Parameters({ ...base, padConds: true, clipSkip: 2 });
  assert.match(text, /Clip skip: 2, Pad conds: True$/);
  assert.equal(parseA1111Parameters(text).params.padConds, true);
  assert.doesNotMatch(formatA1111Parameters(base), /Pad conds/);
  assert.equal(parseA1111Parameters(formatA1111Parameters(base)).params.padConds, undefined);
  assert.equal(parseA1111Parameters('a cat\nSteps: 20, Seed: 1, Size: 512x512, Pad conds: False').params.padConds, undefined);
});

test('an SDXL refiner\'s aesthetic scores: our own keys (A1111 and Forge record none), written when the run had them and read back', () => {
  const refined: GenerationParams = { ...base, mode: 'img2img', strength: 0.3, aestheticScore: 7.5, negativeAestheticScore: 1 };
  const text = formatA1111Parameters(refined);
  assert.match(text, /Denoising strength: 0\.3, Aesthetic score: 7\.5, Negative aesthetic score: 1$/);
  const parsed = parseA1111Parameters(text).params;
  assert.deepEqual([parsed.mode, parsed.aestheticScore, parsed.negativeAestheticScore], ['img2img', 7.5, 1]);
  assert.doesNotMatch(formatA1111Parameters(base), /aesthetic/i);
  // Out of the refiner's 0–10 range: left in the settings, not taken as a parameter.
  const odd = parseA1111Parameters('a cat\nSteps: 20, Seed: 1, Size: 512x512, Denoising strength: 0.3, Aesthetic score: 11');
  assert.equal(odd.params.aestheticScore, undefined);
  assert.equal(odd.settings['Aesthetic score'], '11');
});
