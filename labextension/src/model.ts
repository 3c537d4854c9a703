/**
 * State of the CloudML views without any DOM: lists that poll, a job's detail with its
 * metrics and live logs, a study's detail (a deployment's is in `deploymentmodel.ts`). Errors
 * become an `error` message, never a throw, so that a view always has something to show.
 */
import { ILogEntry, LogBuffer } from './logbuffer';
import { IPollingOptions, PollingModel, errorMessage } from './polling';
import {
  ACTIVE_STATUSES,
  Capabilities,
  Deployment,
  FINISHED_STATUSES,
  Job,
  JobDetail,
  JobStatus,
  LogBatch,
  LogLine,
  Scalar,
  Study,
  StudyQuery,
  isActive
} from './tokens';

/** Log lines a job view keeps; older lines are dropped. */
export const DEFAULT_LOG_CAP = 5000;

/** The status filter choices of the lists and the statuses each stands for (none = all). */
export type StatusPreset = 'all' | 'active' | 'finished' | 'failed';

export const STATUS_PRESETS: Record<StatusPreset, readonly JobStatus[]> = {
  all: [],
  active: ACTIVE_STATUSES,
  finished: FINISHED_STATUSES,
  failed: ['FAILED']
};

/** Filters of a list. An empty `statuses` means every status. */
export interface IListFilters {
  statuses: readonly JobStatus[];
  name: string;
  kind: 'job' | 'any';
}

/** A list page query handed to `fetchPage`. */
export interface IPageQuery extends IListFilters {
  limit: number;
  offset: number;
}

/** One page of a paged list: filters, paging, polling, error state. */
export abstract class ListModel<T> extends PollingModel {
  constructor(options: IPollingOptions & { limit?: number; filters?: Partial<IListFilters> }) {
    super(options);
    this.limit = options.limit ?? 50;
    this._filters = { statuses: [], name: '', kind: 'any', ...options.filters };
  }

  items: readonly T[] = [];
  total = 0;
  readonly limit: number;

  get offset(): number {
    return this._offset;
  }

  get filters(): Readonly<IListFilters> {
    return this._filters;
  }

  get hasPrevious(): boolean {
    return this._offset > 0;
  }

  get hasNext(): boolean {
    return this._offset + this.limit < this.total;
  }

  /** Change some filters; goes back to the first page and refreshes. */
  setFilters(filters: Partial<IListFilters>): Promise<void> {
    this._filters = { ...this._filters, ...filters };
    this._offset = 0;
    this.emitChanged();
    return this.refresh();
  }

  nextPage(): Promise<void> {
    if (!this.hasNext) {
      return Promise.resolve();
    }
    this._offset += this.limit;
    return this.refresh();
  }

  previousPage(): Promise<void> {
    if (!this.hasPrevious) {
      return Promise.resolve();
    }
    this._offset = Math.max(0, this._offset - this.limit);
    return this.refresh();
  }

  async refresh(): Promise<void> {
    const seq = ++this._seq;
    const query = { ...this._filters, limit: this.limit, offset: this._offset };
    try {
      const page = await this.fetchPage(query);
      if (seq !== this._seq || this.isDisposed) {
        return;
      }
      if (page.items.length === 0 && page.total > 0 && this._offset >= page.total) {
        // The page emptied (jobs deleted): show the last page that has rows.
        this._offset = Math.floor((page.total - 1) / this.limit) * this.limit;
        return this.refresh();
      }
      this.items = page.items;
      this.total = page.total;
      this.error = null;
    } catch (error) {
      if (seq !== this._seq || this.isDisposed) {
        return;
      }
      this.error = errorMessage(error);
    }
    this.loaded = true;
    this.emitChanged();
  }

  /** Fetch one page. */
  protected abstract fetchPage(query: IPageQuery): Promise<{ items: T[]; total: number }>;

  private _filters: IListFilters;
  private _offset = 0;
  private _seq = 0;
}

/** The status, name and paging arguments that `listJobs` and `listStudies` both take. */
function listQuery(query: IPageQuery): StudyQuery {
  return { status: query.statuses, name: query.name, limit: query.limit, offset: query.offset };
}

/** The jobs list of the sidebar. */
export class JobListModel extends ListModel<Job> {
  protected async fetchPage(query: IPageQuery): Promise<{ items: Job[]; total: number }> {
    const page = await this.api.listJobs({ ...listQuery(query), kind: query.kind });
    return { items: page.jobs, total: page.total };
  }
}

/** The studies list of the sidebar. */
export class StudyListModel extends ListModel<Study> {
  protected async fetchPage(query: IPageQuery): Promise<{ items: Study[]; total: number }> {
    const page = await this.api.listStudies(listQuery(query));
    return { items: page.studies, total: page.total };
  }
}

