import { QuotaModel, quotaLine } from '../quotamodel';
import type { Quota } from '../tokens';
import { fakeApi } from './fakeapi';

const local: Quota = {
  scope: 'local scheduler on box',
  items: [
    { resource: 'cpu', used: '1', hard: '2', limit: '' },
    { resource: 'gpu', used: '0', hard: '0', limit: '' }
  ],
  running: 1,
  queued: 2,
  note: ''
};

describe('quotaLine', () => {
  it('shows each resource used of allowed, then the jobs', () => {
    expect(quotaLine(local)).toBe('cpu 1/2 · gpu 0/0 · 1 running, 2 queued');
  });

  it('shows use alone without a limit, and no queue when none waits', () => {
    const open: Quota = {
      ...local,
      items: [{ resource: 'requests.cpu', used: '500m', hard: null, limit: '' }],
      queued: 0
    };
    expect(quotaLine(open)).toBe('requests.cpu 500m · 1 running');
  });
});

describe('QuotaModel', () => {
  it('keeps the quota, and the problem when the server has none to give', async () => {
    const api = fakeApi();
    api.getQuota.mockResolvedValueOnce(local);
    const model = new QuotaModel({ api });
    await model.refresh();
    expect(model.quota).toEqual(local);
    expect(model.error).toBeNull();
    api.getQuota.mockRejectedValueOnce(new Error('the backend is unavailable'));
    await model.refresh();
    expect(model.error).toBe('the backend is unavailable');
    model.dispose();
  });
});
