/**
 * The SQL of the history store: every statement prepared once (the filter combinations of pages and
 * searches are prepared on first use and cached), rows mapped to HistoryItem. Synchronous, as
 * better-sqlite3 is; no file-system access here.
 */
import type { Statement } from 'better-sqlite3';
import type { ExecutionProviderName, GenerationMode, GenerationTimings, HiresParams, InpaintArea, SamplerName } from '../shared/generation.js';
import type { EmphasisMode } from '../shared/generation-limits.js';
import type {
  GenerationSource,
  GenerationStatus,
  HistoryCounts,
  HistoryFilter,
  HistoryItem,
  HistoryRegion,
  ImageRef,
  RecordedParams,
} from '../shared/history.js';
import type { SqliteDatabase } from './database.js';

/** What an insert into `generations` needs (the image rows it references must exist). */
export interface GenerationRecord extends RecordedParams {
  createdAt: number;
  source: GenerationSource;
  status: GenerationStatus;
  modelId: string | null;
  modelHash: string | null;
  initImageHash: string | null;
  maskHash: string | null;
  labelMapHash: string | null;
  /** Regional prompts: each region's mask hash, in the order of `regions` (the images must exist). */
  regionMaskHashes?: string[];
  outputHash: string | null;
  parentId: number | null;
  executionProvider: ExecutionProviderName | null;
  timings: GenerationTimings | null;
  error: string | null;
  favorite: boolean;
  tags: string[];
  sourceFile: string | null;
  sourceParameters: string | null;
}

export interface ImageRecord {
  hash: string;
  width: number;
  height: number;
  byteSize: number;
  createdAt: number;
}

interface ItemRow {
  id: number;
  created_at: number;
  source: GenerationSource;
  status: GenerationStatus;
  mode: GenerationMode;
  model_id: string | null;
  model_hash: string | null;
  prompt: string;
  negative_prompt: string;
  seed: number | null;
  steps: number | null;
  cfg: number | null;
  sampler: SamplerName | null;
  width: number;
  height: number;
  strength: number | null;
  mask_blur: number | null;
  parent_id: number | null;
  execution_provider: ExecutionProviderName | null;
  timings_json: string | null;
  error: string | null;
  favorite: number;
  tags: string;
  deleted_at: number | null;
  source_file: string | null;
  source_parameters: string | null;
  inpaint_area: InpaintArea | null;
  mask_padding: number | null;
  control_scale: number | null;
  clip_skip: number | null;
  embeddings_json: string | null;
  hires_json: string | null;
  soft_inpaint: number | null;
  loras_json: string | null;
  regions_json: string | null;
  emphasis: EmphasisMode | null;
  pad_conds: number | null;
  aesthetic_score: number | null;
  negative_aesthetic_score: number | null;
  o_hash: string | null; o_width: number | null; o_height: number | null; o_missing: number | null;
  i_hash: string | null; i_width: number | null; i_height: number | null; i_missing: number | null;
  m_hash: string | null; m_width: number | null; m_height: number | null; m_missing: number | null;
  l_hash: string | null; l_width: number | null; l_height: number | null; l_missing: number | null;
}

/** The columns and joins every item query selects (`g` is generations). */
const ITEM_SELECT = `
  SELECT g.id, g.created_at, g.source, g.status, g.mode, g.model_id, g.model_hash, g.prompt, g.negative_prompt,
         g.seed, g.steps, g.cfg, g.sampler, g.width, g.height, g.strength, g.mask_blur, g.parent_id,
         g.execution_provider, g.timings_json, g.error, g.favorite, g.tags, g.deleted_at, g.source_file,
         g.source_parameters, g.inpaint_area, g.mask_padding, g.control_scale,
         g.clip_skip, g.embeddings_json, g.hires_json, g.soft_inpaint, g.loras_json, g.emphasis, g.pad_conds,
         g.aesthetic_score, g.negative_aesthetic_score,
         (SELECT json_group_array(json_object('prompt', r.prompt, 'weight', r.weight, 'area', r.area, 'hash', r.mask_hash,
                                              'width', ri.width, 'height', ri.height, 'missing', ri.file_missing))
            FROM (SELECT * FROM generation_regions WHERE generation_id = g.id ORDER BY position) r
            JOIN images ri ON ri.hash = r.mask_hash) AS regions_json,
         o.hash AS o_hash, o.width AS o_width, o.height AS o_height, o.file_missing AS o_missing,
         i.hash AS i_hash, i.width AS i_width, i.height AS i_height, i.file_missing AS i_missing,
         m.hash AS m_hash, m.width AS m_width, m.height AS m_height, m.file_missing AS m_missing,
         l.hash AS l_hash, l.width AS l_width, l.height AS l_height, l.file_missing AS l_missing`;
