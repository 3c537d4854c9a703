/**
 * Types of the jupyter-cloudml REST API (jupyter_cloudml/server/openapi.yaml) and the
 * status groups the UI derives from them. No runtime dependencies.
 */

/** State of a job or a study. */
export type JobStatus =
  'QUEUED' | 'STARTING' | 'RUNNING' | 'RETRYING' | 'SUCCEEDED' | 'FAILED' | 'CANCELLED';

/** Every job status, in lifecycle order. */
export const JOB_STATUSES: readonly JobStatus[] = [
  'QUEUED',
  'STARTING',
  'RUNNING',
  'RETRYING',
  'SUCCEEDED',
  'FAILED',
  'CANCELLED'
];

/** Statuses of jobs that have not finished yet. */
export const ACTIVE_STATUSES: readonly JobStatus[] = ['QUEUED', 'STARTING', 'RUNNING', 'RETRYING'];

/** Statuses of jobs that have finished, whatever the outcome. */
export const FINISHED_STATUSES: readonly JobStatus[] = ['SUCCEEDED', 'FAILED', 'CANCELLED'];

/** Whether a job or study in this status may still change. */
export function isActive(status: string): boolean {
  return (ACTIVE_STATUSES as readonly string[]).includes(status);
}

/** Status of one replica (process or pod) of a job. */
export type ReplicaStatus =
  'PENDING' | 'RUNNING' | 'SUCCEEDED' | 'FAILED' | 'STOPPED' | 'CANCELLED';

/** Status of one trial of a tuning study. */
export type TrialStatus = 'RUNNING' | 'SUCCEEDED' | 'PRUNED' | 'FAILED' | 'CANCELLED';

/** What a job is: a standalone job, a trial of a study, or a study's driver. */
export type JobKind = 'job' | 'trial' | 'study';

/** Machine-readable error kinds of the API, plus the client's own `network`. */
export type ApiErrorCode =
  | 'invalid'
  | 'not_authenticated'
  | 'not_found'
  | 'conflict'
  | 'quota_exceeded'
  | 'unsupported'
  | 'unavailable'
  | 'error'
  | 'network';

/** The JSON body of every error answer. */
export interface ApiError {
  code: ApiErrorCode;
  message: string;
}

/** What the configured backend offers. */
export interface Capabilities {
  backend: string;
  frameworks: string[];
  cpus: number;
  gpus: number;
  images: boolean;
  studies: boolean;
  tensorboard: boolean;
  deployments: boolean;
}

/** One replica of a job. */
export interface Replica {
  name: string;
  status: ReplicaStatus;
  exit_code?: number | null;
  gpus?: number[];
}

/** A training job (or a trial, or a study's driver). Times are Unix seconds. */
export interface Job {
  id: string;
  name: string;
  status: JobStatus;
  reason: string;
  created: number;
  started?: number | null;
  finished?: number | null;
  elapsed: number | null;
  attempt?: number;
  kind: JobKind;
  study?: string | null;
  replicas: Replica[];
  spec?: Record<string, unknown> | null;
}

/** One page of jobs, newest first. */
export interface JobPage {
  jobs: Job[];
  total: number;
  limit: number;
  offset: number;
}

/** A lifecycle event of a job (scheduled, started, retried, ...). */
export interface JobEvent {
  time: number;
  reason: string;
  message: string;
  type: 'Normal' | 'Warning';
}

/** A job with its events and the notebook cell that submits it again. */
export interface JobDetail extends Job {
  events: JobEvent[];
  magic: string;
}

/** One line a replica wrote. */
export interface LogLine {
  time: number;
  replica: string;
  text: string;
}

/** Log lines sent together; `end` marks the last batch of a stream. */
export interface LogBatch {
  lines: LogLine[];
  end?: boolean;
  status?: JobStatus;
}

/** One reported value of a metric. */
export interface Scalar {
  step: number;
  wall_time: number;
  value: number;
}

/** Scalars by tag that are new since the previous cursor. */
export interface MetricsUpdate {
  scalars: Record<string, Scalar[]>;
  cursor: string;
}

/** One trial of a tuning study. */
export interface Trial {
  number: number;
  status: TrialStatus;
  params: Record<string, number | string>;
  value?: number | null;
  job_id?: string | null;
  steps?: number;
  reason?: string;
  started?: number | null;
  finished?: number | null;
}

/** The tuning spec of a study (a subset; the server sends the whole TuningSpec). */
export interface TuningSpec {
  metric?: string;
  goal?: 'MAXIMIZE' | 'MINIMIZE' | string;
  max_trials?: number;
  parallel_trials?: number;
  algorithm?: string;
  params?: unknown;
  [key: string]: unknown;
}

/** A hyperparameter tuning study with its trials. */
export interface Study {
  id: string;
  name: string;
  status: JobStatus;
  reason?: string;
  created?: number;
  started?: number | null;
  finished?: number | null;
  elapsed: number | null;
  tuning: TuningSpec;
  trials: Trial[];
  best_trial?: Trial | null;
  counts: Record<string, number>;
  /** The `%%cloudml_train` cell that starts the study again (its detail only). */
  magic?: string;
}

/** One page of studies, newest first. */
export interface StudyPage {
  studies: Study[];
  total: number;
  limit: number;
  offset: number;
}

