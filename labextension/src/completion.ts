/**
 * Told when it ends: a model that watches the jobs and studies that are active while a notebook
 * is open, and signals each one it saw active once it has ended (with its final state). The
 * extension turns each into a JupyterLab notification. No DOM.
 */
import { ISignal, Signal } from '@lumino/signaling';

import { formatDuration } from './format';
import { PollingModel } from './polling';
import { ACTIVE_STATUSES, JobStatus, isActive } from './tokens';

/** Jobs and studies one poll asks for at most (the active ones only). */
export const WATCH_LIMIT = 500;

/** A job or study that ended while it was watched. */
export interface IEnded {
  kind: 'job' | 'study';
  id: string;
  name: string;
  status: JobStatus;
  reason?: string;
  elapsed: number | null;
}

/** How a notification says that a job or study ended, and its type. */
export function endedMessage(ended: IEnded): {
  message: string;
  type: 'success' | 'error' | 'warning';
} {
  const what = `${ended.kind === 'job' ? 'Job' : 'Study'} ${ended.name}`;
  const took = ended.elapsed !== null ? ` after ${formatDuration(ended.elapsed)}` : '';
  const why = ended.reason ? `: ${ended.reason}` : '';
  const type =
    ended.status === 'SUCCEEDED' ? 'success' : ended.status === 'FAILED' ? 'error' : 'warning';
  return { message: `${what} ${ended.status}${took}${why}`, type };
}

/**
 * Polls the active jobs (trials aside: their study speaks for them) and studies; an id seen
 * active and missing from the next answer has ended, and is fetched once for its final state.
 * Watching begins with the first answer: what had ended before is not told.
 */
export class CompletionWatcher extends PollingModel {
  /** Emitted once per job or study that ended while watched. */
  get ended(): ISignal<this, IEnded> {
    return this._ended;
  }

  /** The ids watched now, by kind. */
  get watching(): { jobs: string[]; studies: string[] } {
    return { jobs: [...this._jobs.keys()], studies: [...this._studies.keys()] };
  }

  async refresh(): Promise<void> {
    try {
      const [jobs, studies] = await Promise.all([
        this.api.listJobs({ status: ACTIVE_STATUSES, kind: 'job', limit: WATCH_LIMIT }),
        this.api.listStudies({ status: ACTIVE_STATUSES, limit: WATCH_LIMIT })
      ]);
      if (this.isDisposed) {
        return;
      }
      const jobNames = new Map(jobs.jobs.map(job => [job.id, job.name]));
      const studyNames = new Map(studies.studies.map(study => [study.id, study.name]));
      await Promise.all([
        ...this._gone(this._jobs, jobNames).map(id => this._tell('job', id)),
        ...this._gone(this._studies, studyNames).map(id => this._tell('study', id))
      ]);
      this._jobs = jobNames;
      this._studies = studyNames;
      this.error = null;
    } catch (error) {
      this.error = error instanceof Error ? error.message : String(error);
    }
    this.loaded = true;
    this.emitChanged();
  }

  /** Ids watched before that the server no longer lists as active. */
  private _gone(before: Map<string, string>, now: Map<string, string>): string[] {
    return [...before.keys()].filter(id => !now.has(id));
  }

  /** Fetch the final state of what ended, and signal it (not if it is active again: retried). */
  private async _tell(kind: 'job' | 'study', id: string): Promise<void> {
    let ended: IEnded;
    try {
      const found = kind === 'job' ? await this.api.getJob(id) : await this.api.getStudy(id);
      if (isActive(found.status)) {
        return;
      }
      const { name, status, reason, elapsed } = found;
      ended = { kind, id, name, status, reason, elapsed };
    } catch {
      return; // deleted meanwhile: nothing to tell
    }
    if (!this.isDisposed) {
      this._ended.emit(ended);
    }
  }

  private _jobs = new Map<string, string>();
  private _studies = new Map<string, string>();
  private _ended = new Signal<this, IEnded>(this);
}