const ITEM_JOINS = `
  LEFT JOIN images o ON o.hash = g.output_hash
  LEFT JOIN images i ON i.hash = g.init_image_hash
  LEFT JOIN images m ON m.hash = g.mask_hash
  LEFT JOIN images l ON l.hash = g.label_map_hash`;

/** Tags are stored newline-separated (a tag never holds a newline), which FTS5 tokenizes as words. */
const TAG_SEPARATOR = '\n';
/** Lineage walks stop here; a chain this deep is a data problem, not a user's history. */
export const MAX_LINEAGE_DEPTH = 10_000;

interface RegionRow {
  prompt: string;
  weight: number;
  area: number;
  hash: string;
  width: number;
  height: number;
  missing: number;
}

function regionsOf(json: string | null): HistoryRegion[] {
  const rows = json === null ? [] : (JSON.parse(json) as RegionRow[]);
  return rows.map((r) => ({ prompt: r.prompt, weight: r.weight, area: r.area, mask: imageRef(r.hash, r.width, r.height, r.missing)! }));
}

function imageRef(hash: string | null, width: number | null, height: number | null, missing: number | null): ImageRef | null {
  if (hash === null) return null;
  return { hash, width: width ?? 0, height: height ?? 0, fileMissing: missing === 1 };
}

export function rowToItem(r: ItemRow): HistoryItem {
  const regions = regionsOf(r.regions_json);
  return {
    id: r.id,
    createdAt: r.created_at,
    source: r.source,
    status: r.status,
    mode: r.mode,
    model: { id: r.model_id, hash: r.model_hash },
    params: {
      mode: r.mode,
      prompt: r.prompt,
      negativePrompt: r.negative_prompt,
      seed: r.seed,
      steps: r.steps,
      cfg: r.cfg,
      sampler: r.sampler,
      width: r.width,
      height: r.height,
      strength: r.strength,
      maskBlur: r.mask_blur,
      // Present only when recorded (migration 003 added them; GenerationParams has them optional).
      ...(r.inpaint_area !== null ? { inpaintArea: r.inpaint_area } : {}),
      ...(r.mask_padding !== null ? { maskPadding: r.mask_padding } : {}),
      ...(r.control_scale !== null ? { controlScale: r.control_scale } : {}),
      // Migration 004: A1111's clip skip and the embeddings the prompts used.
      ...(r.clip_skip !== null ? { clipSkip: r.clip_skip } : {}),
      ...(r.embeddings_json !== null ? { embeddings: JSON.parse(r.embeddings_json) as { name: string; hash: string }[] } : {}),
      // Migration 005: hires fix and soft inpainting.
      ...(r.hires_json !== null ? { hires: JSON.parse(r.hires_json) as HiresParams } : {}),
      ...(r.soft_inpaint === 1 ? { softInpaint: true } : {}),
      // Migration 006: the LoRAs the prompt's tags applied.
      ...(r.loras_json !== null ? { loras: JSON.parse(r.loras_json) as { name: string; hash: string }[] } : {}),
      // Migration 007: regional prompts (their masks are on the item).
      ...(regions.length > 0 ? { regions: regions.map(({ prompt, weight, area }) => ({ prompt, weight, area })) } : {}),
      ...(r.emphasis !== null ? { emphasis: r.emphasis } : {}),
      ...(r.pad_conds === 1 ? { padConds: true as const } : {}),
      // Migration 009: an SDXL refiner's aesthetic scores.
      ...(r.aesthetic_score !== null ? { aestheticScore: r.aesthetic_score } : {}),
      ...(r.negative_aesthetic_score !== null ? { negativeAestheticScore: r.negative_aesthetic_score } : {}),
    },
    output: imageRef(r.o_hash, r.o_width, r.o_height, r.o_missing),
    initImage: imageRef(r.i_hash, r.i_width, r.i_height, r.i_missing),
    mask: imageRef(r.m_hash, r.m_width, r.m_height, r.m_missing),
    labelMap: imageRef(r.l_hash, r.l_width, r.l_height, r.l_missing),
    ...(regions.length > 0 ? { regions } : {}),
    parentId: r.parent_id,
    executionProvider: r.execution_provider,
    timings: r.timings_json === null ? null : (JSON.parse(r.timings_json) as GenerationTimings),
    error: r.error,
    favorite: r.favorite === 1,
    tags: r.tags === '' ? [] : r.tags.split(TAG_SEPARATOR),
    deletedAt: r.deleted_at,
    imported: r.source === 'imported' ? { fileName: r.source_file ?? '', parameters: r.source_parameters } : null,
  };
}

