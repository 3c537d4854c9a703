/**
 * The models with an injected fake api: filters and paging, error state, metrics cursor,
 * log cap, search and replica filters, log stream end and reconnect, study polling, deployment
 * polling and predictions.
 */
import { CloudMLApiError } from '../api';
import { DeploymentDetailModel } from '../deploymentmodel';
import {
  DeploymentListModel,
  JobDetailModel,
  JobListModel,
  STATUS_PRESETS,
  StudyDetailModel,
  StudyListModel
} from '../model';
import { objectiveSeries, paramsText, studyProgress, trialTitle } from '../summaries';
import { fakeApi } from './fakeapi';
import type {
  Deployment,
  Job,
  JobDetail,
  JobPage,
  LogBatch,
  LogLine,
  MetricsUpdate,
  Study,
  Trial
} from '../tokens';

function job(id: string, status: Job['status'] = 'RUNNING'): JobDetail {
  return {
    id,
    name: `name-${id}`,
    status,
    reason: '',
    created: 1,
    elapsed: 3,
    kind: 'job',
    replicas: [
      { name: 'worker-0', status: 'RUNNING' },
      { name: 'worker-1', status: 'PENDING' }
    ],
    events: [],
    magic: '%%cloudml_train'
  };
}

function page(ids: string[], total: number, offset = 0): JobPage {
  return { jobs: ids.map(id => job(id)), total, limit: 50, offset };
}

const models: { dispose(): void }[] = [];
function track<T extends { dispose(): void }>(model: T): T {
  models.push(model);
  return model;
}
afterEach(() => {
  models.splice(0).forEach(m => m.dispose());
});

describe('JobListModel', () => {
  it('sends filters and paging, and moves between pages', async () => {
    const api = fakeApi();
    api.listJobs.mockImplementation(async q =>
      page(q.offset === 0 ? ['a', 'b'] : ['c'], 3, q.offset)
    );
    const model = track(new JobListModel({ api, limit: 2, filters: { kind: 'job' } }));
    const changed = jest.fn();
    model.changed.connect(changed);

    await model.refresh();
    expect(api.listJobs).toHaveBeenLastCalledWith({
      status: [],
      name: '',
      kind: 'job',
      limit: 2,
      offset: 0
    });
    expect(model.items.map(j => j.id)).toEqual(['a', 'b']);
    expect(model.total).toBe(3);
    expect(model.hasPrevious).toBe(false);
    expect(model.hasNext).toBe(true);
    expect(changed).toHaveBeenCalled();

    await model.nextPage();
    expect(api.listJobs).toHaveBeenLastCalledWith(expect.objectContaining({ offset: 2 }));
    expect(model.items.map(j => j.id)).toEqual(['c']);
    expect(model.hasNext).toBe(false);
    await model.nextPage();
    expect(api.listJobs).toHaveBeenCalledTimes(2);

    await model.setFilters({ statuses: STATUS_PRESETS.active, name: 'mni' });
    expect(api.listJobs).toHaveBeenLastCalledWith({
      status: ['QUEUED', 'STARTING', 'RUNNING', 'RETRYING'],
      name: 'mni',
      kind: 'job',
      limit: 2,
      offset: 0
    });
    expect(model.offset).toBe(0);
  });

  it('keeps an error message instead of throwing, and clears it on success', async () => {
    const api = fakeApi();
    api.listJobs
      .mockRejectedValueOnce(new Error('Cannot reach the server: Failed to fetch'))
      .mockResolvedValueOnce(page(['a'], 1));
    const model = track(new JobListModel({ api }));

    await expect(model.refresh()).resolves.toBeUndefined();
    expect(model.error).toBe('Cannot reach the server: Failed to fetch');
    expect(model.loaded).toBe(true);
    expect(model.items).toEqual([]);

    await model.refresh();
    expect(model.error).toBeNull();
    expect(model.items.map(j => j.id)).toEqual(['a']);
  });

  it('keeps the rows it had when a refresh fails', async () => {
    const api = fakeApi();
    api.listJobs.mockResolvedValueOnce(page(['a'], 1)).mockRejectedValueOnce(new Error('down'));
    const model = track(new JobListModel({ api }));
    await model.refresh();
    await model.refresh();
    expect(model.error).toBe('down');
    expect(model.items.map(j => j.id)).toEqual(['a']);
  });

  it('ignores an answer that a newer request overtook', async () => {
    const api = fakeApi();
    let releaseSlow: (value: JobPage) => void = () => undefined;
    api.listJobs
      .mockImplementationOnce(() => new Promise(resolve => (releaseSlow = resolve)))
      .mockResolvedValueOnce(page(['new'], 1));
    const model = track(new JobListModel({ api }));
    const slow = model.refresh();
    await model.setFilters({ name: 'new' });
    releaseSlow(page(['old'], 1));
    await slow;
    expect(model.items.map(j => j.id)).toEqual(['new']);
  });

  it('steps back to the last page when its page emptied', async () => {
    const api = fakeApi();
    api.listJobs.mockImplementation(async q =>
      q.offset >= 2 ? page([], 2, q.offset) : page(['a', 'b'], 2, q.offset)
    );
    const model = track(new JobListModel({ api, limit: 2 }));
    api.listJobs.mockResolvedValueOnce(page(['a', 'b'], 3));
    await model.refresh();
    await model.nextPage();
    expect(model.offset).toBe(0);
    expect(model.items.map(j => j.id)).toEqual(['a', 'b']);
  });

  it('pauses and resumes', () => {
    const model = track(new JobListModel({ api: fakeApi() }));
    model.pause();
    expect(model.isPaused).toBe(true);
    model.resume();
    expect(model.isPaused).toBe(false);
  });
});

