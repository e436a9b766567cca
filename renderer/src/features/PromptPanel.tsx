/** Prompt, settings, Generate/Cancel, progress and the queue. */
import { useCallback, useEffect, useState } from 'react';
import type { GenerationMode, InpaintArea, SamplerName } from '../../../electron/shared/generation.js';
import { useDocumentShape, useRegions, useSession } from '../session/hooks.js';
import {
  HIRES_LATENT_UPSCALERS,
  HIRES_PIXEL_UPSCALERS,
  hiresSize,
  MAX_CFG,
  LCM_LORA_CFG,
  LCM_LORA_STEPS,
  MAX_HIRES_SCALE,
  MAX_SIDE,
  MIN_HIRES_SCALE,
  SIDE_MULTIPLE,
  MAX_CLIP_SKIP,
  MAX_MASK_BLUR,
  MAX_MASK_PADDING,
  MAX_STEPS,
  MAX_STRENGTH,
  MIN_CFG,
  MIN_STEPS,
  MIN_STRENGTH,
} from '../../../electron/shared/generation-limits.js';
import { sizePresets } from '../session/session.js';
import { MAX_BATCH_COUNT, useStore, type ModeChoice } from '../session/store.js';
import { LiveStatus, LiveSwitch } from './LiveControls.js';
import { LoraPicker } from './LoraPicker.js';
import { QueueList } from './QueueList.js';
import { PromptTextarea } from './PromptTextarea.js';
import { RegionList } from './RegionList.js';

/** The samplers the engine implements, with the names people know them by (A1111's). */
const SAMPLER_LABELS: Record<SamplerName, string> = {
  euler: 'Euler',
  euler_a: 'Euler a',
  ddim: 'DDIM',
  pndm: 'PNDM',
  dpmpp_2m: 'DPM++ 2M',
  dpmpp_2m_karras: 'DPM++ 2M Karras',
  lcm: 'LCM',
};
/** What a mode does, under the Generate button. */
const MODE_HINTS: Record<Exclude<GenerationMode, 'txt2img'>, string> = {
  img2img: 'reworks the whole image',
  inpaint: 'repaints the masked area',
  layout: 'draws the painted labels',
};
/** Wait this long after typing stops before asking the host to count tokens. */
const TOKENIZE_DEBOUNCE_MS = 150;

function useTokenCount(text: string, modelId: string | null): { count: number; max: number; truncated: boolean } | null {
  const { client } = useSession();
  const [state, setState] = useState<{ count: number; max: number; truncated: boolean } | null>(null);
  useEffect(() => {
    if (!modelId) return;
    let alive = true;
    const t = setTimeout(() => {
      client
        .call('tokenize', { text, modelId })
        .then((r) => alive && setState({ count: r.count, max: r.maxTokens, truncated: r.truncated }), () => alive && setState(null));
    }, TOKENIZE_DEBOUNCE_MS);
    return () => {
      alive = false;
      clearTimeout(t);
    };
  }, [text, modelId, client]);
  return state;
}

function TokenCounter({ text, modelId, id }: { text: string; modelId: string | null; id: string }) {
  const c = useTokenCount(text, modelId);
  if (!c) return <span className="token-count" id={id} />;
  return (
    <span className={`token-count ${c.truncated ? 'is-over' : ''}`} id={id} title={c.truncated ? 'Tokens past the limit are ignored by the text encoder.' : 'CLIP tokens used'}>
      {c.count}/{c.max}
    </span>
  );
}

/** The installed embeddings' names, for completions: asked once, and again whenever a prompt box gets focus. */
function useEmbeddingNames(): { names: string[]; refresh: () => void } {
  const { client } = useSession();
  const [names, setNames] = useState<string[]>([]);
  const refresh = useCallback(() => {
    client.call('embeddings.list', {}).then((r) => setNames(r.names), () => undefined);
  }, [client]);
  useEffect(refresh, [refresh]);
  return { names, refresh };
}

