import { Clipboard, Dialog, MainAreaWidget, showDialog } from '@jupyterlab/apputils';
import { ReactWidget } from '@jupyterlab/ui-components';
import { Message } from '@lumino/messaging';
import React, { useMemo, useState } from 'react';

import { ElapsedTime } from '../components/ElapsedTime';
import { ErrorMessage } from '../components/ErrorMessage';
import { EventsTable } from '../components/EventsTable';
import { LineChart } from '../components/LineChart';
import { LogView } from '../components/LogView';
import { RefreshButton } from '../components/RefreshButton';
import { ReplicasTable } from '../components/ReplicasTable';
import { StatusBadge } from '../components/StatusBadge';
import { useModel } from '../components/useModel';
import { formatTime } from '../format';
import { JobDetailModel } from '../model';
import { errorMessage } from '../polling';
import { ICloudMLApi, Scalar, isActive } from '../tokens';
import { cloudIcon } from '../icons';

/** What a detail panel needs from the application. */
export interface IDetailActions {
  api: ICloudMLApi;
  /** Open (or reuse) a TensorBoard over these job or study ids. */
  openTensorBoard: (ids: string[]) => Promise<unknown>;
  /** Called after the object was deleted (the panel closes itself). */
  onDeleted: () => void;
  /** Open another job's panel (trials of a study). */
  openJob?: (jobId: string) => void;
}

/** Ask before deleting; resolves to whether the user accepted. */
export async function confirmDelete(what: string): Promise<boolean> {
  const result = await showDialog({
    title: `Delete ${what}?`,
    body: 'Its logs, metrics and outputs are deleted too. This cannot be undone.',
    buttons: [Dialog.cancelButton(), Dialog.warnButton({ label: 'Delete' })]
  });
  return result.button.accept;
}

/** The body of a job's panel; polls while shown. */
export class JobDetailView extends ReactWidget {
  constructor(
    readonly model: JobDetailModel,
    private _actions: IDetailActions
  ) {
    super();
    this.addClass('jp-cloudml-detail');
  }

  protected onAfterShow(msg: Message): void {
    super.onAfterShow(msg);
    this.model.resume();
  }

  protected onAfterHide(msg: Message): void {
    super.onAfterHide(msg);
    this.model.pause();
  }

  protected render(): JSX.Element {
    return <JobDetail model={this.model} actions={this._actions} />;
  }
}

/** A main-area panel with one job: header, actions, replicas, events, logs and metrics. */
export class JobDetailPanel extends MainAreaWidget<JobDetailView> {
  constructor(options: { jobId: string; actions: IDetailActions }) {
    const model = new JobDetailModel({ api: options.actions.api, jobId: options.jobId });
    const actions: IDetailActions = {
      ...options.actions,
      onDeleted: () => {
        options.actions.onDeleted();
        this.dispose();
      }
    };
    super({ content: new JobDetailView(model, actions) });
    this.id = JobDetailPanel.widgetId(options.jobId);
    this.title.label = options.jobId;
    this.title.caption = `CloudML job ${options.jobId}`;
    this.title.icon = cloudIcon;
    this.title.closable = true;
    model.changed.connect(() => {
      if (model.job) {
        this.title.label = model.job.name;
        this.title.caption = `CloudML job ${model.job.name} (${model.jobId}): ${model.job.status}`;
      }
    });
    model.start();
  }

  /** The DOM id of a job's panel. */
  static widgetId(jobId: string): string {
    return `cloudml-job-${jobId}`;
  }

  dispose(): void {
    if (this.isDisposed) {
      return;
    }
    this.content.model.dispose();
    super.dispose();
  }
}

