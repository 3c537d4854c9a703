import { ReactWidget } from '@jupyterlab/ui-components';
import { Message } from '@lumino/messaging';
import React, { useEffect, useState } from 'react';

import { ElapsedTime } from '../components/ElapsedTime';
import { ErrorMessage } from '../components/ErrorMessage';
import { RefreshButton } from '../components/RefreshButton';
import { StatusBadge } from '../components/StatusBadge';
import { useModel } from '../components/useModel';
import { pageLabel } from '../format';
import {
  DeploymentListModel,
  IDetailObject,
  JobListModel,
  ListModel,
  STATUS_PRESETS,
  StatusPreset,
  StudyListModel
} from '../model';
import { QUOTA_INTERVAL, QuotaModel, quotaLine } from '../quotamodel';
import { replicaProgress, studyProgress } from '../summaries';
import { Deployment, ICloudMLApi, Job, Study, isActive } from '../tokens';

/** The sidebar's tabs. */
export type SidebarTab = 'jobs' | 'studies' | 'deployments';

const TABS: { id: SidebarTab; label: string }[] = [
  { id: 'jobs', label: 'Jobs' },
  { id: 'studies', label: 'Studies' },
  { id: 'deployments', label: 'Deployments' }
];

/** Options of the sidebar. */
export interface ICloudMLSidebarOptions {
  api: ICloudMLApi;
  openJob: (jobId: string) => void;
  openStudy: (studyId: string) => void;
  openDeployment: (name: string) => void;
}

/**
 * The CloudML sidebar: jobs, studies and deployments. Only the visible tab polls, and
 * nothing polls while the sidebar is collapsed.
 */
export class CloudMLSidebar extends ReactWidget {
  constructor(options: ICloudMLSidebarOptions) {
    super();
    this.addClass('jp-cloudml-sidebar');
    this._options = options;
    // Jobs poll every second so that a job submitted from a cell shows up at once.
    this.jobs = new JobListModel({ api: options.api, interval: 1000, filters: { kind: 'job' } });
    this.studies = new StudyListModel({ api: options.api });
    this.deployments = new DeploymentListModel({ api: options.api, interval: 5000 });
    this.quota = new QuotaModel({ api: options.api, interval: QUOTA_INTERVAL });
    for (const model of this._models()) {
      model.pause();
      model.start();
    }
  }

  readonly jobs: JobListModel;
  readonly studies: StudyListModel;
  readonly deployments: DeploymentListModel;
  /** What this user may use and uses now, in the header; polls while the sidebar shows. */
  readonly quota: QuotaModel;

  get tab(): SidebarTab {
    return this._tab;
  }

  /** Show a tab; only its model polls. */
  setTab(tab: SidebarTab): void {
    this._tab = tab;
    this._syncPolling();
    this.update();
  }

  /** Refresh every list now (e.g. after a job was deleted elsewhere). */
  refresh(): Promise<void> {
    return Promise.all(this._models().map(model => model.refresh())).then(() => undefined);
  }

  dispose(): void {
    if (this.isDisposed) {
      return;
    }
    for (const model of this._models()) {
      model.dispose();
    }
    super.dispose();
  }

  protected onAfterAttach(msg: Message): void {
    super.onAfterAttach(msg);
    this._syncPolling();
  }

  protected onAfterShow(msg: Message): void {
    super.onAfterShow(msg);
    this._syncPolling();
  }

  protected onAfterHide(msg: Message): void {
    super.onAfterHide(msg);
    this._syncPolling();
  }

  protected onBeforeDetach(msg: Message): void {
    for (const model of this._models()) {
      model.pause();
    }
    super.onBeforeDetach(msg);
  }

  protected render(): JSX.Element {
    return (
      <SidebarView
        tab={this._tab}
        onTab={tab => this.setTab(tab)}
        jobs={this.jobs}
        studies={this.studies}
        deployments={this.deployments}
        quota={this.quota}
        openJob={this._options.openJob}
        openStudy={this._options.openStudy}
        openDeployment={this._options.openDeployment}
      />
    );
  }

