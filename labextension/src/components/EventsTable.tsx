import React from 'react';

import { formatTime } from '../format';
import type { JobEvent } from '../tokens';

/** The lifecycle events of a job, oldest first. */
export function EventsTable(props: { events: readonly JobEvent[] }) {
  if (!props.events.length) {
    return <div className="jp-cloudml-empty">No events yet.</div>;
  }
  return (
    <table className="jp-cloudml-table jp-cloudml-events">
      <thead>
        <tr>
          <th>Time</th>
          <th>Reason</th>
          <th>Message</th>
        </tr>
      </thead>
      <tbody>
        {props.events.map((event, i) => (
          <tr key={i} className={event.type === 'Warning' ? 'jp-cloudml-warning' : undefined}>
            <td className="jp-cloudml-nowrap">{formatTime(event.time)}</td>
            <td>{event.reason}</td>
            <td>{event.message}</td>
          </tr>
        ))}
      </tbody>
    </table>
  );
}
