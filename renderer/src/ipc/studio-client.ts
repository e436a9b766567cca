/**
 * The only code in the renderer that talks to the host. In Electron the preload exposes the contract as
 * `window.studio`; in a browser (`studio serve`) the same contract runs over the page's WebSocket
 * (`/api/ws`), authenticated by the cookie the server set when the page was opened with `?token=`.
 *
 * Every call answers `InvokeResult` (errors are data). `call` unwraps it and throws `StudioCallError`,
 * which keeps the host's `{name, code, message}` so the UI can show the message in plain words.
 */
import type {
  ChannelName,
  EventName,
  Events,
  InvokeResult,
  RequestInputs,
  Responses,
  StudioApi,
} from '../../../electron/shared/contract.js';
import type { SerializedError } from '../../../electron/shared/errors.js';
import { imageBaseUrl, storedImageUrl } from './image-urls.js';

declare global {
  interface Window {
    studio?: StudioApi;
  }
}

/** A host answer with `ok: false`, as an Error the UI can catch; `code` is the host's error code. */
export class StudioCallError extends Error {
  override name = 'StudioCallError';
  readonly code: string;
  constructor(
    readonly channel: ChannelName,
    readonly error: SerializedError,
  ) {
    super(error.message);
    this.code = error.code;
  }
}

/** How long to wait before reconnecting a dropped WebSocket, doubling up to the cap. */
const RECONNECT_FIRST_MS = 250;
const RECONNECT_MAX_MS = 4000;

type Pending = { resolve: (value: InvokeResult<ChannelName>) => void };

/** What the client needs of a socket: the browser's WebSocket (a test passes its own). */
export type SocketFactory = (url: string) => WebSocket;

/**
 * The host API plus, where a connection can drop (browser mode's WebSocket), word of it dropping and
 * coming back. Electron's preload has no such thing: its IPC lives as long as the window.
 */
export interface ConnectableStudioApi extends StudioApi {
  onConnection?(listener: (connected: boolean) => void): () => void;
}
type AnyListener = (payload: unknown) => void;

/** The contract over the page's WebSocket: requests carry an id and are answered out of order. */
export class WebSocketStudioApi implements ConnectableStudioApi {
  private socket: WebSocket | null = null;
  private opened: Promise<WebSocket> | null = null;
  private nextId = 1;
  private readonly pending = new Map<number, Pending>();
  private readonly listeners = new Map<EventName, Set<AnyListener>>();
  private reconnectMs = RECONNECT_FIRST_MS;
  private readonly connectionListeners = new Set<(connected: boolean) => void>();

  constructor(
    private readonly url: string,
    private readonly openSocket: SocketFactory = (u) => new WebSocket(u),
  ) {}

  private connect(): Promise<WebSocket> {
    if (this.opened) return this.opened;
    this.opened = new Promise<WebSocket>((resolve, reject) => {
      const ws = this.openSocket(this.url);
      ws.addEventListener('open', () => {
        this.socket = ws;
        this.reconnectMs = RECONNECT_FIRST_MS;
        for (const l of this.connectionListeners) l(true);
        resolve(ws);
      });
      ws.addEventListener('message', (e) => this.onMessage(String(e.data)));
      ws.addEventListener('close', () => {
        const wasOpen = this.socket === ws;
        this.socket = null;
        this.opened = null;
        // Requests in flight on a dead socket will never be answered: fail them in plain words.
        for (const [id, p] of this.pending) {
          p.resolve({ ok: false, error: { name: 'ConnectionError', code: 'E_DISCONNECTED', message: 'Lost the connection to the studio host.' } });
          this.pending.delete(id);
        }
        if (wasOpen) for (const l of this.connectionListeners) l(false);
        else reject(new Error(`Could not connect to the studio host at ${this.url}.`));
        // Keep event subscriptions alive across host restarts.
        if (this.listeners.size > 0) {
          setTimeout(() => void this.connect().catch(() => undefined), this.reconnectMs);
          this.reconnectMs = Math.min(this.reconnectMs * 2, RECONNECT_MAX_MS);
        }
      });
    });
    return this.opened;
  }

  private onMessage(text: string): void {
    let message: { type?: string; id?: number; result?: InvokeResult<ChannelName>; event?: EventName; payload?: unknown };
    try {
      message = JSON.parse(text) as typeof message;
    } catch {
      return;
    }
    if (message.type === 'result' && typeof message.id === 'number' && message.result) {
      const p = this.pending.get(message.id);
      this.pending.delete(message.id);
      p?.resolve(message.result);
    } else if (message.type === 'event' && message.event) {
      for (const l of this.listeners.get(message.event) ?? []) l(message.payload);
    }
  }

