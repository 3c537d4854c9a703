import { MainAreaWidget, ToolbarButton } from '@jupyterlab/apputils';
import { IFrame, stopIcon } from '@jupyterlab/ui-components';
import { Widget } from '@lumino/widgets';

import { errorMessage } from '../polling';
import { TensorBoard } from '../tokens';
import { cloudIcon } from '../icons';
import { tensorBoardPageUrl } from '../urls';

/** A main-area panel showing a TensorBoard in an iframe, with a Stop button. */
export class TensorBoardPanel extends MainAreaWidget<IFrame> {
  constructor(options: { tensorboard: TensorBoard; stop: (id: string) => Promise<void> }) {
    const { tensorboard } = options;
    const content = new IFrame({ sandbox: ['allow-scripts', 'allow-same-origin'] });
    super({ content });
    this.addClass('jp-cloudml-tensorboard-panel');
    this.id = TensorBoardPanel.widgetId(tensorboard.id);
    this.title.label = `TensorBoard: ${tensorboard.jobs.join(', ')}`;
    this.title.caption = `TensorBoard ${tensorboard.id} over ${tensorboard.jobs.join(', ')}`;
    this.title.icon = cloudIcon;
    this.title.closable = true;
    const src = tensorBoardPageUrl(tensorboard.url);
    if (src) {
      content.url = src;
    } else {
      this.setError(`The server gave TensorBoard an address outside Jupyter: ${tensorboard.url}`);
    }
    const stopButton = new ToolbarButton({
      icon: stopIcon,
      label: 'Stop',
      tooltip: 'Stop this TensorBoard',
      onClick: () => {
        options.stop(tensorboard.id).then(
          () => this.dispose(),
          error => this.setError(`Cannot stop TensorBoard: ${errorMessage(error)}`)
        );
      }
    });
    stopButton.node.dataset.action = 'stop';
    this.toolbar.addItem('stop', stopButton);
  }

  /** Show an error above the iframe (never a blank panel). */
  setError(message: string): void {
    if (!this._error) {
      this._error = new Widget();
      this._error.addClass('jp-cloudml-error');
      this._error.node.setAttribute('role', 'alert');
      this.contentHeader.addWidget(this._error);
    }
    this._error.node.textContent = message;
  }

  /** The DOM id of a TensorBoard's panel. */
  static widgetId(tensorboardId: string): string {
    return `cloudml-tensorboard-${tensorboardId}`;
  }

  private _error: Widget | null = null;
}
