/**
 * Turning a download request (a manifest, or a list of file URLs) into checked file specs: http(s)
 * URLs only, and relative paths that stay inside the model folder.
 */
import { createHash } from 'node:crypto';
import { ModelLibraryError, type DownloadFileSpec, type ModelDownloadRequest } from '../shared/model-library.js';

/** Same bound as a model id (the contract's rule). */
const MAX_NAME_CHARS = 128;
const SHA256_HEX = /^[0-9a-f]{64}$/i;

export interface NormalizedDownload {
  /** sha256 of the name and files: the same request continues the same download. */
  id: string;
  name: string;
  /** What the library records as the model's source. */
  source: string;
  files: DownloadFileSpec[];
}

function invalid(message: string): ModelLibraryError {
  return new ModelLibraryError('E_INVALID_REQUEST', message);
}

function parseUrl(raw: string): URL {
  let url: URL;
  try {
    url = new URL(raw);
  } catch {
    throw invalid(`"${raw}" is not a URL.`);
  }
  if (url.protocol !== 'http:' && url.protocol !== 'https:') throw invalid(`${raw}: only http and https URLs can be downloaded.`);
  return url;
}

/** A path inside the model folder: relative, `/`-separated, no empty, "." or ".." parts. */
export function checkRelativePath(path: string): string {
  const parts = path.split('/');
  const bad = path === '' || path.includes('\\') || path.includes('\0') || parts.some((p) => p === '' || p === '.' || p === '..' || p.startsWith('.'));
  if (bad) throw invalid(`"${path}" is not a usable file path inside a model folder (relative, with "/", no "..", no hidden names).`);
  return path;
}

/** A URL's path segment, decoded; a bad `%` escape (`%zz`, a cut UTF-8 sequence) is the request's fault. */
function decodeSegment(segment: string, url: URL): string {
  try {
    return decodeURIComponent(segment);
  } catch {
    throw invalid(`${url.href}: the path has a malformed "%" escape ("${segment.slice(0, 100)}"); write "%25" for a literal "%".`);
  }
}

/** File paths for a list of URLs: each URL's path below the folder all of them share. */
function pathsFromUrls(urls: URL[]): string[] {
  const segments = urls.map((u) => u.pathname.split('/').filter((s) => s !== '').map((s) => decodeSegment(s, u)));
  let common = 0;
  const first = segments[0]!;
  // The shared folder: leading segments equal in every URL, never a file name itself.
  while (common < first.length - 1 && segments.every((s) => common < s.length - 1 && s[common] === first[common])) common++;
  return segments.map((s) => s.slice(common).join('/'));
}

export function normalizeDownloadRequest(request: ModelDownloadRequest): NormalizedDownload {
  const name = request.name.trim();
  if (name === '' || name.length > MAX_NAME_CHARS) throw invalid(`A model name must have 1 to ${MAX_NAME_CHARS} characters.`);
  let files: DownloadFileSpec[];
  if ('urls' in request) {
    if (request.urls.length === 0) throw invalid('The download lists no file URLs.');
    const urls = request.urls.map(parseUrl);
    const paths = pathsFromUrls(urls);
    files = urls.map((u, i) => ({ path: paths[i]!, url: u.href }));
  } else {
    if (request.files.length === 0) throw invalid('The manifest lists no files.');
    files = request.files.map((f) => {
      const spec: DownloadFileSpec = { path: f.path, url: parseUrl(f.url).href };
      if (f.size !== undefined) {
        if (!Number.isSafeInteger(f.size) || f.size < 0) throw invalid(`${f.path}: size must be a whole number of bytes.`);
        spec.size = f.size;
      }
      if (f.sha256 !== undefined) {
        if (!SHA256_HEX.test(f.sha256)) throw invalid(`${f.path}: sha256 must be 64 hex digits.`);
        spec.sha256 = f.sha256.toLowerCase();
      }
      return spec;
    });
  }
  const seen = new Set<string>();
  for (const f of files) {
    checkRelativePath(f.path);
    if (seen.has(f.path)) throw invalid(`The file ${f.path} is listed twice.`);
    seen.add(f.path);
  }
  files.sort((a, b) => (a.path < b.path ? -1 : a.path > b.path ? 1 : 0));
  const id = createHash('sha256').update(JSON.stringify({ name, files })).digest('hex');
  const source = 'urls' in request ? request.urls.join('\n') : files.map((f) => f.url).join('\n');
  return { id, name, source, files };
}
