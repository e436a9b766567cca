/**
 * sharp, recording the first argument of every call: what the host's modules get instead of sharp once
 * `recordSharpCalls()` has run (an ES module resolve hook sends their `import sharp from 'sharp'` here).
 * Only this process is recorded; the engine process is another one.
 */
import { register } from 'node:module';
import real from 'sharp';

/** The first argument of every sharp(…) call: bytes, a file path, or creation options. */
export const sharpInputs: unknown[] = [];

function recording(this: unknown, ...args: Parameters<typeof real>): ReturnType<typeof real> {
  sharpInputs.push(args[0]);
  return real.apply(this, args);
}
Object.setPrototypeOf(recording, real);
Object.assign(recording, real);
export default recording as typeof real;

/**
 * From now on, modules that import 'sharp' (and are not loaded yet) get this module instead. Call it
 * before the first dynamic import of the code under test; its static imports must not reach sharp.
 */
export function recordSharpCalls(): void {
  const self = import.meta.url;
  const hook = `export async function resolve(specifier, context, next) {
    if (specifier === 'sharp' && context.parentURL !== ${JSON.stringify(self)}) return { url: ${JSON.stringify(self)}, shortCircuit: true };
    return next(specifier, context);
  }`;
  register(`data:text/javascript,${encodeURIComponent(hook)}`);
}

/** Whether sharp was handed these bytes, or a file holding them (read by `files`). */
export function sharpWasGiven(bytes: Uint8Array, files: (path: string) => Uint8Array | null = () => null): boolean {
  const wanted = Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  return sharpInputs.some((input) => {
    const seen = input instanceof Uint8Array ? input : typeof input === 'string' ? files(input) : null;
    return seen !== null && Buffer.compare(Buffer.from(seen.buffer, seen.byteOffset, seen.byteLength), wanted) === 0;
  });
}
