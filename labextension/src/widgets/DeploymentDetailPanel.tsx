import React from 'react';

import { CopyButton } from '../components/CopyButton';
import { ErrorMessage } from '../components/ErrorMessage';
import { RefreshButton } from '../components/RefreshButton';
import { StatusBadge } from '../components/StatusBadge';
import { curlCommand, protocolUrls } from '../endpoint';
import { formatTime } from '../format';
import { DeploymentDetailModel, MAX_REPLICAS } from '../deploymentmodel';
import { Deployment, DeploymentVersion } from '../tokens';
import {
  DetailPanel,
  DetailTitle,
  IDetailActions,
  IDetailBodyProps,
  IPanelKind,
  confirmAction
} from './DetailPanel';

/** How a deployment is named in its panel. */
const DEPLOYMENT: IPanelKind = { noun: 'deployment' };

/** What the busy buttons say while their action runs. */
const BUSY_LABELS = {
  traffic: 'Applying…',
  rollback: 'Rolling back…',
  scale: 'Scaling…',
  undeploy: 'Undeploying…',
  remove: 'Removing…'
};

/**
 * A main-area panel with one deployment: its endpoint and protocol paths, a curl command, its
 * versions with their traffic and replicas (split, roll back, scale, remove a version,
 * undeploy), and a box that asks it for predictions.
 */
export class DeploymentDetailPanel extends DetailPanel<DeploymentDetailModel> {
  constructor(options: { name: string; actions: IDetailActions }) {
    super({
      id: DeploymentDetailPanel.widgetId(options.name),
      kind: DEPLOYMENT,
      model: new DeploymentDetailModel({ api: options.actions.api, name: options.name }),
      actions: options.actions,
      body: DeploymentDetail
    });
  }

  /** The DOM id of a deployment's panel. */
  static widgetId(name: string): string {
    return `cloudml-deployment-${name}`;
  }
}

function DeploymentDetail(props: IDetailBodyProps<DeploymentDetailModel>) {
  const { model, object: deployment } = props;
  const { ready, total } = deployment.replicas;
  return (
    <div className="jp-cloudml-detail-body">
      <DetailTitle object={deployment}>
        <span className="jp-cloudml-progress" title="Replicas ready / total">
          {ready}/{total} ready
        </span>
        {deployment.created ? (
          <span className="jp-cloudml-muted">created {formatTime(deployment.created)}</span>
        ) : null}
      </DetailTitle>
      <DeploymentActions model={model} deployment={deployment} actions={props.actions} />
      <ErrorMessage message={model.error} title="Cannot refresh the deployment" />
      <section className="jp-cloudml-section">
        <h3>Endpoint</h3>
        <EndpointSummary deployment={deployment} />
      </section>
      <section className="jp-cloudml-section">
        <h3>Versions</h3>
        {deployment.versions.length ? (
          deployment.versions.map(version => (
            <VersionTable
              key={version.version}
              model={model}
              version={version}
              several={deployment.versions.length > 1}
            />
          ))
        ) : (
          <div className="jp-cloudml-empty">No versions.</div>
        )}
        {deployment.versions.length > 1 && (
          <div className="jp-cloudml-actions">
            <button
              className="jp-cloudml-button"
              data-action="apply-traffic"
              disabled={model.busy !== null}
              title="Split the requests that name no version as typed above"
              onClick={() => void model.applyTraffic()}
            >
              {model.busy === 'traffic' ? BUSY_LABELS.traffic : 'Apply traffic split'}
            </button>
          </div>
        )}
      </section>
      <section className="jp-cloudml-section">
        <h3>Try it</h3>
        <TryIt model={model} deployment={deployment} />
      </section>
    </div>
  );
}

/** The endpoint's base URL, its v1 and v2 paths, and a curl command to copy. */
function EndpointSummary(props: { deployment: Deployment }) {
  const { deployment } = props;
  const urls = protocolUrls(deployment);
  const curl = curlCommand(deployment);
  return (
    <dl className="jp-cloudml-summary jp-cloudml-endpoint">
      <dt>URL</dt>
      <dd>
        <code data-endpoint="url">{deployment.url}</code>
      </dd>
      <dt>KServe v1</dt>
      <dd>
        POST <code data-endpoint="v1">{urls.v1}</code>
      </dd>
      <dt>Open Inference (v2)</dt>
      <dd>
        POST <code data-endpoint="v2">{urls.v2}</code>
      </dd>
      <dt>curl</dt>
      <dd className="jp-cloudml-curl">
        <pre>{curl}</pre>
        <CopyButton
          text={curl}
          action="copy-curl"
          title="Copy a curl command that asks this endpoint for predictions"
        />
      </dd>
    </dl>
  );
}

/** Roll back, undeploy (after asking), refresh; then why the last action failed. */
function DeploymentActions(props: {
  model: DeploymentDetailModel;
  deployment: Deployment;
  actions: IDetailActions;
}) {
  const { model, deployment, actions } = props;
  const onUndeploy = async (): Promise<void> => {
    const sure = await confirmAction({
      title: `Undeploy ${deployment.name}?`,
      body: `Its endpoint ${deployment.url} and every version's replicas stop; requests to it fail.`,
      accept: 'Undeploy'
    });
    if (sure && (await model.undeploy())) {
      actions.onDeleted();
    }
  };
  return (
    <>
      <div className="jp-cloudml-actions">
        <button
          className="jp-cloudml-button"
          data-action="rollback"
          disabled={model.busy !== null || deployment.versions.length < 2}
          title="Send every request back to the version deployed before the one serving most"
          onClick={() => void model.rollback()}
        >
          {model.busy === 'rollback' ? BUSY_LABELS.rollback : 'Roll back'}
        </button>
        <button
          className="jp-cloudml-button jp-mod-warn"
          data-action="undeploy"
          disabled={model.busy !== null}
          onClick={() => void onUndeploy()}
        >
          {model.busy === 'undeploy' ? BUSY_LABELS.undeploy : 'Undeploy'}
        </button>
        <RefreshButton onClick={() => void model.refresh()} />
      </div>
      <ErrorMessage message={model.actionError} title="Action failed" />
    </>
  );
}

