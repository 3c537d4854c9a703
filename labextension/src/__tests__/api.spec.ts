/**
 * api.ts against a mocked ServerConnection.makeRequest: URLs, error mapping, NDJSON streams.
 */
const BASE = 'http://127.0.0.1:8888/user/alice/';

jest.mock('@jupyterlab/services', () => ({
  ServerConnection: {
    makeRequest: jest.fn(),
    makeSettings: jest.fn(() => ({ baseUrl: 'http://127.0.0.1:8888/user/alice/' }))
  }
}));

import { ServerConnection } from '@jupyterlab/services';

import {
  CloudMLApiError,
  NdjsonParser,
  cancelJob,
  deleteJob,
  deploy,
  getCapabilities,
  getDeployment,
  getJob,
  getMetrics,
  listDeployments,
  listJobs,
  listStudies,
  listTensorBoards,
  predict,
  rollback,
  scale,
  setTraffic,
  startTensorBoard,
  stopTensorBoard,
  streamLogs,
  undeploy
} from '../api';
import type { LogBatch } from '../tokens';

const makeRequest = ServerConnection.makeRequest as jest.Mock;

function json(body: unknown, status = 200, statusText = 'OK'): Response {
  return new Response(JSON.stringify(body), {
    status,
    statusText,
    headers: { 'Content-Type': 'application/json' }
  });
}

/** A response whose body arrives in exactly these chunks. */
function chunked(chunks: (string | Uint8Array)[], status = 200): Response {
  const encoder = new TextEncoder();
  const stream = new ReadableStream<Uint8Array>({
    start(controller) {
      for (const chunk of chunks) {
        controller.enqueue(typeof chunk === 'string' ? encoder.encode(chunk) : chunk);
      }
      controller.close();
    }
  });
  return new Response(stream, {
    status,
    headers: { 'Content-Type': 'application/x-ndjson' }
  });
}

function requestedUrl(call = 0): URL {
  return new URL(makeRequest.mock.calls[call][0] as string);
}

function requestedInit(call = 0): RequestInit {
  return makeRequest.mock.calls[call][1] as RequestInit;
}

beforeEach(() => {
  makeRequest.mockReset();
});

describe('URLs', () => {
  it('joins the base URL, the API path and the resource', async () => {
    makeRequest.mockResolvedValue(json({ backend: 'local', deployments: false }));
    const caps = await getCapabilities();
    expect(makeRequest.mock.calls[0][0]).toBe(`${BASE}cloudml/api/capabilities`);
    expect(caps.backend).toBe('local');
  });

  it('repeats array parameters and drops empty ones', async () => {
    makeRequest.mockResolvedValue(json({ jobs: [], total: 0, limit: 50, offset: 100 }));
    await listJobs({
      status: ['RUNNING', 'QUEUED'],
      name: 'mnist run',
      label: ['team=ml', 'x=1'],
      kind: 'job',
      limit: 50,
      offset: 100,
      study: ''
    });
    const url = requestedUrl();
    expect(url.pathname).toBe('/user/alice/cloudml/api/jobs');
    expect(url.searchParams.getAll('status')).toEqual(['RUNNING', 'QUEUED']);
    expect(url.searchParams.getAll('label')).toEqual(['team=ml', 'x=1']);
    expect(url.searchParams.get('name')).toBe('mnist run');
    expect(url.searchParams.get('kind')).toBe('job');
    expect(url.searchParams.get('limit')).toBe('50');
    expect(url.searchParams.get('offset')).toBe('100');
    expect(url.searchParams.has('study')).toBe(false);
  });

  it('sends no query string without filters', async () => {
    makeRequest.mockResolvedValue(json({ studies: [], total: 0, limit: 50, offset: 0 }));
    await listStudies();
    expect(makeRequest.mock.calls[0][0]).toBe(`${BASE}cloudml/api/studies`);
  });

  it('encodes ids as one path segment', async () => {
    makeRequest.mockResolvedValue(json({ id: 'a/b' }));
    await getJob('a/b');
    expect(makeRequest.mock.calls[0][0]).toBe(`${BASE}cloudml/api/jobs/a%2Fb`);
  });

  it('passes the metrics cursor only when there is one', async () => {
    makeRequest.mockImplementation(async () => json({ scalars: {}, cursor: 'c1' }));
    await getMetrics('job-1');
    await getMetrics('job-1', 'c1');
    expect(requestedUrl(0).search).toBe('');
    expect(requestedUrl(1).searchParams.get('cursor')).toBe('c1');
    expect(requestedUrl(1).pathname).toBe('/user/alice/cloudml/api/jobs/job-1/metrics');
  });

  it('POSTs cancel and the TensorBoard job list, DELETEs with a 204', async () => {
    makeRequest
      .mockResolvedValueOnce(json({ id: 'j1', status: 'CANCELLED' }))
      .mockResolvedValueOnce(new Response(null, { status: 204 }))
      .mockResolvedValueOnce(json({ id: 'tb1', jobs: ['j1'], url: 'proxy/6006/' }, 201))
      .mockResolvedValueOnce(new Response(null, { status: 204 }));
    expect((await cancelJob('j1')).status).toBe('CANCELLED');
    await expect(deleteJob('j1')).resolves.toBeUndefined();
    const tb = await startTensorBoard(['j1', 's1']);
    await stopTensorBoard('tb1');

    expect(requestedUrl(0).pathname).toBe('/user/alice/cloudml/api/jobs/j1/cancel');
    expect(requestedInit(0).method).toBe('POST');
    expect(requestedInit(1).method).toBe('DELETE');
    expect(requestedUrl(2).pathname).toBe('/user/alice/cloudml/api/tensorboards');
    expect(JSON.parse(requestedInit(2).body as string)).toEqual({ jobs: ['j1', 's1'] });
    expect(tb.url).toBe('proxy/6006/');
    expect(requestedUrl(3).pathname).toBe('/user/alice/cloudml/api/tensorboards/tb1');
    expect(requestedInit(3).method).toBe('DELETE');
  });

  it('unwraps the TensorBoard and deployment lists', async () => {
    makeRequest
      .mockResolvedValueOnce(json({ tensorboards: [{ id: 'tb1' }] }))
      .mockResolvedValueOnce(json({ deployments: [{ name: 'm', status: 'READY' }] }));
    expect((await listTensorBoards()).map(tb => tb.id)).toEqual(['tb1']);
    expect((await listDeployments()).map(d => d.name)).toEqual(['m']);
  });
});