function formatMs(ms: number): string {
  if (ms < 1000) return `${Math.max(0, Math.round(ms / 100) / 10)}s`;
  const s = Math.round(ms / 1000);
  return s < 60 ? `${s}s` : `${Math.floor(s / 60)}m ${s % 60}s`;
}

function NumberField(props: { label: string; value: number; min: number; max: number; step?: number; onChange: (v: number) => void; disabled?: boolean; hint?: string }) {
  return (
    <label className="field" title={props.hint}>
      <span>{props.label}</span>
      <input
        type="number"
        aria-label={props.label}
        value={Number.isFinite(props.value) ? props.value : ''}
        min={props.min}
        max={props.max}
        step={props.step ?? 1}
        disabled={props.disabled}
        onChange={(e) => props.onChange(e.target.value === '' ? NaN : Number(e.target.value))}
      />
    </label>
  );
}

/** A1111's Hires fix: txt2img at the panel's size, upscaled, then repainted (img2img) at the larger size. */
function HiresSection({ disabled }: { disabled: boolean }) {
  const { settingsStore } = useSession();
  const s = useStore(settingsStore);
  const h = s.hires;
  const set = (patch: Partial<typeof h>) => settingsStore.update({ hires: { ...settingsStore.get().hires, ...patch } });
  const target = hiresSize(s.width, s.height, h).target;
  const known: readonly string[] = [...HIRES_LATENT_UPSCALERS, ...HIRES_PIXEL_UPSCALERS];
  return (
    <details className="hires-fix">
      <summary>Hires fix{h.enabled ? ` · on → ${target.width} × ${target.height}` : ''}</summary>
      <label className="check" title={disabled ? 'Hires fix is for txt2img' : 'Generate at the panel size, upscale, then repaint at the larger size'}>
        <input type="checkbox" aria-label="Hires fix" checked={h.enabled} disabled={disabled} onChange={(e) => set({ enabled: e.target.checked })} /> Upscale and repaint
      </label>
      <div className="grid-3">
        <label className="field" title="Latent: the latents are enlarged; Lanczos / Nearest: the picture. An ONNX upscaler in the data folder's upscalers/ can be named by the API and CLI.">
          <span>Upscaler</span>
          <select aria-label="Hires upscaler" value={h.upscaler} disabled={disabled} onChange={(e) => set({ upscaler: e.target.value })}>
            {!known.includes(h.upscaler) && <option value={h.upscaler}>{h.upscaler}</option>}
            {known.map((u) => (
              <option key={u} value={u}>
                {u}
              </option>
            ))}
          </select>
        </label>
        <NumberField label="Upscale by" value={h.scale} min={MIN_HIRES_SCALE} max={MAX_HIRES_SCALE} step={0.05} disabled={disabled} onChange={(v) => set({ scale: v })} hint="Used when Resize width and height are 0" />
        <NumberField label="Hires steps" value={h.steps} min={0} max={MAX_STEPS} disabled={disabled} onChange={(v) => set({ steps: v })} hint="Steps of the second pass; 0 = the same as the first" />
        <NumberField label="Denoising strength" value={h.strength} min={MIN_STRENGTH} max={MAX_STRENGTH} step={0.05} disabled={disabled} onChange={(v) => set({ strength: v })} hint="How much the second pass repaints" />
        <NumberField label="Resize width" value={h.resizeWidth} min={0} max={MAX_SIDE} step={SIDE_MULTIPLE} disabled={disabled} onChange={(v) => set({ resizeWidth: v })} hint="A target width instead of Upscale by (0 = from the height or the scale)" />
        <NumberField label="Resize height" value={h.resizeHeight} min={0} max={MAX_SIDE} step={SIDE_MULTIPLE} disabled={disabled} onChange={(v) => set({ resizeHeight: v })} hint="A target height instead of Upscale by (0 = from the width or the scale)" />
      </div>
    </details>
  );
}

