/**
 * One deployment without any DOM: polled until it is STOPPED, its try-it box, and what the
 * panel changes (traffic split, roll back, replicas per version, undeploy) with the drafts
 * typed for them. Errors become messages, never throws.
 */
import { EXAMPLE_INSTANCES } from './endpoint';
import { DetailModel } from './model';
import { IPollingOptions, errorMessage } from './polling';
import { DeployRequest, Deployment, DeploymentVersion, ModelFramework } from './tokens';

/** Replicas a version may run (the server's MAX_REPLICAS). */
export const MAX_REPLICAS = 16;

/** The actions of the deployment panel, named as the busy state shows them. */
export type DeploymentAction = 'traffic' | 'rollback' | 'scale' | 'undeploy' | 'remove';

/**
 * The split that the typed shares stand for (a version without a draft keeps its share), or
 * why it is not one: each a whole percent 0..100, summing to 100.
 */
export function trafficSplit(
  versions: readonly DeploymentVersion[],
  drafts: Readonly<Record<string, string>>
): { traffic: Record<string, number> } | { error: string } {
  const traffic: Record<string, number> = {};
  for (const version of versions) {
    const text = (drafts[version.version] ?? String(version.traffic)).trim();
    const share = Number(text);
    if (!/^\d+$/.test(text) || share > 100) {
      return {
        error: `The share of ${version.version} must be a whole percent 0–100, not "${text}"`
      };
    }
    traffic[version.version] = share;
  }
  const total = Object.values(traffic).reduce((sum, share) => sum + share, 0);
  if (total !== 100) {
    return { error: `The shares add up to ${total}%, not 100%` };
  }
  return { traffic };
}

/** A deployment name from a study's name: a DNS label (lowercase, digits and '-'). */
export function deploymentName(studyName: string): string {
  const label = studyName
    .toLowerCase()
    .replace(/[^a-z0-9-]+/g, '-')
    .replace(/^-+|-+$/g, '')
    .slice(0, 40)
    .replace(/-+$/g, '');
  return label || 'model';
}

/** The deploy request of a study's best trial: `job:STUDY[/PATH]`, the study's best trial. */
export function bestTrialRequest(
  studyId: string,
  form: { name: string; framework: ModelFramework; path: string }
): DeployRequest {
  const path = form.path.trim().replace(/^\/+/, '');
  return {
    name: form.name.trim(),
    model: path ? `job:${studyId}/${path}` : `job:${studyId}`,
    framework: form.framework
  };
}

/** The replica count typed for a version, or why it is not one. */
export function replicaCount(text: string): { replicas: number } | { error: string } {
  const trimmed = text.trim();
  const replicas = Number(trimmed);
  if (!/^\d+$/.test(trimmed) || replicas < 1 || replicas > MAX_REPLICAS) {
    return { error: `Replicas must be a whole number 1–${MAX_REPLICAS}, not "${trimmed}"` };
  }
  return { replicas };
}

/**
 * One deployment, polled until it is STOPPED, and its try-it box: the rows typed (JSON), the
 * version asked for, and the last predictions or why there are none.
 */
export class DeploymentDetailModel extends DetailModel<Deployment> {
  constructor(options: IPollingOptions & { name: string }) {
    super({ ...options, id: options.name });
  }

  /** The rows to predict, as typed (a JSON list). */
  input = EXAMPLE_INSTANCES;
  /** The version to ask; null for the traffic split. */
  version: string | null = null;
  /** The last predictions; null before the first or after an error. */
  predictions: unknown[] | null = null;
  /** Why the last prediction failed, for people. */
  predictError: string | null = null;
  /** Whether a prediction is on its way. */
  predicting = false;

  /** The name of the deployment (the model's `id`). */
  get name(): string {
    return this.id;
  }

  /** The deployment as last fetched; null until the first answer. */
  get deployment(): Deployment | null {
    return this.current;
  }

  setInput(input: string): void {
    this.input = input;
    this.emitChanged();
  }

  setVersion(version: string | null): void {
    this.version = version || null;
    this.emitChanged();
  }

