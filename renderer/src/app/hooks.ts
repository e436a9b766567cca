import { useEffect, useState, useSyncExternalStore } from 'react';
import type { ImageSource } from '../editor/document.js';
import { doc, studio } from './session.js';

/** Re-renders on any document change (image, mask, undo availability). */
export function useDocumentRevision(): number {
  return useSyncExternalStore(
    (cb) => doc.subscribe(cb),
    () => doc.revision,
  );
}

/** Re-renders when the image, size or undo state change, but not on each painted dab (mask or layout). */
export function useDocumentShape(): number {
  return useSyncExternalStore(
    (cb) => doc.subscribe((c) => c.kind !== 'mask' && c.kind !== 'layout' && cb()),
    () => shapeRevision(),
  );
}
let lastShape = 0;
let lastKey = '';
function shapeRevision(): number {
  const key = `${doc.width}x${doc.height}:${doc.image ? sourceKey(doc.image.source) : ''}:${doc.canUndo}:${doc.canRedo}:${doc.undoDepth}:${doc.isPainting}:${doc.mask.isEmpty()}:${doc.layout.isEmpty()}:${doc.layout.maxLabel()}`;
  if (key !== lastKey) {
    lastKey = key;
    lastShape++;
  }
  return lastShape;
}

export function sourceKey(source: ImageSource): string {
  return source.kind === 'history' ? `h:${source.hash}` : `f:${source.name}:${source.bytes.length}`;
}

const objectUrls = new WeakMap<Uint8Array, string>();

/** An <img>-ready URL for a document image source. */
export function useSourceUrl(source: ImageSource | null): string | null {
  const [url, setUrl] = useState<string | null>(null);
  useEffect(() => {
    let alive = true;
    if (!source) setUrl(null);
    else if (source.kind === 'file') {
      let u = objectUrls.get(source.bytes);
      if (!u) {
        u = URL.createObjectURL(new Blob([source.bytes as Uint8Array<ArrayBuffer>], { type: source.mime }));
        objectUrls.set(source.bytes, u);
      }
      setUrl(u);
    } else {
      void studio().imageUrl(source.hash).then((u) => alive && setUrl(u), () => alive && setUrl(null));
    }
    return () => {
      alive = false;
    };
  }, [source]);
  return url;
}

/** Loads an image element for Konva. */
export function useImageElement(url: string | null): HTMLImageElement | null {
  const [img, setImg] = useState<HTMLImageElement | null>(null);
  useEffect(() => {
    if (!url) {
      setImg(null);
      return;
    }
    let alive = true;
    const el = new Image();
    el.decoding = 'async';
    el.onload = () => alive && setImg(el);
    el.onerror = () => alive && setImg(null);
    el.src = url;
    return () => {
      alive = false;
    };
  }, [url]);
  return img;
}

/** An image URL for a stored hash (thumbnail or full). */
export function useHashUrl(hash: string | null | undefined, thumbnail: boolean): string | null {
  const sync = hash ? studio().imageUrlSync(hash, thumbnail) : null;
  const [url, setUrl] = useState<string | null>(sync);
  useEffect(() => {
    if (!hash) return setUrl(null);
    if (sync) return setUrl(sync);
    let alive = true;
    void studio().imageUrl(hash, thumbnail).then((u) => alive && setUrl(u), () => undefined);
    return () => {
      alive = false;
    };
  }, [hash, thumbnail, sync]);
  return url;
}