export function PromptPanel() {
  const { cancelGeneration, doc, effectiveMode, generate, generateProblem, lastSeedStore, liveJobStore, modelsStore, queueStore, selectModel, settingsStore, stagingStore, usesPanelSize } =
    useSession();
  const s = useStore(settingsStore);
  const models = useStore(modelsStore);
  const queue = useStore(queueStore);
  const live = useStore(liveJobStore);
  const staging = useStore(stagingStore);
  const lastSeed = useStore(lastSeedStore);
  const embeddings = useEmbeddingNames();
  useDocumentShape();
  // Generate's problem line names a region without a prompt or an area.
  useRegions();
  const info = models.selectedId ? models.info[models.selectedId] : undefined;
  const mode = effectiveMode(s);
  const problem = generateProblem(s);
  const batchActive = staging.jobIds.some((id) => queue.running?.id === id || queue.queued.some((j) => j.id === id));
  const anyRunning = queue.running !== null;
  const presets = sizePresets(info);
  const sizeKey = `${s.width}x${s.height}`;
  const runningLive = live && queue.running && live.jobId === queue.running.id ? live : null;
  const pct = runningLive ? Math.round((runningLive.step / Math.max(1, runningLive.total)) * 100) : 0;

  return (
    <aside className="prompt-panel" aria-label="Prompt panel">
      <div className="model-row">
        <label className="field grow">
          <span>Model</span>
          <select aria-label="Model" value={models.selectedId ?? ''} onChange={(e) => void selectModel(e.target.value)} disabled={models.models.length === 0}>
            {models.models.length === 0 && <option value="">{models.loading ? 'Loading…' : 'No models installed'}</option>}
            {models.models.map((m) => {
              const kind = models.info[m.id]?.kind;
              return (
                <option key={m.id} value={m.id}>
                  {m.id}
                  {kind ? ` · ${kind}` : ''}
                  {m.origin === 'bundled' ? ' · bundled' : ''}
                </option>
              );
            })}
          </select>
        </label>
      </div>
      {models.error && <p className="error-text" role="alert">{models.error}</p>}
      <ModelImport open={!models.loading && models.models.length === 0} />

      <div className="prompt-box">
        <div className="label-row">
          <label htmlFor="prompt">Prompt</label>
          <TokenCounter text={s.prompt} modelId={models.selectedId} id="prompt-tokens" />
        </div>
        <PromptTextarea
          id="prompt"
          label="Prompt"
          describedBy="prompt-tokens"
          rows={5}
          placeholder="a watercolor fox in a snowy forest, soft light"
          value={s.prompt}
          onChange={(prompt) => settingsStore.update({ prompt })}
          embeddings={embeddings.names}
          onFocus={embeddings.refresh}
        />
        <LoraPicker
          prompt={s.prompt}
          modelId={models.selectedId}
          onPrompt={(prompt) => settingsStore.update({ prompt })}
          sampler={s.sampler}
          onUseLcm={() => settingsStore.update({ sampler: 'lcm', steps: LCM_LORA_STEPS, cfg: LCM_LORA_CFG })}
        />
        <div className="label-row">
          <label htmlFor="negative-prompt">Negative prompt</label>
          <TokenCounter text={s.negativePrompt} modelId={models.selectedId} id="negative-tokens" />
        </div>
        <PromptTextarea
          id="negative-prompt"
          label="Negative prompt"
          describedBy="negative-tokens"
          rows={2}
          placeholder="blurry, watermark"
          value={s.negativePrompt}
          onChange={(negativePrompt) => settingsStore.update({ negativePrompt })}
          embeddings={embeddings.names}
          onFocus={embeddings.refresh}
        />
      </div>
      <RegionList embeddings={embeddings.names} onPromptFocus={embeddings.refresh} />

      <div className="grid-2">
        <label className="field">
          <span>Mode</span>
          <select aria-label="Mode" value={s.modeChoice} onChange={(e) => settingsStore.update({ modeChoice: e.target.value as ModeChoice })}>
            <option value="auto">Auto ({mode})</option>
            <option value="txt2img">txt2img</option>
            <option value="img2img">img2img</option>
            <option value="inpaint">inpaint</option>
            <option value="layout" disabled={!info?.layout} title={info?.layout ? 'Paint labels on the canvas (Layout tool); the model draws them' : 'Needs a layout model (one with labels.json)'}>
              {info?.layout ? 'layout' : 'layout (needs a layout model)'}
            </option>
          </select>
        </label>
        <label className="field">
          <span>Sampler</span>
          <select aria-label="Sampler" value={s.sampler} onChange={(e) => settingsStore.update({ sampler: e.target.value as SamplerName })}>
            {(Object.keys(SAMPLER_LABELS) as SamplerName[]).map((k) => (
              <option key={k} value={k}>
                {SAMPLER_LABELS[k]}
              </option>
            ))}
          </select>
        </label>
        <label className="field">
          <span>Size</span>
          <select
            aria-label="Size"
            value={presets.some((p) => `${p.width}x${p.height}` === sizeKey) ? sizeKey : ''}
            disabled={!usesPanelSize(s, mode)}
            title={!usesPanelSize(s, mode) ? `${mode === 'layout' ? 'layout over an image' : 'img2img and whole-picture inpaint'} run at the image size` : undefined}
            onChange={(e) => {
              const [w, h] = e.target.value.split('x').map(Number);
              if (w && h) {
                settingsStore.update({ width: w, height: h });
                doc.resizeBlank(w, h);
              }
            }}
          >
            {!presets.some((p) => `${p.width}x${p.height}` === sizeKey) && <option value="">{s.width} × {s.height}</option>}
            {presets.map((p) => (
              <option key={`${p.width}x${p.height}`} value={`${p.width}x${p.height}`}>
                {p.label}
              </option>
            ))}
          </select>
        </label>
        <label className="field" title="Only masked repaints a crop around the mask at the model's size and pastes it back">
          <span>Inpaint area</span>
          <select aria-label="Inpaint area" value={s.inpaintArea} disabled={mode !== 'inpaint'} onChange={(e) => settingsStore.update({ inpaintArea: e.target.value as InpaintArea })}>
            <option value="whole">Whole picture</option>
            <option value="masked">Only masked</option>
          </select>
        </label>
      </div>
      {/* Numbers in three columns: the panel keeps Generate on screen at 1280×720. */}
      <div className="grid-3">
        <NumberField label="Steps" value={s.steps} min={MIN_STEPS} max={MAX_STEPS} onChange={(v) => settingsStore.update({ steps: v })} />
        <NumberField label="CFG" value={s.cfg} min={MIN_CFG} max={MAX_CFG} step={0.5} onChange={(v) => settingsStore.update({ cfg: v })} />
        <NumberField label="Batch count" value={s.batchCount} min={1} max={MAX_BATCH_COUNT} onChange={(v) => settingsStore.update({ batchCount: v })} />
        <NumberField label="Strength" value={s.strength} min={MIN_STRENGTH} max={MAX_STRENGTH} step={0.05} disabled={mode === 'txt2img' || mode === 'layout'} onChange={(v) => settingsStore.update({ strength: v })} hint="How much of the image is repainted (1 = from noise)" />
        <NumberField label="Mask blur" value={s.maskBlur} min={0} max={MAX_MASK_BLUR} disabled={mode !== 'inpaint'} onChange={(v) => settingsStore.update({ maskBlur: v })} hint="Feather radius of the mask edge, in pixels" />
        <NumberField
          label="Clip skip"
          value={s.clipSkip}
          min={1}
          max={MAX_CLIP_SKIP}
          onChange={(v) => settingsStore.update({ clipSkip: v })}
          hint="A1111's Clip skip: 2 uses the text encoder's layer before the last (what many anime-style models expect)"
        />
        {s.inpaintArea === 'masked' && (
          <NumberField label="Padding" value={s.maskPadding} min={0} max={MAX_MASK_PADDING} disabled={mode !== 'inpaint'} onChange={(v) => settingsStore.update({ maskPadding: v })} hint="Pixels of context kept around the mask" />
        )}
      </div>
      <label className="check" title="Soft inpainting: the mask's grey levels (brush hardness, mask blur) say how much each pixel may change, so the repaint blends in without a seam (differential diffusion)">
        <input type="checkbox" aria-label="Soft inpainting" checked={s.softInpaint} disabled={mode !== 'inpaint'} onChange={(e) => settingsStore.update({ softInpaint: e.target.checked })} /> Soft inpainting
      </label>
      <HiresSection disabled={mode !== 'txt2img'} />

      <div className="seed-row">
        <label className="field">
          <span>Seed</span>
          <select aria-label="Seed mode" value={s.seedMode} onChange={(e) => settingsStore.update({ seedMode: e.target.value as 'random' | 'fixed' })}>
            <option value="random">Random</option>
            <option value="fixed">Fixed</option>
          </select>
        </label>
        <input type="number" aria-label="Seed" className="seed-input" min={0} value={s.seedMode === 'fixed' ? s.seed : ''} placeholder="random" disabled={s.seedMode !== 'fixed'} onChange={(e) => settingsStore.update({ seed: Number(e.target.value) })} />
        <button type="button" aria-label="Reuse last seed" title={lastSeed !== null ? `Reuse ${lastSeed}` : 'No result yet'} disabled={lastSeed === null} onClick={() => lastSeed !== null && settingsStore.update({ seed: lastSeed, seedMode: 'fixed' })}>
          ♻
        </button>
      </div>

      <div className="actions">
        <button type="button" className="primary generate" onClick={() => void generate()} disabled={problem !== null} aria-describedby="generate-problem" title="Generate (Ctrl+Enter)">
          Generate
        </button>
        <LiveSwitch />
        <button type="button" className="danger" onClick={() => void cancelGeneration()} disabled={!batchActive && !anyRunning} title="Cancel the running job">
          Cancel
        </button>
      </div>
      <LiveStatus />
      <p id="generate-problem" className="hint-text" aria-live="polite">
        {problem ?? `${mode}${mode !== 'txt2img' ? ` · ${MODE_HINTS[mode]}` : ''} · Ctrl+Enter`}
      </p>

      <div className="progress" hidden={!runningLive && !batchActive}>
        <div className="progress-bar" role="progressbar" aria-label="Generation progress" aria-valuemin={0} aria-valuemax={100} aria-valuenow={pct}>
          <div className="progress-fill" style={{ width: `${pct}%` }} />
        </div>
        <div className="progress-text">
          {runningLive ? `Step ${runningLive.step}/${runningLive.total} · ${formatMs(runningLive.elapsedMs)} elapsed · ETA ${formatMs(runningLive.etaMs)}` : 'Waiting in the queue…'}
        </div>
      </div>

      <QueueList />
    </aside>
  );
}