  private _models(): (JobListModel | StudyListModel | DeploymentListModel | QuotaModel)[] {
    return [this.jobs, this.studies, this.deployments, this.quota];
  }

  private _syncPolling(): void {
    const shown = this.isAttached && this.isVisible;
    const active = { jobs: this.jobs, studies: this.studies, deployments: this.deployments }[
      this._tab
    ];
    for (const model of this._models()) {
      if (shown && (model === active || model === this.quota)) {
        if (model.isPaused) {
          model.resume();
        }
      } else {
        model.pause();
      }
    }
  }

  private _tab: SidebarTab = 'jobs';
  private _options: ICloudMLSidebarOptions;
}

function SidebarView(props: {
  tab: SidebarTab;
  onTab: (tab: SidebarTab) => void;
  jobs: JobListModel;
  studies: StudyListModel;
  deployments: DeploymentListModel;
  quota: QuotaModel;
  openJob: (id: string) => void;
  openStudy: (id: string) => void;
  openDeployment: (name: string) => void;
}) {
  return (
    <div className="jp-cloudml-sidebar-body">
      <div className="jp-cloudml-sidebar-header">
        CloudML
        <QuotaHeader model={props.quota} />
      </div>
      <div className="jp-cloudml-tabs" role="tablist">
        {TABS.map(tab => (
          <button
            key={tab.id}
            role="tab"
            data-tab={tab.id}
            aria-selected={props.tab === tab.id}
            className={`jp-cloudml-tab${props.tab === tab.id ? ' jp-mod-active' : ''}`}
            onClick={() => props.onTab(tab.id)}
          >
            {tab.label}
          </button>
        ))}
      </div>
      {props.tab === 'jobs' && <JobsTab model={props.jobs} onOpen={props.openJob} />}
      {props.tab === 'studies' && <StudiesTab model={props.studies} onOpen={props.openStudy} />}
      {props.tab === 'deployments' && (
        <DeploymentsTab model={props.deployments} onOpen={props.openDeployment} />
      )}
    </div>
  );
}

/** What this user may use and uses now, under the title; the scope and note as its tooltip. */
function QuotaHeader(props: { model: QuotaModel }) {
  const { quota, error } = useModel(props.model);
  if (error) {
    return (
      <div className="jp-cloudml-quota jp-cloudml-muted" title={error}>
        quota unknown
      </div>
    );
  }
  if (!quota) {
    return null;
  }
  const title = [quota.scope, quota.note].filter(Boolean).join(': ');
  return (
    <div className="jp-cloudml-quota" title={title}>
      {quotaLine(quota)}
    </div>
  );
}

/** The search box, status filter and refresh button over a list. */
function ListToolbar<T>(props: { model: ListModel<T>; extra?: React.ReactNode }) {
  const { model } = props;
  const [name, setName] = useState(model.filters.name);
  useEffect(() => {
    if (name === model.filters.name) {
      return;
    }
    const timer = setTimeout(() => void model.setFilters({ name }), 300);
    return () => clearTimeout(timer);
  }, [name, model]);
  const preset =
    (Object.keys(STATUS_PRESETS) as StatusPreset[]).find(
      key => STATUS_PRESETS[key].join() === model.filters.statuses.join()
    ) ?? 'all';
  return (
    <div className="jp-cloudml-toolbar">
      <input
        className="jp-cloudml-search"
        type="search"
        placeholder="Filter by name"
        aria-label="Filter by name"
        value={name}
        onChange={event => setName(event.target.value)}
      />
      <select
        className="jp-cloudml-select"
        aria-label="Status"
        value={preset}
        onChange={event =>
          void model.setFilters({ statuses: STATUS_PRESETS[event.target.value as StatusPreset] })
        }
      >
        <option value="all">All</option>
        <option value="active">Active</option>
        <option value="finished">Finished</option>
        <option value="failed">Failed</option>
      </select>
      {props.extra}
      <RefreshButton onClick={() => void model.refresh()} label="⟳" />
    </div>
  );
}

