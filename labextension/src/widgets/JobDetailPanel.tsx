import React, { useMemo } from 'react';

import { CopyButton } from '../components/CopyButton';
import { ErrorMessage } from '../components/ErrorMessage';
import { EventsTable } from '../components/EventsTable';
import { LineChart } from '../components/LineChart';
import { LogView } from '../components/LogView';
import { ReplicasTable } from '../components/ReplicasTable';
import { formatTime } from '../format';
import { JobDetailModel } from '../model';
import { Scalar, isActive } from '../tokens';
import {
  DetailActions,
  DetailHeader,
  DetailPanel,
  IDetailActions,
  IDetailBodyProps,
  IDetailKind
} from './DetailPanel';

/** How a job is named, cancelled and deleted in its panel. */
const JOB: IDetailKind = {
  noun: 'job',
  deleteWhat: name => `job ${name}`,
  cancel: (api, id) => api.cancelJob(id),
  remove: (api, id) => api.deleteJob(id)
};

/** A main-area panel with one job: header, actions, replicas, events, logs and metrics. */
export class JobDetailPanel extends DetailPanel<JobDetailModel> {
  constructor(options: { jobId: string; actions: IDetailActions }) {
    super({
      id: JobDetailPanel.widgetId(options.jobId),
      kind: JOB,
      model: new JobDetailModel({ api: options.actions.api, jobId: options.jobId }),
      actions: options.actions,
      body: JobDetail
    });
  }

  /** The DOM id of a job's panel. */
  static widgetId(jobId: string): string {
    return `cloudml-job-${jobId}`;
  }
}

function JobDetail(props: IDetailBodyProps<JobDetailModel>) {
  const { model, object: job } = props;
  const active = isActive(job.status);
  const metrics = [...model.metrics.entries()];
  // A job-level error (e.g. the job was deleted) explains the sections' errors too: one box.
  const logsError = model.error ? null : model.logsError;
  const metricsError = model.error ? null : model.metricsError;

  return (
    <div className="jp-cloudml-detail-body">
      <DetailHeader object={job}>
        {job.attempt !== undefined && job.attempt > 1 && (
          <span className="jp-cloudml-muted">attempt {job.attempt}</span>
        )}
        {job.study && <span className="jp-cloudml-muted">trial of {job.study}</span>}
      </DetailHeader>
      <div className="jp-cloudml-muted">
        Created {formatTime(job.created)}
        {job.started ? ` · started ${formatTime(job.started)}` : ''}
        {job.finished ? ` · finished ${formatTime(job.finished)}` : ''}
      </div>
      <DetailActions object={job} model={model} kind={JOB} actions={props.actions}>
        <CopyButton
          text={job.magic}
          action="copy-magic"
          label="Copy magic"
          title="Copy a notebook cell that submits this job again"
        />
      </DetailActions>

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
