/** Text formats shared by the views. */

/** A duration in seconds as `1h 02m`, `3m 05s` or `12s`; an em dash when unknown. */
export function formatDuration(seconds: number | null | undefined): string {
  if (seconds === null || seconds === undefined || !Number.isFinite(seconds) || seconds < 0) {
    return '—';
  }
  const total = Math.floor(seconds);
  const h = Math.floor(total / 3600);
  const m = Math.floor((total % 3600) / 60);
  const s = total % 60;
  const pad = (n: number): string => String(n).padStart(2, '0');
  if (h > 0) {
    return `${h}h ${pad(m)}m`;
  }
  if (m > 0) {
    return `${m}m ${pad(s)}s`;
  }
  return `${s}s`;
}

/** A Unix time as local date and time. */
export function formatTime(unixSeconds: number | null | undefined): string {
  if (!unixSeconds) {
    return '—';
  }
  return new Date(unixSeconds * 1000).toLocaleString();
}

/** The range of a list page, e.g. `1–50 of 120` (`0 of 0` when empty). */
export function pageLabel(offset: number, count: number, total: number): string {
  if (count === 0) {
    return `0 of ${total}`;
  }
  return `${offset + 1}–${offset + count} of ${total}`;
}
