/**
 * REST and WebSocket access to the jupyter-remote-device server extension.
 *
 * Every URL is built from `ServerConnection.makeSettings()` so the frontend
 * works under any `base_url` (JupyterHub, SSH port forwarding, HTTPS).
 */
import { URLExt } from '@jupyterlab/coreutils';
import { ServerConnection } from '@jupyterlab/services';

/** The server extension's URL namespace. */
export const NAMESPACE = 'jupyter-remote-device';

export type DeviceStatus =
  'offline' | 'online' | 'connecting' | 'connected' | 'error';

export type DeviceSource = 'config' | 'manual' | 'probe' | 'mdns' | 'ssh';

export interface IDeviceInfo {
  hostname: string | null;
  model: string | null;
  platform: string | null;
  arch: string | null;
  python: string | null;
  /** the rpyc the board runs (a classic board's own; the agent's, which it brings) */
  rpyc_version?: string | null;
  agent_version: string | null;
  cpu_count: number | null;
  cpu_percent: number | null;
  mem_total: number | null;
  mem_available: number | null;
  temperature_c: number | null;
  uptime_s: number | null;
  cameras: any[] | null;
}

export interface IDevice {
  id: string;
  name: string;
  host: string;
  port: number;
  source: DeviceSource | string;
  status: DeviceStatus;
  kind: 'agent' | 'classic' | null;
  info: IDeviceInfo | null;
  error: string | null;
}

export type JobState = 'running' | 'done' | 'failed' | 'cancelled';

export interface IJob {
  id: string;
  kind: string;
  state: JobState;
  bytes_done: number;
  bytes_total: number;
  files_done: number;
  files_total: number;
  rate: number | null;
  error: string | null;
  verified: boolean | null;
  /** Where from and where to (push: workspace → device path; pull: the reverse). */
  source?: string;
  dest?: string;
  /** Added by the frontend when known (not part of the wire format). */
  device?: string;
}

/** Messages pushed on the `events` WebSocket. */
export type EventMessage =
  | { type: 'devices'; devices: IDevice[] }
  | { type: 'device'; device: IDevice }
  | { type: 'removed'; id: string }
  | { type: 'job'; job: IJob };

/**
 * An error answered by the server extension (`{message, reason}`), or a
 * network failure (status 0, reason `network`).
 */
export class ApiError extends Error {
  constructor(
    message: string,
    readonly status: number,
    readonly reason: string
  ) {
    super(message);
    this.name = 'ApiError';
  }
}

/** Settings used for every request; overridable in tests. */
let _settings: ServerConnection.ISettings | null = null;

export function serverSettings(): ServerConnection.ISettings {
  if (!_settings) {
    _settings = ServerConnection.makeSettings();
  }
  return _settings;
}

export function setServerSettings(
  settings: ServerConnection.ISettings | null
): void {
  _settings = settings;
}

/** The REST URL of an endpoint (path segments are joined, not encoded). */
export function apiUrl(endPoint = ''): string {
  return URLExt.join(serverSettings().baseUrl, NAMESPACE, endPoint);
}

/** The WebSocket URL of an endpoint, with an optional query. */
export function wsUrl(
  endPoint: string,
  query?: { [key: string]: string | number }
): string {
  const settings = serverSettings();
  let url = URLExt.join(settings.wsUrl, NAMESPACE, endPoint);
  const params: { [key: string]: string } = {};
  for (const [k, v] of Object.entries(query ?? {})) {
    params[k] = String(v);
  }
  if (settings.appendToken && settings.token) {
    params['token'] = settings.token;
  }
  const q = URLExt.objectToQueryString(params);
  if (q && q !== '?') {
    url += q;
  }
  return url;
}

/**
 * Call the server extension's REST API.
 *
 * Resolves with the parsed JSON body (or `null` for an empty reply, e.g. 204).
 * Rejects with an `ApiError` that carries the server's `message` and `reason`.
 */
