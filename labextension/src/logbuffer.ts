/**
 * The log lines a job view keeps: at most `cap`, newest last, without the lines a
 * reconnected stream sends again, filtered by replica and by a search text. No DOM.
 */
import type { LogLine } from './tokens';

/** A log line with a sequence number, a stable key for views. */
export interface ILogEntry extends LogLine {
  seq: number;
}

export class LogBuffer {
  constructor(readonly cap: number) {}

  /** All kept lines, oldest first. */
  get lines(): readonly ILogEntry[] {
    return this._lines;
  }

  /** The replica whose lines are shown; null for all. */
  get replica(): string | null {
    return this._replica;
  }

  set replica(replica: string | null) {
    this._replica = replica || null;
  }

  /** The text shown lines must contain (any case); empty for all. */
  get search(): string {
    return this._search;
  }

  set search(search: string) {
    this._search = search;
  }

  /** Replicas seen in the lines so far. */
  get replicas(): ReadonlySet<string> {
    return this._replicas;
  }

  /**
   * Add lines, dropping those older than the newest kept one and those already kept at its
   * time (a reconnected stream starts with its tail again); returns whether any was new.
   */
  append(lines: readonly LogLine[]): boolean {
    const fresh: ILogEntry[] = [];
    for (const line of lines) {
      const key = `${line.replica}\u0000${line.text}`;
      if (line.time < this._lastTime) {
        continue;
      }
      if (line.time === this._lastTime) {
        if (this._keysAtLastTime.has(key)) {
          continue;
        }
      } else {
        this._lastTime = line.time;
        this._keysAtLastTime.clear();
      }
      this._keysAtLastTime.add(key);
      this._replicas.add(line.replica);
      fresh.push({ ...line, seq: this._seq++ });
    }
    if (!fresh.length) {
      return false;
    }
    const all = this._lines.concat(fresh);
    this._lines = all.length > this.cap ? all.slice(all.length - this.cap) : all;
    return true;
  }

  /** The kept lines that pass the replica filter and the search (cached until one changes). */
  get visible(): readonly ILogEntry[] {
    const key = [this._lines, this._replica, this._search];
    if (this._visible && key.every((part, i) => part === this._visibleKey[i])) {
      return this._visible;
    }
    const needle = this._search.toLowerCase();
    this._visible = this._lines.filter(
      line =>
        (this._replica === null || line.replica === this._replica) &&
        (!needle || line.text.toLowerCase().includes(needle))
    );
    this._visibleKey = key;
    return this._visible;
  }

  private _lines: readonly ILogEntry[] = [];
  private _seq = 0;
  private _lastTime = -Infinity;
  private _keysAtLastTime = new Set<string>();
  private _replicas = new Set<string>();
  private _replica: string | null = null;
  private _search = '';
  private _visible: readonly ILogEntry[] | null = null;
  private _visibleKey: readonly unknown[] = [];
}