/** Adds a model folder by path (browser mode has no folder dialog that reveals a path). */
function ModelImport({ open: startOpen }: { open: boolean }) {
  const { importModelFolder } = useSession();
  const [open, setOpen] = useState(false);
  const [path, setPath] = useState('');
  const [error, setError] = useState<string | null>(null);
  const [busy, setBusy] = useState(false);
  if (!open && !startOpen) {
    return (
      <button type="button" className="link small-link" onClick={() => setOpen(true)}>
        Add a model folder…
      </button>
    );
  }
  const submit = async () => {
    setBusy(true);
    const problem = await importModelFolder(path);
    setBusy(false);
    setError(problem);
    if (!problem) {
      setPath('');
      setOpen(false);
    }
  };
  return (
    <form
      className="model-import"
      onSubmit={(e) => {
        e.preventDefault();
        void submit();
      }}
    >
      {startOpen && <p className="hint-text">No model yet. Add an ONNX Stable Diffusion folder (the one with model_index.json):</p>}
      <div className="model-import-row">
        <input aria-label="Model folder path" placeholder="/path/to/model-folder" value={path} onChange={(e) => setPath(e.target.value)} spellCheck={false} />
        <button type="submit" disabled={busy}>{busy ? 'Checking…' : 'Add model'}</button>
      </div>
      {error && <p className="error-text" role="alert">{error}</p>}
    </form>
  );
}
