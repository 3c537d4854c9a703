import { IOutput } from '@jupyterlab/nbformat';

import { COPY_MARKER, WIDGET_MIME, staticCopy, widgetModelId } from '../savedcopy';

const copy = `<div ${COPY_MARKER}="job"><b>mnist-abc123</b> RUNNING</div>`;

function output(data: Record<string, unknown>): IOutput {
  return { output_type: 'display_data', data, metadata: {} } as IOutput;
}

describe('staticCopy', () => {
  it('leaves the widget out of our outputs so their copy shows', () => {
    const shown = output({
      [WIDGET_MIME]: { model_id: 'abc', version_major: 2, version_minor: 0 },
      'text/html': copy,
      'text/plain': 'job mnist-abc123: RUNNING'
    });
    expect(widgetModelId(shown)).toBe('abc');
    expect(staticCopy(shown)?.data).toEqual({
      'text/html': copy,
      'text/plain': 'job mnist-abc123: RUNNING'
    });
  });

  it('reads a copy saved as a list of lines', () => {
    const shown = output({ [WIDGET_MIME]: { model_id: 'abc' }, 'text/html': [copy, '\n'] });
    expect(staticCopy(shown)?.data).toEqual({ 'text/html': [copy, '\n'] });
  });

  it('touches no other output', () => {
    const foreign = output({ [WIDGET_MIME]: { model_id: 'x' }, 'text/html': '<b>slider</b>' });
    expect(staticCopy(foreign)).toBeNull();
    expect(staticCopy(output({ 'text/html': copy }))).toBeNull();
    const stream = { output_type: 'stream', name: 'stdout', text: copy } as IOutput;
    expect(staticCopy(stream)).toBeNull();
  });
});
