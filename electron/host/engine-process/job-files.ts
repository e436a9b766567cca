/**
 * In the engine process: a queued job's images read from their files in the data folder
 * (host/job-images.ts) into the request, and history's image sources read from theirs. A file that is
 * gone is an error in words, without the data folder's path (a browser client sees the message).
 */
import { readFile } from 'node:fs/promises';
import { StudioError } from '../../shared/errors.js';
import type { GenerateRequest } from '../../engine/pipelines/types.js';
import type { JobImageFiles } from '../job-images.js';
import type { ImageSource } from './protocol.js';

export async function readImageFile(path: string, what: string): Promise<Uint8Array> {
  try {
    return await readFile(path);
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code ?? 'EIO';
    if (code === 'ENOENT') {
      throw new StudioError('E_NOT_FOUND', `The job's ${what} is no longer in the data folder (it was removed while the job waited); generate again.`);
    }
    throw new StudioError('E_IO', `The job's ${what} could not be read from the data folder (${code}).`);
  }
}

/** The request with the files' bytes in its image fields (control.image and regions' masks replace placeholders). */
export async function withImageFiles(request: GenerateRequest, files: JobImageFiles | undefined): Promise<GenerateRequest> {
  if (!files) return request;
  const out: GenerateRequest = { ...request };
  if (files.initImage !== undefined) out.initImage = await readImageFile(files.initImage, 'init image');
  if (files.mask !== undefined) out.mask = await readImageFile(files.mask, 'mask');
  if (files.labelMap !== undefined) out.labelMap = await readImageFile(files.labelMap, 'label map');
  if (files.control !== undefined) {
    if (!out.control) throw new StudioError('E_INVALID_REQUEST', 'a control image file without a control request');
    out.control = { ...out.control, image: await readImageFile(files.control, 'control image') };
  }
  if (files.regions !== undefined) {
    const regions = out.regions ?? [];
    if (regions.length !== files.regions.length) throw new StudioError('E_INVALID_REQUEST', `${files.regions.length} region mask files for ${regions.length} regions`);
    out.regions = await Promise.all(regions.map(async (r, i) => ({ ...r, mask: await readImageFile(files.regions![i]!, `mask of region ${i + 1}`) })));
  }
  return out;
}

export async function imageSourceBytes(source: ImageSource): Promise<Uint8Array> {
  return 'bytes' in source ? source.bytes : readImageFile(source.path, source.what);
}
