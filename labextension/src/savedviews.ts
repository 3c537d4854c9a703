/**
 * A job, study or deployment view whose widget can no longer update (its kernel restarted or
 * went away, or the notebook was opened without the kernel that drew it) is swapped for the
 * static copy its output carries, which says when it was taken and how to get a live view.
 */
import { JupyterFrontEnd, JupyterFrontEndPlugin } from '@jupyterlab/application';
import { ICodeCellModel } from '@jupyterlab/cells';
import { INotebookTracker, NotebookPanel } from '@jupyterlab/notebook';
import { Kernel } from '@jupyterlab/services';

import { staticCopy, widgetModelId } from './savedcopy';

const WIDGET_STATE = 'application/vnd.jupyter.widget-state+json';

/** The ids of the widget models the notebook saved the state of (those still draw). */
function savedModels(panel: NotebookPanel): Set<string> {
  const widgets = panel.model?.getMetadata('widgets') as
    { [WIDGET_STATE]?: { state?: Record<string, unknown> } } | undefined;
  return new Set(Object.keys(widgets?.[WIDGET_STATE]?.state ?? {}));
}

/** Swap every view of ours in `panel` for its copy (but those `keep` still draws); the count. */
export function swapForCopies(panel: NotebookPanel, keep: Set<string> = new Set()): number {
  let swapped = 0;
  for (const cell of panel.model?.cells ?? []) {
    if (cell.type !== 'code') {
      continue;
    }
    const outputs = (cell as ICodeCellModel).outputs;
    for (let i = 0; i < outputs.length; i++) {
      const output = outputs.get(i).toJSON();
      const id = widgetModelId(output);
      const copy = id !== null && !keep.has(id) ? staticCopy(output) : null;
      if (copy) {
        outputs.set(i, copy);
        swapped++;
      }
    }
  }
  return swapped;
}

const GONE: Kernel.Status[] = ['restarting', 'autorestarting', 'dead'];

function watch(panel: NotebookPanel): void {
  void panel.context.ready.then(() => {
    // Opened from disk: the kernel that drew these views is not this page's.
    const dirty = panel.model?.dirty ?? false;
    if (swapForCopies(panel, savedModels(panel)) && panel.model && !dirty) {
      panel.model.dirty = false; // showing the copy changes nothing the user wrote
    }
  });
  panel.sessionContext.statusChanged.connect((_, status) => {
    if (GONE.includes(status)) {
      swapForCopies(panel);
    }
  });
  panel.sessionContext.kernelChanged.connect((_, change) => {
    if (change.oldValue) {
      swapForCopies(panel);
    }
  });
}

export const savedViewsPlugin: JupyterFrontEndPlugin<void> = {
  id: 'jupyter-cloudml:saved-views',
  description: 'Shows the saved copy of a CloudML view whose widget can no longer update.',
  autoStart: true,
  requires: [INotebookTracker],
  activate: (_app: JupyterFrontEnd, notebooks: INotebookTracker) => {
    notebooks.widgetAdded.connect((_, panel) => watch(panel));
  }
};