/** Previous / next page with "1–50 of N". */
function Pager<T>(props: { model: ListModel<T> }) {
  const { model } = props;
  return (
    <div className="jp-cloudml-pager">
      <button
        className="jp-cloudml-button"
        data-action="previous-page"
        disabled={!model.hasPrevious}
        onClick={() => void model.previousPage()}
      >
        ‹ Prev
      </button>
      <span className="jp-cloudml-muted">
        {pageLabel(model.offset, model.items.length, model.total)}
      </span>
      <button
        className="jp-cloudml-button"
        data-action="next-page"
        disabled={!model.hasNext}
        onClick={() => void model.nextPage()}
      >
        Next ›
      </button>
    </div>
  );
}

/**
 * A paged list tab: toolbar, error, one row per item, a hint when the filters match nothing,
 * and the pager.
 */
function ListTab<T>(props: {
  /** The `data-panel` of the tab. */
  panel: SidebarTab;
  model: ListModel<T>;
  /** Controls of this list in the toolbar, before refresh. */
  toolbar?: React.ReactNode;
  /** What the error box says the list cannot do, e.g. "Cannot list jobs". */
  errorTitle: string;
  /** What shows when the list has no items. */
  empty: React.ReactNode;
  row: (item: T) => React.ReactNode;
}) {
  const model = useModel(props.model);
  return (
    <div className="jp-cloudml-tabpanel" data-panel={props.panel}>
      <ListToolbar model={model} extra={props.toolbar} />
      <ErrorMessage
        message={model.error}
        title={props.errorTitle}
        onRetry={() => void model.refresh()}
      />
      <div className="jp-cloudml-list">
        {model.items.map(props.row)}
        {model.loaded && !model.error && model.items.length === 0 && (
          <div className="jp-cloudml-empty">{props.empty}</div>
        )}
        {!model.loaded && <div className="jp-cloudml-empty">Loading…</div>}
      </div>
      <Pager model={model} />
    </div>
  );
}

/**
 * A row of the jobs or studies list that opens its object on click or Enter: name and id,
 * then status, the list's own progress (`children`) and the elapsed time.
 */
function ListRow(props: {
  object: IDetailObject;
  /** The row's test hook, e.g. `{ 'data-job-id': id }`. */
  hook: Record<string, string>;
  onOpen: (id: string) => void;
  children?: React.ReactNode;
}) {
  const { object, onOpen } = props;
  return (
    <OpenableRow
      hook={props.hook}
      title={object.reason || object.name}
      onOpen={() => onOpen(object.id)}
    >
      <div className="jp-cloudml-row-main">
        <span className="jp-cloudml-name">{object.name}</span>
        <span className="jp-cloudml-id">{object.id}</span>
      </div>
      <div className="jp-cloudml-row-side">
        <StatusBadge status={object.status} />
        {props.children}
        <ElapsedTime elapsed={object.elapsed} running={isActive(object.status)} />
      </div>
    </OpenableRow>
  );
}

/** A list row that opens what it shows on click or Enter. */
function OpenableRow(props: {
  hook: Record<string, string>;
  title: string;
  onOpen: () => void;
  children: React.ReactNode;
}) {
  const { onOpen } = props;
  return (
    <div
      className="jp-cloudml-row"
      {...props.hook}
      role="button"
      tabIndex={0}
      title={props.title}
      onClick={onOpen}
      onKeyDown={event => event.key === 'Enter' && onOpen()}
    >
      {props.children}
    </div>
  );
}

function JobsTab(props: { model: JobListModel; onOpen: (id: string) => void }) {
  const model = useModel(props.model);
  const kindSelect = (
    <select
      className="jp-cloudml-select"
      aria-label="Kind"
      value={model.filters.kind}
      onChange={event => void model.setFilters({ kind: event.target.value as 'job' })}
    >
      <option value="job">Jobs</option>
      <option value="any">With trials</option>
    </select>
  );
  return (
    <ListTab
      panel="jobs"
      model={model}
      toolbar={kindSelect}
      errorTitle="Cannot list jobs"
      empty={
        <>
          No jobs here. Run a cell with <code>%%cloudml_train</code> to start one.
        </>
      }
      row={job => <JobRow key={job.id} job={job} onOpen={props.onOpen} />}
    />
  );
}