describe('StudyListModel', () => {
  it('lists studies with status and name filters', async () => {
    const api = fakeApi();
    api.listStudies.mockResolvedValue({ studies: [], total: 0, limit: 50, offset: 0 });
    const model = track(new StudyListModel({ api }));
    await model.setFilters({ statuses: STATUS_PRESETS.failed, name: 'lr' });
    expect(api.listStudies).toHaveBeenLastCalledWith({
      status: ['FAILED'],
      name: 'lr',
      limit: 50,
      offset: 0
    });
  });
});

describe('DeploymentListModel', () => {
  it('does not list deployments when the backend does not serve models', async () => {
    const api = fakeApi();
    api.getCapabilities.mockResolvedValue({ backend: 'local', deployments: false });
    const model = track(new DeploymentListModel({ api }));
    await model.refresh();
    expect(model.capabilities?.deployments).toBe(false);
    expect(api.listDeployments).not.toHaveBeenCalled();
    expect(model.error).toBeNull();
  });

  it('lists deployments once capabilities allow it, and reports errors', async () => {
    const api = fakeApi();
    api.getCapabilities.mockResolvedValue({ backend: 'k8s', deployments: true });
    api.listDeployments
      .mockResolvedValueOnce([{ name: 'm', status: 'READY' }])
      .mockRejectedValueOnce(new Error('unavailable'));
    const model = track(new DeploymentListModel({ api }));
    await model.refresh();
    expect(model.items.map(d => d.name)).toEqual(['m']);
    await model.refresh();
    expect(model.error).toBe('unavailable');
    expect(api.getCapabilities).toHaveBeenCalledTimes(1);
  });
});

function logLine(text: string, time: number, replica = 'worker-0'): LogLine {
  return { time, replica, text };
}