/** The backend's capabilities and, when it serves models, its deployments. */
export class DeploymentListModel extends PollingModel {
  capabilities: Capabilities | null = null;
  items: readonly Deployment[] = [];

  async refresh(): Promise<void> {
    try {
      if (!this.capabilities) {
        this.capabilities = await this.api.getCapabilities();
      }
      this.items = this.capabilities.deployments ? await this.api.listDeployments() : [];
      this.error = null;
    } catch (error) {
      this.error = errorMessage(error);
    }
    if (this.isDisposed) {
      return;
    }
    this.loaded = true;
    this.emitChanged();
  }
}

/** What every detail panel shows of its object: a name, a status, and why it is so. */
export interface IDetailSubject {
  name: string;
  status: string;
  reason?: string;
}

/** What a job and a study share, as their detail models and panels show it. */
export interface IDetailObject extends IDetailSubject {
  id: string;
  status: JobStatus;
  elapsed: number | null;
}

/**
 * One job, study or deployment, fetched by id and polled until it is final (`isFinal`).
 * Polling stops too when the server does not know the id (the object was deleted, or the id
 * is wrong).
 */
export abstract class DetailModel<T extends IDetailSubject> extends PollingModel {
  constructor(options: IPollingOptions & { id: string }) {
    super(options);
    this.id = options.id;
  }

  /** The id of the object shown. */
  readonly id: string;

  /** The object as last fetched; null until the first answer. */
  current: T | null = null;

  /** Fetch the object, then what goes with it; stops polling once the object is final. */
  async refresh(): Promise<void> {
    try {
      this.current = await this.fetch();
      this.error = null;
    } catch (error) {
      this.error = errorMessage(error);
      if ((error as { status?: number }).status === 404) {
        this.stop();
      }
    }
    if (this.isDisposed) {
      return;
    }
    this.loaded = true;
    if (!this.error) {
      await this.refreshRelated();
      if (this.current && this.isFinal(this.current)) {
        this.stop();
      }
    }
    this.emitChanged();
  }

  /** Whether the object can no longer change, so that polling stops (jobs: once finished). */
  protected isFinal(object: T): boolean {
    return !isActive(object.status);
  }

  /** Fetch the object itself. */
  protected abstract fetch(): Promise<T>;

  /** Fetch what goes with the object, after it (none by default). */
  protected async refreshRelated(): Promise<void> {}
}

/** Options of a job's detail model. */
export interface IJobDetailOptions extends IPollingOptions {
  jobId: string;
  /** Log lines kept at most. */
  logCap?: number;
  /** Lines the stream starts with. */
  tail?: number;
  /** First wait before reconnecting a broken log stream, in ms (doubles up to 30 s). */
  reconnectDelay?: number;
}

/**
 * One job: its detail and events, its metrics fetched incrementally through the server's
 * cursor, and its log lines followed live (at most `logCap`, filtered by replica and search).
 */
export class JobDetailModel extends DetailModel<JobDetail> {
  constructor(options: IJobDetailOptions) {
    super({ ...options, id: options.jobId });
    this.logCap = options.logCap ?? DEFAULT_LOG_CAP;
    this._logs = new LogBuffer(this.logCap);
    this._tail = options.tail ?? 1000;
    this._reconnectDelay = options.reconnectDelay ?? 1000;
  }

  readonly logCap: number;
  metricsError: string | null = null;
  logsError: string | null = null;
  /** Whether the log stream is connected. */
  streaming = false;
  /** Whether the log view keeps scrolling to the newest line. */
  following = true;

  /** The id of the job (the model's `id`). */
  get jobId(): string {
    return this.id;
  }

  /** The job as last fetched; null until the first answer. */
  get job(): JobDetail | null {
    return this.current;
  }

  /** Scalars by tag, in the order they were reported. */
  get metrics(): ReadonlyMap<string, readonly Scalar[]> {
    return this._metrics;
  }

  /** The server's cursor of the last metrics answer. */
  get metricsCursor(): string | undefined {
    return this._cursor;
  }

  /** All kept log lines, oldest first. */
  get logs(): readonly ILogEntry[] {
    return this._logs.lines;
  }

  /** The replica whose lines are shown; null for all. */
  get replica(): string | null {
    return this._logs.replica;
  }

  /** The text shown lines must contain (case-insensitive); empty for all. */
  get search(): string {
    return this._logs.search;
  }

  /** Replica names known from the job and its lines. */
  get replicaNames(): string[] {
    const names = new Set(this._logs.replicas);
    for (const replica of this.job?.replicas ?? []) {
      names.add(replica.name);
    }
    return [...names].sort();
  }

