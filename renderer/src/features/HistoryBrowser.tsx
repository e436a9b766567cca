/**
 * The history browser: a virtualized thumbnail grid with infinite scroll (only the visible rows are in
 * the DOM, so 10,000+ items scroll like 10), full-text search, filters, and a detail panel with every
 * parameter, actions and the lineage strip. It reloads when the host says history changed.
 */
import { useVirtualizer } from '@tanstack/react-virtual';
import { memo, useCallback, useEffect, useLayoutEffect, useRef, useState } from 'react';
import type { GenerationMode } from '../../../electron/shared/generation.js';
import type { HistoryFilter, HistoryItem, HistoryLineage } from '../../../electron/shared/history.js';
import { useHashUrl, useSession } from '../session/hooks.js';
import { describeError } from '../session/session.js';
import { useStore } from '../session/store.js';

/** Thumbnail cell size in CSS pixels (the store's thumbnails are 256 px on the long side). */
const CELL = 96;
const GAP = 6;
const PAGE_SIZE = 200;
/** Start loading the next page this many rows before the end. */
const PREFETCH_ROWS = 6;
const SEARCH_DEBOUNCE_MS = 200;

interface Query {
  text: string;
  filter: HistoryFilter;
}

function useHistoryList(query: Query) {
  const { client, historyRevisionStore } = useSession();
  const [items, setItems] = useState<HistoryItem[]>([]);
  const [cursor, setCursor] = useState<string | null>(null);
  const [done, setDone] = useState(false);
  const [loading, setLoading] = useState(false);
  const [error, setError] = useState<string | null>(null);
  const [loadedAt, setLoadedAt] = useState<number | null>(null);
  const generation = useRef(0);
  const revision = useStore(historyRevisionStore);

  const fetchPage = useCallback(
    async (after: string | null) => {
      const text = query.text.trim();
      const req = { filter: query.filter, cursor: after, limit: PAGE_SIZE };
      return text ? client.call('history.search', { ...req, text }) : client.call('history.page', req);
    },
    [query],
  );

  // New query, or history changed: load the first page again (keeps the scroll position).
  const shownQuery = useRef<typeof fetchPage | null>(null);
  useEffect(() => {
    const g = ++generation.current;
    const sameQuery = shownQuery.current === fetchPage;
    shownQuery.current = fetchPage;
    setLoading(true);
    fetchPage(null).then(
      (page) => {
        if (g !== generation.current) return;
        setItems((prev) => {
          // A live update keeps the pages already scrolled through: newest page first, then the rest.
          const first = new Set(page.items.map((i) => i.id));
          const oldest = page.items.at(-1)?.id ?? Infinity;
          return sameQuery && prev.length > page.items.length ? [...page.items, ...prev.filter((i) => !first.has(i.id) && i.id < oldest)] : page.items;
        });
        setCursor(page.nextCursor);
        setDone(page.nextCursor === null);
        setError(null);
        setLoading(false);
        setLoadedAt(performance.now());
      },
      (err: unknown) => {
        if (g !== generation.current) return;
        setError(describeError(err));
        setLoading(false);
      },
    );
  }, [fetchPage, revision]);

  const loadMore = useCallback(() => {
    if (loading || done || cursor === null) return;
    const g = generation.current;
    setLoading(true);
    fetchPage(cursor).then(
      (page) => {
        if (g !== generation.current) return;
        setItems((prev) => {
          const seen = new Set(prev.map((i) => i.id));
          return [...prev, ...page.items.filter((i) => !seen.has(i.id))];
        });
        setCursor(page.nextCursor);
        setDone(page.nextCursor === null);
        setLoading(false);
      },
      (err: unknown) => {
        setError(describeError(err));
        setLoading(false);
      },
    );
  }, [cursor, done, fetchPage, loading]);

  return { items, loading, error, loadMore, done, loadedAt };
}

const Thumb = memo(function Thumb({ item, selected, onSelect }: { item: HistoryItem; selected: boolean; onSelect: (id: number) => void }) {
  const url = useHashUrl(item.output?.hash, true);
  const label = `#${item.id} ${item.params.prompt || '(no prompt)'}`;
  return (
    <button
      type="button"
      role="gridcell"
      className={`thumb ${selected ? 'is-selected' : ''} ${item.status !== 'succeeded' ? 'is-failed' : ''}`}
      aria-label={label}
      aria-selected={selected}
      title={label}
      onClick={() => onSelect(item.id)}
      data-history-id={item.id}
    >
      {url ? <img src={url} alt="" loading="lazy" decoding="async" draggable={false} /> : <span className="thumb-missing">{item.status}</span>}
      {item.favorite && <span className="thumb-fav" aria-hidden="true">★</span>}
      {item.parentId !== null && <span className="thumb-child" aria-hidden="true" title="Made from another result">↳</span>}
    </button>
  );
});

