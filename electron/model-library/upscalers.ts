/**
 * The data folder's ONNX upscalers for the hires fix: `<data dir>/upscalers/<name>.onnx` (ESRGAN-style
 * models exported by chaiNNer, spandrel or Real-ESRGAN's script; see engine/model/upscaler.ts). A hires
 * fix names one by its file stem.
 */
import { join } from 'node:path';

export const UPSCALER_FOLDER = 'upscalers';

export function upscalerFolder(dataDir: string): string {
  return join(dataDir, UPSCALER_FOLDER);
}
