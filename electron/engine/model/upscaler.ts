/**
 * ONNX super-resolution models for the hires fix: the ESRGAN family as Real-ESRGAN's `pytorch2onnx.py`,
 * chaiNNer or spandrel export them — one float input [1, 3, H, W] with RGB in [0, 1] and one output
 * [1, 3, s·H, s·W], H and W dynamic. A hires fix names one by its file stem; the folders come with the
 * request (`<data dir>/upscalers` from the host, `--upscaler-dir` in the CLI).
 */
import { existsSync, readdirSync, statSync } from 'node:fs';
import { basename, join } from 'node:path';
import { InvalidRequestError, ModelFolderError } from '../../shared/errors.js';
import type { RgbImage } from '../tensor/image.js';
import { OnnxModule, type SessionSettings } from './onnx-module.js';

/** The `.onnx` files of the folders, by name (file stem); the first folder wins a name. */
export function listUpscalers(dirs: readonly string[]): Map<string, string> {
  const found = new Map<string, string>();
  for (const dir of dirs) {
    let names: string[];
    try {
      names = readdirSync(dir);
    } catch {
      continue; // a folder that doesn't exist (yet) holds no upscalers
    }
    for (const file of names.sort()) {
      if (!file.toLowerCase().endsWith('.onnx')) continue;
      const path = join(dir, file);
      const name = basename(file, file.slice(file.length - 5));
      if (!found.has(name) && statSync(path, { throwIfNoEntry: false })?.isFile()) found.set(name, path);
    }
  }
  return found;
}

/** The file of the upscaler `name`, or a clear error listing the ones there are. */
export function findUpscaler(dirs: readonly string[], name: string): string {
  const all = listUpscalers(dirs);
  const path = all.get(name);
  if (path && existsSync(path)) return path;
  const have = [...all.keys()];
  throw new InvalidRequestError(
    `no upscaler named "${name}": the built-in ones are Latent, Latent (bicubic), Latent (nearest), Latent (nearest-exact), Lanczos and Nearest` +
      (have.length > 0 ? `; ONNX upscalers found: ${have.join(', ')}` : `; no ONNX upscaler (.onnx) was found in ${dirs.length > 0 ? dirs.join(', ') : 'any upscaler folder'}`),
  );
}

export class OnnxUpscaler {
  private constructor(
    private readonly module: OnnxModule,
    private readonly inputName: string,
    private readonly outputName: string,
  ) {}

  /** Opens the file and checks it looks like an image-to-image super-resolution graph. */
  static async open(file: string, settings: SessionSettings): Promise<OnnxUpscaler> {
    const label = basename(file);
    const module = await OnnxModule.open(file, label, settings);
    const inputs = [...module.inputs.values()];
    const outputs = [...module.outputs.values()];
    const imageLike = (shape: ReadonlyArray<number | string>): boolean => shape.length === 4 && (typeof shape[1] !== 'number' || shape[1] === 3);
    if (inputs.length !== 1 || !imageLike(inputs[0]!.shape) || !inputs[0]!.type.startsWith('float')) {
      await module.release();
      throw new ModelFolderError(
        `not an image upscaler: expected one float input [1, 3, H, W], found ${inputs.map((i) => `${i.name} ${i.type} [${i.shape.join(', ')}]`).join('; ')}`,
        label,
      );
    }
    if (outputs.length < 1 || !imageLike(outputs[0]!.shape)) {
      await module.release();
      throw new ModelFolderError(`not an image upscaler: expected an output [1, 3, sH, sW], found [${outputs[0]?.shape.join(', ') ?? ''}]`, label);
    }
    return new OnnxUpscaler(module, inputs[0]!.name, outputs[0]!.name);
  }

  /** Runs the model once on the picture: RGB in [0, 1] in, clamped and rounded to bytes out (as Real-ESRGAN's inference does). */
  async upscale(img: RgbImage): Promise<RgbImage> {
    const { width, height, rgb } = img;
    const plane = width * height;
    const input = new Float32Array(3 * plane);
    for (let p = 0; p < plane; p++) for (let c = 0; c < 3; c++) input[c * plane + p] = rgb[p * 3 + c]! / 255;
    const out = await this.module.run({ [this.inputName]: { data: input, dims: [1, 3, height, width] } }, [this.outputName]);
    const t = out[this.outputName]!;
    const [, channels, outHeight, outWidth] = t.dims as [number, number, number, number];
    if (channels !== 3 || outWidth % width !== 0 || outHeight % height !== 0 || outWidth / width !== outHeight / height) {
      throw new ModelFolderError(`not an image upscaler: ${width}×${height} came out as [${t.dims.join(', ')}]`, this.module.label);
    }
    const data = t.data as Float32Array;
    const outPlane = outWidth * outHeight;
    const bytes = new Uint8Array(outPlane * 3);
    for (let p = 0; p < outPlane; p++) {
      for (let c = 0; c < 3; c++) {
        const v = data[c * outPlane + p]!;
        bytes[p * 3 + c] = Math.round((v < 0 ? 0 : v > 1 ? 1 : v) * 255);
      }
    }
    return { width: outWidth, height: outHeight, rgb: bytes };
  }

  release(): Promise<void> {
    return this.module.release();
  }
}