export function HistoryBrowser() {
  const { modelsStore, selectedHistoryStore } = useSession();
  const [text, setText] = useState('');
  const [debounced, setDebounced] = useState('');
  const [favorite, setFavorite] = useState(false);
  const [mode, setMode] = useState<GenerationMode | ''>('');
  const [modelId, setModelId] = useState('');
  const [trash, setTrash] = useState(false);
  const models = useStore(modelsStore);
  const selected = useStore(selectedHistoryStore);

  useEffect(() => {
    const t = setTimeout(() => setDebounced(text), SEARCH_DEBOUNCE_MS);
    return () => clearTimeout(t);
  }, [text]);

  const [query, setQuery] = useState<Query>({ text: '', filter: {} });
  useEffect(() => {
    setQuery({
      text: debounced,
      filter: { ...(favorite ? { favorite: true } : {}), ...(mode ? { mode } : {}), ...(modelId ? { modelId } : {}), ...(trash ? { view: 'trash' as const } : {}) },
    });
  }, [debounced, favorite, mode, modelId, trash]);

  const { items, loading, error, loadMore, done, loadedAt } = useHistoryList(query);

  const scrollRef = useRef<HTMLDivElement>(null);
  const [columns, setColumns] = useState(3);
  useLayoutEffect(() => {
    const el = scrollRef.current;
    if (!el) return;
    const ro = new ResizeObserver(() => setColumns(Math.max(1, Math.floor((el.clientWidth - GAP) / (CELL + GAP)))));
    ro.observe(el);
    return () => ro.disconnect();
  }, []);
  const rows = Math.ceil(items.length / columns);
  // useFlushSync off: React renders the new rows in its own task, batched with anything else, rather than
  // synchronously inside every scroll event (a trace of bench:ui's scroll: ~4.6 ms of each frame there).
  const virtualizer = useVirtualizer({ count: rows, getScrollElement: () => scrollRef.current, estimateSize: () => CELL + GAP, overscan: 4, useFlushSync: false });
  const virtualRows = virtualizer.getVirtualItems();
  const lastRow = virtualRows.at(-1)?.index ?? 0;
  useEffect(() => {
    if (lastRow >= rows - PREFETCH_ROWS) loadMore();
  }, [lastRow, rows, loadMore]);

  const onSelect = useCallback((id: number) => selectedHistoryStore.set(id), []);

  const filtered = text.trim() !== '' || favorite || mode !== '' || modelId !== '' || trash;
  return (
    <section className="history" aria-label="History">
      <div className="history-head">
        <input type="search" aria-label="Search history" placeholder="Search prompts, tags…  (word*, &quot;a phrase&quot;, tag:x)" value={text} onChange={(e) => setText(e.target.value)} />
        <div className="history-filters">
          <button type="button" aria-pressed={favorite} className={`chip ${favorite ? 'is-on' : ''}`} onClick={() => setFavorite(!favorite)} aria-label="Favorites only">★</button>
          <select aria-label="Filter by mode" value={mode} onChange={(e) => setMode(e.target.value as GenerationMode | '')}>
            <option value="">All modes</option>
            <option value="txt2img">txt2img</option>
            <option value="img2img">img2img</option>
            <option value="inpaint">inpaint</option>
            <option value="layout">layout</option>
          </select>
          <select aria-label="Filter by model" value={modelId} onChange={(e) => setModelId(e.target.value)}>
            <option value="">All models</option>
            {models.models.map((m) => (
              <option key={m.id} value={m.id}>
                {m.id}
              </option>
            ))}
          </select>
          <button type="button" aria-pressed={trash} className={`chip ${trash ? 'is-on' : ''}`} onClick={() => setTrash(!trash)} aria-label="Show trash" title="Trash">Trash</button>
        </div>
      </div>
      {error && <p className="error-text" role="alert">{error}</p>}
      <div className="history-grid" ref={scrollRef} role="grid" aria-label="History items" aria-rowcount={rows} data-loaded-at={loadedAt ?? ''} data-count={items.length}>
        {items.length === 0 && !loading && (
          <div className="empty-state small">
            {filtered ? <p>Nothing matches. Try fewer words or clear the filters.</p> : <p>No results yet. Everything you generate lands here, searchable by prompt.</p>}
          </div>
        )}
        <div style={{ height: virtualizer.getTotalSize(), position: 'relative' }}>
          {virtualRows.map((row) => (
            <div key={row.key} role="row" className="history-row" style={{ transform: `translateY(${row.start}px)`, height: CELL, gap: GAP }}>
              {items.slice(row.index * columns, row.index * columns + columns).map((item) => (
                <Thumb key={item.id} item={item} selected={item.id === selected} onSelect={onSelect} />
              ))}
            </div>
          ))}
        </div>
        {loading && <div className="history-loading">Loading…</div>}
        {done && items.length > 0 && <div className="history-end">{items.length} items</div>}
      </div>
      <HistoryDetail />
    </section>
  );
}

