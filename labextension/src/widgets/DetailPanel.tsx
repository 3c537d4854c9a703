/**
 * What the job, study and deployment panels share: the main-area widget that owns and polls a
 * detail model, the view before the first answer, the title and header, and the actions bar of
 * jobs and studies (cancel or delete, TensorBoard, refresh) with its errors. Each panel keeps
 * its own content in its module.
 */
import { Dialog, MainAreaWidget, showDialog } from '@jupyterlab/apputils';
import { ReactWidget } from '@jupyterlab/ui-components';
import { Message } from '@lumino/messaging';
import React, { useState } from 'react';

import { ElapsedTime } from '../components/ElapsedTime';
import { ErrorMessage } from '../components/ErrorMessage';
import { RefreshButton } from '../components/RefreshButton';
import { StatusBadge } from '../components/StatusBadge';
import { useModel } from '../components/useModel';
import { cloudIcon } from '../icons';
import { DetailModel, IDetailObject, IDetailSubject } from '../model';
import { errorMessage } from '../polling';
import { ICloudMLApi, isActive } from '../tokens';

/** What a detail panel needs from the application. */
export interface IDetailActions {
  api: ICloudMLApi;
  /** Open (or reuse) a TensorBoard over these job or study ids. */
  openTensorBoard: (ids: string[]) => Promise<unknown>;
  /** Called after the object was deleted (the panel closes itself). */
  onDeleted: () => void;
  /** Open another job's panel (trials of a study). */
  openJob?: (jobId: string) => void;
  /** Open a deployment's panel (after deploying a study's best trial). */
  openDeployment?: (name: string) => void;
}

/** A detail model, whatever its object. */
export type AnyDetailModel = DetailModel<IDetailSubject>;

/** How a kind of object is named in its panel. */
export interface IPanelKind {
  /** The object's noun in titles and messages: `job`, `study`, `deployment`. */
  noun: string;
}

/** How a kind of object (job or study) is named and acted on in its panel. */
export interface IDetailKind extends IPanelKind {
  /** What the delete dialog names, from the object's name. */
  deleteWhat: (name: string) => string;
  cancel: (api: ICloudMLApi, id: string) => Promise<unknown>;
  remove: (api: ICloudMLApi, id: string) => Promise<unknown>;
}

/** The props of a panel's own content, once its object has loaded. */
export interface IDetailBodyProps<M extends AnyDetailModel> {
  model: M;
  /** The object as last fetched. */
  object: NonNullable<M['current']>;
  actions: IDetailActions;
}

/** Ask before a destructive action; resolves to whether the user accepted. */
export async function confirmAction(options: {
  title: string;
  body: string;
  /** The label of the button that goes ahead, e.g. `Delete`. */
  accept: string;
  /** The label of the button that does nothing. */
  reject?: string;
}): Promise<boolean> {
  const result = await showDialog({
    title: options.title,
    body: options.body,
    buttons: [
      Dialog.cancelButton({ label: options.reject ?? 'Cancel' }),
      Dialog.warnButton({ label: options.accept })
    ]
  });
  return result.button.accept;
}

/** Ask before deleting; resolves to whether the user accepted. */
export function confirmDelete(what: string): Promise<boolean> {
  return confirmAction({
    title: `Delete ${what}?`,
    body: 'Its logs, metrics and outputs are deleted too. This cannot be undone.',
    accept: 'Delete'
  });
}

/** Ask before cancelling a running job or study; resolves to whether the user accepted. */
export function confirmCancel(what: string): Promise<boolean> {
  return confirmAction({
    title: `Cancel ${what}?`,
    body: 'Its running replicas are stopped now; what it wrote so far is kept.',
    accept: 'Cancel it',
    reject: 'Keep running'
  });
}

/** The body of a detail panel; its model polls while it is shown. */
export class DetailView<M extends AnyDetailModel> extends ReactWidget {
  constructor(
    readonly model: M,
    private _kind: IPanelKind,
    private _actions: IDetailActions,
    private _body: React.ComponentType<IDetailBodyProps<M>>
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
    return (
      <DetailBody model={this.model} kind={this._kind} actions={this._actions} body={this._body} />
    );
  }
}

/** Options of a detail panel. */
export interface IDetailPanelOptions<M extends AnyDetailModel> {
  /** The DOM id of the panel. */
  id: string;
  kind: IPanelKind;
  /** The model shown; the panel starts it and disposes of it. */
  model: M;
  actions: IDetailActions;
  /** The panel's own content, once the object has loaded. */
  body: React.ComponentType<IDetailBodyProps<M>>;
}

