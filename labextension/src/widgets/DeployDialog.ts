/**
 * The dialog that asks how to deploy a study's best trial: the deployment's name, how its model
 * loads, and where the model is in the trial's job dir. No requests: it hands back a request.
 */
import { Dialog, showDialog } from '@jupyterlab/apputils';
import { Widget } from '@lumino/widgets';

import { bestTrialRequest, deploymentName } from '../deploymentmodel';
import { DeployRequest, ModelFramework, Study } from '../tokens';

/** The frameworks a deploy may name (`custom` needs a predictor class: the magic's job). */
const FRAMEWORKS: readonly ModelFramework[] = ['sklearn', 'xgboost', 'pytorch', 'onnx'];

/** The dialog's form. */
class DeployForm extends Widget {
  constructor(study: Study) {
    super({ node: document.createElement('div') });
    this.addClass('jp-cloudml-deploy-form');
    this._studyId = study.id;
    this._name = this._field('Deployment name', 'input', 'name') as HTMLInputElement;
    this._name.value = deploymentName(study.name);
    this._framework = this._field('Framework', 'select', 'framework') as HTMLSelectElement;
    for (const framework of FRAMEWORKS) {
      this._framework.add(new Option(framework, framework));
    }
    this._path = this._field('Model in the job dir', 'input', 'path') as HTMLInputElement;
    this._path.placeholder = 'e.g. model.joblib (empty: the whole job dir)';
    const best = study.best_trial;
    const note = document.createElement('p');
    note.className = 'jp-cloudml-muted';
    note.textContent = best
      ? `Serves what trial #${best.number} (job ${best.job_id}) left in its job dir.`
      : 'The study has no best trial yet.';
    this.node.appendChild(note);
  }

  getValue(): DeployRequest {
    return bestTrialRequest(this._studyId, {
      name: this._name.value,
      framework: this._framework.value as ModelFramework,
      path: this._path.value
    });
  }

  private _field(label: string, tag: 'input' | 'select', hook: string): HTMLElement {
    const row = document.createElement('label');
    row.className = 'jp-cloudml-form-row';
    row.textContent = label;
    const control = document.createElement(tag);
    control.className = tag === 'input' ? 'jp-mod-styled' : 'jp-mod-styled jp-cloudml-select';
    control.dataset.field = hook;
    row.appendChild(control);
    this.node.appendChild(row);
    return control;
  }

  private _studyId: string;
  private _name: HTMLInputElement;
  private _framework: HTMLSelectElement;
  private _path: HTMLInputElement;
}

/** Ask how to deploy a study's best trial; null when the user cancelled. */
export async function askDeployBestTrial(study: Study): Promise<DeployRequest | null> {
  const result = await showDialog({
    title: `Deploy the best trial of ${study.name}`,
    body: new DeployForm(study),
    buttons: [Dialog.cancelButton(), Dialog.okButton({ label: 'Deploy' })],
    focusNodeSelector: 'input[data-field="name"]'
  });
  return result.button.accept ? result.value : null;
}
