/**
 * The only module that talks to the server: the REST API mounted at
 * `{baseUrl}cloudml/api/`, through JupyterLab's ServerConnection (auth token, XSRF).
 */
import { URLExt } from '@jupyterlab/coreutils';
import { ServerConnection } from '@jupyterlab/services';

import type {
  ApiErrorCode,
  Capabilities,
  DeployRequest,
  Deployment,
  ICloudMLApi,
  Job,
  JobDetail,
  JobPage,
  JobQuery,
  LogBatch,
  LogQuery,
  LogStreamOptions,
  MetricsUpdate,
  Quota,
  Study,
  StudyPage,
  StudyQuery,
  TensorBoard
} from './tokens';

/** Path of the API under the server's base URL. */
export const API_PATH = 'cloudml/api';

/** A failed API call: the HTTP status (0 for network errors), the error code and message. */
export class CloudMLApiError extends Error {
  constructor(
    readonly status: number,
    readonly code: ApiErrorCode,
    message: string
  ) {
    super(message);
    this.name = 'CloudMLApiError';
  }
}

/** The error code a status stands for, when the body does not say. */
const CODE_BY_STATUS: Record<number, ApiErrorCode> = {
  400: 'invalid',
  401: 'not_authenticated',
  403: 'not_authenticated',
  404: 'not_found',
  409: 'conflict',
  429: 'quota_exceeded',
  501: 'unsupported',
  503: 'unavailable'
};

type QueryValue = string | number | boolean | readonly string[] | undefined | null;

let serverSettings: ServerConnection.ISettings | undefined;

/** Use these connection settings (the application's, so JupyterHub's base URL and token apply). */
export function setServerSettings(settings: ServerConnection.ISettings): void {
  serverSettings = settings;
}

function settings(): ServerConnection.ISettings {
  if (!serverSettings) {
    serverSettings = ServerConnection.makeSettings();
  }
  return serverSettings;
}

/** The URL of an API path; arrays in `query` become repeated parameters. */
export function apiUrl(path: readonly string[], query: Record<string, QueryValue> = {}): string {
  const url = URLExt.join(settings().baseUrl, API_PATH, ...path.map(encodeURIComponent));
  const params = new URLSearchParams();
  for (const [key, value] of Object.entries(query)) {
    if (value === undefined || value === null || value === '') {
      continue;
    }
    if (Array.isArray(value)) {
      for (const item of value) {
        params.append(key, String(item));
      }
    } else {
      params.append(key, String(value));
    }
  }
  const search = params.toString();
  return search ? `${url}?${search}` : url;
}

/** The error a non-2xx response stands for: the JSON `{code, message}`, else the status text. */
export async function errorFromResponse(response: Response): Promise<CloudMLApiError> {
  const fallbackCode = CODE_BY_STATUS[response.status] ?? 'error';
  const fallbackMessage = response.statusText || `HTTP ${response.status}`;
  let text: string;
  try {
    text = await response.text();
  } catch {
    return new CloudMLApiError(response.status, fallbackCode, fallbackMessage);
  }
  try {
    const body = JSON.parse(text) as { code?: unknown; message?: unknown };
    if (body && typeof body === 'object') {
      const code = typeof body.code === 'string' ? (body.code as ApiErrorCode) : fallbackCode;
      const message =
        typeof body.message === 'string' && body.message ? body.message : fallbackMessage;
      return new CloudMLApiError(response.status, code, message);
    }
  } catch {
    // Not JSON (a proxy's HTML page, say): the status text says enough.
  }
  return new CloudMLApiError(response.status, fallbackCode, fallbackMessage);
}

/** Send a request; a network failure or a non-2xx answer becomes a CloudMLApiError. */
async function send(url: string, init: RequestInit = {}): Promise<Response> {
  let response: Response;
  try {
    response = await ServerConnection.makeRequest(url, init, settings());
  } catch (error) {
    if (init.signal?.aborted) {
      throw error;
    }
    const message = error instanceof Error ? error.message : String(error);
    throw new CloudMLApiError(0, 'network', `Cannot reach the server: ${message}`);
  }
  if (!response.ok) {
    throw await errorFromResponse(response);
  }
  return response;
}

async function requestJson<T>(url: string, init: RequestInit = {}): Promise<T> {
  const response = await send(url, init);
  if (response.status === 204) {
    return undefined as T;
  }
  const text = await response.text();
  try {
    return JSON.parse(text) as T;
  } catch {
    throw new CloudMLApiError(
      response.status,
      'error',
      'The server sent an answer that is not JSON'
    );
  }
}

async function requestNothing(url: string, init: RequestInit): Promise<void> {
  await send(url, init);
}