  /** The kept lines that pass the replica filter and the search. */
  get visibleLogs(): readonly ILogEntry[] {
    return this._logs.visible;
  }

  setReplica(replica: string | null): void {
    this._logs.replica = replica;
    this.emitChanged();
  }

  setSearch(search: string): void {
    this._logs.search = search;
    this.emitChanged();
  }

  setFollowing(following: boolean): void {
    if (this.following !== following) {
      this.following = following;
      this.emitChanged();
    }
  }

  /** Begin polling the job and its metrics, and following its logs. */
  start(): void {
    super.start();
    if (!this._following) {
      this._following = this.followLogs();
    }
  }

  protected fetch(): Promise<JobDetail> {
    return this.api.getJob(this.jobId);
  }

  /** The job's new metrics; those fetched after the job finished are its last ones. */
  protected refreshRelated(): Promise<void> {
    return this.refreshMetrics();
  }

  /** Fetch the scalars reported since the last cursor and append them per tag. */
  async refreshMetrics(): Promise<void> {
    try {
      const update = await this.api.getMetrics(this.jobId, this._cursor);
      if (this.isDisposed) {
        return;
      }
      const metrics = new Map(this._metrics);
      for (const [tag, scalars] of Object.entries(update.scalars)) {
        if (scalars.length) {
          metrics.set(tag, [...(metrics.get(tag) ?? []), ...scalars]);
        }
      }
      this._metrics = metrics;
      this._cursor = update.cursor;
      this.metricsError = null;
    } catch (error) {
      this.metricsError = errorMessage(error);
      if ((error as { status?: number }).status === 400) {
        // The server no longer knows the cursor (it restarted): start over.
        this._cursor = undefined;
        this._metrics = new Map();
      }
    }
    this.emitChanged();
  }

  /** Add lines, dropping the oldest beyond the cap and those a reconnect sent again. */
  appendLogs(lines: readonly LogLine[]): void {
    if (this._logs.append(lines)) {
      this.emitChanged();
    }
  }

  /**
   * Follow the log stream until the job ends or the model is disposed; a stream that breaks
   * off is opened again after a growing delay.
   */
  async followLogs(): Promise<void> {
    let delay = this._reconnectDelay;
    while (!this.isDisposed) {
      this.streaming = true;
      this.emitChanged();
      let end: LogBatch | null = null;
      try {
        end = await this.api.streamLogs(
          this.jobId,
          { tail: this._tail },
          batch => {
            delay = this._reconnectDelay;
            this.logsError = null;
            this.appendLogs(batch.lines);
          },
          this._abort.signal
        );
      } catch (error) {
        this.logsError = errorMessage(error);
        if ((error as { status?: number }).status === 404) {
          break;
        }
      }
      this.streaming = false;
      if (this.isDisposed) {
        return;
      }
      if (end) {
        if (this.current && end.status) {
          this.current = { ...this.current, status: end.status };
        }
        this.emitChanged();
        // Catch the final state, events and metrics at once.
        void this.refresh();
        return;
      }
      if (this.job && !isActive(this.job.status)) {
        break;
      }
      this.emitChanged();
      await sleep(delay, this._abort.signal);
      delay = Math.min(delay * 2, 30000);
    }
    this.streaming = false;
    this.emitChanged();
  }

  dispose(): void {
    this._abort.abort();
    super.dispose();
  }

  private _metrics = new Map<string, readonly Scalar[]>();
  private _cursor: string | undefined;
  private _logs: LogBuffer;
  private _abort = new AbortController();
  private _following: Promise<void> | null = null;
  private _tail: number;
  private _reconnectDelay: number;
}

/** One study with its trials, polled until it has finished. */
export class StudyDetailModel extends DetailModel<Study> {
  constructor(options: IPollingOptions & { studyId: string }) {
    super({ ...options, id: options.studyId });
  }

  /** The id of the study (the model's `id`). */
  get studyId(): string {
    return this.id;
  }

  /** The study as last fetched; null until the first answer. */
  get study(): Study | null {
    return this.current;
  }

  protected fetch(): Promise<Study> {
    return this.api.getStudy(this.studyId);
  }
}

function sleep(ms: number, signal: AbortSignal): Promise<void> {
  return new Promise(resolve => {
    if (signal.aborted) {
      resolve();
      return;
    }
    const timer = setTimeout(done, ms);
    function done(): void {
      clearTimeout(timer);
      signal.removeEventListener('abort', done);
      resolve();
    }
    signal.addEventListener('abort', done);
  });
}
