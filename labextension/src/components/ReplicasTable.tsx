import React from 'react';

import type { Replica } from '../tokens';
import { StatusBadge } from './StatusBadge';

/** The replicas of a job with their state, exit code and GPUs. */
export function ReplicasTable(props: { replicas: readonly Replica[] }) {
  if (!props.replicas.length) {
    return <div className="jp-cloudml-empty">No replicas yet.</div>;
  }
  return (
    <table className="jp-cloudml-table jp-cloudml-replicas">
      <thead>
        <tr>
          <th>Replica</th>
          <th>Status</th>
          <th>Exit code</th>
          <th>GPUs</th>
        </tr>
      </thead>
      <tbody>
        {props.replicas.map(replica => (
          <tr key={replica.name} data-replica={replica.name}>
            <td>{replica.name}</td>
            <td>
              <StatusBadge status={replica.status} className="jp-cloudml-replica-status" />
            </td>
            <td>{replica.exit_code ?? '—'}</td>
            <td>{replica.gpus?.length ? replica.gpus.join(', ') : '—'}</td>
          </tr>
        ))}
      </tbody>
    </table>
  );
}
