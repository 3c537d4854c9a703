import { Clipboard } from '@jupyterlab/apputils';
import React from 'react';

import { ErrorMessage } from '../components/ErrorMessage';
import { RefreshButton } from '../components/RefreshButton';
import { StatusBadge } from '../components/StatusBadge';
import { curlCommand, protocolUrls } from '../endpoint';
import { formatTime } from '../format';
import { DeploymentDetailModel } from '../model';
import { Deployment, DeploymentVersion } from '../tokens';
import {
  DetailPanel,
  DetailTitle,
  IDetailActions,
  IDetailBodyProps,
  IPanelKind
} from './DetailPanel';

/**
 * How a deployment is named in its panel. It has no cancel or delete: undeploying stays a
 * magic and CLI action.
 */
const DEPLOYMENT: IPanelKind = { noun: 'deployment' };

/**
 * A main-area panel with one deployment: its endpoint and protocol paths, a curl command, its
 * versions with their traffic and replicas, and a box that asks it for predictions.
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
      <div className="jp-cloudml-actions">
        <RefreshButton onClick={() => void model.refresh()} />
      </div>
      <ErrorMessage message={model.error} title="Cannot refresh the deployment" />
      <section className="jp-cloudml-section">
        <h3>Endpoint</h3>
        <EndpointSummary deployment={deployment} />
      </section>
      <section className="jp-cloudml-section">
        <h3>Versions</h3>
        {deployment.versions.length ? (
          deployment.versions.map(version => (
            <VersionTable key={version.version} version={version} />
          ))
        ) : (
          <div className="jp-cloudml-empty">No versions.</div>
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
        <button
          className="jp-cloudml-button"
          data-action="copy-curl"
          title="Copy a curl command that asks this endpoint for predictions"
          onClick={() => Clipboard.copyToSystem(curl)}
        >
          Copy
        </button>
      </dd>
    </dl>
  );
}

/** One version: traffic share, framework, model, readiness, then its replicas. */
function VersionTable(props: { version: DeploymentVersion }) {
  const { version } = props;
  return (
    <div className="jp-cloudml-version" data-version={version.version}>
      <dl className="jp-cloudml-summary">
        <dt>Version</dt>
        <dd>
          <strong>{version.version}</strong>
        </dd>
        <dt>Traffic</dt>
        <dd className="jp-cloudml-traffic">{version.traffic}%</dd>
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