export class HistoryRepository {
  private readonly insertImageStmt: Statement;
  private readonly insertGenerationStmt: Statement;
  private readonly insertRegionStmt: Statement;
  private readonly regionMaskHashesStmt: Statement<[number], { mask_hash: string }>;
  private readonly getStmt: Statement<[number], ItemRow>;
  private readonly existsStmt: Statement<[number], { id: number; deleted_at: number | null }>;
  private readonly imageStmt: Statement<[string], { hash: string; width: number; height: number; file_missing: number }>;
  private readonly byOutputStmt: Statement<[string], { id: number; deleted_at: number | null }>;
  private readonly ancestorsStmt: Statement<[{ id: number; maxDepth: number }], ItemRow>;
  private readonly descendantsStmt: Statement<[{ id: number; maxDepth: number; limit: number }], ItemRow & { depth: number }>;
  private readonly setFavoriteStmt: Statement;
  private readonly setTagsStmt: Statement;
  private readonly trashStmt: Statement;
  private readonly restoreStmt: Statement;
  private readonly purgeRowStmt: Statement;
  private readonly imageHashesOfStmt: Statement<
    [number],
    { output_hash: string | null; init_image_hash: string | null; mask_hash: string | null; label_map_hash: string | null }
  >;
  private readonly deleteUnreferencedImageStmt: Statement;
  private readonly imageRowExistsStmt: Statement<[string], { hash: string }>;
  private readonly trashIdsStmt: Statement<[number], { id: number }>;
  private readonly countsStmt: Statement<[], Record<string, number | null>>;
  private readonly allImagesStmt: Statement<[], { hash: string; file_missing: number }>;
  private readonly setImageMissingStmt: Statement;
  private readonly itemsWithOutputStmt: Statement<[string], { id: number }>;
  private readonly filteredStatements = new Map<string, Statement>();