export async function requestAPI<T = any>(
  endPoint = '',
  init: RequestInit = {}
): Promise<T> {
  const settings = serverSettings();
  const url = apiUrl(endPoint);
  let response: Response;
  try {
    response = await ServerConnection.makeRequest(url, init, settings);
  } catch (error) {
    throw new ApiError(
      `Cannot reach the Jupyter server: ${(error as Error).message ?? error}`,
      0,
      'network'
    );
  }
  const text = await response.text();
  let data: any = null;
  if (text.length > 0) {
    try {
      data = JSON.parse(text);
    } catch {
      data = text;
    }
  }
  if (!response.ok) {
    let message: string;
    let reason: string;
    if (data && typeof data === 'object' && data.message) {
      message = String(data.message);
      reason = String(data.reason ?? response.status);
    } else {
      message =
        response.status === 404
          ? `Not found: ${url}`
          : `${response.status} ${response.statusText || 'error'}`;
      reason = response.status === 404 ? 'not-found' : String(response.status);
    }
    throw new ApiError(message, response.status, reason);
  }
  return data as T;
}

/** JSON body helper. */
export function jsonBody(method: string, body?: unknown): RequestInit {
  const init: RequestInit = { method };
  if (body !== undefined) {
    init.body = JSON.stringify(body);
    init.headers = { 'Content-Type': 'application/json' };
  }
  return init;
}

/**
 * The REST calls the model uses, as an interface so tests can swap them.
 */
export interface IDevicesApi {
  version(): Promise<{ version: string }>;
  listDevices(): Promise<IDevice[]>;
  getDevice(id: string): Promise<IDevice>;
  addDevice(options: {
    host: string;
    port: number;
    name?: string;
    token?: string;
  }): Promise<IDevice>;
  removeDevice(id: string): Promise<void>;
  /** `takeOver`: explicitly take a board another user holds (409 in-use otherwise). */
  connect(id: string, token?: string, takeOver?: boolean): Promise<IDevice>;
  disconnect(id: string): Promise<void>;
  push(id: string, source: string, dest: string, sync?: boolean): Promise<IJob>;
  /** Copy a board file or folder into the workspace (a job of kind "pull"). */
  pull(id: string, source: string, dest: string): Promise<IJob>;
  getJob(id: string): Promise<IJob>;
  cancelJob(id: string): Promise<void>;
}

const enc = encodeURIComponent;

/** The real REST API. */
export const restApi: IDevicesApi = {
  version: () => requestAPI<{ version: string }>('version'),
  listDevices: async () =>
    (await requestAPI<{ devices: IDevice[] }>('devices')).devices ?? [],
  getDevice: id => requestAPI<IDevice>(`devices/${enc(id)}`),
  addDevice: options =>
    requestAPI<IDevice>('devices', jsonBody('POST', options)),
  removeDevice: async id => {
    await requestAPI(`devices/${enc(id)}`, { method: 'DELETE' });
  },
  connect: (id, token, takeOver) =>
    requestAPI<IDevice>(
      `devices/${enc(id)}/session`,
      jsonBody('POST', {
        ...(token ? { token } : {}),
        ...(takeOver ? { take_over: true } : {})
      })
    ),
  disconnect: async id => {
    await requestAPI(`devices/${enc(id)}/session`, { method: 'DELETE' });
  },
  push: (id, source, dest, sync) =>
    requestAPI<IJob>(
      `devices/${enc(id)}/push`,
      jsonBody(
        'POST',
        sync === undefined ? { source, dest } : { source, dest, sync }
      )
    ),
  pull: (id, source, dest) =>
    requestAPI<IJob>(
      `devices/${enc(id)}/pull`,
      jsonBody('POST', { source, dest })
    ),
  getJob: id => requestAPI<IJob>(`jobs/${enc(id)}`),
  cancelJob: async id => {
    await requestAPI(`jobs/${enc(id)}`, { method: 'DELETE' });
  }
};

/** Something that behaves like a browser WebSocket (tests use a fake). */
export interface ISocketLike {
  readyState: number;
  binaryType?: string;
  onopen: ((ev: any) => any) | null;
  onclose: ((ev: any) => any) | null;
  onerror: ((ev: any) => any) | null;
  onmessage: ((ev: any) => any) | null;
  send(data: any): void;
  close(code?: number, reason?: string): void;
}

export type SocketFactory = (url: string) => ISocketLike;

/** Open a real WebSocket with the server settings' constructor. */
export const defaultSocketFactory: SocketFactory = (url: string) => {
  const Ctor = serverSettings().WebSocket ?? WebSocket;
  return new Ctor(url) as unknown as ISocketLike;
};
