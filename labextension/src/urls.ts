import { PageConfig, URLExt } from '@jupyterlab/coreutils';

/**
 * The page address of a server-relative path such as a TensorBoard's `proxy/6006/`: under
 * the page's base URL, so that it works behind JupyterHub. Null for anything that would
 * leave the Jupyter server (an absolute path, a scheme, `..`).
 */
export function serverPageUrl(path: unknown): string | null {
  if (
    typeof path !== 'string' ||
    !path ||
    /^[a-z][a-z0-9+.-]*:/i.test(path) ||
    path.startsWith('/') ||
    path.startsWith('\\') ||
    path.split(/[/\\?#]/).includes('..')
  ) {
    return null;
  }
  return URLExt.join(PageConfig.getBaseUrl(), path);
}

/** The dashboard a TensorBoard opens on: the scalars (not the time series' settings pane). */
export const TENSORBOARD_DASHBOARD = 'scalars';

/** `serverPageUrl` of a TensorBoard, opening on `TENSORBOARD_DASHBOARD`. */
export function tensorBoardPageUrl(path: unknown): string | null {
  const url = serverPageUrl(path);
  return url === null || url.includes('#') ? url : `${url}#${TENSORBOARD_DASHBOARD}`;
}
