/**
 * React's way in to the session: the composition root (app/App.tsx) provides one session, and every
 * panel reads it, its document and its client from here instead of importing a module global.
 */
import { createContext, useCallback, useContext, useEffect, useState, useSyncExternalStore } from 'react';
import type { EditorDocument, ImageSource } from '../document/document.js';
import type { StudioSession } from './session.js';

export const SessionContext = createContext<StudioSession | null>(null);

/** The session the composition root provides. */
export function useSession(): StudioSession {
  const session = useContext(SessionContext);
  if (!session) throw new Error('useSession needs a <SessionContext.Provider> above it (app/App.tsx provides one).');
  return session;
}

/** The editor document of this session. */
export function useDocument(): EditorDocument {
  return useSession().doc;
}

/** Re-renders on any document change (image, mask, undo availability). */
export function useDocumentRevision(): number {
  const doc = useDocument();
  const subscribe = useCallback((cb: () => void) => doc.subscribe(cb), [doc]);
  return useSyncExternalStore(subscribe, () => doc.revision);
}

/** Re-renders when the image, size or undo state change, but not on each painted dab (mask or layout). */
export function useDocumentShape(): number {
  const doc = useDocument();
  const subscribe = useCallback((cb: () => void) => doc.subscribe((c) => c.kind !== 'mask' && c.kind !== 'layout' && c.kind !== 'region' && c.kind !== 'region-props' && cb()), [doc]);
  return useSyncExternalStore(subscribe, () => shapeRevision(doc));
}

/** The regional prompts; re-renders when the list or a region's prompt, weight, colour or visibility changes (not on dabs). */
export function useRegions(): EditorDocument['regions'] {
  const doc = useDocument();
  const subscribe = useCallback((cb: () => void) => doc.subscribe((c) => (c.kind === 'regions' || c.kind === 'region-props' || c.kind === 'document') && cb()), [doc]);
  return useSyncExternalStore(subscribe, () => doc.regions);
}
const shapes = new WeakMap<EditorDocument, { key: string; revision: number }>();
function shapeRevision(doc: EditorDocument): number {
  const key = `${doc.width}x${doc.height}:${doc.image ? sourceKey(doc.image.source) : ''}:${doc.canUndo}:${doc.canRedo}:${doc.undoDepth}:${doc.undoBudgetBytes}:${doc.isPainting}:${doc.mask.isEmpty()}:${doc.layout.isEmpty()}:${doc.layout.maxLabel()}:${doc.regions.map((r) => (r.mask.isEmpty() ? 0 : 1)).join('')}`;
  const last = shapes.get(doc) ?? { key: '', revision: 0 };
  if (key !== last.key) shapes.set(doc, { key, revision: last.revision + 1 });
  return shapes.get(doc)!.revision;
}

export function sourceKey(source: ImageSource): string {
  return source.kind === 'history' ? `h:${source.hash}` : `f:${source.name}:${source.bytes.length}`;
}

const objectUrls = new WeakMap<Uint8Array, string>();

/** An <img>-ready URL for a document image source. */
export function useSourceUrl(source: ImageSource | null): string | null {
  const { client } = useSession();
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
      void client.imageUrl(source.hash).then((u) => alive && setUrl(u), () => alive && setUrl(null));
    }
    return () => {
      alive = false;
    };
  }, [source, client]);
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
  const { client } = useSession();
  const sync = hash ? client.imageUrlSync(hash, thumbnail) : null;
  const [url, setUrl] = useState<string | null>(sync);
  useEffect(() => {
    if (!hash) return setUrl(null);
    if (sync) return setUrl(sync);
    let alive = true;
    void client.imageUrl(hash, thumbnail).then((u) => alive && setUrl(u), () => undefined);
    return () => {
      alive = false;
    };
  }, [hash, thumbnail, sync, client]);
  return url;
}
