import React from 'react';

/** Colour family of each status (jobs, studies, replicas, trials, deployments). */
const TONES: Record<string, string> = {
  QUEUED: 'pending',
  STARTING: 'pending',
  PENDING: 'pending',
  RUNNING: 'running',
  RETRYING: 'running',
  SUCCEEDED: 'succeeded',
  READY: 'succeeded',
  FAILED: 'failed',
  CANCELLED: 'cancelled',
  STOPPED: 'cancelled',
  DEGRADED: 'cancelled',
  RESTARTING: 'cancelled',
  PRUNED: 'pending'
};

/** The tone class of a status, e.g. `jp-cloudml-tone-running`. */
export function toneClass(status: string): string {
  return `jp-cloudml-tone-${TONES[status] ?? 'pending'}`;
}

/**
 * A coloured status label. Job, study and deployment statuses carry `jp-cloudml-status` (a
 * test hook); replicas and trials pass their own class so that they never match it.
 */
export function StatusBadge(props: { status: string; className?: string; title?: string }) {
  const kind = props.className ?? 'jp-cloudml-status';
  return (
    <span
      className={`jp-cloudml-badge ${kind} ${toneClass(props.status)}`}
      title={props.title || props.status}
    >
      {props.status}
    </span>
  );
}
