/** A fake of the one request module for the models' tests: every call rejects until scripted. */
import type { ICloudMLApi } from '../tokens';

export type FakeApi = { [K in keyof ICloudMLApi]: jest.Mock };

export function fakeApi(): FakeApi {
  const reject = () => jest.fn(() => Promise.reject(new Error('not scripted')));
  return {
    getCapabilities: reject(),
    getQuota: reject(),
    listJobs: reject(),
    getJob: reject(),
    cancelJob: reject(),
    deleteJob: reject(),
    getLogs: reject(),
    streamLogs: reject(),
    getMetrics: reject(),
    listStudies: reject(),
    getStudy: reject(),
    cancelStudy: reject(),
    deleteStudy: reject(),
    listDeployments: reject(),
    getDeployment: reject(),
    deploy: reject(),
    undeploy: reject(),
    setTraffic: reject(),
    rollback: reject(),
    scale: reject(),
    predict: reject(),
    listTensorBoards: reject(),
    startTensorBoard: reject(),
    stopTensorBoard: reject()
  };
}
