// Icons as inline SVG, so that buttons show the same on every machine: emoji and symbol
// characters drew as empty boxes where no emoji font was installed. Each icon is path data
// kept here (24×24, stroked, Feather-like) and built with createElementNS; nothing parses
// markup. An icon is decoration: it is aria-hidden, and the button it sits in keeps its
// aria-label or text. It takes its colour from the text (`currentColor`) and its size from
// the font (1.25em, web/css/format.css).
//
// Names: attach (paperclip), mic, stop, send, reply, smile (react), edit (pencil),
// trash (delete), menu, close, copy, check, search, bell, plus, help.
//
//   button.append(icon('send'))   // or h('button', { attrs: { 'aria-label': 'Send' } }, icon('send'))

const SVG = 'http://www.w3.org/2000/svg';

/** Each icon as the shapes it is drawn with: `d` for a path, or `circle`/`rect`/`line`
 *  with their attributes. */
const SHAPES = {
  attach: [{ d: 'M21.44 11.05l-9.19 9.19a6 6 0 0 1-8.49-8.49l9.19-9.19a4 4 0 0 1 5.66 5.66l-9.2 9.19a2 2 0 0 1-2.83-2.83l8.49-8.48' }],
  mic: [
    { d: 'M12 1a3 3 0 0 0-3 3v8a3 3 0 0 0 6 0V4a3 3 0 0 0-3-3z' },
    { d: 'M19 10v2a7 7 0 0 1-14 0v-2' },
    { line: { x1: 12, y1: 19, x2: 12, y2: 23 } },
    { line: { x1: 8, y1: 23, x2: 16, y2: 23 } },
  ],
  stop: [{ rect: { x: 6, y: 6, width: 12, height: 12, rx: 2, fill: 'currentColor' } }],
  send: [{ line: { x1: 22, y1: 2, x2: 11, y2: 13 } }, { d: 'M22 2l-7 20-4-9-9-4 20-7z' }],
  reply: [{ d: 'M9 17l-5-5 5-5' }, { d: 'M20 18v-2a4 4 0 0 0-4-4H4' }],
  smile: [
    { circle: { cx: 12, cy: 12, r: 10 } },
    { d: 'M8 14s1.5 2 4 2 4-2 4-2' },
    { line: { x1: 9, y1: 9, x2: 9.01, y2: 9 } },
    { line: { x1: 15, y1: 9, x2: 15.01, y2: 9 } },
  ],
  edit: [{ d: 'M12 20h9' }, { d: 'M16.5 3.5a2.12 2.12 0 0 1 3 3L7 19l-4 1 1-4L16.5 3.5z' }],
  trash: [
    { d: 'M3 6h18' },
    { d: 'M19 6l-1 14a2 2 0 0 1-2 2H8a2 2 0 0 1-2-2L5 6' },
    { d: 'M10 11v6M14 11v6' },
    { d: 'M9 6V4a1 1 0 0 1 1-1h4a1 1 0 0 1 1 1v2' },
  ],
  menu: [{ d: 'M3 6h18M3 12h18M3 18h18' }],
  close: [{ d: 'M18 6L6 18M6 6l12 12' }],
  copy: [
    { rect: { x: 9, y: 9, width: 13, height: 13, rx: 2 } },
    { d: 'M5 15H4a2 2 0 0 1-2-2V4a2 2 0 0 1 2-2h9a2 2 0 0 1 2 2v1' },
  ],
  check: [{ d: 'M20 6L9 17l-5-5' }],
  search: [{ circle: { cx: 11, cy: 11, r: 7 } }, { d: 'M21 21l-4.35-4.35' }],
  bell: [{ d: 'M18 8a6 6 0 0 0-12 0c0 7-3 9-3 9h18s-3-2-3-9' }, { d: 'M13.73 21a2 2 0 0 1-3.46 0' }],
  plus: [{ d: 'M12 5v14M5 12h14' }],
  help: [
    { circle: { cx: 12, cy: 12, r: 10 } },
    { d: 'M9.09 9a3 3 0 0 1 5.83 1c0 2-3 3-3 3' },
    { line: { x1: 12, y1: 17, x2: 12.01, y2: 17 } },
  ],
};

/** The names `icon` knows. */
export const ICONS = Object.freeze(Object.keys(SHAPES));

/** An <svg> element drawing the icon `name` (one of `ICONS`), hidden from assistive
 *  technology. An unknown name is a programming error: it throws. */
export function icon(name) {
  const shapes = SHAPES[name];
  if (!shapes) throw new Error(`no icon named ${name}`);
  const svg = document.createElementNS(SVG, 'svg');
  set(svg, {
    viewBox: '0 0 24 24', width: 24, height: 24, fill: 'none', stroke: 'currentColor',
    'stroke-width': 2, 'stroke-linecap': 'round', 'stroke-linejoin': 'round',
    'aria-hidden': 'true', focusable: 'false', class: 'icon', 'data-icon': name,
  });
  for (const shape of shapes) {
    const [tag, attributes] = shape.d ? ['path', { d: shape.d }] : Object.entries(shape)[0];
    svg.append(set(document.createElementNS(SVG, tag), attributes));
  }
  return svg;
}

function set(element, attributes) {
  for (const [name, value] of Object.entries(attributes)) element.setAttribute(name, String(value));
  return element;
}