  constructor(readonly db: SqliteDatabase) {
    this.insertImageStmt = db.prepare(`
      INSERT INTO images (hash, width, height, byte_size, created_at) VALUES (@hash, @width, @height, @byteSize, @createdAt)
      ON CONFLICT (hash) DO UPDATE SET file_missing = 0`);
    this.insertGenerationStmt = db.prepare(`
      INSERT INTO generations (created_at, source, status, mode, model_id, model_hash, prompt, negative_prompt, seed, steps,
        cfg, sampler, width, height, strength, mask_blur, init_image_hash, mask_hash, output_hash, parent_id,
        execution_provider, timings_json, error, favorite, tags, source_file, source_parameters, label_map_hash,
        inpaint_area, mask_padding, control_scale, clip_skip, embeddings_json, hires_json, soft_inpaint, loras_json, emphasis, pad_conds,
        aesthetic_score, negative_aesthetic_score)
      VALUES (@createdAt, @source, @status, @mode, @modelId, @modelHash, @prompt, @negativePrompt, @seed, @steps,
        @cfg, @sampler, @width, @height, @strength, @maskBlur, @initImageHash, @maskHash, @outputHash, @parentId,
        @executionProvider, @timingsJson, @error, @favorite, @tags, @sourceFile, @sourceParameters, @labelMapHash,
        @inpaintArea, @maskPadding, @controlScale, @clipSkip, @embeddingsJson, @hiresJson, @softInpaint, @lorasJson, @emphasis, @padConds,
        @aestheticScore, @negativeAestheticScore)`);
    this.insertRegionStmt = db.prepare(`
      INSERT INTO generation_regions (generation_id, position, prompt, weight, area, mask_hash)
      VALUES (@generationId, @position, @prompt, @weight, @area, @maskHash)`);
    this.regionMaskHashesStmt = db.prepare('SELECT mask_hash FROM generation_regions WHERE generation_id = ? ORDER BY position');
    this.getStmt = db.prepare(`${ITEM_SELECT} FROM generations g ${ITEM_JOINS} WHERE g.id = ?`);
    this.existsStmt = db.prepare('SELECT id, deleted_at FROM generations WHERE id = ?');
    this.imageStmt = db.prepare('SELECT hash, width, height, file_missing FROM images WHERE hash = ?');
    this.byOutputStmt = db.prepare('SELECT id, deleted_at FROM generations WHERE output_hash = ? ORDER BY id LIMIT 1');
    this.ancestorsStmt = db.prepare(`
      WITH RECURSIVE ancestors (id, depth) AS (
        SELECT parent_id, 1 FROM generations WHERE id = @id AND parent_id IS NOT NULL
        UNION ALL
        SELECT g.parent_id, a.depth + 1 FROM generations g JOIN ancestors a ON g.id = a.id
        WHERE g.parent_id IS NOT NULL AND a.depth < @maxDepth
      )
      ${ITEM_SELECT} FROM ancestors a CROSS JOIN generations g ON g.id = a.id ${ITEM_JOINS} ORDER BY a.depth`);
    this.descendantsStmt = db.prepare(`
      WITH RECURSIVE descendants (id, depth) AS (
        SELECT id, 1 FROM generations WHERE parent_id = @id
        UNION ALL
        SELECT g.id, d.depth + 1 FROM generations g JOIN descendants d ON g.parent_id = d.id WHERE d.depth < @maxDepth
      )
      ${ITEM_SELECT}, d.depth AS depth FROM descendants d CROSS JOIN generations g ON g.id = d.id ${ITEM_JOINS}
      ORDER BY d.depth, g.id LIMIT @limit`);
    this.setFavoriteStmt = db.prepare('UPDATE generations SET favorite = ? WHERE id = ?');
    this.setTagsStmt = db.prepare('UPDATE generations SET tags = ? WHERE id = ?');
    this.trashStmt = db.prepare('UPDATE generations SET deleted_at = ? WHERE id = ? AND deleted_at IS NULL');
    this.restoreStmt = db.prepare('UPDATE generations SET deleted_at = NULL WHERE id = ?');
    this.purgeRowStmt = db.prepare('DELETE FROM generations WHERE id = ? AND deleted_at IS NOT NULL');
    this.imageHashesOfStmt = db.prepare('SELECT output_hash, init_image_hash, mask_hash, label_map_hash FROM generations WHERE id = ?');
    this.deleteUnreferencedImageStmt = db.prepare(`
      DELETE FROM images WHERE hash = @hash
        AND NOT EXISTS (SELECT 1 FROM generations WHERE output_hash = @hash)
        AND NOT EXISTS (SELECT 1 FROM generations WHERE init_image_hash = @hash)
        AND NOT EXISTS (SELECT 1 FROM generations WHERE mask_hash = @hash)
        AND NOT EXISTS (SELECT 1 FROM generations WHERE label_map_hash = @hash)
        AND NOT EXISTS (SELECT 1 FROM generation_regions WHERE mask_hash = @hash)`);
    this.imageRowExistsStmt = db.prepare('SELECT hash FROM images WHERE hash = ?');
    this.trashIdsStmt = db.prepare('SELECT id FROM generations WHERE deleted_at IS NOT NULL AND deleted_at < ? ORDER BY id');
    // Reads only the small generations_for_counts index, and the few images marked missing.
    this.countsStmt = db.prepare(`
      SELECT count(*) FILTER (WHERE deleted_at IS NULL) AS total,
             count(*) FILTER (WHERE deleted_at IS NULL AND favorite = 1) AS favorites,
             count(*) FILTER (WHERE deleted_at IS NOT NULL) AS trash,
             count(*) FILTER (WHERE deleted_at IS NULL AND mode = 'txt2img') AS txt2img,
             count(*) FILTER (WHERE deleted_at IS NULL AND mode = 'img2img') AS img2img,
             count(*) FILTER (WHERE deleted_at IS NULL AND mode = 'inpaint') AS inpaint,
             count(*) FILTER (WHERE deleted_at IS NULL AND mode = 'layout') AS layout,
             (SELECT count(*) FROM images o CROSS JOIN generations g ON g.output_hash = o.hash WHERE o.file_missing = 1) AS missing
      FROM generations INDEXED BY generations_for_counts`);
    this.allImagesStmt = db.prepare('SELECT hash, file_missing FROM images');
    this.setImageMissingStmt = db.prepare('UPDATE images SET file_missing = ? WHERE hash = ?');
    this.itemsWithOutputStmt = db.prepare('SELECT id FROM generations WHERE output_hash = ? ORDER BY id');
  }

