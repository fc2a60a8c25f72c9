/**
 * Camera frame wire format: 4-byte big-endian header length H, H bytes of
 * UTF-8 JSON {seq, captured_at, width, height, format}, then the image bytes.
 */
export interface IFrameHeader {
  seq: number;
  captured_at: number;
  width: number;
  height: number;
  format: string;
  [key: string]: any;
}

export interface IFrame {
  header: IFrameHeader;
  /** The image bytes (a view into the message buffer). */
  image: Uint8Array;
}

const decoder =
  typeof TextDecoder !== 'undefined' ? new TextDecoder('utf-8') : null;

function utf8(bytes: Uint8Array): string {
  if (decoder) {
    return decoder.decode(bytes);
  }
  // Fallback (old test environments).
  let s = '';
  for (let i = 0; i < bytes.length; i++) {
    s += String.fromCharCode(bytes[i]);
  }
  return decodeURIComponent(escape(s));
}

/** Parse one binary camera message; throws on a malformed one. */
export function parseFrame(buffer: ArrayBuffer): IFrame {
  if (buffer.byteLength < 4) {
    throw new Error('frame too short');
  }
  const view = new DataView(buffer);
  const h = view.getUint32(0, false);
  if (4 + h > buffer.byteLength) {
    throw new Error(`frame header length ${h} exceeds message`);
  }
  const header = JSON.parse(utf8(new Uint8Array(buffer, 4, h))) as IFrameHeader;
  const image = new Uint8Array(buffer, 4 + h);
  return { header, image };
}

/** Build a binary camera message (tests and demos). */
export function encodeFrame(header: object, image: Uint8Array): ArrayBuffer {
  const json = new TextEncoder().encode(JSON.stringify(header));
  const out = new Uint8Array(4 + json.length + image.length);
  new DataView(out.buffer).setUint32(0, json.length, false);
  out.set(json, 4);
  out.set(image, 4 + json.length);
  return out.buffer;
}

/** base64 of bytes, chunked so large frames do not blow the stack. */
export function toBase64(bytes: Uint8Array): string {
  let binary = '';
  const chunk = 0x8000;
  for (let i = 0; i < bytes.length; i += chunk) {
    binary += String.fromCharCode.apply(
      null,
      Array.from(bytes.subarray(i, i + chunk))
    );
  }
  return btoa(binary);
}

/** `<board>-<YYYYmmdd-HHMMSS>.jpg`, board name made file-safe. */
export function snapshotName(board: string, date: Date = new Date()): string {
  const p = (n: number) => String(n).padStart(2, '0');
  const stamp =
    `${date.getFullYear()}${p(date.getMonth() + 1)}${p(date.getDate())}-` +
    `${p(date.getHours())}${p(date.getMinutes())}${p(date.getSeconds())}`;
  const safe = board.replace(/[^A-Za-z0-9._-]+/g, '_') || 'board';
  return `${safe}-${stamp}.jpg`;
}

/** Parse "640x480" into [640, 480]. */
export function parseResolution(text: string): [number, number] {
  const m = /^\s*(\d+)\s*[xX×]\s*(\d+)\s*$/.exec(text ?? '');
  if (!m) {
    return [640, 480];
  }
  return [parseInt(m[1], 10), parseInt(m[2], 10)];
}
