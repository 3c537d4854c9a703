import React, { useMemo, useState } from 'react';

import { formatNumber } from '../chart';
import { CopyButton } from '../components/CopyButton';
import { ErrorMessage } from '../components/ErrorMessage';
import { LineChart } from '../components/LineChart';
import { TrialsTable } from '../components/TrialsTable';
import { StudyDetailModel } from '../model';
import { errorMessage } from '../polling';
import { objectiveSeries, paramsText, studyProgress } from '../summaries';
import { Study } from '../tokens';
import { askDeployBestTrial } from './DeployDialog';
import {
  DetailActions,
  DetailHeader,
  DetailPanel,
  IDetailActions,
  IDetailBodyProps,
  IDetailKind
} from './DetailPanel';

/** How a study is named, cancelled and deleted in its panel. */
const STUDY: IDetailKind = {
  noun: 'study',
  deleteWhat: name => `study ${name} and its trials`,
  cancel: (api, id) => api.cancelStudy(id),
  remove: (api, id) => api.deleteStudy(id)
};

/** A main-area panel with one tuning study: best trial, trials table, objective chart. */
export class StudyDetailPanel extends DetailPanel<StudyDetailModel> {
  constructor(options: { studyId: string; actions: IDetailActions }) {
    super({
      id: StudyDetailPanel.widgetId(options.studyId),
      kind: STUDY,
      model: new StudyDetailModel({ api: options.actions.api, studyId: options.studyId }),
      actions: options.actions,
      body: StudyDetail
    });
  }

  /** The DOM id of a study's panel. */
  static widgetId(studyId: string): string {
    return `cloudml-study-${studyId}`;
  }
}

function StudyDetail(props: IDetailBodyProps<StudyDetailModel>) {
  const { model, object: study } = props;
  return (
    <div className="jp-cloudml-detail-body">
      <DetailHeader object={study} />
      <DetailActions object={study} model={model} kind={STUDY} actions={props.actions}>
        <DeployBestTrial study={study} actions={props.actions} />
        <CopyButton
          text={study.magic ?? ''}
          action="copy-magic"
          label="Copy magic"
          title="Copy the %%cloudml_train cell that starts this study again"
        />
      </DetailActions>
      <StudySummary study={study} />
      <section className="jp-cloudml-section">
        <h3>Objective</h3>
        <ObjectiveChart study={study} />
      </section>
      <section className="jp-cloudml-section">
        <h3>Trials</h3>
        <TrialsTable
          trials={study.trials}
          bestNumber={study.best_trial?.number ?? null}
          onOpenJob={props.actions.openJob}
        />
      </section>
    </div>
  );
}

/**
 * "Deploy best trial": asks for a deployment name (and how the model loads), deploys
 * `job:STUDY` (the study's best trial) and opens the deployment's panel.
 */
function DeployBestTrial(props: { study: Study; actions: IDetailActions }) {
  const { study, actions } = props;
  const [deploying, setDeploying] = useState<string | null>(null);
  const [error, setError] = useState<string | null>(null);
  const best = study.best_trial;
  const onDeploy = async (): Promise<void> => {
    const request = await askDeployBestTrial(study);
    if (!request) {
      return;
    }
    setDeploying(request.name);
    setError(null);
    try {
      await actions.api.deploy(request);
      actions.openDeployment?.(request.name);
    } catch (failure) {
      setError(`${request.name}: ${errorMessage(failure)}`);
    } finally {
      setDeploying(null);
    }
  };
  return (
    <>
      <button
        className="jp-cloudml-button"
        data-action="deploy-best"
        disabled={!best?.job_id || deploying !== null}
        title={
          best
            ? `Serve trial #${best.number} as an online endpoint`
            : 'The study has no best trial yet'
        }
        onClick={() => void onDeploy()}
      >
        {deploying ? `Deploying ${deploying}…` : 'Deploy best trial'}
      </button>
      <ErrorMessage message={error} title="Cannot deploy" />
    </>
  );
}

function StudySummary(props: { study: Study }) {
  const { study } = props;
  const { tuning, best_trial: best } = study;
  const { done, max } = studyProgress(study);
  const counts = Object.entries(study.counts)
    .filter(([, n]) => n > 0)
    .map(([status, n]) => `${n} ${status.toLowerCase()}`)
    .join(', ');
  return (
    <dl className="jp-cloudml-summary">
      <dt>Objective</dt>
      <dd>
        {String(tuning.goal ?? '').toLowerCase() || 'optimize'} <code>{tuning.metric ?? '?'}</code>
        {tuning.algorithm ? ` with ${tuning.algorithm}` : ''}
      </dd>
      <dt>Trials</dt>
      <dd>
        {done} of {max ?? '?'} done{counts ? ` (${counts})` : ''}
        {tuning.parallel_trials ? `, ${tuning.parallel_trials} in parallel` : ''}
      </dd>
      <dt>Best trial</dt>
      <dd className="jp-cloudml-best-summary">
        {best ? (
          <>
            #{best.number}: {typeof best.value === 'number' ? formatNumber(best.value) : '—'}{' '}
            <span className="jp-cloudml-muted">{paramsText(best.params)}</span>
          </>
        ) : (
          'none yet'
        )}
      </dd>
    </dl>
  );
}

function ObjectiveChart(props: { study: Study }) {
  const { study } = props;
  const series = useMemo(() => {
    const { values, best } = objectiveSeries(study);
    return [
      { name: 'value', points: values },
      { name: 'best so far', points: best }
    ];
  }, [study]);
  const metric = study.tuning.metric ?? 'objective';
  return <LineChart title={metric} metric={metric} series={series} xLabel="trial" />;
}
