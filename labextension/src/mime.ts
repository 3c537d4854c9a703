/**
 * The renderer of `%cloudml tensorboard JOB` outputs: an iframe on the TensorBoard the
 * server proxies, at a path under the page's base URL (so it works behind JupyterHub).
 */
import { IRenderMime } from '@jupyterlab/rendermime-interfaces';
import { Widget } from '@lumino/widgets';

import { tensorBoardPageUrl } from './urls';

/** The MIME type the kernel side emits. */
export const TENSORBOARD_MIME = 'application/vnd.jupyter.cloudml.tensorboard+json';

/** The data of a TensorBoard output. */
export interface ITensorBoardOutput {
  url: string;
  id?: string;
  jobs?: string[];
  height?: number;
}

/** Renders a TensorBoard output as an iframe, or as a visible error when the data is bad. */
export class TensorBoardRenderer extends Widget implements IRenderMime.IRenderer {
  constructor(options: IRenderMime.IRendererOptions) {
    super();
    this._mimeType = options.mimeType;
    this.addClass('jp-cloudml-tensorboard');
  }

  async renderModel(model: IRenderMime.IMimeModel): Promise<void> {
    const data = (model.data[this._mimeType] ?? {}) as unknown as ITensorBoardOutput;
    const src = tensorBoardPageUrl(data.url);
    this.node.textContent = '';
    if (!src) {
      const error = document.createElement('div');
      error.className = 'jp-cloudml-error';
      error.textContent = `Cannot show TensorBoard: the output has no usable url (${String(data.url)}).`;
      this.node.appendChild(error);
      return;
    }
    const height =
      typeof data.height === 'number' && data.height > 0 ? Math.min(data.height, 4000) : 800;
    const iframe = document.createElement('iframe');
    iframe.setAttribute('sandbox', 'allow-scripts allow-same-origin');
    iframe.src = src;
    iframe.title = `TensorBoard ${data.jobs?.join(', ') ?? ''}`.trim();
    iframe.style.height = `${height}px`;
    if (data.id) {
      iframe.dataset.tensorboardId = data.id;
    }
    this.node.appendChild(iframe);
  }

  private _mimeType: string;
}

/** The renderer factory; not safe: untrusted notebooks fall back to the plain text output. */
export const rendererFactory: IRenderMime.IRendererFactory = {
  safe: false,
  mimeTypes: [TENSORBOARD_MIME],
  createRenderer: options => new TensorBoardRenderer(options)
};

const extension: IRenderMime.IExtension = {
  id: 'jupyter-cloudml:tensorboard-renderer',
  description: 'Shows TensorBoard inline in notebook outputs.',
  rendererFactory,
  rank: 0,
  dataType: 'json'
};

export default extension;
