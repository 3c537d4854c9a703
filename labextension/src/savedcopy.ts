/**
 * The static copy a job, study or deployment output carries beside its widget (written by the
 * kernel side, `jupyter_cloudml/widgets/saved.py`): what the output becomes when its widget can
 * no longer update.
 */
import type { IMimeBundle, IOutput } from '@jupyterlab/nbformat';

export const WIDGET_MIME = 'application/vnd.jupyter.widget-view+json';
/** The attribute that marks the copies. */
export const COPY_MARKER = 'data-cloudml-view';

/** The widget's model id, when the output shows a widget. */
export function widgetModelId(output: IOutput): string | null {
  const data = output.data as IMimeBundle | undefined;
  const view = data?.[WIDGET_MIME] as { model_id?: unknown } | undefined;
  return typeof view?.model_id === 'string' ? view.model_id : null;
}

/**
 * `output` with its widget left out, so the copy shows; null when the output is not one of
 * ours or carries no copy.
 */
export function staticCopy(output: IOutput): IOutput | null {
  if (output.output_type !== 'display_data' && output.output_type !== 'execute_result') {
    return null;
  }
  const data = output.data as IMimeBundle;
  const html = data['text/html'];
  const text = Array.isArray(html) ? html.join('') : html;
  if (widgetModelId(output) === null || typeof text !== 'string' || !text.includes(COPY_MARKER)) {
    return null;
  }
  const rest: IMimeBundle = {};
  for (const [mime, value] of Object.entries(data)) {
    if (mime !== WIDGET_MIME) {
      rest[mime] = value;
    }
  }
  return { ...output, data: rest };
}
