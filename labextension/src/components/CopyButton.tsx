import { Clipboard } from '@jupyterlab/apputils';
import React, { useEffect, useState } from 'react';

/** How long a copy button says "Copied", in ms. */
export const COPIED_MS = 2000;

/** A button that copies `text` and says "Copied" for a moment (`data-action` is its hook). */
export function CopyButton(props: { text: string; action: string; title: string; label?: string }) {
  const [copied, setCopied] = useState(false);
  useEffect(() => {
    if (!copied) {
      return;
    }
    const timer = setTimeout(() => setCopied(false), COPIED_MS);
    return () => clearTimeout(timer);
  }, [copied]);
  return (
    <button
      className={`jp-cloudml-button${copied ? ' jp-mod-copied' : ''}`}
      data-action={props.action}
      disabled={!props.text}
      title={props.title}
      onClick={() => {
        Clipboard.copyToSystem(props.text);
        setCopied(true);
      }}
    >
      {copied ? 'Copied ✓' : (props.label ?? 'Copy')}
    </button>
  );
}
