import { LabIcon } from '@jupyterlab/ui-components';

const boardSvg = `<svg xmlns="http://www.w3.org/2000/svg" width="16" height="16" viewBox="0 0 24 24">
  <g class="jp-icon3" fill="#616161">
    <path d="M9 2h1v3H9zM14 2h1v3h-1zM9 19h1v3H9zM14 19h1v3h-1zM2 9h3v1H2zM2 14h3v1H2zM19 9h3v1h-3zM19 14h3v1h-3z"/>
    <path d="M6 5h12a1 1 0 0 1 1 1v12a1 1 0 0 1-1 1H6a1 1 0 0 1-1-1V6a1 1 0 0 1 1-1zm1 2v10h10V7z"/>
    <circle cx="12" cy="12" r="2.5"/>
  </g>
</svg>`;

const cameraSvg = `<svg xmlns="http://www.w3.org/2000/svg" width="16" height="16" viewBox="0 0 24 24">
  <g class="jp-icon3" fill="#616161">
    <path d="M9 4 7.2 6H4a2 2 0 0 0-2 2v10a2 2 0 0 0 2 2h16a2 2 0 0 0 2-2V8a2 2 0 0 0-2-2h-3.2L15 4zm3 4.5a4.5 4.5 0 1 1 0 9 4.5 4.5 0 0 1 0-9zm0 2a2.5 2.5 0 1 0 0 5 2.5 2.5 0 0 0 0-5z"/>
  </g>
</svg>`;

const snapshotSvg = `<svg xmlns="http://www.w3.org/2000/svg" width="16" height="16" viewBox="0 0 24 24">
  <g class="jp-icon3" fill="#616161">
    <path d="M4 4h5V2H4a2 2 0 0 0-2 2v5h2zm16-2h-5v2h5v5h2V4a2 2 0 0 0-2-2zM4 15H2v5a2 2 0 0 0 2 2h5v-2H4zm16 5h-5v2h5a2 2 0 0 0 2-2v-5h-2z"/>
    <circle cx="12" cy="12" r="4"/>
  </g>
</svg>`;

export const boardIcon = new LabIcon({
  name: 'jupyter-remote-device:board',
  svgstr: boardSvg
});

export const cameraIcon = new LabIcon({
  name: 'jupyter-remote-device:camera',
  svgstr: cameraSvg
});

export const snapshotIcon = new LabIcon({
  name: 'jupyter-remote-device:snapshot',
  svgstr: snapshotSvg
});
