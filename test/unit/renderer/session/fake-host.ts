/**
 * A fake studio host for the renderer's session tests: it speaks the browser-mode wire protocol
 * (`{type:'invoke', id, channel, payload}` in, `{type:'result'|'event', …}` out) over fake sockets, so the
 * real WebSocketStudioApi and StudioClient run above it. The host can go down and come back, and a channel
 * can be told never to answer.
 */
import type { ChannelName, EventName, Events, InvokeResult, RequestInputs, Responses } from '../../../../electron/shared/contract.js';
import type { SocketFactory } from '../../../../renderer/src/ipc/studio-client.js';

type Handler<C extends ChannelName> = (payload: RequestInputs[C]) => Responses[C] | Promise<Responses[C]>;
/** A handler's answer that never comes. */
export const NEVER = Symbol('never answers');

/** One connection's socket, as much of WebSocket as the client uses. */
class FakeSocket extends EventTarget {
  closed = false;
  constructor(private readonly host: FakeHost) {
    super();
  }
  send(text: string): void {
    if (!this.closed) void this.host.receive(this, text);
  }
  close(): void {
    if (this.closed) return;
    this.closed = true;
    this.dispatchEvent(new Event('close'));
  }
  deliver(message: unknown): void {
    if (this.closed) return;
    const e = new Event('message') as Event & { data: string };
    e.data = JSON.stringify(message);
    this.dispatchEvent(e);
  }
}

export class FakeHost {
  up = true;
  /** Every call the host received, in order. */
  readonly calls: Array<{ channel: ChannelName; payload: unknown }> = [];
  /** Connections opened (a reconnect adds one). */
  connections = 0;
  private readonly sockets = new Set<FakeSocket>();
  private readonly handlers = new Map<ChannelName, (payload: never) => unknown>();

  /** What the client's WebSocketStudioApi opens instead of a WebSocket. */
  readonly openSocket: SocketFactory = () => {
    const socket = new FakeSocket(this);
    setTimeout(() => {
      if (!this.up) return socket.close(); // connection refused
      this.connections++;
      this.sockets.add(socket);
      socket.addEventListener('close', () => this.sockets.delete(socket));
      socket.dispatchEvent(new Event('open'));
    }, 0);
    return socket as unknown as WebSocket;
  };

  handle<C extends ChannelName>(channel: C, handler: Handler<C> | typeof NEVER): this {
    this.handlers.set(channel, handler === NEVER ? () => NEVER : (handler as (payload: never) => unknown));
    return this;
  }

  emit<E extends EventName>(event: E, payload: Events[E]): void {
    for (const s of this.sockets) s.deliver({ type: 'event', event, payload });
  }

  /** The host stops: every open socket closes, and new ones are refused until `start`. */
  stop(): void {
    this.up = false;
    for (const s of [...this.sockets]) s.close();
  }

  start(): void {
    this.up = true;
  }

  callsTo(channel: ChannelName): unknown[] {
    return this.calls.filter((c) => c.channel === channel).map((c) => c.payload);
  }

  async receive(socket: FakeSocket, text: string): Promise<void> {
    const { id, channel, payload } = JSON.parse(text) as { id: number; channel: ChannelName; payload: unknown };
    this.calls.push({ channel, payload });
    const handler = this.handlers.get(channel);
    let result: InvokeResult<ChannelName>;
    if (!handler) result = { ok: false, error: { name: 'InvalidRequestError', code: 'E_INVALID_REQUEST', message: `the fake host has no ${channel}` } };
    else {
      try {
        const value = await handler(payload as never);
        if (value === NEVER) return;
        result = { ok: true, result: value as Responses[ChannelName] };
      } catch (err) {
        // A handler refuses as the host does: an error with a code is answered as data.
        const { code = 'E_INTERNAL', message = String(err) } = err as { code?: string; message?: string };
        result = { ok: false, error: { name: 'StudioError', code, message } as never };
      }
    }
    socket.deliver({ type: 'result', id, result });
  }
}

/** Waits until `check` holds (polling every few ms), or fails after `ms`. */
export async function until(check: () => boolean, ms = 2000, what = 'the condition'): Promise<void> {
  const end = Date.now() + ms;
  while (!check()) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 5));
  }
}
