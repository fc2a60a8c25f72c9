import {
  JupyterFrontEnd,
  JupyterFrontEndPlugin
} from '@jupyterlab/application';

const plugin: JupyterFrontEndPlugin<void> = {
  id: 'jupyter-remote-device:plugin',
  description: 'Remote devices sidebar, commands and camera viewer.',
  autoStart: true,
  activate: (app: JupyterFrontEnd) => {
    console.log('jupyter-remote-device activated');
  }
};

export default plugin;