  /** Ask the deployment for the predictions of `input`; a failure becomes `predictError`. */
  async predict(): Promise<void> {
    const seq = ++this._predictSeq;
    let instances: unknown;
    try {
      instances = JSON.parse(this.input);
    } catch (error) {
      this._showPrediction(null, `The rows are not JSON: ${errorMessage(error)}`);
      return;
    }
    if (!Array.isArray(instances) || !instances.length) {
      this._showPrediction(null, `Give the rows as a JSON list, e.g. ${EXAMPLE_INSTANCES}`);
      return;
    }
    this.predicting = true;
    this.predictError = null;
    this.emitChanged();
    let predictions: unknown[] | null = null;
    let failure: string | null = null;
    try {
      predictions = await this.api.predict(this.name, instances, this.version ?? undefined);
    } catch (error) {
      failure = errorMessage(error);
    }
    if (seq === this._predictSeq && !this.isDisposed) {
      this._showPrediction(predictions, failure);
    }
  }

  protected fetch(): Promise<Deployment> {
    return this.api.getDeployment(this.name);
  }

  /** A deployment may recover from FAILED or DEGRADED; only STOPPED is for good. */
  protected isFinal(deployment: Deployment): boolean {
    return deployment.status === 'STOPPED';
  }

  /** The action running now; null when none is. */
  busy: DeploymentAction | null = null;
  /** Why the last action failed, for people. */
  actionError: string | null = null;
  /** Traffic shares typed, by version (a version without one shows its share). */
  trafficDrafts: Record<string, string> = {};
  /** Replica counts typed, by version (a version without one shows its count). */
  replicaDrafts: Record<string, string> = {};

  setTrafficDraft(version: string, text: string): void {
    this.trafficDrafts = { ...this.trafficDrafts, [version]: text };
    this.emitChanged();
  }

  setReplicaDraft(version: string, text: string): void {
    this.replicaDrafts = { ...this.replicaDrafts, [version]: text };
    this.emitChanged();
  }

  /** The replicas a version runs as typed, else as it runs them. */
  replicaDraft(version: DeploymentVersion): string {
    return this.replicaDrafts[version.version] ?? String(version.replicas.length);
  }

  /** The share of a version as typed, else as it gets it. */
  trafficDraft(version: DeploymentVersion): string {
    return this.trafficDrafts[version.version] ?? String(version.traffic);
  }

  /** Apply the typed traffic split; resolves to whether it was applied. */
  applyTraffic(): Promise<boolean> {
    const split = trafficSplit(this.current?.versions ?? [], this.trafficDrafts);
    if ('error' in split) {
      return this._fail(split.error);
    }
    return this._act('traffic', () => this.api.setTraffic(this.name, split.traffic));
  }

  /** Send every request back to the previous version. */
  rollback(): Promise<boolean> {
    return this._act('rollback', () => this.api.rollback(this.name));
  }

  /** Serve `version` with the typed replica count. */
  scale(version: string): Promise<boolean> {
    const found = this.current?.versions.find(v => v.version === version);
    const count = replicaCount(found ? this.replicaDraft(found) : '');
    if ('error' in count) {
      return this._fail(count.error);
    }
    return this._act('scale', () => this.api.scale(this.name, version, count.replicas));
  }

  /** Remove one version (it must get no traffic). */
  removeVersion(version: string): Promise<boolean> {
    return this._act('remove', async () => {
      await this.api.undeploy(this.name, version);
      return this.api.getDeployment(this.name);
    });
  }

  /** Remove the whole deployment; polling stops once it is gone. */
  undeploy(): Promise<boolean> {
    return this._act('undeploy', async () => {
      await this.api.undeploy(this.name);
      this.stop();
      return null;
    });
  }

  /** Run one action: busy while it runs, then the deployment it answers, or its error. */
  private async _act(
    action: DeploymentAction,
    call: () => Promise<Deployment | null>
  ): Promise<boolean> {
    if (this.busy) {
      return false;
    }
    this.busy = action;
    this.actionError = null;
    this.emitChanged();
    let done = false;
    try {
      const deployment = await call();
      if (deployment) {
        this.current = deployment;
        this.trafficDrafts = {};
        this.replicaDrafts = {};
      }
      done = true;
    } catch (error) {
      this.actionError = errorMessage(error);
    }
    this.busy = null;
    this.emitChanged();
    return done;
  }

  private async _fail(message: string): Promise<boolean> {
    this.actionError = message;
    this.emitChanged();
    return false;
  }

  private _showPrediction(predictions: unknown[] | null, error: string | null): void {
    this.predicting = false;
    this.predictions = predictions;
    this.predictError = error;
    this.emitChanged();
  }

  private _predictSeq = 0;
}
