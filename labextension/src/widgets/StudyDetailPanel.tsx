import { MainAreaWidget } from '@jupyterlab/apputils';
import { ReactWidget } from '@jupyterlab/ui-components';
import { Message } from '@lumino/messaging';
import React, { useMemo, useState } from 'react';

import { formatNumber } from '../chart';
import { ElapsedTime } from '../components/ElapsedTime';
import { ErrorMessage } from '../components/ErrorMessage';
import { LineChart } from '../components/LineChart';
import { RefreshButton } from '../components/RefreshButton';
import { StatusBadge } from '../components/StatusBadge';
import { TrialsTable } from '../components/TrialsTable';
import { useModel } from '../components/useModel';
import { StudyDetailModel } from '../model';
import { errorMessage } from '../polling';
import { objectiveSeries, studyProgress } from '../summaries';
import { Study, isActive } from '../tokens';
import { cloudIcon } from '../icons';
import { IDetailActions, confirmDelete } from './JobDetailPanel';

/** The body of a study's panel; polls while shown, until the study has finished. */
export class StudyDetailView extends ReactWidget {
  constructor(
    readonly model: StudyDetailModel,
    private _actions: IDetailActions
  ) {
    super();
    this.addClass('jp-cloudml-detail');
  }

  protected onAfterShow(msg: Message): void {
    super.onAfterShow(msg);
    this.model.resume();
  }

  protected onAfterHide(msg: Message): void {
    super.onAfterHide(msg);
    this.model.pause();
  }

  protected render(): JSX.Element {
    return <StudyDetail model={this.model} actions={this._actions} />;
  }
}

/** A main-area panel with one tuning study: best trial, trials table, objective chart. */
export class StudyDetailPanel extends MainAreaWidget<StudyDetailView> {
  constructor(options: { studyId: string; actions: IDetailActions }) {
    const model = new StudyDetailModel({ api: options.actions.api, studyId: options.studyId });
    const actions: IDetailActions = {
      ...options.actions,
      onDeleted: () => {
        options.actions.onDeleted();
        this.dispose();
      }
    };
    super({ content: new StudyDetailView(model, actions) });
    this.id = StudyDetailPanel.widgetId(options.studyId);
    this.title.label = options.studyId;
    this.title.caption = `CloudML study ${options.studyId}`;
    this.title.icon = cloudIcon;
    this.title.closable = true;
    model.changed.connect(() => {
      if (model.study) {
        this.title.label = model.study.name;
        this.title.caption = `CloudML study ${model.study.name} (${model.studyId}): ${model.study.status}`;
      }
    });
    model.start();
  }

  /** The DOM id of a study's panel. */
  static widgetId(studyId: string): string {
    return `cloudml-study-${studyId}`;
  }

  dispose(): void {
    if (this.isDisposed) {
      return;
    }
    this.content.model.dispose();
    super.dispose();
  }
}

function StudyDetail(props: { model: StudyDetailModel; actions: IDetailActions }) {
  const model = useModel(props.model);
  const { actions } = props;
  const [busy, setBusy] = useState(false);
  const [actionError, setActionError] = useState<string | null>(null);
  const study = model.study;

  const run = async (action: () => Promise<unknown>): Promise<void> => {
    setBusy(true);
    setActionError(null);
    try {
      await action();
    } catch (error) {
      setActionError(errorMessage(error));
    } finally {
      setBusy(false);
    }
  };

  if (!study) {
    return (
      <div className="jp-cloudml-detail-body">
        <h2 className="jp-cloudml-title">{model.studyId}</h2>
        <div className="jp-cloudml-actions">
          <RefreshButton onClick={() => void model.refresh()} />
        </div>
        <ErrorMessage
          message={model.error}
          title="Cannot load the study"
          onRetry={() => void model.refresh()}
        />
        {!model.error && <div className="jp-cloudml-empty">Loading…</div>}
      </div>
    );
  }

  const active = isActive(study.status);
  const onCancel = () =>
    run(async () => {
      await actions.api.cancelStudy(study.id);
      await model.refresh();
    });
  const onDelete = () =>
    run(async () => {
      if (await confirmDelete(`study ${study.name} and its trials`)) {
        await actions.api.deleteStudy(study.id);
        actions.onDeleted();
      }
    });

  return (
    <div className="jp-cloudml-detail-body">
      <div className="jp-cloudml-header">
        <h2 className="jp-cloudml-title">{study.name}</h2>
        <StatusBadge status={study.status} />
        <span className="jp-cloudml-id">{study.id}</span>
        <ElapsedTime elapsed={study.elapsed} running={active} />
      </div>
      {study.reason && <div className="jp-cloudml-reason">{study.reason}</div>}
      <div className="jp-cloudml-actions">
        {active && (
          <button
            className="jp-cloudml-button"
            data-action="cancel"
            disabled={busy}
            onClick={() => void onCancel()}
          >
            Cancel
          </button>
        )}
        {!active && (
          <button
            className="jp-cloudml-button jp-mod-warn"
            data-action="delete"
            disabled={busy}
            onClick={() => void onDelete()}
          >
            Delete
          </button>
        )}
        <button
          className="jp-cloudml-button"
          data-action="tensorboard"
          disabled={busy}
          onClick={() => void run(() => actions.openTensorBoard([study.id]))}
        >
          Open TensorBoard
        </button>
        <RefreshButton onClick={() => void model.refresh()} />
      </div>
      <ErrorMessage message={actionError} title="Action failed" />
      <ErrorMessage message={model.error} title="Cannot refresh the study" />
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
          onOpenJob={actions.openJob}
        />
      </section>
    </div>
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
            <span className="jp-cloudml-muted">
              {Object.entries(best.params)
                .map(([k, v]) => `${k}=${typeof v === 'number' ? formatNumber(v) : v}`)
                .join(', ')}
            </span>
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