/** What the configured backend offers. */
export function getCapabilities(): Promise<Capabilities> {
  return requestJson(apiUrl(['capabilities']));
}

/** What this user may use and uses now. */
export function getQuota(): Promise<Quota> {
  return requestJson(apiUrl(['quota']));
}

/** One page of jobs, newest first. */
export function listJobs(query: JobQuery = {}): Promise<JobPage> {
  return requestJson(
    apiUrl(['jobs'], {
      status: query.status,
      name: query.name,
      label: query.label,
      kind: query.kind,
      study: query.study,
      limit: query.limit,
      offset: query.offset
    })
  );
}

/** One job with its events and magic. */
export function getJob(jobId: string): Promise<JobDetail> {
  return requestJson(apiUrl(['jobs', jobId]));
}

/** Stop a queued or running job. */
export function cancelJob(jobId: string): Promise<Job> {
  return requestJson(apiUrl(['jobs', jobId, 'cancel']), { method: 'POST' });
}

/** Forget a finished job and what it stored. */
export function deleteJob(jobId: string): Promise<void> {
  return requestNothing(apiUrl(['jobs', jobId]), { method: 'DELETE' });
}

/** A snapshot of a job's log lines. */
export function getLogs(jobId: string, query: LogQuery = {}): Promise<LogBatch> {
  return requestJson(
    apiUrl(['jobs', jobId, 'logs'], {
      replica: query.replica,
      tail: query.tail,
      since: query.since
    })
  );
}

/**
 * Follow a job's logs: calls `onBatch` for every LogBatch of the NDJSON stream as it
 * arrives. Resolves with the `end` batch, or null when the stream closed without one or
 * `signal` aborted it.
 */
export async function streamLogs(
  jobId: string,
  options: LogStreamOptions,
  onBatch: (batch: LogBatch) => void,
  signal?: AbortSignal
): Promise<LogBatch | null> {
  const url = apiUrl(['jobs', jobId, 'logs', 'stream'], {
    replica: options.replica,
    tail: options.tail,
    interval: options.interval
  });
  let response: Response;
  try {
    response = await send(url, { signal, headers: { Accept: 'application/x-ndjson' } });
  } catch (error) {
    if (signal?.aborted) {
      return null;
    }
    throw error;
  }
  if (!response.body) {
    throw new CloudMLApiError(response.status, 'error', 'The log stream has no body');
  }
  const reader = response.body.getReader();
  const parser = new NdjsonParser();
  const deliver = (objects: unknown[]): LogBatch | null => {
    for (const object of objects) {
      if (signal?.aborted) {
        return null;
      }
      const batch = object as LogBatch;
      onBatch(batch);
      if (batch.end) {
        return batch;
      }
    }
    return null;
  };
  try {
    for (;;) {
      const { done, value } = await reader.read();
      const objects = done ? parser.flush() : parser.push(value);
      const last = deliver(objects);
      if (last || done || signal?.aborted) {
        return last;
      }
    }
  } catch (error) {
    if (signal?.aborted) {
      return null;
    }
    if (error instanceof CloudMLApiError) {
      throw error;
    }
    const message = error instanceof Error ? error.message : String(error);
    throw new CloudMLApiError(0, 'network', `The log stream broke off: ${message}`);
  } finally {
    reader.cancel().catch(() => undefined);
  }
}

/**
 * Splits a byte stream of newline-delimited JSON into objects; a line may span chunks and a
 * multi-byte character may be cut between them.
 */
export class NdjsonParser {
  /** The objects of the lines this chunk completes. */
  push(chunk: Uint8Array): unknown[] {
    this._buffer += this._decoder.decode(chunk, { stream: true });
    const lines = this._buffer.split('\n');
    this._buffer = lines.pop() ?? '';
    return lines.filter(line => line.trim()).map(parseLine);
  }

  /** The object of a last line that had no newline, at the end of the stream. */
  flush(): unknown[] {
    const rest = this._buffer + this._decoder.decode();
    this._buffer = '';
    return rest.trim() ? [parseLine(rest)] : [];
  }

  private _buffer = '';
  private _decoder = new TextDecoder();
}

function parseLine(line: string): unknown {
  try {
    return JSON.parse(line);
  } catch {
    throw new CloudMLApiError(200, 'error', `Bad line in the log stream: ${line.slice(0, 80)}`);
  }
}

/** Scalars the job reported; only new ones when `cursor` is given. */
export function getMetrics(jobId: string, cursor?: string): Promise<MetricsUpdate> {
  return requestJson(apiUrl(['jobs', jobId, 'metrics'], { cursor }));
}

