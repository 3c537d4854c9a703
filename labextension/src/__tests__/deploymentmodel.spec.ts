/**
 * The deployment panel's model with a fake api: the typed traffic split and replica counts
 * checked before any request, each action's request, busy state, answer and error; and the
 * deploy request of a study's best trial.
 */
import { CloudMLApiError } from '../api';
import {
  DeploymentDetailModel,
  bestTrialRequest,
  deploymentName,
  replicaCount,
  trafficSplit
} from '../deploymentmodel';
import type { Deployment, DeploymentVersion } from '../tokens';
import { fakeApi } from './fakeapi';

function version(name: string, traffic: number, replicas = 1): DeploymentVersion {
  return {
    version: name,
    model: '/tmp/m.joblib',
    framework: 'sklearn',
    traffic,
    ready: replicas,
    replicas: Array.from({ length: replicas }, (_, i) => ({
      name: `${name}-${i}`,
      status: 'READY' as const,
      restarts: 0
    }))
  };
}

function deployment(...versions: DeploymentVersion[]): Deployment {
  const total = versions.reduce((n, v) => n + v.replicas.length, 0);
  return {
    name: 'lin',
    status: 'READY',
    url: 'http://127.0.0.1:9000',
    replicas: { ready: total, total },
    versions
  };
}

const models: DeploymentDetailModel[] = [];
afterEach(() => models.splice(0).forEach(m => m.dispose()));

async function loaded(api: ReturnType<typeof fakeApi>, shown: Deployment) {
  api.getDeployment.mockResolvedValue(shown);
  const model = new DeploymentDetailModel({ api, name: 'lin', interval: 60000 });
  models.push(model);
  await model.refresh();
  return model;
}

describe('trafficSplit', () => {
  const versions = [version('v1', 100), version('v2', 0)];

  it('takes the typed shares, and the current share of a version not typed', () => {
    expect(trafficSplit(versions, { v2: '30', v1: '70' })).toEqual({
      traffic: { v1: 70, v2: 30 }
    });
    expect(trafficSplit(versions, { v2: '0' })).toEqual({ traffic: { v1: 100, v2: 0 } });
  });

  it('refuses shares that are not whole percents or do not add up to 100', () => {
    expect(trafficSplit(versions, { v1: '50', v2: '40' })).toEqual({
      error: 'The shares add up to 90%, not 100%'
    });
    expect(trafficSplit(versions, { v1: '50.5', v2: '49.5' })).toEqual({
      error: 'The share of v1 must be a whole percent 0–100, not "50.5"'
    });
    expect(trafficSplit(versions, { v1: '', v2: '100' })).toHaveProperty('error');
    expect(trafficSplit(versions, { v1: '150', v2: '-50' })).toHaveProperty('error');
  });
});

describe('replicaCount', () => {
  it('takes 1..16 and names what it refuses', () => {
    expect(replicaCount(' 3 ')).toEqual({ replicas: 3 });
    expect(replicaCount('16')).toEqual({ replicas: 16 });
    for (const text of ['0', '17', '2.5', 'two', '']) {
      expect(replicaCount(text)).toHaveProperty('error');
    }
    expect(replicaCount('0')).toEqual({
      error: 'Replicas must be a whole number 1–16, not "0"'
    });
  });
});

describe('the deploy request of a best trial', () => {
  it('names the deployment after the study, as a DNS label', () => {
    expect(deploymentName('SGD tuning_2024')).toBe('sgd-tuning-2024');
    expect(deploymentName('--x--')).toBe('x');
    expect(deploymentName('***')).toBe('model');
    expect(deploymentName('a'.repeat(60))).toHaveLength(40);
  });

  it('serves job:STUDY, or a path in the best trial job dir', () => {
    const form = { name: ' iris ', framework: 'sklearn' as const, path: '' };
    expect(bestTrialRequest('tune-1a2b', form)).toEqual({
      name: 'iris',
      model: 'job:tune-1a2b',
      framework: 'sklearn'
    });
    expect(bestTrialRequest('tune-1a2b', { ...form, path: '/model.joblib' }).model).toBe(
      'job:tune-1a2b/model.joblib'
    );
  });
});

describe('DeploymentDetailModel actions', () => {
  it('applies the typed split and shows what the server answered', async () => {
    const api = fakeApi();
    const model = await loaded(api, deployment(version('v1', 100), version('v2', 0)));
    expect(model.trafficDraft(model.deployment!.versions[1])).toBe('0');
    model.setTrafficDraft('v1', '90');
    model.setTrafficDraft('v2', '10');
    let resolve: (d: Deployment) => void = () => undefined;
    api.setTraffic.mockReturnValue(new Promise<Deployment>(r => (resolve = r)));
    const applying = model.applyTraffic();
    expect(model.busy).toBe('traffic');
    expect(await model.rollback()).toBe(false); // one action at a time
    resolve(deployment(version('v1', 90), version('v2', 10)));
    expect(await applying).toBe(true);
    expect(api.setTraffic).toHaveBeenCalledWith('lin', { v1: 90, v2: 10 });
    expect(api.rollback).not.toHaveBeenCalled();
    expect(model.busy).toBeNull();
    expect(model.deployment!.versions.map(v => v.traffic)).toEqual([90, 10]);
    expect(model.trafficDrafts).toEqual({}); // the inputs show the new shares
  });

  it('refuses a bad split or replica count without a request', async () => {
    const api = fakeApi();
    const model = await loaded(api, deployment(version('v1', 100), version('v2', 0)));
    model.setTrafficDraft('v1', '60');
    expect(await model.applyTraffic()).toBe(false);
    expect(model.actionError).toBe('The shares add up to 60%, not 100%');
    model.setReplicaDraft('v1', '40');
    expect(await model.scale('v1')).toBe(false);
    expect(model.actionError).toMatch(/1–16/);
    expect(api.setTraffic).not.toHaveBeenCalled();
    expect(api.scale).not.toHaveBeenCalled();
  });

  it('scales a version to the typed count and keeps the error of a failed action', async () => {
    const api = fakeApi();
    const model = await loaded(api, deployment(version('v1', 100)));
    expect(model.replicaDraft(model.deployment!.versions[0])).toBe('1');
    model.setReplicaDraft('v1', '3');
    api.scale.mockResolvedValue(deployment(version('v1', 100, 3)));
    expect(await model.scale('v1')).toBe(true);
    expect(api.scale).toHaveBeenCalledWith('lin', 'v1', 3);
    expect(model.deployment!.replicas).toEqual({ ready: 3, total: 3 });
    api.rollback.mockRejectedValue(
      new CloudMLApiError(409, 'conflict', 'lin v1 is its first version: nothing to roll back to')
    );
    expect(await model.rollback()).toBe(false);
    expect(model.actionError).toBe('lin v1 is its first version: nothing to roll back to');
    expect(model.busy).toBeNull();
  });

  it('removes a version, then undeploys and stops polling', async () => {
    const api = fakeApi();
    const model = await loaded(api, deployment(version('v1', 100), version('v2', 0)));
    model.start();
    api.undeploy.mockResolvedValue(undefined);
    api.getDeployment.mockResolvedValue(deployment(version('v1', 100)));
    expect(await model.removeVersion('v2')).toBe(true);
    expect(api.undeploy).toHaveBeenCalledWith('lin', 'v2');
    expect(model.deployment!.versions.map(v => v.version)).toEqual(['v1']);
    expect(await model.undeploy()).toBe(true);
    expect(api.undeploy).toHaveBeenLastCalledWith('lin');
    expect(model.isPolling).toBe(false);
  });
});