function JobDetail(props: { model: JobDetailModel; actions: IDetailActions }) {
  const model = useModel(props.model);
  const { actions } = props;
  const [busy, setBusy] = useState(false);
  const [actionError, setActionError] = useState<string | null>(null);
  const job = model.job;

  const run = async (action: () => Promise<unknown>): Promise<void> => {
    setBusy(true);
    setActionError(null);
    try {
      await action();
    } catch (error) {
      setActionError(errorMessage(error));
    } finally {
      setBusy(false);
    }
  };

  if (!job) {
    return (
      <div className="jp-cloudml-detail-body">
        <h2 className="jp-cloudml-title">{model.jobId}</h2>
        <div className="jp-cloudml-actions">
          <RefreshButton onClick={() => void model.refresh()} />
        </div>
        <ErrorMessage
          message={model.error}
          title="Cannot load the job"
          onRetry={() => void model.refresh()}
        />
        {!model.error && <div className="jp-cloudml-empty">Loading…</div>}
      </div>
    );
  }

  const active = isActive(job.status);
  const onCancel = () =>
    run(async () => {
      await actions.api.cancelJob(job.id);
      await model.refresh();
    });
  const onDelete = () =>
    run(async () => {
      if (await confirmDelete(`job ${job.name}`)) {
        await actions.api.deleteJob(job.id);
        actions.onDeleted();
      }
    });
  const metrics = [...model.metrics.entries()];
  // A job-level error (e.g. the job was deleted) explains the sections' errors too: one box.
  const logsError = model.error ? null : model.logsError;
  const metricsError = model.error ? null : model.metricsError;

  return (
    <div className="jp-cloudml-detail-body">
      <div className="jp-cloudml-header">
        <h2 className="jp-cloudml-title">{job.name}</h2>
        <StatusBadge status={job.status} />
        <span className="jp-cloudml-id">{job.id}</span>
        <ElapsedTime elapsed={job.elapsed} running={active} />
        {job.attempt !== undefined && job.attempt > 1 && (
          <span className="jp-cloudml-muted">attempt {job.attempt}</span>
        )}
        {job.study && <span className="jp-cloudml-muted">trial of {job.study}</span>}
      </div>
      {job.reason && <div className="jp-cloudml-reason">{job.reason}</div>}
      <div className="jp-cloudml-muted">
        Created {formatTime(job.created)}
        {job.started ? ` · started ${formatTime(job.started)}` : ''}
        {job.finished ? ` · finished ${formatTime(job.finished)}` : ''}
      </div>
      <div className="jp-cloudml-actions">
        {active && (
          <button
            className="jp-cloudml-button"
            data-action="cancel"
            disabled={busy}
            onClick={() => void onCancel()}
          >
            Cancel
          </button>
        )}
        {!active && (
          <button
            className="jp-cloudml-button jp-mod-warn"
            data-action="delete"
            disabled={busy}
            onClick={() => void onDelete()}
          >
            Delete
          </button>
        )}
        <button
          className="jp-cloudml-button"
          data-action="tensorboard"
          disabled={busy}
          onClick={() => void run(() => actions.openTensorBoard([job.id]))}
        >
          Open TensorBoard
        </button>
        <button
          className="jp-cloudml-button"
          data-action="copy-magic"
          disabled={!job.magic}
          title="Copy a notebook cell that submits this job again"
          onClick={() => Clipboard.copyToSystem(job.magic)}
        >
          Copy magic
        </button>
        <RefreshButton onClick={() => void model.refresh()} />
      </div>
      <ErrorMessage message={actionError} title="Action failed" />
      <ErrorMessage message={model.error} title="Cannot refresh the job" />

      <div className="jp-cloudml-columns">
        <section className="jp-cloudml-section">
          <h3>Replicas</h3>
          <ReplicasTable replicas={job.replicas} />
        </section>
        <section className="jp-cloudml-section">
          <h3>Events</h3>
          <EventsTable events={job.events ?? []} />
        </section>
      </div>

      <section className="jp-cloudml-section">
        <h3>Logs</h3>
        <LogView
          lines={model.visibleLogs}
          total={model.logs.length}
          replicas={model.replicaNames}
          replica={model.replica}
          search={model.search}
          following={model.following}
          streaming={model.streaming}
          error={logsError}
          onSearch={search => model.setSearch(search)}
          onReplica={replica => model.setReplica(replica)}
          onFollow={following => model.setFollowing(following)}
        />
      </section>

      <section className="jp-cloudml-section">
        <h3>Metrics</h3>
        <ErrorMessage message={metricsError} title="Cannot read metrics" />
        {metrics.length === 0 && !model.metricsError && (
          <div className="jp-cloudml-empty">
            {active ? 'No metrics reported yet.' : 'This job reported no metrics.'}
          </div>
        )}
        <div className="jp-cloudml-charts">
          {metrics.map(([tag, scalars]) => (
            <MetricChart key={tag} tag={tag} scalars={scalars} />
          ))}
        </div>
      </section>
    </div>
  );
}

/** The chart of one metric; recomputed only when its scalars change. */
function MetricChart(props: { tag: string; scalars: readonly Scalar[] }) {
  const series = useMemo(
    () => [{ name: props.tag, points: props.scalars.map(s => ({ x: s.step, y: s.value })) }],
    [props.tag, props.scalars]
  );
  return <LineChart title={props.tag} metric={props.tag} series={series} />;
}