describe('errors', () => {
  it('carries status, code and message of a JSON error body', async () => {
    makeRequest.mockResolvedValue(
      json({ code: 'not_found', message: 'No job nope.' }, 404, 'Not Found')
    );
    const error = await getJob('nope').catch(e => e);
    expect(error).toBeInstanceOf(CloudMLApiError);
    expect(error).toMatchObject({ status: 404, code: 'not_found', message: 'No job nope.' });
  });

  it('keeps the code of a 409 conflict', async () => {
    makeRequest.mockResolvedValue(
      json({ code: 'conflict', message: 'The job is still running.' }, 409, 'Conflict')
    );
    await expect(deleteJob('j1')).rejects.toMatchObject({
      status: 409,
      code: 'conflict',
      message: 'The job is still running.'
    });
  });

  it('falls back to the status text and a code by status when the body is not JSON', async () => {
    makeRequest.mockResolvedValue(
      new Response('<html>Bad gateway</html>', { status: 503, statusText: 'Service Unavailable' })
    );
    const error = await listJobs().catch(e => e);
    expect(error).toBeInstanceOf(CloudMLApiError);
    expect(error).toMatchObject({
      status: 503,
      code: 'unavailable',
      message: 'Service Unavailable'
    });
  });

  it('says HTTP <status> when there is neither JSON nor status text', async () => {
    makeRequest.mockResolvedValue(new Response('', { status: 500 }));
    await expect(getCapabilities()).rejects.toMatchObject({
      status: 500,
      code: 'error',
      message: 'HTTP 500'
    });
  });

  it('turns a network failure into a CloudMLApiError with status 0', async () => {
    makeRequest.mockRejectedValue(new TypeError('Failed to fetch'));
    const error = await listJobs().catch(e => e);
    expect(error).toBeInstanceOf(CloudMLApiError);
    expect(error.status).toBe(0);
    expect(error.code).toBe('network');
    expect(error.message).toContain('Failed to fetch');
  });

  it('rejects a 200 answer that is not JSON', async () => {
    makeRequest.mockResolvedValue(new Response('oops', { status: 200 }));
    await expect(getJob('j1')).rejects.toBeInstanceOf(CloudMLApiError);
  });
});