/** A running TensorBoard; `url` is a path under the server's base URL. */
export interface TensorBoard {
  id: string;
  jobs: string[];
  url: string;
  status: 'launched' | 'reused';
}

/** Where a deployment stands: READY once every version serving traffic has a ready replica. */
export type DeploymentStatus = 'STARTING' | 'READY' | 'DEGRADED' | 'FAILED' | 'STOPPED';

/** Status of one serving replica (process or pod) of a deployment's version. */
export type ServingReplicaStatus = 'STARTING' | 'READY' | 'RESTARTING' | 'FAILED';

/** How a deployed model file is loaded and called. */
export type ModelFramework = 'sklearn' | 'xgboost' | 'pytorch' | 'onnx' | 'custom';

/** One serving replica of a deployment's version. */
export interface ServingReplica {
  name: string;
  status: ServingReplicaStatus;
  restarts: number;
  reason?: string;
}

/** One version of a deployment: its model, its share of the traffic and its replicas. */
export interface DeploymentVersion {
  version: string;
  model: string;
  framework: ModelFramework;
  predictor?: string | null;
  /** Percent of the requests that name no version. */
  traffic: number;
  /** Replicas that are READY. */
  ready: number;
  replicas: ServingReplica[];
}

/**
 * A model deployment: a named endpoint at `url` (KServe v1 and v2 paths below it) with its
 * versions; `replicas` counts over every version. `created` is in Unix seconds.
 */
export interface Deployment {
  name: string;
  status: DeploymentStatus;
  url: string;
  reason?: string;
  created?: number;
  replicas: { ready: number; total: number };
  versions: DeploymentVersion[];
}

/** What to deploy: a model (a path, or `job:JOB_OR_STUDY[/PATH]`) as a version of `name`. */
export interface DeployRequest {
  name: string;
  model: string;
  framework: ModelFramework;
  version?: string;
  replicas?: number;
  predictor?: string;
  traffic?: Record<string, number>;
}

/** Filters of the jobs list. */
export interface JobQuery {
  status?: readonly JobStatus[];
  name?: string;
  label?: readonly string[];
  kind?: 'job' | 'any';
  study?: string;
  limit?: number;
  offset?: number;
}

/** Filters of the studies list. */
export interface StudyQuery {
  status?: readonly JobStatus[];
  name?: string;
  limit?: number;
  offset?: number;
}

/** Options of a log stream. */
export interface LogStreamOptions {
  replica?: string;
  tail?: number;
  interval?: number;
}

/** Options of a log snapshot. */
export interface LogQuery {
  replica?: string;
  tail?: number;
  since?: number;
}

/**
 * Every call the UI makes to the server. `api.ts` implements it; models take one so that
 * tests can hand them a fake.
 */
/** One resource of a quota: in use and allowed (`hard` null: no limit), as the backend counts. */
export interface QuotaItem {
  resource: string;
  used: string;
  hard: string | null;
  limit: string;
}

/** What this user may use and uses now (`GET quota`). */
export interface Quota {
  scope: string;
  items: QuotaItem[];
  running: number;
  queued: number;
  note: string;
}

export interface ICloudMLApi {
  getCapabilities(): Promise<Capabilities>;
  /** What this user may use and uses now. */
  getQuota(): Promise<Quota>;
  listJobs(query?: JobQuery): Promise<JobPage>;
  getJob(jobId: string): Promise<JobDetail>;
  cancelJob(jobId: string): Promise<Job>;
  deleteJob(jobId: string): Promise<void>;
  getLogs(jobId: string, query?: LogQuery): Promise<LogBatch>;
  streamLogs(
    jobId: string,
    options: LogStreamOptions,
    onBatch: (batch: LogBatch) => void,
    signal?: AbortSignal
  ): Promise<LogBatch | null>;
  getMetrics(jobId: string, cursor?: string): Promise<MetricsUpdate>;
  listStudies(query?: StudyQuery): Promise<StudyPage>;
  getStudy(studyId: string): Promise<Study>;
  cancelStudy(studyId: string): Promise<Study>;
  deleteStudy(studyId: string): Promise<void>;
  listDeployments(): Promise<Deployment[]>;
  getDeployment(name: string): Promise<Deployment>;
  /** Serve a model; resolves once its replicas are ready. */
  deploy(request: DeployRequest): Promise<Deployment>;
  /** Remove a deployment, or only one of its versions (which must get no traffic). */
  undeploy(name: string, version?: string): Promise<void>;
  /** Split the requests that name no version (percent by version, summing to 100). */
  setTraffic(name: string, traffic: Record<string, number>): Promise<Deployment>;
  /** Send every request back to the version deployed before the one serving most. */
  rollback(name: string): Promise<Deployment>;
  /** Serve one version with `replicas` replicas; resolves once they are ready. */
  scale(name: string, version: string, replicas: number): Promise<Deployment>;
  /** The predictions of a deployment for `instances` (rows), from `version` if given. */
  predict(name: string, instances: readonly unknown[], version?: string): Promise<unknown[]>;
  listTensorBoards(): Promise<TensorBoard[]>;
  startTensorBoard(jobIds: string[]): Promise<TensorBoard>;
  stopTensorBoard(id: string): Promise<void>;
}
