/**
 * What this user may use and uses now (`GET quota`), for the sidebar's header: refreshed
 * while the sidebar shows, like the lists.
 */
import { PollingModel, errorMessage } from './polling';
import type { Quota } from './tokens';

/** The quota refreshes less often than the lists: it changes when jobs start and end. */
export const QUOTA_INTERVAL = 5000;

export class QuotaModel extends PollingModel {
  quota: Quota | null = null;

  async refresh(): Promise<void> {
    try {
      this.quota = await this.api.getQuota();
      this.error = null;
    } catch (error) {
      this.error = errorMessage(error);
    }
    if (this.isDisposed) {
      return;
    }
    this.loaded = true;
    this.emitChanged();
  }
}

/** One resource as `used/hard` (`used` alone without a limit), e.g. `cpu 1/2`. */
function itemText(item: Quota['items'][number]): string {
  return item.hard === null
    ? `${item.resource} ${item.used}`
    : `${item.resource} ${item.used}/${item.hard}`;
}

/**
 * The header's line: each resource used/allowed, then the jobs holding and waiting for them,
 * e.g. `cpu 1/2 · gpu 0/0 · 1 running, 2 queued`.
 */
export function quotaLine(quota: Quota): string {
  const parts = quota.items.map(itemText);
  const jobs = [`${quota.running} running`];
  if (quota.queued) {
    jobs.push(`${quota.queued} queued`);
  }
  parts.push(jobs.join(', '));
  return parts.join(' · ');
}