describe('NdjsonParser', () => {
  it('joins lines and multi-byte characters split across chunks', () => {
    const bytes = new TextEncoder().encode('{"text":"é"}\n{"text":"ok"}\n{"te');
    const parser = new NdjsonParser();
    // Cut inside the two bytes of "é".
    const cut = bytes.indexOf(0xc3) + 1;
    expect(parser.push(bytes.slice(0, cut))).toEqual([]);
    expect(parser.push(bytes.slice(cut))).toEqual([{ text: 'é' }, { text: 'ok' }]);
    expect(parser.push(new TextEncoder().encode('xt":"last"}'))).toEqual([]);
    expect(parser.flush()).toEqual([{ text: 'last' }]);
    expect(parser.flush()).toEqual([]);
  });

  it('skips blank lines', () => {
    const parser = new NdjsonParser();
    expect(parser.push(new TextEncoder().encode('\n{"a":1}\n\n'))).toEqual([{ a: 1 }]);
  });
});

describe('streamLogs', () => {
  const line = (text: string, replica = 'worker-0', time = 1) => ({ time, replica, text });

  it('delivers batches split across chunks and stops at end', async () => {
    const first = JSON.stringify({ lines: [line('a'), line('b')] });
    const second = JSON.stringify({ lines: [line('c', 'worker-1')] });
    const last = JSON.stringify({ lines: [], end: true, status: 'SUCCEEDED' });
    const after = JSON.stringify({ lines: [line('never')] });
    makeRequest.mockResolvedValue(
      chunked([
        first.slice(0, 10),
        first.slice(10) + '\n' + second.slice(0, 5),
        second.slice(5) + '\n' + last + '\n' + after + '\n'
      ])
    );
    const batches: LogBatch[] = [];
    const end = await streamLogs('job-1', { tail: 10, replica: 'worker-1' }, b => batches.push(b));

    expect(batches.map(b => b.lines.map(l => l.text))).toEqual([['a', 'b'], ['c'], []]);
    expect(end).toEqual({ lines: [], end: true, status: 'SUCCEEDED' });
    const url = requestedUrl();
    expect(url.pathname).toBe('/user/alice/cloudml/api/jobs/job-1/logs/stream');
    expect(url.searchParams.get('tail')).toBe('10');
    expect(url.searchParams.get('replica')).toBe('worker-1');
  });

  it('parses a last line without a newline and resolves null without end', async () => {
    makeRequest.mockResolvedValue(
      chunked(['{"lines":[]}\n', '{"lines":[{"time":2,"replica":"w","text":"x"}]}'])
    );
    const batches: LogBatch[] = [];
    const end = await streamLogs('job-1', {}, b => batches.push(b));
    expect(end).toBeNull();
    expect(batches).toHaveLength(2);
    expect(batches[1].lines[0].text).toBe('x');
  });

  it('stops delivering when aborted', async () => {
    const controller = new AbortController();
    makeRequest.mockResolvedValue(
      chunked([
        JSON.stringify({ lines: [line('a')] }) +
          '\n' +
          JSON.stringify({ lines: [line('b')] }) +
          '\n'
      ])
    );
    const seen: string[] = [];
    const end = await streamLogs(
      'job-1',
      {},
      batch => {
        seen.push(...batch.lines.map(l => l.text));
        controller.abort();
      },
      controller.signal
    );
    expect(end).toBeNull();
    expect(seen).toEqual(['a']);
    expect(requestedInit().signal).toBe(controller.signal);
  });

  it('resolves null when the request itself is aborted', async () => {
    const controller = new AbortController();
    controller.abort();
    makeRequest.mockRejectedValue(new TypeError('The operation was aborted.'));
    await expect(streamLogs('job-1', {}, () => undefined, controller.signal)).resolves.toBeNull();
  });

  it('throws the typed error of a non-2xx answer', async () => {
    makeRequest.mockResolvedValue(json({ code: 'not_found', message: 'No job x.' }, 404));
    await expect(streamLogs('x', {}, () => undefined)).rejects.toMatchObject({
      status: 404,
      code: 'not_found'
    });
  });

  it('throws a CloudMLApiError for a line that is not JSON', async () => {
    makeRequest.mockResolvedValue(chunked(['{"lines":[]}\n', 'not json\n']));
    await expect(streamLogs('x', {}, () => undefined)).rejects.toBeInstanceOf(CloudMLApiError);
  });
});