function JobRow(props: { job: Job; onOpen: (id: string) => void }) {
  const { job } = props;
  const { running, total } = replicaProgress(job);
  return (
    <ListRow object={job} hook={{ 'data-job-id': job.id }} onOpen={props.onOpen}>
      {isActive(job.status) && (
        <span className="jp-cloudml-progress" title="Replicas running / total">
          {running}/{total}
        </span>
      )}
    </ListRow>
  );
}

function StudiesTab(props: { model: StudyListModel; onOpen: (id: string) => void }) {
  return (
    <ListTab
      panel="studies"
      model={props.model}
      errorTitle="Cannot list studies"
      empty={
        <>
          No studies here. Add <code>--param</code> and <code>--metric</code> to{' '}
          <code>%%cloudml_train</code> to start one.
        </>
      }
      row={study => <StudyRow key={study.id} study={study} onOpen={props.onOpen} />}
    />
  );
}

function StudyRow(props: { study: Study; onOpen: (id: string) => void }) {
  const { study } = props;
  const { done, max } = studyProgress(study);
  return (
    <ListRow object={study} hook={{ 'data-study-id': study.id }} onOpen={props.onOpen}>
      <span className="jp-cloudml-progress" title="Trials done / max">
        {done}/{max ?? '?'}
      </span>
    </ListRow>
  );
}

function DeploymentsTab(props: { model: DeploymentListModel; onOpen: (name: string) => void }) {
  const model = useModel(props.model);
  const body = (): React.ReactNode => {
    if (!model.loaded) {
      return <div className="jp-cloudml-empty">Loading…</div>;
    }
    if (model.capabilities && !model.capabilities.deployments) {
      return (
        <div className="jp-cloudml-empty jp-cloudml-deployments-off">
          Deployments appear here once the backend serves models (<code>%cloudml_deploy</code>).
        </div>
      );
    }
    if (!model.items.length) {
      return model.error ? null : <div className="jp-cloudml-empty">No deployments yet.</div>;
    }
    return model.items.map(deployment => (
      <DeploymentRow key={deployment.name} deployment={deployment} onOpen={props.onOpen} />
    ));
  };
  return (
    <div className="jp-cloudml-tabpanel" data-panel="deployments">
      <div className="jp-cloudml-toolbar">
        <span className="jp-cloudml-muted">
          {model.capabilities ? `Backend: ${model.capabilities.backend}` : ''}
        </span>
        <RefreshButton onClick={() => void model.refresh()} label="⟳" />
      </div>
      <ErrorMessage
        message={model.error}
        title="Cannot list deployments"
        onRetry={() => void model.refresh()}
      />
      <div className="jp-cloudml-list">{body()}</div>
    </div>
  );
}

/** A row of the deployments list: name, endpoint, status and replicas ready. */
function DeploymentRow(props: { deployment: Deployment; onOpen: (name: string) => void }) {
  const { deployment, onOpen } = props;
  const { ready, total } = deployment.replicas;
  return (
    <OpenableRow
      hook={{ 'data-deployment-name': deployment.name }}
      title={deployment.reason || deployment.name}
      onOpen={() => onOpen(deployment.name)}
    >
      <div className="jp-cloudml-row-main">
        <span className="jp-cloudml-name">{deployment.name}</span>
        {deployment.url && <span className="jp-cloudml-id">{deployment.url}</span>}
      </div>
      <div className="jp-cloudml-row-side">
        <StatusBadge status={deployment.status} />
        <span className="jp-cloudml-progress" title="Replicas ready / total">
          {ready}/{total}
        </span>
      </div>
    </OpenableRow>
  );
}
