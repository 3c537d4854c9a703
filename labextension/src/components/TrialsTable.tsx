import React, { useState } from 'react';

import { formatNumber } from '../chart';
import { trialTitle } from '../summaries';
import type { Trial } from '../tokens';
import { StatusBadge } from './StatusBadge';

type Sort = 'number' | 'value-asc' | 'value-desc';

/** Trials sorted by `sort`; trials without a value always come last when sorting by value. */
export function sortTrials(trials: readonly Trial[], sort: Sort): Trial[] {
  const copy = [...trials];
  if (sort === 'number') {
    return copy.sort((a, b) => a.number - b.number);
  }
  const sign = sort === 'value-asc' ? 1 : -1;
  return copy.sort((a, b) => {
    const va = typeof a.value === 'number' ? a.value : null;
    const vb = typeof b.value === 'number' ? b.value : null;
    if (va === null || vb === null) {
      return va === vb ? a.number - b.number : va === null ? 1 : -1;
    }
    return sign * (va - vb) || a.number - b.number;
  });
}

/**
 * The trials of a study: number, status, one column per parameter, value; best highlighted.
 * A row opens its trial's job.
 */
export function TrialsTable(props: {
  trials: readonly Trial[];
  bestNumber?: number | null;
  onOpenJob?: (jobId: string) => void;
}) {
  const [sort, setSort] = useState<Sort>('number');
  const params = [...new Set(props.trials.flatMap(t => Object.keys(t.params)))].sort();
  if (!props.trials.length) {
    return <div className="jp-cloudml-empty">No trials yet.</div>;
  }
  const nextSort: Sort = sort === 'value-desc' ? 'value-asc' : 'value-desc';
  const arrow = sort === 'value-asc' ? ' ▲' : sort === 'value-desc' ? ' ▼' : '';
  return (
    <table className="jp-cloudml-table jp-cloudml-trials">
      <thead>
        <tr>
          <th>
            <button className="jp-cloudml-link" onClick={() => setSort('number')}>
              #
            </button>
          </th>
          <th>Status</th>
          {params.map(name => (
            <th key={name}>{name}</th>
          ))}
          <th>
            <button
              className="jp-cloudml-link"
              data-sort="value"
              onClick={() => setSort(nextSort)}
              title="Sort by value"
            >
              Value{arrow}
            </button>
          </th>
        </tr>
      </thead>
      <tbody>
        {sortTrials(props.trials, sort).map(trial => {
          const best = trial.number === props.bestNumber;
          const jobId = trial.job_id;
          const open = jobId && props.onOpenJob ? () => props.onOpenJob!(jobId) : undefined;
          const classes = [best ? 'jp-cloudml-best' : '', open ? 'jp-cloudml-openable' : ''];
          return (
            <tr
              key={trial.number}
              data-trial={trial.number}
              data-job-id={jobId ?? undefined}
              className={classes.filter(Boolean).join(' ') || undefined}
              title={trialTitle(trial, best, !!open)}
              role={open ? 'button' : undefined}
              tabIndex={open ? 0 : undefined}
              onClick={open}
              onKeyDown={open ? event => event.key === 'Enter' && open() : undefined}
            >
              <td>{trial.number}</td>
              <td>
                <StatusBadge status={trial.status} className="jp-cloudml-trial-status" />
              </td>
              {params.map(name => {
                const value = trial.params[name];
                return (
                  <td key={name}>
                    {typeof value === 'number' ? formatNumber(value) : (value ?? '')}
                  </td>
                );
              })}
              <td>{typeof trial.value === 'number' ? formatNumber(trial.value) : '—'}</td>
            </tr>
          );
        })}
      </tbody>
    </table>
  );
}