describe('JobDetailModel', () => {
  it('appends new scalars per tag and sends the last cursor', async () => {
    const api = fakeApi();
    api.getJob.mockResolvedValue(job('j1'));
    const updates: MetricsUpdate[] = [
      {
        scalars: {
          loss: [
            { step: 1, wall_time: 1, value: 0.9 },
            { step: 2, wall_time: 2, value: 0.7 }
          ]
        },
        cursor: 'c1'
      },
      {
        scalars: {
          loss: [{ step: 3, wall_time: 3, value: 0.5 }],
          acc: [{ step: 3, wall_time: 3, value: 0.8 }]
        },
        cursor: 'c2'
      },
      { scalars: {}, cursor: 'c2' }
    ];
    api.getMetrics.mockImplementation(async () => updates.shift());
    const model = track(new JobDetailModel({ api, jobId: 'j1' }));

    await model.refresh();
    await model.refresh();
    await model.refresh();

    expect(api.getMetrics.mock.calls).toEqual([
      ['j1', undefined],
      ['j1', 'c1'],
      ['j1', 'c2']
    ]);
    expect(model.metricsCursor).toBe('c2');
    expect(model.metrics.get('loss')!.map(s => s.step)).toEqual([1, 2, 3]);
    expect(model.metrics.get('acc')!.map(s => s.value)).toEqual([0.8]);
    expect(model.metricsError).toBeNull();
  });

  it('keeps job and metrics errors apart, without throwing', async () => {
    const api = fakeApi();
    api.getJob.mockRejectedValueOnce(new Error('No job j1.')).mockResolvedValue(job('j1'));
    api.getMetrics.mockRejectedValue(new Error('metrics broke'));
    const model = track(new JobDetailModel({ api, jobId: 'j1' }));

    await model.refresh();
    expect(model.error).toBe('No job j1.');
    expect(model.job).toBeNull();
    expect(api.getMetrics).not.toHaveBeenCalled();

    await model.refresh();
    expect(model.error).toBeNull();
    expect(model.job?.id).toBe('j1');
    expect(model.metricsError).toBe('metrics broke');
  });

  it('starts the metrics over when the server rejects the cursor', async () => {
    const api = fakeApi();
    api.getJob.mockResolvedValue(job('j1'));
    api.getMetrics
      .mockResolvedValueOnce({
        scalars: { loss: [{ step: 1, wall_time: 1, value: 1 }] },
        cursor: 'c1'
      })
      .mockRejectedValueOnce(Object.assign(new Error('bad cursor'), { status: 400 }))
      .mockResolvedValueOnce({
        scalars: { loss: [{ step: 1, wall_time: 1, value: 1 }] },
        cursor: 'c9'
      });
    const model = track(new JobDetailModel({ api, jobId: 'j1' }));
    await model.refresh();
    await model.refresh();
    expect(model.metricsCursor).toBeUndefined();
    await model.refresh();
    expect(api.getMetrics).toHaveBeenLastCalledWith('j1', undefined);
    expect(model.metrics.get('loss')).toHaveLength(1);
  });

  it('stops polling once the job has finished, after a last metrics fetch', async () => {
    const api = fakeApi();
    api.getJob.mockResolvedValueOnce(job('j1', 'RUNNING')).mockResolvedValue(job('j1', 'FAILED'));
    api.getMetrics.mockResolvedValue({ scalars: {}, cursor: 'c' });
    api.streamLogs.mockImplementation(
      (_id, _options, _onBatch, signal: AbortSignal) =>
        new Promise(resolve => signal.addEventListener('abort', () => resolve(null)))
    );
    const model = track(new JobDetailModel({ api, jobId: 'j1', interval: 60000 }));
    expect(model.isPolling).toBe(false);
    model.start();
    expect(model.isPolling).toBe(true);
    await model.refresh();
    expect(model.isPolling).toBe(true);
    const metricsCalls = api.getMetrics.mock.calls.length;
    await model.refresh();
    expect(model.job?.status).toBe('FAILED');
    expect(api.getMetrics.mock.calls.length).toBe(metricsCalls + 1);
    expect(model.isPolling).toBe(false);
  });

  it('stops polling a job the server does not know', async () => {
    const api = fakeApi();
    api.getJob.mockRejectedValue(Object.assign(new Error('No job j1.'), { status: 404 }));
    const model = track(new JobDetailModel({ api, jobId: 'j1', interval: 60000 }));
    model.start();
    await model.refresh();
    expect(model.error).toBe('No job j1.');
    expect(model.isPolling).toBe(false);
  });

  it('keeps at most logCap lines, the newest', () => {
    const model = track(new JobDetailModel({ api: fakeApi(), jobId: 'j1', logCap: 5 }));
    model.appendLogs([1, 2, 3].map(i => logLine(`l${i}`, i)));
    model.appendLogs([4, 5, 6, 7].map(i => logLine(`l${i}`, i)));
    expect(model.logs.map(l => l.text)).toEqual(['l3', 'l4', 'l5', 'l6', 'l7']);
    const seqs = model.logs.map(l => l.seq);
    expect(new Set(seqs).size).toBe(5);
  });

  it('keeps 5000 lines by default', () => {
    const model = track(new JobDetailModel({ api: fakeApi(), jobId: 'j1' }));
    model.appendLogs(Array.from({ length: 6000 }, (_, i) => logLine(`l${i}`, i)));
    expect(model.logs).toHaveLength(5000);
    expect(model.logs[0].text).toBe('l1000');
  });

  it('filters shown lines by search text (any case) and by replica', () => {
    const model = track(new JobDetailModel({ api: fakeApi(), jobId: 'j1' }));
    model.appendLogs([
      logLine('Epoch 1 loss=0.9', 1, 'worker-0'),
      logLine('epoch 1 loss=0.8', 1, 'worker-1'),
      logLine('saving checkpoint', 2, 'worker-0'),
      logLine('EPOCH 2 loss=0.5', 3, 'worker-1')
    ]);
    expect(model.visibleLogs).toHaveLength(4);

    model.setSearch('epoch');
    expect(model.visibleLogs.map(l => l.text)).toEqual([
      'Epoch 1 loss=0.9',
      'epoch 1 loss=0.8',
      'EPOCH 2 loss=0.5'
    ]);

    model.setReplica('worker-1');
    expect(model.visibleLogs.map(l => l.text)).toEqual(['epoch 1 loss=0.8', 'EPOCH 2 loss=0.5']);

    model.setSearch('');
    expect(model.visibleLogs.every(l => l.replica === 'worker-1')).toBe(true);
    expect(model.visibleLogs).toHaveLength(2);

    model.setReplica(null);
    expect(model.visibleLogs).toHaveLength(4);
    expect(model.logs).toHaveLength(4);
  });

  it('knows replica names from the job and from the lines', async () => {
    const api = fakeApi();
    api.getJob.mockResolvedValue(job('j1'));
    api.getMetrics.mockResolvedValue({ scalars: {}, cursor: '' });
    const model = track(new JobDetailModel({ api, jobId: 'j1' }));
    model.appendLogs([logLine('x', 1, 'chief')]);
    await model.refresh();
    expect(model.replicaNames).toEqual(['chief', 'worker-0', 'worker-1']);
  });

  it('drops lines a reconnected stream sends again', () => {
    const model = track(new JobDetailModel({ api: fakeApi(), jobId: 'j1' }));
    model.appendLogs([logLine('a', 1), logLine('b', 2), logLine('c', 2, 'worker-1')]);
    model.appendLogs([
      logLine('a', 1),
      logLine('b', 2),
      logLine('c', 2, 'worker-1'),
      logLine('d', 3)
    ]);
    expect(model.logs.map(l => l.text)).toEqual(['a', 'b', 'c', 'd']);
  });

  it('follows the stream until end, then takes the final status', async () => {
    const api = fakeApi();
    api.getJob.mockResolvedValue(job('j1', 'SUCCEEDED'));
    api.getMetrics.mockResolvedValue({ scalars: {}, cursor: 'c' });
    api.streamLogs.mockImplementation(async (_id, options, onBatch: (b: LogBatch) => void) => {
      expect(options).toEqual({ tail: 1000 });
      onBatch({ lines: [logLine('hello', 1)] });
      onBatch({ lines: [logLine('bye', 2)] });
      const end = { lines: [], end: true, status: 'SUCCEEDED' as const };
      onBatch(end);
      return end;
    });
    const model = track(new JobDetailModel({ api, jobId: 'j1' }));
    await model.followLogs();
    expect(model.logs.map(l => l.text)).toEqual(['hello', 'bye']);
    expect(model.streaming).toBe(false);
    expect(api.streamLogs).toHaveBeenCalledTimes(1);
    expect(api.getJob).toHaveBeenCalled();
  });

  it('reconnects a stream that broke off while the job runs, and reports the error', async () => {
    const api = fakeApi();
    api.streamLogs
      .mockRejectedValueOnce(new Error('The log stream broke off: reset'))
      .mockImplementationOnce(async (_id, _options, onBatch: (b: LogBatch) => void) => {
        onBatch({ lines: [logLine('again', 5)] });
        return { lines: [], end: true };
      });
    api.getJob.mockResolvedValue(job('j1', 'SUCCEEDED'));
    api.getMetrics.mockResolvedValue({ scalars: {}, cursor: 'c' });
    const model = track(new JobDetailModel({ api, jobId: 'j1', reconnectDelay: 1 }));
    const errors: (string | null)[] = [];
    model.changed.connect(() => errors.push(model.logsError));
    await model.followLogs();
    expect(api.streamLogs).toHaveBeenCalledTimes(2);
    expect(errors).toContain('The log stream broke off: reset');
    expect(model.logsError).toBeNull();
    expect(model.logs.map(l => l.text)).toEqual(['again']);
  });

  it('gives up on a job the server does not know', async () => {
    const api = fakeApi();
    api.streamLogs.mockRejectedValue(Object.assign(new Error('No job j1.'), { status: 404 }));
    const model = track(new JobDetailModel({ api, jobId: 'j1', reconnectDelay: 1 }));
    await model.followLogs();
    expect(api.streamLogs).toHaveBeenCalledTimes(1);
    expect(model.logsError).toBe('No job j1.');
  });

  it('aborts the stream when disposed', async () => {
    const api = fakeApi();
    let signal: AbortSignal | undefined;
    api.streamLogs.mockImplementation(
      (_id, _options, _onBatch, s: AbortSignal) =>
        new Promise(resolve => {
          signal = s;
          s.addEventListener('abort', () => resolve(null));
        })
    );
    const model = new JobDetailModel({ api, jobId: 'j1' });
    const following = model.followLogs();
    await Promise.resolve();
    model.dispose();
    await following;
    expect(signal?.aborted).toBe(true);
    expect(api.streamLogs).toHaveBeenCalledTimes(1);
  });
});

