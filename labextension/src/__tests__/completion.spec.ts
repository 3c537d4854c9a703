/**
 * The completion watcher with a fake api: what it saw active and then ended is told once with
 * its final state; what had ended before it watched, is still active, or was deleted is not.
 */
import { CompletionWatcher, IEnded, endedMessage } from '../completion';
import type { JobPage, JobStatus, Study, StudyPage } from '../tokens';
import { fakeApi } from './fakeapi';

function jobs(...ids: string[]): JobPage {
  const found = ids.map(id => ({
    id,
    name: `name-${id}`,
    status: 'RUNNING' as const,
    reason: '',
    created: 1,
    elapsed: 1,
    kind: 'job' as const,
    replicas: []
  }));
  return { jobs: found, total: found.length, limit: 500, offset: 0 };
}

function study(id: string, status: JobStatus = 'RUNNING'): Study {
  return {
    id,
    name: `study-${id}`,
    status,
    elapsed: 65,
    tuning: {},
    trials: [],
    counts: {}
  };
}

function studies(...ids: string[]): StudyPage {
  return { studies: ids.map(id => study(id)), total: ids.length, limit: 500, offset: 0 };
}

describe('CompletionWatcher', () => {
  let watcher: CompletionWatcher;
  afterEach(() => watcher.dispose());

  it('tells each job and study it saw active once it ended, with its final status', async () => {
    const api = fakeApi();
    watcher = new CompletionWatcher({ api, interval: 60000 });
    const told: IEnded[] = [];
    watcher.ended.connect((_, ended) => told.push(ended));
    api.listJobs.mockResolvedValue(jobs('a', 'b'));
    api.listStudies.mockResolvedValue(studies('s'));
    await watcher.refresh();
    expect(api.listJobs).toHaveBeenCalledWith({
      status: ['QUEUED', 'STARTING', 'RUNNING', 'RETRYING'],
      kind: 'job',
      limit: 500
    });
    expect(watcher.watching).toEqual({ jobs: ['a', 'b'], studies: ['s'] });
    expect(told).toEqual([]);

    api.listJobs.mockResolvedValue(jobs('b', 'c'));
    api.listStudies.mockResolvedValue(studies());
    api.getJob.mockResolvedValue({
      ...jobs('a').jobs[0],
      status: 'FAILED',
      reason: 'exit code 1',
      elapsed: 12,
      events: [],
      magic: ''
    });
    api.getStudy.mockResolvedValue(study('s', 'SUCCEEDED'));
    await watcher.refresh();
    expect(api.getJob).toHaveBeenCalledWith('a');
    expect(api.getStudy).toHaveBeenCalledWith('s');
    expect(told).toEqual([
      {
        kind: 'job',
        id: 'a',
        name: 'name-a',
        status: 'FAILED',
        reason: 'exit code 1',
        elapsed: 12
      },
      {
        kind: 'study',
        id: 's',
        name: 'study-s',
        status: 'SUCCEEDED',
        reason: undefined,
        elapsed: 65
      }
    ]);
    await watcher.refresh(); // told once
    expect(told).toHaveLength(2);
  });

  it('tells nothing of one deleted meanwhile or active again, and keeps watching after errors', async () => {
    const api = fakeApi();
    watcher = new CompletionWatcher({ api, interval: 60000 });
    const told: IEnded[] = [];
    watcher.ended.connect((_, ended) => told.push(ended));
    api.listJobs.mockResolvedValue(jobs('gone', 'back'));
    api.listStudies.mockResolvedValue(studies());
    await watcher.refresh();
    api.listJobs.mockRejectedValueOnce(new Error('Cannot reach the server'));
    await watcher.refresh();
    expect(watcher.error).toBe('Cannot reach the server');
    expect(watcher.watching.jobs).toEqual(['gone', 'back']);
    api.listJobs.mockResolvedValue(jobs());
    api.getJob.mockImplementation((id: string) =>
      id === 'gone'
        ? Promise.reject(new Error('no job gone'))
        : Promise.resolve({ ...jobs('back').jobs[0], status: 'RETRYING', events: [], magic: '' })
    );
    await watcher.refresh();
    expect(told).toEqual([]);
    expect(watcher.error).toBeNull();
  });
});

describe('endedMessage', () => {
  it('says what ended, how, after how long and why', () => {
    const base = { kind: 'job' as const, id: 'a', name: 'iris', elapsed: 65 };
    expect(endedMessage({ ...base, status: 'SUCCEEDED' })).toEqual({
      message: 'Job iris SUCCEEDED after 1m 05s',
      type: 'success'
    });
    expect(endedMessage({ ...base, status: 'FAILED', reason: 'exit code 1' })).toEqual({
      message: 'Job iris FAILED after 1m 05s: exit code 1',
      type: 'error'
    });
    expect(endedMessage({ ...base, kind: 'study', status: 'CANCELLED', elapsed: null })).toEqual({
      message: 'Study iris CANCELLED',
      type: 'warning'
    });
  });
});
