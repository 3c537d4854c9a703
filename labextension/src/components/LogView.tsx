import React, { useLayoutEffect, useRef } from 'react';

import type { ILogEntry } from '../logbuffer';
import { ErrorMessage } from './ErrorMessage';

/** How close to the bottom (px) still counts as "at the newest line". */
const BOTTOM_SLACK = 24;

/**
 * Log lines in monospace with their replica prefix, a search box, a replica dropdown and
 * a follow toggle; scrolls to the newest line while following, and stops following when
 * the reader scrolls up.
 */
export function LogView(props: {
  lines: readonly ILogEntry[];
  total: number;
  replicas: readonly string[];
  replica: string | null;
  search: string;
  following: boolean;
  streaming: boolean;
  error: string | null;
  onSearch: (search: string) => void;
  onReplica: (replica: string | null) => void;
  onFollow: (following: boolean) => void;
}) {
  const body = useRef<HTMLDivElement>(null);
  useLayoutEffect(() => {
    const node = body.current;
    if (node && props.following) {
      node.scrollTop = node.scrollHeight;
    }
  }, [props.lines, props.following]);

  const onScroll = (): void => {
    const node = body.current;
    if (!node) {
      return;
    }
    const atBottom = node.scrollHeight - node.scrollTop - node.clientHeight <= BOTTOM_SLACK;
    if (atBottom !== props.following) {
      props.onFollow(atBottom);
    }
  };

  return (
    <div className="jp-cloudml-logview">
      <div className="jp-cloudml-toolbar">
        <input
          className="jp-cloudml-search"
          type="search"
          placeholder="Search logs"
          aria-label="Search logs"
          value={props.search}
          onChange={event => props.onSearch(event.target.value)}
        />
        <select
          className="jp-cloudml-select"
          aria-label="Replica"
          value={props.replica ?? ''}
          onChange={event => props.onReplica(event.target.value || null)}
        >
          <option value="">All replicas</option>
          {props.replicas.map(name => (
            <option key={name} value={name}>
              {name}
            </option>
          ))}
        </select>
        <label className="jp-cloudml-toggle">
          <input
            type="checkbox"
            checked={props.following}
            onChange={event => props.onFollow(event.target.checked)}
          />
          Follow
        </label>
        <span className="jp-cloudml-muted">
          {props.lines.length === props.total
            ? `${props.total} lines`
            : `${props.lines.length} of ${props.total} lines`}
          {props.streaming ? ' · live' : ''}
        </span>
      </div>
      <ErrorMessage message={props.error} title="Logs" />
      <div className="jp-cloudml-logs" ref={body} onScroll={onScroll}>
        {props.lines.map(line => (
          <div key={line.seq} className="jp-cloudml-logline">
            <span className="jp-cloudml-logline-replica">[{line.replica}]</span> {line.text}
          </div>
        ))}
        {props.lines.length === 0 && (
          <div className="jp-cloudml-empty">
            {props.total ? 'No line matches.' : 'No log lines yet.'}
          </div>
        )}
      </div>
    </div>
  );
}