/** One page of studies, newest first. */
export function listStudies(query: StudyQuery = {}): Promise<StudyPage> {
  return requestJson(
    apiUrl(['studies'], {
      status: query.status,
      name: query.name,
      limit: query.limit,
      offset: query.offset
    })
  );
}

/** One study with all its trials. */
export function getStudy(studyId: string): Promise<Study> {
  return requestJson(apiUrl(['studies', studyId]));
}

/** Stop a study's driver and its running trials. */
export function cancelStudy(studyId: string): Promise<Study> {
  return requestJson(apiUrl(['studies', studyId, 'cancel']), { method: 'POST' });
}

/** Forget a finished study with its trials. */
export function deleteStudy(studyId: string): Promise<void> {
  return requestNothing(apiUrl(['studies', studyId]), { method: 'DELETE' });
}

/** Model deployments; answers `{deployments: [...]}` (501 until the backend serves models). */
export async function listDeployments(): Promise<Deployment[]> {
  const body = await requestJson<{ deployments?: Deployment[] }>(apiUrl(['deployments']));
  return body?.deployments ?? [];
}

/** One deployment with its versions, traffic and replicas. */
export function getDeployment(name: string): Promise<Deployment> {
  return requestJson(apiUrl(['deployments', name]));
}

const JSON_HEADERS = { 'Content-Type': 'application/json' };

/** Serve a model as a version of a deployment; resolves once its replicas are ready. */
export function deploy(request: DeployRequest): Promise<Deployment> {
  return requestJson(apiUrl(['deployments']), {
    method: 'POST',
    body: JSON.stringify(request),
    headers: JSON_HEADERS
  });
}

/** Remove a deployment, or only `version` of it. */
export function undeploy(name: string, version?: string): Promise<void> {
  return requestNothing(apiUrl(['deployments', name], { version }), { method: 'DELETE' });
}

/** Split the unversioned requests between versions. */
export function setTraffic(name: string, traffic: Record<string, number>): Promise<Deployment> {
  return requestJson(apiUrl(['deployments', name, 'traffic']), {
    method: 'PUT',
    body: JSON.stringify({ traffic }),
    headers: JSON_HEADERS
  });
}

/** Send every request back to the previous version. */
export function rollback(name: string): Promise<Deployment> {
  return requestJson(apiUrl(['deployments', name, 'rollback']), { method: 'POST' });
}

/** Serve `version` with `replicas` replicas. */
export function scale(name: string, version: string, replicas: number): Promise<Deployment> {
  return requestJson(apiUrl(['deployments', name, 'scale']), {
    method: 'POST',
    body: JSON.stringify({ version, replicas }),
    headers: JSON_HEADERS
  });
}

/**
 * The predictions of a deployment for `instances`, through the Jupyter server (the browser
 * may not reach the endpoint); `version` picks one version instead of the traffic split.
 */
export async function predict(
  name: string,
  instances: readonly unknown[],
  version?: string
): Promise<unknown[]> {
  const body = await requestJson<{ predictions: unknown[] }>(
    apiUrl(['deployments', name, 'predict']),
    {
      method: 'POST',
      body: JSON.stringify(version ? { instances, version } : { instances }),
      headers: { 'Content-Type': 'application/json' }
    }
  );
  if (!Array.isArray(body?.predictions)) {
    throw new CloudMLApiError(200, 'error', 'The server answered without predictions');
  }
  return body.predictions;
}

/** The TensorBoards that are running. */
export async function listTensorBoards(): Promise<TensorBoard[]> {
  const body = await requestJson<{ tensorboards: TensorBoard[] }>(apiUrl(['tensorboards']));
  return body.tensorboards;
}

/** Start (or reuse) a TensorBoard over these jobs' or studies' event files. */
export function startTensorBoard(jobIds: string[]): Promise<TensorBoard> {
  return requestJson(apiUrl(['tensorboards']), {
    method: 'POST',
    body: JSON.stringify({ jobs: jobIds }),
    headers: { 'Content-Type': 'application/json' }
  });
}

/** Stop a TensorBoard. */
export function stopTensorBoard(id: string): Promise<void> {
  return requestNothing(apiUrl(['tensorboards', id]), { method: 'DELETE' });
}

/** This module as the interface models take. */
export const cloudmlApi: ICloudMLApi = {
  getCapabilities,
  getQuota,
  listJobs,
  getJob,
  cancelJob,
  deleteJob,
  getLogs,
  streamLogs,
  getMetrics,
  listStudies,
  getStudy,
  cancelStudy,
  deleteStudy,
  listDeployments,
  getDeployment,
  deploy,
  undeploy,
  setTraffic,
  rollback,
  scale,
  predict,
  listTensorBoards,
  startTensorBoard,
  stopTensorBoard
};