function LineageThumb({ item, relation }: { item: HistoryItem; relation: string }) {
  const { selectedHistoryStore } = useSession();
  const url = useHashUrl(item.output?.hash, true);
  return (
    <button type="button" className="lineage-thumb" aria-label={`${relation} #${item.id}`} title={`${relation} #${item.id}: ${item.params.prompt}`} onClick={() => selectedHistoryStore.set(item.id)}>
      {url ? <img src={url} alt="" /> : <span>#{item.id}</span>}
    </button>
  );
}

/** Tags as a comma-separated line; saved on Enter or when the field loses focus. */
function TagEditor({ id, tags }: { id: number; tags: string[] }) {
  const { client, notify } = useSession();
  const [text, setText] = useState(tags.join(', '));
  const save = () => {
    const next = [...new Set(text.split(',').map((t) => t.trim()).filter((t) => t.length > 0))];
    if (next.join(',') === tags.join(',')) return;
    client
      .call('history.setTags', { id, tags: next })
      .catch((err: unknown) => notify('error', describeError(err)));
  };
  return (
    <label className="field">
      <span>Tags</span>
      <input
        aria-label="Tags"
        placeholder="comma, separated (searchable as tag:name)"
        value={text}
        onChange={(e) => setText(e.target.value)}
        onBlur={save}
        onKeyDown={(e) => e.key === 'Enter' && save()}
      />
    </label>
  );
}

/**
 * Reveal file: the desktop app opens the file manager at the image; a browser has no file manager, so
 * the path is shown (selected, with Copy) for the person to open it themselves.
 */
function RevealFile({ id, disabled }: { id: number; disabled: boolean }) {
  const { client, notify } = useSession();
  const [path, setPath] = useState<string | null>(null);
  const reveal = () =>
    void client
      .call('history.reveal', { id })
      .then(({ path: file, revealed }) => (revealed ? setPath(null) : setPath(file)), (err: unknown) => notify('error', describeError(err)));
  const copy = () =>
    void navigator.clipboard.writeText(path ?? '').then(
      () => notify('info', 'Path copied.'),
      () => notify('error', 'The browser did not allow copying: select the path and copy it by hand.'),
    );
  return (
    <>
      <button type="button" disabled={disabled} onClick={reveal}>Reveal file</button>
      {path !== null && (
        <div className="reveal-path" role="group" aria-label="Image file">
          <input aria-label="Image file path" readOnly value={path} onFocus={(e) => e.currentTarget.select()} spellCheck={false} />
          <button type="button" onClick={copy}>Copy path</button>
        </div>
      )}
    </>
  );
}

/** Memoized (it has no props): the grid re-renders on every scroll frame, the detail panel need not. */
const HistoryDetail = memo(function HistoryDetail() {
  const { client, historyRevisionStore, notify, openInCanvas, reuseParameters, selectedHistoryStore } = useSession();
  const id = useStore(selectedHistoryStore);
  const revision = useStore(historyRevisionStore);
  const [lineage, setLineage] = useState<HistoryLineage | null>(null);
  const [error, setError] = useState<string | null>(null);
  useEffect(() => {
    if (id === null) return setLineage(null);
    let alive = true;
    client
      .call('history.lineage', { id })
      .then((l) => alive && (setLineage(l), setError(null)), (err: unknown) => alive && setError(describeError(err)));
    return () => {
      alive = false;
    };
  }, [id, revision]);
  const item = lineage?.item;
  const url = useHashUrl(item?.output?.hash, true);
  const labelMap = item?.labelMap ?? null;
  const mapUrl = useHashUrl(labelMap?.hash, false);
  if (id === null) return <div className="history-detail empty"><p>Select a result to see its parameters.</p></div>;
  if (error) return <div className="history-detail"><p className="error-text">{error}</p></div>;
  if (!item) return <div className="history-detail" />;
  const p = item.params;
  const act = (fn: () => Promise<unknown>) => () => void fn().catch((err: unknown) => notify('error', describeError(err)));
  const rows: Array<[string, string]> = [
    ['Mode', item.mode],
    ['Model', item.model.id ?? '—'],
    ['Seed', p.seed === null ? '—' : String(p.seed)],
    ['Steps', p.steps === null ? '—' : String(p.steps)],
    ['CFG', p.cfg === null ? '—' : String(p.cfg)],
    ['Sampler', p.sampler ?? '—'],
    ['Size', `${p.width} × ${p.height}`],
    ...(item.mode !== 'txt2img' && item.mode !== 'layout' ? ([['Strength', p.strength === null ? '—' : String(p.strength)]] as Array<[string, string]>) : []),
    ...(p.clipSkip !== undefined && p.clipSkip > 1 ? ([['Clip skip', String(p.clipSkip)]] as Array<[string, string]>) : []),
    ...(p.emphasis !== undefined && p.emphasis !== 'Original' ? ([['Emphasis', p.emphasis]] as Array<[string, string]>) : []),
    ...(p.padConds ? ([['Pad conds', 'yes']] as Array<[string, string]>) : []),
    ...(p.embeddings && p.embeddings.length > 0 ? ([['Embeddings', p.embeddings.map((e) => e.name).join(', ')]] as Array<[string, string]>) : []),
    ...(item.mode === 'inpaint' ? ([['Mask blur', p.maskBlur === null ? '—' : String(p.maskBlur)]] as Array<[string, string]>) : []),
    ...(item.mode === 'inpaint' && p.softInpaint ? ([['Soft inpainting', 'on']] as Array<[string, string]>) : []),
    ...(p.hires
      ? ([
          ['Hires upscaler', p.hires.upscaler],
          ['Hires upscale', p.hires.resizeWidth > 0 || p.hires.resizeHeight > 0 ? `to ${p.hires.resizeWidth || 'auto'} × ${p.hires.resizeHeight || 'auto'}` : `× ${p.hires.scale}`],
          ['Hires steps', p.hires.steps === 0 ? 'same as first pass' : String(p.hires.steps)],
          ['Denoising strength', String(p.hires.strength)],
        ] as Array<[string, string]>)
      : []),
    ...(p.regions ?? []).map((r, i): [string, string] => [`Region ${i + 1}`, `${r.prompt} (weight ${r.weight}, area ${Math.round(r.area * 1000) / 10}%)`]),
    ['Created', new Date(item.createdAt).toLocaleString()],
    ...(item.timings ? ([['Time', `${(item.timings.totalMs / 1000).toFixed(2)} s`]] as Array<[string, string]>) : []),
    ...(item.parentId !== null ? ([['Parent', `#${item.parentId}`]] as Array<[string, string]>) : []),
  ];
  const children = lineage.descendants.filter((d) => d.depth === 1).map((d) => d.item);
  return (
    <div className="history-detail" aria-label={`Details of #${item.id}`} role="region">
      <div className="detail-head">
        {url && <img className="detail-thumb" src={url} alt={`Result #${item.id}`} />}
        {mapUrl && <img className="detail-thumb detail-label-map" src={mapUrl} alt={`Label map of #${item.id}`} title={`The layout it was drawn from (${labelMap?.width} × ${labelMap?.height})`} />}
        <div className="detail-title">
          <strong>#{item.id}</strong> <span className={`badge ${item.status}`}>{item.status}</span>
          <p className="detail-prompt">{p.prompt || <em>(no prompt)</em>}</p>
          {p.negativePrompt && <p className="detail-negative">− {p.negativePrompt}</p>}
        </div>
      </div>
      <dl className="detail-params">
        {rows.map(([k, v]) => (
          <div key={k}>
            <dt>{k}</dt>
            <dd>{v}</dd>
          </div>
        ))}
      </dl>
      {item.error && <p className="error-text">{item.error}</p>}
      <TagEditor key={item.id} id={item.id} tags={item.tags} />
      <div className="detail-actions">
        <button type="button" onClick={() => reuseParameters(item)}>Reuse parameters</button>
        <button type="button" onClick={() => openInCanvas(item)} disabled={!item.output}>Open in canvas</button>
        <button type="button" disabled={p.seed === null} onClick={act(async () => { await navigator.clipboard.writeText(String(p.seed)); notify('info', `Seed ${p.seed} copied.`); })}>Copy seed</button>
        <button type="button" aria-pressed={item.favorite} onClick={act(() => client.call('history.setFavorite', { ids: [item.id], favorite: !item.favorite }))}>{item.favorite ? '★ Unfavorite' : '☆ Favorite'}</button>
        {item.deletedAt === null ? (
          <button type="button" className="danger" onClick={act(() => client.call('history.delete', { ids: [item.id] }))}>Delete</button>
        ) : (
          <button type="button" onClick={act(() => client.call('history.restore', { ids: [item.id] }))}>Restore</button>
        )}
        <RevealFile key={item.id} id={item.id} disabled={!item.output} />
      </div>
      {(lineage.ancestors.length > 0 || children.length > 0) && (
        <div className="lineage" role="group" aria-label="Lineage">
          {[...lineage.ancestors].reverse().map((a, i) => (
            <LineageThumb key={a.id} item={a} relation={i === lineage.ancestors.length - 1 ? 'Parent' : 'Ancestor'} />
          ))}
          <span className="lineage-self" aria-current="true">#{item.id}</span>
          {children.map((c) => (
            <LineageThumb key={c.id} item={c} relation="Child" />
          ))}
        </div>
      )}
    </div>
  );
});
