import React from 'react';

/** A visible error box, so that a failed call never leaves a blank view; nothing when no error. */
export function ErrorMessage(props: {
  message: string | null | undefined;
  title?: string;
  onRetry?: () => void;
}) {
  if (!props.message) {
    return null;
  }
  return (
    <div className="jp-cloudml-error" role="alert">
      {props.title && <strong>{props.title}: </strong>}
      <span className="jp-cloudml-error-message">{props.message}</span>
      {props.onRetry && (
        <button className="jp-cloudml-link" onClick={props.onRetry}>
          Retry
        </button>
      )}
    </div>
  );
}
