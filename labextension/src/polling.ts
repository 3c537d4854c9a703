/**
 * The base of every model: state refreshed by a lumino Poll that stands by while hidden,
 * and errors kept as messages for the views. No DOM.
 */
import { IDisposable } from '@lumino/disposable';
import { Poll } from '@lumino/polling';
import { ISignal, Signal } from '@lumino/signaling';

import type { ICloudMLApi } from './tokens';

/** How often views refresh, in ms. */
export const DEFAULT_INTERVAL = 2000;

/** The text of an error for people. */
export function errorMessage(error: unknown): string {
  if (error instanceof Error) {
    return error.message || error.name;
  }
  return String(error);
}

/** Options of every polling model. */
export interface IPollingOptions {
  /** The API to call (the real one in the app, a fake in tests). */
  api: ICloudMLApi;
  /** Refresh interval in ms. */
  interval?: number;
}

/**
 * A model refreshed by a lumino Poll: it stands by while the browser tab is hidden, and
 * while paused (its view is hidden). Failed refreshes back off.
 */
export abstract class PollingModel implements IDisposable {
  constructor(options: IPollingOptions) {
    this.api = options.api;
    this._poll = new Poll({
      auto: false,
      factory: async () => {
        await this.refresh();
        if (this.error) {
          throw new Error(this.error);
        }
      },
      frequency: { interval: options.interval ?? DEFAULT_INTERVAL, backoff: true, max: 30000 },
      standby: () => this._paused || 'when-hidden'
    });
  }

  /** Emitted whenever anything a view shows changed. */
  get changed(): ISignal<this, void> {
    return this._changed;
  }

  /** The last refresh's error, for people; null when it went well. */
  error: string | null = null;

  /** Whether the first refresh has answered (well or not). */
  loaded = false;

  /** Fetch the state now; never throws. */
  abstract refresh(): Promise<void>;

  /** Begin polling (the first refresh runs at once). */
  start(): void {
    void this._poll.start();
  }

  /** Stop polling for good, e.g. once the object observed has finished. */
  stop(): void {
    void this._poll.stop();
  }

  /** Stand by until `resume`, e.g. while the view is hidden. */
  pause(): void {
    this._paused = true;
  }

  /** Leave standby and refresh now. */
  resume(): void {
    this._paused = false;
    if (this._poll.state.phase !== 'stopped' && this._poll.state.phase !== 'constructed') {
      void this._poll.refresh();
    }
  }

  /** Whether the poll runs (started and not stopped). */
  get isPolling(): boolean {
    const { phase } = this._poll.state;
    return phase !== 'constructed' && phase !== 'stopped';
  }

  get isPaused(): boolean {
    return this._paused;
  }

  get isDisposed(): boolean {
    return this._isDisposed;
  }

  dispose(): void {
    if (this._isDisposed) {
      return;
    }
    this._isDisposed = true;
    this._poll.dispose();
    Signal.clearData(this);
  }

  protected emitChanged(): void {
    if (!this._isDisposed) {
      this._changed.emit();
    }
  }

  protected readonly api: ICloudMLApi;
  private _poll: Poll;
  private _paused = false;
  private _isDisposed = false;
  private _changed = new Signal<this, void>(this);
}
