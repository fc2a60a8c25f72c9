/**
 * DOM helpers of the vision panel (sections, buttons, selects) and the rows of
 * the threshold editor (a number and a slider per end of each channel's range).
 */
import { CHANNELS, SPACES } from './stats';
import { IThreshold } from './threshold';

export function section(
  parent: HTMLElement,
  title: string,
  cls: string
): HTMLElement {
  const sec = document.createElement('section');
  sec.className = `jp-RemoteDevice-toolsSection ${cls}`;
  const h = document.createElement('h3');
  h.textContent = title;
  sec.appendChild(h);
  parent.appendChild(sec);
  return sec;
}

export function button(
  parent: HTMLElement,
  label: string,
  cls: string,
  title: string,
  fn: () => void
): HTMLButtonElement {
  const b = document.createElement('button');
  b.className = `jp-Button jp-mod-minimal jp-mod-styled ${cls}`;
  b.textContent = label;
  b.title = title;
  b.addEventListener('click', fn);
  parent.appendChild(b);
  return b;
}

export function select(
  parent: HTMLElement,
  cls: string,
  title: string,
  options: [string, string][],
  value: string,
  fn: (v: string) => void
): HTMLSelectElement {
  const s = document.createElement('select');
  s.className = `jp-mod-styled ${cls}`;
  s.title = title;
  s.setAttribute('aria-label', title);
  for (const [v, l] of options) {
    const o = document.createElement('option');
    o.value = v;
    o.textContent = l;
    s.appendChild(o);
  }
  s.value = value;
  s.addEventListener('change', () => fn(s.value));
  parent.appendChild(s);
  return s;
}

/** One row per channel of `t`: min and max, each a number input and a slider; `onSet` after a change. */
export function rangeRows(t: IThreshold, onSet: () => void): HTMLElement[] {
  return SPACES[t.space].map((k, i) => {
    const ch = CHANNELS[k];
    const row = document.createElement('div');
    row.className = 'jp-RemoteDevice-rangeRow';
    const name = document.createElement('span');
    name.className = 'jp-RemoteDevice-rangeName';
    name.textContent = ch.label;
    row.appendChild(name);
    for (const end of [0, 1]) {
      const input = document.createElement('input');
      input.type = 'number';
      input.className = `jp-mod-styled jp-RemoteDevice-range${end ? 'Max' : 'Min'}`;
      input.dataset.channel = k;
      input.min = String(ch.min);
      input.max = String(ch.max);
      input.value = String(t.ranges[i][end]);
      input.setAttribute('aria-label', `${ch.label} ${end ? 'max' : 'min'}`);
      const slider = document.createElement('input');
      slider.type = 'range';
      slider.className = 'jp-RemoteDevice-rangeSlider';
      slider.min = input.min;
      slider.max = input.max;
      slider.value = input.value;
      const set = (v: string) => {
        const n = Math.max(ch.min, Math.min(ch.max, Math.round(Number(v))));
        if (!Number.isFinite(n)) {
          return;
        }
        t.ranges[i][end] = n;
        input.value = String(n);
        slider.value = String(n);
        onSet();
      };
      input.addEventListener('change', () => set(input.value));
      slider.addEventListener('input', () => set(slider.value));
      row.append(input, slider);
    }
    return row;
  });
}