function trial(number: number, value: number | null, status: Trial['status'] = 'SUCCEEDED'): Trial {
  return { number, status, params: { lr: 0.1 * (number + 1) }, value };
}

function study(status: Study['status'], trials: Trial[], goal = 'MINIMIZE'): Study {
  return {
    id: 's1',
    name: 'study',
    status,
    elapsed: 10,
    tuning: { metric: 'loss', goal, max_trials: 10 },
    trials,
    best_trial: null,
    counts: {}
  };
}

describe('StudyDetailModel', () => {
  it('keeps the study and an error message', async () => {
    const api = fakeApi();
    api.getStudy
      .mockResolvedValueOnce(study('RUNNING', [trial(0, 1)]))
      .mockRejectedValueOnce(new Error('gone'));
    const model = track(new StudyDetailModel({ api, studyId: 's1' }));
    await model.refresh();
    expect(model.study?.trials).toHaveLength(1);
    await model.refresh();
    expect(model.error).toBe('gone');
    expect(model.study?.id).toBe('s1');
  });

  it('polls until the study has finished', async () => {
    const api = fakeApi();
    api.getStudy
      .mockResolvedValueOnce(study('RUNNING', []))
      .mockResolvedValue(study('SUCCEEDED', [trial(0, 1)]));
    const model = track(new StudyDetailModel({ api, studyId: 's1', interval: 60000 }));
    model.start();
    await model.refresh();
    expect(model.isPolling).toBe(true);
    await model.refresh();
    expect(model.isPolling).toBe(false);
  });
});