describe('deployments', () => {
  it('GETs one deployment by name, as one path segment', async () => {
    makeRequest.mockImplementation(async () =>
      json({ name: 'lin', status: 'READY', versions: [] })
    );
    const deployment = await getDeployment('lin');
    expect(makeRequest.mock.calls[0][0]).toBe(`${BASE}cloudml/api/deployments/lin`);
    expect(requestedInit().method ?? 'GET').toBe('GET');
    expect(deployment.status).toBe('READY');
    await getDeployment('a/b');
    expect(makeRequest.mock.calls[1][0]).toBe(`${BASE}cloudml/api/deployments/a%2Fb`);
  });

  it('POSTs the rows, and the version only when given, and unwraps the predictions', async () => {
    makeRequest.mockImplementation(async () => json({ predictions: [4.0, 6.0] }));
    expect(await predict('lin', [[2.0], [3.0]])).toEqual([4, 6]);
    await predict('lin', [[2.0]], 'v2');
    expect(makeRequest.mock.calls[0][0]).toBe(`${BASE}cloudml/api/deployments/lin/predict`);
    expect(requestedInit(0).method).toBe('POST');
    expect(requestedInit(0).headers).toEqual({ 'Content-Type': 'application/json' });
    expect(JSON.parse(requestedInit(0).body as string)).toEqual({ instances: [[2], [3]] });
    expect(JSON.parse(requestedInit(1).body as string)).toEqual({
      instances: [[2]],
      version: 'v2'
    });
  });

  it('maps a bad row to an invalid error with the server message', async () => {
    makeRequest.mockResolvedValue(
      json({ code: 'invalid', message: 'row 0 has 2 values, the model takes 1' }, 400, 'Bad')
    );
    const error = await predict('lin', [[1, 2]]).catch(e => e);
    expect(error).toBeInstanceOf(CloudMLApiError);
    expect(error).toMatchObject({
      status: 400,
      code: 'invalid',
      message: 'row 0 has 2 values, the model takes 1'
    });
  });

  it('maps an unknown deployment and an endpoint that is down by status', async () => {
    makeRequest
      .mockResolvedValueOnce(new Response('<html>', { status: 404, statusText: 'Not Found' }))
      .mockResolvedValueOnce(new Response('', { status: 503, statusText: 'Unavailable' }));
    await expect(getDeployment('nope')).rejects.toMatchObject({ status: 404, code: 'not_found' });
    await expect(predict('lin', [[1]])).rejects.toMatchObject({
      status: 503,
      code: 'unavailable',
      message: 'Unavailable'
    });
  });

  it('rejects an answer without predictions', async () => {
    makeRequest.mockResolvedValue(json({ outputs: [] }));
    await expect(predict('lin', [[1]])).rejects.toBeInstanceOf(CloudMLApiError);
  });
});

describe('deployment actions', () => {
  it('deploys, splits, rolls back and scales with JSON bodies, and undeploys with DELETE', async () => {
    const shown = { name: 'iris', status: 'READY', url: 'u', replicas: {}, versions: [] };
    makeRequest.mockImplementation(async (_url: string, init: RequestInit) =>
      init.method === 'DELETE' ? new Response(null, { status: 204 }) : json(shown)
    );
    const request = { name: 'iris', model: 'job:tune-1', framework: 'sklearn' as const };
    expect(await deploy(request)).toEqual(shown);
    await setTraffic('iris', { v1: 90, v2: 10 });
    await rollback('iris');
    await scale('iris', 'v2', 3);
    await undeploy('iris', 'v1');
    await undeploy('iris');
    const calls = makeRequest.mock.calls.map(([url, init]) => [
      (init as RequestInit).method,
      (url as string).slice(BASE.length),
      (init as RequestInit).body ? JSON.parse((init as RequestInit).body as string) : null
    ]);
    expect(calls).toEqual([
      ['POST', 'cloudml/api/deployments', request],
      ['PUT', 'cloudml/api/deployments/iris/traffic', { traffic: { v1: 90, v2: 10 } }],
      ['POST', 'cloudml/api/deployments/iris/rollback', null],
      ['POST', 'cloudml/api/deployments/iris/scale', { version: 'v2', replicas: 3 }],
      ['DELETE', 'cloudml/api/deployments/iris?version=v1', null],
      ['DELETE', 'cloudml/api/deployments/iris', null]
    ]);
  });

  it('carries the reason a deploy was refused', async () => {
    makeRequest.mockResolvedValue(
      json({ code: 'conflict', message: 'study tune-1 has no best trial yet' }, 409, 'Conflict')
    );
    await expect(
      deploy({ name: 'iris', model: 'job:tune-1', framework: 'sklearn' })
    ).rejects.toMatchObject({
      status: 409,
      code: 'conflict',
      message: 'study tune-1 has no best trial yet'
    });
  });
});
