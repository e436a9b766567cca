/**
 * The live layer's picture: the newest live frame (session/live-painting.ts) drawn into a canvas of its
 * crop's size, for a Konva image at the crop's place over the picture. When the frame has reached the
 * screen (the animation frame after it was drawn), the stage element records the frame's number and its
 * stroke-to-pixels latency (`data-live-seq`, `data-live-latency-ms`), which the e2e test and bench:live
 * read.
 */
import { useEffect, useMemo, type RefObject } from 'react';
import { useSession } from '../session/hooks.js';
import { useStore } from '../session/store.js';

export interface LiveLayerImage {
  canvas: HTMLCanvasElement;
  x: number;
  y: number;
  width: number;
  height: number;
}

export function useLiveLayer(stageRef: RefObject<HTMLElement | null>): LiveLayerImage | null {
  const { live } = useSession();
  const { frame } = useStore(live.store);
  const image = useMemo(() => {
    if (!frame) return null;
    const { crop, rgba } = frame;
    const canvas = document.createElement('canvas');
    canvas.width = crop.width;
    canvas.height = crop.height;
    canvas.getContext('2d')!.putImageData(new ImageData(rgba, crop.width, crop.height), 0, 0);
    return { canvas, ...crop };
  }, [frame]);
  useEffect(() => {
    const el = stageRef.current;
    if (!el) return;
    if (!frame) {
      delete el.dataset['liveSeq'];
      return;
    }
    const drawnAt = performance.now();
    const id = requestAnimationFrame(() => {
      const now = performance.now();
      const { timing } = frame;
      // Where the latency went (bench:live): the answer to the draw, and the draw to the screen.
      el.dataset['liveBreakdown'] = JSON.stringify({ ...timing, drawMs: drawnAt - timing.answeredAt, screenMs: now - drawnAt, roundTripMs: frame.roundTripMs, engineMs: frame.engineMs });
      el.dataset['liveSeq'] = String(frame.seq);
      el.dataset['liveLatencyMs'] = (now - frame.changedAt).toFixed(1);
    });
    return () => cancelAnimationFrame(id);
  }, [frame, stageRef]);
  return image;
}