describe('study helpers', () => {
  it('computes the objective per trial and the best so far for minimize and maximize', () => {
    const trials = [trial(2, 0.5), trial(0, 0.9), trial(1, 1.2), trial(3, null, 'RUNNING')];
    const min = objectiveSeries(study('RUNNING', trials, 'MINIMIZE'));
    expect(min.values).toEqual([
      { x: 0, y: 0.9 },
      { x: 1, y: 1.2 },
      { x: 2, y: 0.5 }
    ]);
    expect(min.best.map(p => p.y)).toEqual([0.9, 0.9, 0.5]);
    const max = objectiveSeries(study('RUNNING', trials, 'MAXIMIZE'));
    expect(max.best.map(p => p.y)).toEqual([0.9, 1.2, 1.2]);
  });

  it('writes a trial parameters as text, and its row tooltip', () => {
    const t = { ...trial(3, 0.5), params: { lr: 0.05, depth: 3, opt: 'adam' } };
    expect(paramsText(t.params)).toBe('lr=0.05, depth=3, opt=adam');
    expect(trialTitle(t, true, true)).toBe(
      'Best trial #3: lr=0.05, depth=3, opt=adam\nClick to open its job'
    );
    expect(trialTitle({ ...t, reason: 'pruned at step 2' }, false, false)).toBe(
      'Trial #3: lr=0.05, depth=3, opt=adam\npruned at step 2'
    );
  });

  it('counts finished trials against max_trials', () => {
    const s = study('RUNNING', [trial(0, 1), trial(1, null, 'RUNNING'), trial(2, null, 'PRUNED')]);
    expect(studyProgress(s)).toEqual({ done: 2, max: 10 });
  });
});

function deployment(status: Deployment['status']): Deployment {
  return {
    name: 'lin',
    status,
    url: 'http://127.0.0.1:9000',
    replicas: { ready: 1, total: 1 },
    versions: [
      {
        version: 'v1',
        model: '/tmp/lin.joblib',
        framework: 'sklearn',
        traffic: 100,
        ready: 1,
        replicas: [{ name: 'lin-v1-0', status: 'READY', restarts: 0 }]
      }
    ]
  };
}