/**
 * One version: traffic share (editable when there are several), framework, model, readiness
 * and replicas (scalable), then its replicas; a version without traffic can be removed.
 */
function VersionTable(props: {
  model: DeploymentDetailModel;
  version: DeploymentVersion;
  several: boolean;
}) {
  const { model, version, several } = props;
  const busy = model.busy !== null;
  const onRemove = async (): Promise<void> => {
    const sure = await confirmAction({
      title: `Remove version ${version.version} of ${model.name}?`,
      body: 'Its replicas stop; the other versions keep serving.',
      accept: 'Remove'
    });
    if (sure) {
      await model.removeVersion(version.version);
    }
  };
  return (
    <div className="jp-cloudml-version" data-version={version.version}>
      <dl className="jp-cloudml-summary">
        <dt>Version</dt>
        <dd>
          <strong>{version.version}</strong>
          {several && version.traffic === 0 && (
            <button
              className="jp-cloudml-link"
              data-action="remove-version"
              disabled={busy}
              title="Remove this version (it gets no traffic)"
              onClick={() => void onRemove()}
            >
              {model.busy === 'remove' ? BUSY_LABELS.remove : 'Remove'}
            </button>
          )}
        </dd>
        <dt>Traffic</dt>
        <dd className="jp-cloudml-traffic">
          {several ? (
            <>
              <input
                className="jp-cloudml-number"
                type="number"
                min={0}
                max={100}
                aria-label={`Traffic percent of ${version.version}`}
                data-traffic={version.version}
                value={model.trafficDraft(version)}
                onChange={event => model.setTrafficDraft(version.version, event.target.value)}
              />
              % <span className="jp-cloudml-muted">(now {version.traffic}%)</span>
            </>
          ) : (
            `${version.traffic}%`
          )}
        </dd>
        <dt>Framework</dt>
        <dd>
          {version.framework}
          {version.predictor ? ` (${version.predictor})` : ''}
        </dd>
        <dt>Model</dt>
        <dd>
          <code>{version.model}</code>
        </dd>
        <dt>Ready</dt>
        <dd>
          {version.ready}/{version.replicas.length}
        </dd>
        <dt>Replicas</dt>
        <dd className="jp-cloudml-scale">
          <input
            className="jp-cloudml-number"
            type="number"
            min={1}
            max={MAX_REPLICAS}
            aria-label={`Replicas of ${version.version}`}
            data-replicas={version.version}
            value={model.replicaDraft(version)}
            onChange={event => model.setReplicaDraft(version.version, event.target.value)}
          />
          <button
            className="jp-cloudml-button"
            data-action="scale"
            disabled={busy}
            title={`Serve ${version.version} with this many replicas`}
            onClick={() => void model.scale(version.version)}
          >
            {model.busy === 'scale' ? BUSY_LABELS.scale : 'Scale'}
          </button>
        </dd>
      </dl>
      {version.replicas.length ? (
        <table className="jp-cloudml-table jp-cloudml-replicas">
          <thead>
            <tr>
              <th>Replica</th>
              <th>Status</th>
              <th>Restarts</th>
              <th>Reason</th>
            </tr>
          </thead>
          <tbody>
            {version.replicas.map(replica => (
              <tr key={replica.name} data-replica={replica.name}>
                <td>{replica.name}</td>
                <td>
                  <StatusBadge status={replica.status} className="jp-cloudml-replica-status" />
                </td>
                <td>{replica.restarts}</td>
                <td>{replica.status === 'READY' ? '' : replica.reason || ''}</td>
              </tr>
            ))}
          </tbody>
        </table>
      ) : (
        <div className="jp-cloudml-empty">No replicas yet.</div>
      )}
    </div>
  );
}

/** Rows typed as JSON, the version to ask, and the predictions or why there are none. */
function TryIt(props: { model: DeploymentDetailModel; deployment: Deployment }) {
  const { model, deployment } = props;
  return (
    <div className="jp-cloudml-tryit-box">
      <textarea
        className="jp-cloudml-tryit"
        aria-label="Rows to predict, as JSON"
        rows={4}
        spellCheck={false}
        value={model.input}
        onChange={event => model.setInput(event.target.value)}
      />
      <div className="jp-cloudml-actions">
        {deployment.versions.length > 1 && (
          <select
            className="jp-cloudml-select"
            aria-label="Version"
            value={model.version ?? ''}
            onChange={event => model.setVersion(event.target.value)}
          >
            <option value="">Traffic split</option>
            {deployment.versions.map(version => (
              <option key={version.version} value={version.version}>
                {version.version}
              </option>
            ))}
          </select>
        )}
        <button
          className="jp-cloudml-button"
          data-action="predict"
          disabled={model.predicting}
          onClick={() => void model.predict()}
        >
          {model.predicting ? 'Predicting…' : 'Predict'}
        </button>
      </div>
      <ErrorMessage message={model.predictError} title="Prediction failed" />
      {model.predictions && (
        <pre className="jp-cloudml-predictions">{JSON.stringify(model.predictions, null, 2)}</pre>
      )}
      {!model.predictions && !model.predictError && (
        <div className="jp-cloudml-muted">
          One row per instance, e.g. <code>[[1.0, 2.0], [3.0, 4.0]]</code>; the server asks the
          endpoint and shows its predictions here.
        </div>
      )}
    </div>
  );
}
