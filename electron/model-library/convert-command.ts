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

export function venvPython(platform: NodeJS.Platform = process.platform): string {
  return platform === 'win32' ? join(NATIVE_MODELS_DIR, '.venv', 'Scripts', 'python.exe') : join(NATIVE_MODELS_DIR, '.venv', 'bin', 'python');
}

export interface ConvertCommandOptions {
  /** The .safetensors file or diffusers folder. */
  source: string;
  /** Output folder; default: beside the source, named after it with "-onnx" (or "-onnx-fp16"). */
  out?: string;
  /**
   * For a .safetensors file: a diffusers-format folder of the same architecture (configs, tokenizer,
   * scheduler). Offline conversion can't look the architecture up on the hub, so it must be given.
   */
  config?: string;
  fp16?: boolean;
  platform?: NodeJS.Platform;
}

export interface ConvertCommand {
  /** Program and arguments, for spawn (no shell). */
  argv: string[];
  /** The same as one line to paste into a terminal, quoted for the platform's shell. */
  display: string;
  out: string;
  /** What the person still has to supply (e.g. the config folder), in words; empty when complete. */
  missing: string[];
}

/** POSIX sh: single quotes, with ' as '\''. Windows (PowerShell / cmd): double quotes. */
function quote(arg: string, platform: NodeJS.Platform): string {
  if (/^[\w@%+=:,./-]+$/.test(arg)) return arg;
  if (platform === 'win32') return `"${arg.replace(/"/g, '""')}"`;
  return `'${arg.replace(/'/g, `'\\''`)}'`;
}

export function convertCommand(options: ConvertCommandOptions): ConvertCommand {
  const platform = options.platform ?? process.platform;
  const source = resolve(options.source);
  const isFile = extname(source).toLowerCase() === '.safetensors';
  const stem = isFile ? basename(source, extname(source)) : basename(source);
  const out = resolve(options.out ?? join(dirname(source), `${stem}-onnx${options.fp16 ? '-fp16' : ''}`));
  const argv = [venvPython(platform), CONVERT_SCRIPT, source, out];
  const missing: string[] = [];
  if (options.config) argv.push('--config', resolve(options.config));
  else if (isFile) {
    argv.push('--config', '<diffusers config folder>');
    missing.push('--config: a diffusers-format folder of the same architecture (SD 1.x or 2.x, inpainting or not), whose configs, tokenizer and scheduler are used');
  }
  if (options.fp16) argv.push('--fp16');
  return { argv, display: argv.map((a) => (a.startsWith('<') ? a : quote(a, platform))).join(' '), out, missing };
}
