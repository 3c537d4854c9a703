/**
 * Figures derived from jobs and studies for display: progress, the objective curve, a trial's
 * parameters as text.
 */
import { IPoint, formatNumber } from './chart';
import type { Job, Study, Trial } from './tokens';

/**
 * The objective value per trial number of a study, and the best value so far (lowest when
 * the goal is to minimize, else highest).
 */
export function objectiveSeries(study: Study): { values: IPoint[]; best: IPoint[] } {
  const minimize = String(study.tuning.goal ?? '')
    .toUpperCase()
    .startsWith('MIN');
  const values = study.trials
    .filter(trial => typeof trial.value === 'number' && Number.isFinite(trial.value))
    .map(trial => ({ x: trial.number, y: trial.value as number }))
    .sort((a, b) => a.x - b.x);
  const best: IPoint[] = [];
  for (const point of values) {
    const previous = best.length ? best[best.length - 1].y : point.y;
    best.push({
      x: point.x,
      y: minimize ? Math.min(previous, point.y) : Math.max(previous, point.y)
    });
  }
  return { values, best };
}

/** Trials of a study that have finished, and how many it may run at most. */
export function studyProgress(study: Study): { done: number; max: number | null } {
  const done = study.trials.filter(trial => trial.status !== 'RUNNING').length;
  const max = typeof study.tuning.max_trials === 'number' ? study.tuning.max_trials : null;
  return { done, max };
}

/** Replicas of a job that are running, of all its replicas. */
export function replicaProgress(job: Job): { running: number; total: number } {
  const running = job.replicas.filter(replica => replica.status === 'RUNNING').length;
  return { running, total: job.replicas.length };
}

/** The parameters of a trial as text, e.g. `lr=0.05, depth=3`. */
export function paramsText(params: Trial['params']): string {
  return Object.entries(params)
    .map(([name, value]) => `${name}=${typeof value === 'number' ? formatNumber(value) : value}`)
    .join(', ');
}

/** A trial row's tooltip: best or not, its parameters, why it ended, and what a click does. */
export function trialTitle(trial: Trial, best: boolean, opens: boolean): string {
  const parts = [`${best ? 'Best trial' : 'Trial'} #${trial.number}: ${paramsText(trial.params)}`];
  if (trial.reason) {
    parts.push(trial.reason);
  }
  if (opens) {
    parts.push('Click to open its job');
  }
  return parts.join('\n');
}