describe('DeploymentDetailModel', () => {
  it('polls through FAILED and DEGRADED and stops once STOPPED', async () => {
    const api = fakeApi();
    api.getDeployment
      .mockResolvedValueOnce(deployment('READY'))
      .mockResolvedValueOnce(deployment('FAILED'))
      .mockResolvedValueOnce(deployment('DEGRADED'))
      .mockResolvedValue(deployment('STOPPED'));
    const model = track(new DeploymentDetailModel({ api, name: 'lin', interval: 60000 }));
    model.start();
    for (const status of ['READY', 'FAILED', 'DEGRADED']) {
      await model.refresh();
      expect(model.deployment?.status).toBe(status);
      expect(model.isPolling).toBe(true);
    }
    await model.refresh();
    expect(model.deployment?.status).toBe('STOPPED');
    expect(model.isPolling).toBe(false);
    expect(api.getDeployment).toHaveBeenCalledWith('lin');
  });

  it('polls every 2 s by default', async () => {
    jest.useFakeTimers();
    try {
      const api = fakeApi();
      api.getDeployment.mockResolvedValue(deployment('READY'));
      const model = track(new DeploymentDetailModel({ api, name: 'lin' }));
      model.start();
      await jest.advanceTimersByTimeAsync(100);
      const first = api.getDeployment.mock.calls.length;
      expect(first).toBeGreaterThanOrEqual(1);
      await jest.advanceTimersByTimeAsync(2000);
      expect(api.getDeployment.mock.calls.length).toBe(first + 1);
      api.getDeployment.mockResolvedValue(deployment('STOPPED'));
      await jest.advanceTimersByTimeAsync(2000);
      const stopped = api.getDeployment.mock.calls.length;
      await jest.advanceTimersByTimeAsync(10000);
      expect(api.getDeployment.mock.calls.length).toBe(stopped);
      expect(model.isPolling).toBe(false);
    } finally {
      jest.useRealTimers();
    }
  });

  it('stops polling when the deployment is gone', async () => {
    const api = fakeApi();
    api.getDeployment.mockRejectedValue(new CloudMLApiError(404, 'not_found', 'no deployment lin'));
    const model = track(new DeploymentDetailModel({ api, name: 'lin', interval: 60000 }));
    model.start();
    await model.refresh();
    expect(model.error).toBe('no deployment lin');
    expect(model.isPolling).toBe(false);
  });

  it('sends the typed rows and the chosen version and keeps the predictions', async () => {
    const api = fakeApi();
    api.predict.mockResolvedValue([4.0]);
    const model = track(new DeploymentDetailModel({ api, name: 'lin' }));
    expect(model.input).toBe('[[1.0, 2.0]]');
    model.setInput('[[2.0]]');
    await model.predict();
    expect(api.predict).toHaveBeenLastCalledWith('lin', [[2]], undefined);
    expect(model.predictions).toEqual([4]);
    expect(model.predictError).toBeNull();
    expect(model.predicting).toBe(false);
    model.setVersion('v2');
    await model.predict();
    expect(api.predict).toHaveBeenLastCalledWith('lin', [[2]], 'v2');
  });

  it('keeps a failed prediction as a message, not as the deployment error', async () => {
    const api = fakeApi();
    api.predict
      .mockResolvedValueOnce([4.0])
      .mockRejectedValueOnce(
        new CloudMLApiError(400, 'invalid', 'row 0 has 2 values, the model takes 1')
      );
    const model = track(new DeploymentDetailModel({ api, name: 'lin' }));
    await model.predict();
    await expect(model.predict()).resolves.toBeUndefined();
    expect(model.predictError).toBe('row 0 has 2 values, the model takes 1');
    expect(model.predictions).toBeNull();
    expect(model.predicting).toBe(false);
    expect(model.error).toBeNull();
  });

  it('says what is wrong with rows that are not a JSON list, without asking the server', async () => {
    const api = fakeApi();
    const model = track(new DeploymentDetailModel({ api, name: 'lin' }));
    model.setInput('[[1.0, 2.0]');
    await model.predict();
    expect(model.predictError).toMatch(/^The rows are not JSON/);
    model.setInput('[]');
    await model.predict();
    expect(model.predictError).toMatch(/^Give the rows as a JSON list/);
    model.setInput('{"a": 1}');
    await model.predict();
    expect(model.predictError).toMatch(/^Give the rows as a JSON list/);
    expect(api.predict).not.toHaveBeenCalled();
  });
});
