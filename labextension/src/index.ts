/**
 * The CloudML JupyterLab extension: a sidebar with jobs, studies and deployments, detail
 * panels for jobs, studies and deployments, TensorBoard panels, the commands that open them,
 * and a notification for each job or study that ends while a notebook is open.
 */
import { ILayoutRestorer, JupyterFrontEnd, JupyterFrontEndPlugin } from '@jupyterlab/application';
import {
  ICommandPalette,
  InputDialog,
  MainAreaWidget,
  Notification,
  WidgetTracker,
  showErrorMessage
} from '@jupyterlab/apputils';
import { INotebookTracker } from '@jupyterlab/notebook';
import { ReadonlyPartialJSONObject } from '@lumino/coreutils';

import { cloudmlApi, setServerSettings } from './api';
import { CompletionWatcher, IEnded, endedMessage } from './completion';
import { savedViewsPlugin } from './savedviews';
import { cloudIcon } from './icons';
import { ICloudMLApi } from './tokens';
import { CloudMLSidebar } from './widgets/CloudMLSidebar';
import { DeploymentDetailPanel } from './widgets/DeploymentDetailPanel';
import { IDetailActions } from './widgets/DetailPanel';
import { JobDetailPanel } from './widgets/JobDetailPanel';
import { StudyDetailPanel } from './widgets/StudyDetailPanel';
import { TensorBoardPanel } from './widgets/TensorBoardPanel';

/** The command ids of the extension. */
export namespace CommandIDs {
  export const openJob = 'cloudml:open-job';
  export const openStudy = 'cloudml:open-study';
  export const openDeployment = 'cloudml:open-deployment';
  export const openTensorBoard = 'cloudml:open-tensorboard';
  export const refresh = 'cloudml:refresh';
}

const CATEGORY = 'CloudML';

/** Ask for an id when a command came without one (from the palette). */
async function askId(title: string, label: string): Promise<string | null> {
  const result = await InputDialog.getText({ title, label });
  const value = result.button.accept ? (result.value ?? '').trim() : '';
  return value || null;
}

function stringArg(args: ReadonlyPartialJSONObject, name: string): string | null {
  const value = args[name];
  return typeof value === 'string' && value ? value : null;
}

/** How long a notification that a job or study succeeded stays up, in ms (others stay). */
const SUCCESS_NOTICE_MS = 10000;

/**
 * Tell in a notification each job or study that ends while a notebook is open: what the sidebar
 * saw active and then ended (see `CompletionWatcher`), with a button that opens its panel.
 */
function watchCompletions(
  app: JupyterFrontEnd,
  api: ICloudMLApi,
  notebooks: INotebookTracker | null
): void {
  const watcher = new CompletionWatcher({ api, interval: 3000 });
  watcher.ended.connect((_, ended: IEnded) => {
    const { message, type } = endedMessage(ended);
    const command = ended.kind === 'job' ? CommandIDs.openJob : CommandIDs.openStudy;
    Notification.emit(message, type, {
      autoClose: type === 'success' ? SUCCESS_NOTICE_MS : false,
      actions: [
        {
          label: `Open ${ended.kind}`,
          caption: `Open the panel of ${ended.kind} ${ended.name}`,
          callback: () => void app.commands.execute(command, { id: ended.id })
        }
      ]
    });
  });
  const sync = (): void => {
    if (!notebooks || notebooks.size > 0) {
      watcher.resume();
    } else {
      watcher.pause();
    }
  };
  notebooks?.widgetAdded.connect(sync);
  notebooks?.currentChanged.connect(sync);
  watcher.pause();
  watcher.start();
  sync();
}