/**
 * A closable main-area panel with one job, study or deployment, titled with its name and
 * status. It polls while shown and closes itself once the object was deleted.
 */
export class DetailPanel<M extends AnyDetailModel> extends MainAreaWidget<DetailView<M>> {
  constructor(options: IDetailPanelOptions<M>) {
    const { model, kind } = options;
    const actions: IDetailActions = {
      ...options.actions,
      onDeleted: () => {
        options.actions.onDeleted();
        this.dispose();
      }
    };
    super({ content: new DetailView(model, kind, actions, options.body) });
    this.id = options.id;
    this.title.label = model.id;
    this.title.caption = `CloudML ${kind.noun} ${model.id}`;
    this.title.icon = cloudIcon;
    this.title.closable = true;
    model.changed.connect(() => {
      const object = model.current;
      if (object) {
        this.title.label = object.name;
        const id = object.name === model.id ? '' : ` (${model.id})`;
        this.title.caption = `CloudML ${kind.noun} ${object.name}${id}: ${object.status}`;
      }
    });
    model.start();
  }

  dispose(): void {
    if (this.isDisposed) {
      return;
    }
    this.content.model.dispose();
    super.dispose();
  }
}

/** Re-renders on every change of the model: `body` once the object has loaded, else a stand-in. */
function DetailBody<M extends AnyDetailModel>(props: {
  model: M;
  kind: IPanelKind;
  actions: IDetailActions;
  body: React.ComponentType<IDetailBodyProps<M>>;
}) {
  const model = useModel(props.model);
  const object = model.current;
  if (!object) {
    return <DetailLoading model={model} kind={props.kind} />;
  }
  const Body = props.body;
  return <Body model={model} object={object} actions={props.actions} />;
}

/** A panel's body before the object's first answer: loading, or why it cannot load. */
function DetailLoading(props: { model: AnyDetailModel; kind: IPanelKind }) {
  const { model } = props;
  return (
    <div className="jp-cloudml-detail-body">
      <h2 className="jp-cloudml-title">{model.id}</h2>
      <div className="jp-cloudml-actions">
        <RefreshButton onClick={() => void model.refresh()} />
      </div>
      <ErrorMessage
        message={model.error}
        title={`Cannot load the ${props.kind.noun}`}
        onRetry={() => void model.refresh()}
      />
      {!model.error && <div className="jp-cloudml-empty">Loading…</div>}
    </div>
  );
}

/** Name and status of any object (then `children`), and its reason. */
export function DetailTitle(props: { object: IDetailSubject; children?: React.ReactNode }) {
  const { object } = props;
  return (
    <>
      <div className="jp-cloudml-header">
        <h2 className="jp-cloudml-title">{object.name}</h2>
        <StatusBadge status={object.status} />
        {props.children}
      </div>
      {object.reason && <div className="jp-cloudml-reason">{object.reason}</div>}
    </>
  );
}

/** Name, status, id and elapsed time of a job or study (then `children`), and its reason. */
export function DetailHeader(props: { object: IDetailObject; children?: React.ReactNode }) {
  const { object } = props;
  return (
    <DetailTitle object={object}>
      <span className="jp-cloudml-id">{object.id}</span>
      <ElapsedTime elapsed={object.elapsed} running={isActive(object.status)} />
      {props.children}
    </DetailTitle>
  );
}

/**
 * The actions of a loaded job or study: cancel while active, else delete; TensorBoard; the
 * panel's own buttons (`children`); refresh. Then the errors of the last action and refresh.
 */
export function DetailActions(props: {
  object: IDetailObject;
  model: AnyDetailModel;
  kind: IDetailKind;
  actions: IDetailActions;
  children?: React.ReactNode;
}) {
  const { object, model, kind, actions } = props;
  const [busy, setBusy] = useState(false);
  const [actionError, setActionError] = useState<string | null>(null);

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
  const onCancel = () =>
    run(async () => {
      if (await confirmCancel(`${kind.noun} ${object.name}`)) {
        await kind.cancel(actions.api, object.id);
        await model.refresh();
      }
    });
  const onDelete = () =>
    run(async () => {
      if (await confirmDelete(kind.deleteWhat(object.name))) {
        await kind.remove(actions.api, object.id);
        actions.onDeleted();
      }
    });
  const active = isActive(object.status);

  return (
    <>
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
          onClick={() => void run(() => actions.openTensorBoard([object.id]))}
        >
          Open TensorBoard
        </button>
        {props.children}
        <RefreshButton onClick={() => void model.refresh()} />
      </div>
      <ErrorMessage message={actionError} title="Action failed" />
      <ErrorMessage message={model.error} title={`Cannot refresh the ${kind.noun}`} />
    </>
  );
}
