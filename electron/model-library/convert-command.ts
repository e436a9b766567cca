/**
 * The command that converts a single-file `.safetensors` checkpoint (or a diffusers folder) to our ONNX
 * layout. The app doesn't bundle Python: it shows this command for the person to run with the
 * native-models tooling (native-models/tools/convert.py, venv from native-models/tools/setup-venv.sh),
 * then they import the output folder.
 */
import { basename, dirname, extname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

export const NATIVE_MODELS_DIR = fileURLToPath(new URL('../../native-models/', import.meta.url));
export const CONVERT_SCRIPT = join(NATIVE_MODELS_DIR, 'tools', 'convert.py');

export function venvPython(platform: NodeJS.Platform = process.platform, nativeModelsDir = NATIVE_MODELS_DIR): string {
  return platform === 'win32' ? join(nativeModelsDir, '.venv', 'Scripts', 'python.exe') : join(nativeModelsDir, '.venv', 'bin', 'python');
}

export interface ConvertCommandOptions {
  /** The .safetensors file or diffusers folder. */
  source: string;
  /** Output folder; default: beside the source, named after it with "-onnx" (or "-onnx-fp16"). */
  out?: string;
  /**
   * A diffusers-format folder of the same architecture. Not needed for SD 1.x/2.x single files: the tool
   * reads which one it is from the weights' shapes (native-models/tools/convert_lib/presets.py).
   */
  config?: string;
  /** SD 2.x single files only: the weights don't say; the tool assumes 768-v (v_prediction). */
  predictionType?: 'epsilon' | 'v_prediction';
  fp16?: boolean;
  platform?: NodeJS.Platform;
  /**
   * The native-models folder (tools/convert.py, .venv). Default: the one beside these sources; the
   * Electron build passes its own, since its bundle's import.meta.url points into dist-electron.
   */
  nativeModelsDir?: string;
}

export interface ConvertCommand {
  /** Program and arguments, for spawn (no shell). */
  argv: string[];
  /** The same as one line to paste into a terminal, quoted for the platform's shell. */
  display: string;
  out: string;
}

/** POSIX sh: single quotes, with ' as '\''. Windows (PowerShell / cmd): double quotes. */
function quote(arg: string, platform: NodeJS.Platform): string {
  if (/^[\w@%+=:,./-]+$/.test(arg)) return arg;
  if (platform === 'win32') return `"${arg.replace(/"/g, '""')}"`;
  return `'${arg.replace(/'/g, `'\\''`)}'`;
}

/** The exact command line to convert `source`; show `display`, or run `argv`. */
export function convertCommand(options: ConvertCommandOptions): ConvertCommand {
  const platform = options.platform ?? process.platform;
  const source = resolve(options.source);
  const isFile = extname(source).toLowerCase() === '.safetensors';
  const stem = isFile ? basename(source, extname(source)) : basename(source);
  const out = resolve(options.out ?? join(dirname(source), `${stem}-onnx${options.fp16 ? '-fp16' : ''}`));
  const tools = options.nativeModelsDir ?? NATIVE_MODELS_DIR;
  const argv = [venvPython(platform, tools), join(tools, 'tools', 'convert.py'), source, out];
  if (options.config) argv.push('--config', resolve(options.config));
  if (options.predictionType) argv.push('--prediction-type', options.predictionType);
  if (options.fp16) argv.push('--fp16');
  return { argv, display: argv.map((a) => quote(a, platform)).join(' '), out };
}