  insertImage(image: ImageRecord): void {
    this.insertImageStmt.run(image);
  }

  insertGeneration(r: GenerationRecord): number {
    const info = this.insertGenerationStmt.run({
      ...r,
      favorite: r.favorite ? 1 : 0,
      tags: r.tags.join(TAG_SEPARATOR),
      timingsJson: r.timings === null ? null : JSON.stringify(r.timings),
      inpaintArea: r.inpaintArea ?? null,
      maskPadding: r.maskPadding ?? null,
      controlScale: r.controlScale ?? null,
      clipSkip: r.clipSkip !== undefined && r.clipSkip > 1 ? r.clipSkip : null,
      embeddingsJson: r.embeddings && r.embeddings.length > 0 ? JSON.stringify(r.embeddings) : null,
      hiresJson: r.hires ? JSON.stringify(r.hires) : null,
      softInpaint: r.softInpaint ? 1 : null,
      lorasJson: r.loras && r.loras.length > 0 ? JSON.stringify(r.loras) : null,
      emphasis: r.emphasis !== undefined && r.emphasis !== 'Original' ? r.emphasis : null,
      padConds: r.padConds ? 1 : null,
      aestheticScore: r.aestheticScore ?? null,
      negativeAestheticScore: r.negativeAestheticScore ?? null,
    });
    const id = Number(info.lastInsertRowid);
    const regions = r.regions ?? [];
    if (regions.length !== (r.regionMaskHashes?.length ?? 0)) {
      throw new Error(`${regions.length} regions but ${r.regionMaskHashes?.length ?? 0} region masks`);
    }
    regions.forEach((region, position) => {
      this.insertRegionStmt.run({ generationId: id, position, prompt: region.prompt, weight: region.weight, area: region.area, maskHash: r.regionMaskHashes![position]! });
    });
    return id;
  }

  get(id: number): HistoryItem | undefined {
    const row = this.getStmt.get(id);
    return row === undefined ? undefined : rowToItem(row);
  }

  /** Whether the item exists, and whether it is in the trash. */
  state(id: number): { exists: boolean; inTrash: boolean } {
    const row = this.existsStmt.get(id);
    return { exists: row !== undefined, inTrash: row?.deleted_at != null };
  }

  image(hash: string): ImageRef | undefined {
    const row = this.imageStmt.get(hash);
    return row && { hash: row.hash, width: row.width, height: row.height, fileMissing: row.file_missing === 1 };
  }

  /** The oldest item whose output is this image (how duplicate imports are found). */
  itemWithOutput(hash: string): { id: number; inTrash: boolean } | undefined {
    const row = this.byOutputStmt.get(hash);
    return row && { id: row.id, inTrash: row.deleted_at !== null };
  }

  itemsWithOutput(hash: string): number[] {
    return this.itemsWithOutputStmt.all(hash).map((r) => r.id);
  }

