import { LabIcon } from '@jupyterlab/ui-components';

const cloudSvg = `<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 24 24" width="16" height="16">
  <path class="jp-icon3" fill="#616161" d="M19.35 10.04A7.49 7.49 0 0 0 12 4C9.11 4 6.6 5.64 5.35 8.04A5.994 5.994 0 0 0 0 14c0 3.31 2.69 6 6 6h13c2.76 0 5-2.24 5-5 0-2.64-2.05-4.78-4.65-4.96zM19 18H6c-2.21 0-4-1.79-4-4s1.79-4 4-4h.71C7.37 7.69 9.48 6 12 6a5.5 5.5 0 0 1 5.45 4.78l.15.96H19c1.65 0 3 1.35 3 3s-1.35 3-3 3z"/>
</svg>`;

/** The CloudML icon (sidebar tab, panels). */
export const cloudIcon = new LabIcon({ name: 'jupyter-cloudml:cloud', svgstr: cloudSvg });
