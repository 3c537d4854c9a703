import React from 'react';

/** The refresh button of lists and panels (`data-action="refresh"`). */
export function RefreshButton(props: { onClick: () => void; label?: string }) {
  return (
    <button
      className="jp-cloudml-button"
      data-action="refresh"
      title="Refresh now"
      onClick={props.onClick}
    >
      {props.label ?? 'Refresh'}
    </button>
  );
}