  async invoke<C extends ChannelName>(channel: C, request: RequestInputs[C]): Promise<InvokeResult<C>> {
    let ws: WebSocket;
    try {
      ws = await this.connect();
    } catch (err) {
      return { ok: false, error: { name: 'ConnectionError', code: 'E_DISCONNECTED', message: (err as Error).message } };
    }
    const id = this.nextId++;
    return new Promise<InvokeResult<C>>((resolve) => {
      this.pending.set(id, { resolve: resolve as Pending['resolve'] });
      ws.send(JSON.stringify({ type: 'invoke', id, channel, payload: request }));
    });
  }

  on<E extends EventName>(event: E, listener: (payload: Events[E]) => void): () => void {
    let set = this.listeners.get(event);
    if (!set) this.listeners.set(event, (set = new Set()));
    set.add(listener as AnyListener);
    void this.connect().catch(() => undefined);
    return () => {
      set.delete(listener as AnyListener);
      if (set.size === 0) this.listeners.delete(event);
    };
  }

  onConnection(listener: (connected: boolean) => void): () => void {
    this.connectionListeners.add(listener);
    return () => this.connectionListeners.delete(listener);
  }
}

function browserSocketUrl(): string {
  const scheme = location.protocol === 'https:' ? 'wss:' : 'ws:';
  return `${scheme}//${location.host}/api/ws`;
}

/**
 * How long a call may go unanswered before it fails with E_TIMEOUT: a host that hangs must not leave a
 * button waiting for ever. Every channel answers in well under a second except the ones below.
 */
export const CALL_TIMEOUT_MS = 60_000;
/** Channels whose work grows with the person's files (copy a model folder, import or export history): no timeout. */
const UNTIMED_CHANNELS: ReadonlySet<ChannelName> = new Set<ChannelName>(['models.import', 'history.import', 'history.export', 'history.purge']);

function formatWait(ms: number): string {
  return ms < 1000 ? `${ms} ms` : `${Math.round(ms / 1000)} s`;
}

/** The typed front door the features use. */
export class StudioClient {
  private readonly callTimeoutMs: number;

  constructor(
    readonly api: ConnectableStudioApi,
    /** Where `<img src>` finds stored images (imageBaseUrl): the same route in Electron and in a browser. */
    readonly imageBaseUrl: string,
    options: { callTimeoutMs?: number } = {},
  ) {
    this.callTimeoutMs = options.callTimeoutMs ?? CALL_TIMEOUT_MS;
  }

  /** Calls a channel and returns its result, or throws StudioCallError with the host's message. */
  async call<C extends ChannelName>(channel: C, request: RequestInputs[C]): Promise<Responses[C]> {
    const answer = UNTIMED_CHANNELS.has(channel) ? await this.api.invoke(channel, request) : await this.withTimeout(channel, this.api.invoke(channel, request));
    if (!answer.ok) throw new StudioCallError(channel, answer.error);
    return answer.result;
  }

  private withTimeout<C extends ChannelName>(channel: C, answer: Promise<InvokeResult<C>>): Promise<InvokeResult<C>> {
    let timer: ReturnType<typeof setTimeout> | undefined;
    const timeout = new Promise<InvokeResult<C>>((resolve) => {
      timer = setTimeout(
        () =>
          resolve({
            ok: false,
            error: { name: 'TimeoutError', code: 'E_TIMEOUT', message: `The studio host did not answer ${channel} within ${formatWait(this.callTimeoutMs)}.` },
          }),
        this.callTimeoutMs,
      );
    });
    return Promise.race([answer, timeout]).finally(() => clearTimeout(timer));
  }

  /** Word of the connection dropping (false) and coming back (true); never called in Electron. */
  onConnection(listener: (connected: boolean) => void): () => void {
    return this.api.onConnection?.(listener) ?? (() => undefined);
  }

  on<E extends EventName>(event: E, listener: (payload: Events[E]) => void): () => void {
    return this.api.on(event, listener);
  }

  /** A URL for a stored image (or its thumbnail). Kept async for callers written when Electron fetched bytes. */
  async imageUrl(hash: string, thumbnail = false): Promise<string> {
    return this.imageUrlSync(hash, thumbnail);
  }

  /** Where a dropped file is on disk: known in Electron, null in a browser (which never tells a page). */
  pathForFile(file: File): string | null {
    return this.api.pathForFile?.(file) || null;
  }

  /** A URL for a stored image (or its thumbnail), the same in both front doors. */
  imageUrlSync(hash: string, thumbnail = false): string {
    return storedImageUrl(this.imageBaseUrl, hash, thumbnail);
  }
}

/** This page's client: the preload's API in Electron, else the WebSocket of browser mode. Made once, by app/App.tsx. */
export function createStudioClient(): StudioClient {
  if (window.studio) return new StudioClient(window.studio, imageBaseUrl(window.studio, location.origin));
  // Drop the token from the address bar: the server has put it in an HttpOnly cookie.
  if (new URLSearchParams(location.search).has('token')) history.replaceState(null, '', location.pathname);
  return new StudioClient(new WebSocketStudioApi(browserSocketUrl()), imageBaseUrl(undefined, location.origin));
}
