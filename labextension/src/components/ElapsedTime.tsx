import React, { useEffect, useRef, useState } from 'react';

import { formatDuration } from '../format';

/**
 * A run time: the server's `elapsed`, counting on by the local clock while `running`
 * (from when the value arrived, so that clock skew does not matter).
 */
export function ElapsedTime(props: { elapsed: number | null | undefined; running: boolean }) {
  const base = useRef({ elapsed: props.elapsed, at: Date.now() });
  if (base.current.elapsed !== props.elapsed) {
    base.current = { elapsed: props.elapsed, at: Date.now() };
  }
  const [, setNow] = useState(Date.now());
  useEffect(() => {
    if (!props.running) {
      return;
    }
    const timer = setInterval(() => setNow(Date.now()), 1000);
    return () => clearInterval(timer);
  }, [props.running]);
  const { elapsed, at } = base.current;
  const seconds =
    props.running && typeof elapsed === 'number' ? elapsed + (Date.now() - at) / 1000 : elapsed;
  return <span className="jp-cloudml-elapsed">{formatDuration(seconds)}</span>;
}
