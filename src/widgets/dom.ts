/**
 * The small DOM builder of the Devices sidebar and its panels (sidebar, rows, room bar, files
 * tree, transfers).
 */

/** Small DOM builder. */
export function h(
  tag: string,
  attrs: { [key: string]: string | undefined } = {},
  ...children: (Node | string | null | undefined | false)[]
): HTMLElement {
  const el = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) {
    if (v !== undefined) {
      el.setAttribute(k, v);
    }
  }
  for (const c of children) {
    if (c === null || c === undefined || c === false) {
      continue;
    }
    el.appendChild(typeof c === 'string' ? document.createTextNode(c) : c);
  }
  return el;
}
