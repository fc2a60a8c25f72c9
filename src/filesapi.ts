/**
 * REST calls on a board's files (relative to the agent's `--root`):
 * list, mkdir, rename, delete and a streamed download with progress.
 */
import { ServerConnection } from '@jupyterlab/services';

import { ApiError, apiUrl, jsonBody, requestAPI, serverSettings } from './api';

export interface IFileEntry {
  name: string;
  type: 'file' | 'directory';
  size: number;
  mtime: number;
}

export interface IFileListing {
  path: string;
  entries: IFileEntry[];
}

/** The calls the file tree makes, as an interface so tests can swap them. */
export interface IFilesApi {
  list(id: string, path: string): Promise<IFileListing>;
  mkdir(id: string, path: string): Promise<void>;
  rename(id: string, path: string, newPath: string): Promise<void>;
  remove(id: string, path: string, recursive?: boolean): Promise<void>;
  /** GET the raw bytes; `onProgress(done, total)` while they arrive. */
  download(
    id: string,
    path: string,
    onProgress?: (done: number, total: number) => void,
    signal?: AbortSignal
  ): Promise<Uint8Array>;
  /**
   * PUT the bytes as a board file: the board writes a temp file and renames it
   * into place once the sha256 matches.
   */
  upload(
    id: string,
    path: string,
    data: Uint8Array
  ): Promise<{ path: string; size: number; sha256: string }>;
}

const enc = encodeURIComponent;

function filesUrl(id: string, path: string, extra = ''): string {
  return `devices/${enc(id)}/files${extra}?path=${enc(path)}`;
}

/** Read a response body chunk by chunk, reporting progress. */
export async function readWithProgress(
  response: Response,
  onProgress?: (done: number, total: number) => void
): Promise<Uint8Array> {
  const total =
    parseInt(response.headers.get('Content-Length') ?? '0', 10) || 0;
  const body = response.body as ReadableStream<Uint8Array> | null;
  if (!body || typeof body.getReader !== 'function') {
    const buf = new Uint8Array(await response.arrayBuffer());
    onProgress?.(buf.length, total || buf.length);
    return buf;
  }
  const reader = body.getReader();
  const chunks: Uint8Array[] = [];
  let done = 0;
  for (;;) {
    const { value, done: finished } = await reader.read();
    if (finished) {
      break;
    }
    if (value) {
      chunks.push(value);
      done += value.length;
      onProgress?.(done, total);
    }
  }
  const out = new Uint8Array(done);
  let offset = 0;
  for (const c of chunks) {
    out.set(c, offset);
    offset += c.length;
  }
  return out;
}

/** Base64 of binary data (in slices, so big files do not blow the stack). */
export function bytesToBase64(data: Uint8Array): string {
  let binary = '';
  const STEP = 0x8000;
  for (let i = 0; i < data.length; i += STEP) {
    binary += String.fromCharCode.apply(
      null,
      Array.from(data.subarray(i, i + STEP))
    );
  }
  return btoa(binary);
}

export const restFilesApi: IFilesApi = {
  list: (id, path) => requestAPI<IFileListing>(filesUrl(id, path)),
  mkdir: async (id, path) => {
    await requestAPI(
      `devices/${enc(id)}/files`,
      jsonBody('POST', { path, type: 'directory' })
    );
  },
  rename: async (id, path, newPath) => {
    await requestAPI(filesUrl(id, path), jsonBody('PATCH', { path: newPath }));
  },
  remove: async (id, path, recursive = false) => {
    await requestAPI(
      filesUrl(id, path) + (recursive ? '&recursive=true' : ''),
      { method: 'DELETE' }
    );
  },
  download: async (id, path, onProgress, signal) => {
    const response = await contentRequest(id, path, { method: 'GET', signal });
    return readWithProgress(response, onProgress);
  },
  upload: async (id, path, data) => {
    const response = await contentRequest(id, path, {
      method: 'PUT',
      body: data as BodyInit,
      headers: { 'Content-Type': 'application/octet-stream' }
    });
    return response.json();
  }
};

/** A request on `files/content`; rejects with the server's {message, reason}. */
async function contentRequest(
  id: string,
  path: string,
  init: RequestInit
): Promise<Response> {
  const url = apiUrl(filesUrl(id, path, '/content'));
  let response: Response;
  try {
    response = await ServerConnection.makeRequest(url, init, serverSettings());
  } catch (error) {
    throw new ApiError(
      `Cannot reach the Jupyter server: ${(error as Error).message ?? error}`,
      0,
      'network'
    );
  }
  if (!response.ok) {
    let message = `${response.status} ${response.statusText || 'error'}`;
    let reason = String(response.status);
    try {
      const data = JSON.parse(await response.text());
      message = data.message ?? message;
      reason = data.reason ?? reason;
    } catch {
      // not JSON
    }
    throw new ApiError(message, response.status, reason);
  }
  return response;
}
