/**
 * A user's input image (init image, mask, label map) as history stores it, made in the engine process:
 * the host never decodes a user's image bytes, so a decompression bomb or a malformed file costs this
 * process (restarted like a crash if need be), never the host that serves every client.
 *
 * The image is decoded once in full (sharp with `limitInputPixels`, failing on any decoder warning, so a
 * truncated or corrupt file is refused), and thumbnailed as history thumbnails its own images. A PNG is
 * kept byte for byte (reuse hands back the very bytes sent); JPEG and WebP become PNG.
 */
import sharp from 'sharp';
import { BadImageError } from '../../shared/errors.js';
import { THUMBNAIL_QUALITY, THUMBNAIL_SIZE, type PreparedImage } from '../../shared/history.js';
import { imageHeader } from '../../shared/image-header.js';

export async function prepareStoredImage(bytes: Uint8Array, what: string, maxPixels: number): Promise<PreparedImage> {
  const options = { failOn: 'warning', limitInputPixels: maxPixels } as const;
  try {
    const png = imageHeader(bytes)?.format === 'png' ? bytes : new Uint8Array(await sharp(bytes, options).png().toBuffer());
    // Reads every pixel: a file that is cut short or corrupt fails here.
    const thumbnail = await sharp(png, options)
      .resize(THUMBNAIL_SIZE, THUMBNAIL_SIZE, { fit: 'inside', withoutEnlargement: true })
      .webp({ quality: THUMBNAIL_QUALITY })
      .toBuffer();
    const { width, height } = await sharp(png, options).metadata();
    if (!width || !height) throw new Error('the image has no size');
    return { png, thumbnail: new Uint8Array(thumbnail), width, height };
  } catch (err) {
    throw new BadImageError(`${what}: cannot decode the image (${(err as Error).message})`, { cause: err });
  }
}
