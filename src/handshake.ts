/**
 * The server-version handshake (as jupyterlab-git does): GET version tells
 * whether the server extension is there and matches this frontend.
 */
import { ApiError, IDevicesApi } from './api';

/** What the version handshake found out about the server extension. */
export type ServerState =
  | { kind: 'unknown' }
  | { kind: 'ok'; version: string }
  | { kind: 'missing'; message: string }
  | { kind: 'mismatch'; version: string; frontend: string }
  | { kind: 'unreachable'; message: string };

/** GET version and compare it with the frontend's. */
export async function checkServer(
  api: Pick<IDevicesApi, 'version'>,
  frontendVersion: string
): Promise<ServerState> {
  try {
    const reply = await api.version();
    const version = String(reply?.version ?? '');
    return version === frontendVersion
      ? { kind: 'ok', version }
      : { kind: 'mismatch', version, frontend: frontendVersion };
  } catch (error) {
    const err = error as ApiError;
    if (err.status === 404) {
      return {
        kind: 'missing',
        message:
          'The jupyter-remote-device server extension is not installed or ' +
          'not enabled in this Jupyter server. Install the Python package ' +
          '(pip install jupyter-remote-device), check ' +
          '"jupyter server extension list", then restart Jupyter.'
      };
    }
    return { kind: 'unreachable', message: err?.message ?? String(error) };
  }
}