  /**
   * Newest first, keyset-paginated on id (ids grow with time, and id order is exact where clocks are
   * not). With `match`, only items matching the FTS5 expression.
   */
  page(filter: HistoryFilter, beforeId: number | null, limit: number, match: string | null): HistoryItem[] {
    // `+g.deleted_at`: the unary plus keeps the planner off indexes led by deleted_at (almost every
    // row matches), so a plain page walks the rowid backwards and stops after `limit` rows.
    const where: string[] = [filter.view === 'trash' ? '+g.deleted_at IS NOT NULL' : '+g.deleted_at IS NULL'];
    const params: Record<string, unknown> = { limit };
    // Literal tests where an index is partial (favorite = 1), bound values elsewhere.
    if (filter.favorite === true) where.push('g.favorite = 1');
    if (filter.favorite === false) where.push('g.favorite = 0');
    if (filter.modelId !== undefined) { where.push('g.model_id = @modelId'); params['modelId'] = filter.modelId; }
    if (filter.mode !== undefined) { where.push('g.mode = @mode'); params['mode'] = filter.mode; }
    if (filter.createdFrom !== undefined) { where.push('g.created_at >= @createdFrom'); params['createdFrom'] = filter.createdFrom; }
    if (filter.createdTo !== undefined) { where.push('g.created_at < @createdTo'); params['createdTo'] = filter.createdTo; }
    let sql: string;
    if (match === null) {
      if (beforeId !== null) { where.push('g.id < @beforeId'); params['beforeId'] = beforeId; }
      sql = `${ITEM_SELECT} FROM generations g ${ITEM_JOINS} WHERE ${where.join(' AND ')} ORDER BY g.id DESC LIMIT @limit`;
    } else {
      // The FTS table drives the loop, walking its rowids backwards, so a common word stops after one page.
      where.unshift('generations_fts MATCH @match');
      params['match'] = match;
      if (beforeId !== null) { where.push('f.rowid < @beforeId'); params['beforeId'] = beforeId; }
      sql = `${ITEM_SELECT} FROM generations_fts f CROSS JOIN generations g ON g.id = f.rowid ${ITEM_JOINS}
             WHERE ${where.join(' AND ')} ORDER BY f.rowid DESC LIMIT @limit`;
    }
    let stmt = this.filteredStatements.get(sql);
    if (stmt === undefined) {
      stmt = this.db.prepare(sql);
      this.filteredStatements.set(sql, stmt);
    }
    return (stmt.all(params) as ItemRow[]).map(rowToItem);
  }

  ancestors(id: number): HistoryItem[] {
    return this.ancestorsStmt.all({ id, maxDepth: MAX_LINEAGE_DEPTH }).map(rowToItem);
  }

  descendants(id: number, limit: number): Array<{ depth: number; item: HistoryItem }> {
    return this.descendantsStmt.all({ id, maxDepth: MAX_LINEAGE_DEPTH, limit }).map((r) => ({ depth: r.depth, item: rowToItem(r) }));
  }

  setFavorite(id: number, favorite: boolean): void {
    this.setFavoriteStmt.run(favorite ? 1 : 0, id);
  }

  setTags(id: number, tags: string[]): void {
    this.setTagsStmt.run(tags.join(TAG_SEPARATOR), id);
  }

  trash(id: number, at: number): boolean {
    return this.trashStmt.run(at, id).changes === 1;
  }

  restore(id: number): boolean {
    return this.restoreStmt.run(id).changes === 1;
  }

  trashedBefore(time: number): number[] {
    return this.trashIdsStmt.all(time).map((r) => r.id);
  }

  /**
   * Deletes a trashed item's row, then the rows of its images that nothing else references.
   * Returns the hashes whose image rows went (their files are now unreferenced).
   */
  purgeRow(id: number): string[] {
    const refs = this.imageHashesOfStmt.get(id);
    const regionMasks = this.regionMaskHashesStmt.all(id).map((r) => r.mask_hash);
    if (refs === undefined || this.purgeRowStmt.run(id).changes === 0) return [];
    const freed: string[] = [];
    for (const hash of new Set([refs.output_hash, refs.init_image_hash, refs.mask_hash, refs.label_map_hash, ...regionMasks])) {
      if (hash !== null && this.deleteUnreferencedImageStmt.run({ hash }).changes === 1) freed.push(hash);
    }
    return freed;
  }

  hasImageRow(hash: string): boolean {
    return this.imageRowExistsStmt.get(hash) !== undefined;
  }

  allImages(): Array<{ hash: string; fileMissing: boolean }> {
    return this.allImagesStmt.all().map((r) => ({ hash: r.hash, fileMissing: r.file_missing === 1 }));
  }

  setImageMissing(hash: string, missing: boolean): void {
    this.setImageMissingStmt.run(missing ? 1 : 0, hash);
  }

  counts(): HistoryCounts {
    const r = this.countsStmt.get()!;
    const n = (k: string): number => r[k] ?? 0;
    return {
      total: n('total'),
      favorites: n('favorites'),
      trash: n('trash'),
      byMode: { txt2img: n('txt2img'), img2img: n('img2img'), inpaint: n('inpaint'), layout: n('layout') },
      missingFiles: n('missing'),
    };
  }
}