function activate(
  app: JupyterFrontEnd,
  palette: ICommandPalette | null,
  restorer: ILayoutRestorer | null,
  notebooks: INotebookTracker | null
): void {
  const { commands, shell } = app;
  setServerSettings(app.serviceManager.serverSettings);
  const api: ICloudMLApi = cloudmlApi;

  const sidebar = new CloudMLSidebar({
    api,
    openJob: id => void commands.execute(CommandIDs.openJob, { id }),
    openStudy: id => void commands.execute(CommandIDs.openStudy, { id }),
    openDeployment: name => void commands.execute(CommandIDs.openDeployment, { name })
  });
  sidebar.id = 'cloudml-sidebar';
  sidebar.title.icon = cloudIcon;
  sidebar.title.caption = 'CloudML';
  shell.add(sidebar, 'left', { rank: 650 });

  const jobs = new WidgetTracker<JobDetailPanel>({ namespace: 'cloudml-job' });
  const studies = new WidgetTracker<StudyDetailPanel>({ namespace: 'cloudml-study' });
  const deployments = new WidgetTracker<DeploymentDetailPanel>({
    namespace: 'cloudml-deployment'
  });
  const tensorboards = new WidgetTracker<TensorBoardPanel>({ namespace: 'cloudml-tensorboard' });

  /** Start (or reuse) a TensorBoard and show it; throws what the server answered. */
  const openTensorBoard = async (ids: string[]): Promise<TensorBoardPanel> => {
    const tensorboard = await api.startTensorBoard(ids);
    const existing = tensorboards.find(
      panel => panel.id === TensorBoardPanel.widgetId(tensorboard.id)
    );
    if (existing) {
      shell.activateById(existing.id);
      return existing;
    }
    const panel = new TensorBoardPanel({ tensorboard, stop: id => api.stopTensorBoard(id) });
    void tensorboards.add(panel);
    shell.add(panel, 'main');
    shell.activateById(panel.id);
    return panel;
  };

  const actions: IDetailActions = {
    api,
    openTensorBoard,
    onDeleted: () => void sidebar.refresh(),
    openJob: id => void commands.execute(CommandIDs.openJob, { id }),
    openDeployment: name => {
      void sidebar.refresh();
      void commands.execute(CommandIDs.openDeployment, { name });
    }
  };

  /** Activate the panel with this id if it is open. */
  const activateExisting = (id: string): boolean => {
    const found: MainAreaWidget | undefined =
      jobs.find(widget => widget.id === id) ??
      studies.find(widget => widget.id === id) ??
      deployments.find(widget => widget.id === id);
    if (found) {
      shell.activateById(found.id);
      return true;
    }
    return false;
  };

  commands.addCommand(CommandIDs.openJob, {
    label: args => (args.id ? `Open CloudML Job ${args.id}` : 'Open CloudML Job…'),
    caption: 'Show a job with its logs and metrics',
    execute: async args => {
      const id = stringArg(args, 'id') ?? (await askId('Open CloudML job', 'Job id'));
      if (!id || activateExisting(JobDetailPanel.widgetId(id))) {
        return;
      }
      const panel = new JobDetailPanel({ jobId: id, actions });
      void jobs.add(panel);
      shell.add(panel, 'main');
      shell.activateById(panel.id);
      return panel;
    }
  });

  commands.addCommand(CommandIDs.openStudy, {
    label: args => (args.id ? `Open CloudML Study ${args.id}` : 'Open CloudML Study…'),
    caption: 'Show a tuning study with its trials',
    execute: async args => {
      const id = stringArg(args, 'id') ?? (await askId('Open CloudML study', 'Study id'));
      if (!id || activateExisting(StudyDetailPanel.widgetId(id))) {
        return;
      }
      const panel = new StudyDetailPanel({ studyId: id, actions });
      void studies.add(panel);
      shell.add(panel, 'main');
      shell.activateById(panel.id);
      return panel;
    }
  });

  commands.addCommand(CommandIDs.openDeployment, {
    label: args =>
      args.name ? `Open CloudML Deployment ${args.name}` : 'Open CloudML Deployment…',
    caption: 'Show a deployment with its endpoint, versions and replicas, and try it',
    execute: async args => {
      const name =
        stringArg(args, 'name') ?? (await askId('Open CloudML deployment', 'Deployment name'));
      if (!name || activateExisting(DeploymentDetailPanel.widgetId(name))) {
        return;
      }
      const panel = new DeploymentDetailPanel({ name, actions });
      void deployments.add(panel);
      shell.add(panel, 'main');
      shell.activateById(panel.id);
      return panel;
    }
  });

  commands.addCommand(CommandIDs.openTensorBoard, {
    label: 'Open TensorBoard for CloudML Jobs…',
    caption: 'Start (or reuse) a TensorBoard over jobs or studies',
    execute: async args => {
      let ids = Array.isArray(args.jobs)
        ? (args.jobs as unknown[]).filter((id): id is string => typeof id === 'string' && !!id)
        : [];
      if (!ids.length) {
        const answer = await askId('Open TensorBoard', 'Job or study ids (comma separated)');
        ids = (answer ?? '')
          .split(',')
          .map(id => id.trim())
          .filter(Boolean);
      }
      if (!ids.length) {
        return;
      }
      try {
        await openTensorBoard(ids);
      } catch (error) {
        await showErrorMessage('Cannot open TensorBoard', error as Error);
      }
    }
  });

  watchCompletions(app, api, notebooks);

  commands.addCommand(CommandIDs.refresh, {
    label: 'Refresh CloudML Jobs',
    caption: 'Refresh the jobs, studies and deployments lists',
    execute: () => sidebar.refresh()
  });

  if (palette) {
    for (const command of Object.values(CommandIDs)) {
      palette.addItem({ command, category: CATEGORY });
    }
  }

  if (restorer) {
    restorer.add(sidebar, 'cloudml-sidebar');
    void restorer.restore(jobs, {
      command: CommandIDs.openJob,
      args: panel => ({ id: panel.content.model.jobId }),
      name: panel => panel.content.model.jobId
    });
    void restorer.restore(studies, {
      command: CommandIDs.openStudy,
      args: panel => ({ id: panel.content.model.studyId }),
      name: panel => panel.content.model.studyId
    });
    void restorer.restore(deployments, {
      command: CommandIDs.openDeployment,
      args: panel => ({ name: panel.content.model.name }),
      name: panel => panel.content.model.name
    });
  }
}

const plugin: JupyterFrontEndPlugin<void> = {
  id: 'jupyter-cloudml:plugin',
  description: 'CloudML jobs, studies, logs, metrics and TensorBoard in JupyterLab.',
  autoStart: true,
  optional: [ICommandPalette, ILayoutRestorer, INotebookTracker],
  activate
};

export default [plugin, savedViewsPlugin];
