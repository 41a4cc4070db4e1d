// Rich text as people type it in Slack and Discord: `parse` turns a message body into a
// small tree (pure: no DOM, so it can be tested on its own), and `render` builds that tree
// as DOM nodes. The stored body stays the text as typed; formatting exists only here.
//
// What is understood:
//   blocks, one per line or run of lines: ``` fenced code ``` (an optional language after
//   the opening fence), "> " quotes, "- " or "* " bullets, "1. " numbers, and paragraphs;
//   inline, within one line: *bold* and **bold**, _italic_, ~strike~ and ~~strike~~,
//   `code`, links (http, https, www. and mailto:) and @mentions of known people.
//
// The rules that keep ordinary text ordinary: a marker opens only at a word boundary and
// before a non-space, and closes only after a non-space and before a word boundary, so
// `snake_case_names` and `2*3*4` stay as they are; nothing inside code, a link or a mention
// is formatted; and nothing but a fenced code block spans lines.
//
// The renderer creates elements and text nodes only; nothing here parses or assigns HTML.
// A link's href is built from what the pattern matched (http:, https: or mailto:, never
// anything else) and checked again before it is set.

/** Markers, and the lengths of a run of them that mean something. */
const EMPHASIS = { '*': { 1: 'bold', 2: 'bold' }, _: { 1: 'italic' }, '~': { 1: 'strike', 2: 'strike' } };

/** A link as typed: http(s) URLs, bare `www.` addresses and `mailto:`, not in the middle of a
 *  word or of another address. */
const LINK = /(?<![\p{L}\p{N}.@/-])(?:https?:\/\/[^\s<>"'`]+|www\.[\p{L}\p{N}-]+\.[^\s<>"'`]+|mailto:[^\s<>"'`]+@[^\s<>"'`]+)/giu;
const MENTION = /(^|[^a-z0-9_.-])@([a-z0-9_.-]{3,32})/gi;
const WORD = /[\p{L}\p{N}]/u;
const SPACE = /\s/u;
const FENCE = '```';
const LANGUAGE = /^[\p{L}\p{N}_+#.-]{1,32}$/u;
const BULLET = /^\s*[-*•]\s+(.*)$/u;
const NUMBERED = /^\s*(\d{1,9})[.)]\s+(.*)$/u;
const QUOTE = /^>(?: (.*))?$/u;

/** Parses a body into `{ type: 'root', children: blocks }`. Blocks are
 *  `{ type: 'paragraph', lines: [inlines] }`, `{ type: 'code_block', language, text }`,
 *  `{ type: 'quote', children: blocks }` and `{ type: 'list', ordered, start, items: [inlines] }`;
 *  inlines are `{ type: 'text', text }`, `{ type: 'bold' | 'italic' | 'strike', children }`,
 *  `{ type: 'code', text }`, `{ type: 'link', href, text }` and `{ type: 'mention', username }`.
 *  `usernames` (a Set of lower-case names) says which @names are people. */
export function parse(text, usernames = new Set()) {
  return { type: 'root', children: blocks(text.split(/\r?\n/), usernames, true) };
}

function blocks(lines, usernames, quotes) {
  const result = [];
  let index = 0;
  while (index < lines.length) {
    const line = lines[index];
    const code = codeBlock(lines, index);
    if (code) {
      result.push(code.block);
      index = code.next;
      continue;
    }
    const quoted = quotes && QUOTE.exec(line);
    if (quoted) {
      const inner = [];
      for (let match; index < lines.length && (match = QUOTE.exec(lines[index])); index++) inner.push(match[1] ?? '');
      // Quotes do not nest: a "> " inside a quote is text.
      result.push({ type: 'quote', children: blocks(inner, usernames, false) });
      continue;
    }
    const item = listItem(line);
    if (item) {
      const list = item.ordered ? { type: 'list', ordered: true, start: item.start, items: [] } : { type: 'list', ordered: false, items: [] };
      for (let next; index < lines.length && (next = listItem(lines[index])) && next.ordered === item.ordered; index++) {
        list.items.push(inlines(next.text, usernames));
      }
      result.push(list);
      continue;
    }
    const last = result[result.length - 1];
    if (last && last.type === 'paragraph') last.lines.push(inlines(line, usernames));
    else result.push({ type: 'paragraph', lines: [inlines(line, usernames)] });
    index++;
  }
  return trimParagraphs(result);
}

/** A fenced code block starting at `lines[start]`, and the index of the line after it; or
 *  null when the line opens none (a fence never closed is text, as in Discord). The code
 *  may start on the fence's line (```code) and end on the closing one (code```). */
function codeBlock(lines, start) {
  const first = lines[start].trimStart();
  if (!first.startsWith(FENCE)) return null;
  const rest = first.slice(FENCE.length);
  if (rest.length > FENCE.length && rest.trimEnd().endsWith(FENCE)) {
    const text = rest.trimEnd().slice(0, -FENCE.length);
    return { block: { type: 'code_block', language: null, text }, next: start + 1 };
  }
  const language = LANGUAGE.test(rest.trim()) ? rest.trim() : null;
  const body = language || rest.trim() === '' ? [] : [rest];
  for (let index = start + 1; index < lines.length; index++) {
    const line = lines[index].trimEnd();
    if (!line.endsWith(FENCE)) {
      body.push(lines[index]);
      continue;
    }
    const before = line.slice(0, -FENCE.length);
    if (before.trim() !== '') body.push(before);
    return { block: { type: 'code_block', language, text: body.join('\n') }, next: index + 1 };
  }
  return null;
}

function listItem(line) {
  const bullet = BULLET.exec(line);
  if (bullet) return { ordered: false, text: bullet[1] };
  const numbered = NUMBERED.exec(line);
  if (numbered) return { ordered: true, start: Number(numbered[1]), text: numbered[2] };
  return null;
}

/** Blank lines beside a block are space the block's own margin gives already. */
function trimParagraphs(result) {
  const blank = (line) => line.length === 0;
  result.forEach((block, index) => {
    if (block.type !== 'paragraph') return;
    if (index > 0) while (block.lines.length && blank(block.lines[0])) block.lines.shift();
    if (index < result.length - 1) while (block.lines.length && blank(block.lines[block.lines.length - 1])) block.lines.pop();
  });
  return result.filter((block) => block.type !== 'paragraph' || block.lines.length > 0);
}

/** One line's inline nodes. Code spans are found first, then links and mentions: these are
 *  atoms, whose text no marker can reach. The markers around and between them are paired
 *  last, Slack's way: left to right, a closer taking the nearest opener of its kind. */
function inlines(line, usernames) {
  const pieces = [];
  for (const part of codeSpans(line)) {
    if (typeof part !== 'string') pieces.push(part);
    else for (const piece of links(part)) pieces.push(...(typeof piece === 'string' ? mentions(piece, usernames) : [piece]));
  }
  return merge(emphasis(pieces));
}

/** The line cut into strings and code atoms: a run of backticks opens a span that the next
 *  run of as many closes; one never closed is text. */
function codeSpans(line) {
  const parts = [];
  let from = 0;
  let text = 0;
  while (from < line.length) {
    const open = line.indexOf('`', from);
    if (open < 0) break;
    let length = 1;
    while (line[open + length] === '`') length++;
    const fence = '`'.repeat(length);
    let close = line.indexOf(fence, open + length);
    while (close >= 0 && line[close + length] === '`') {
      let end = close;
      while (line[end] === '`') end++;
      close = line.indexOf(fence, end);
    }
    if (close < 0) {
      from = open + length;
      continue;
    }
    if (open > text) parts.push(line.slice(text, open));
    parts.push({ type: 'code', text: line.slice(open + length, close) });
    from = text = close + length;
  }
  if (text < line.length) parts.push(line.slice(text));
  return parts;
}

/** Strings and link atoms. */
function links(text) {
  const parts = [];
  let last = 0;
  for (const match of text.matchAll(LINK)) {
    const typed = trimLink(match[0]);
    if (match.index < last) continue;
    if (match.index > last) parts.push(text.slice(last, match.index));
    const href = /^www\./i.test(typed) ? 'https://' + typed : typed;
    parts.push({ type: 'link', href, text: typed });
    last = match.index + typed.length;
  }
  if (last < text.length) parts.push(text.slice(last));
  return parts;
}

/** A sentence often ends right after a link, or a marker around it: the final punctuation
 *  stays out of the link, except a closing parenthesis that closes one opened inside it
 *  (as in Wikipedia's addresses). */
function trimLink(url) {
  for (;;) {
    const last = url[url.length - 1];
    if (last === ')') {
      const opened = url.split('(').length - 1;
      const closed = url.split(')').length - 1;
      if (opened >= closed) return url;
    } else if (!'.,;:!?]*_~\'"'.includes(last)) return url;
    url = url.slice(0, -1);
  }
}

/** Strings and mention atoms, for the names in `usernames` only. */
function mentions(text, usernames) {
  const parts = [];
  let last = 0;
  for (const match of text.matchAll(MENTION)) {
    const name = match[2].replace(/\.+$/, '').toLowerCase();
    if (!usernames.has(name)) continue;
    const at = match.index + match[1].length;
    if (at > last) parts.push(text.slice(last, at));
    parts.push({ type: 'mention', username: name });
    last = at + 1 + name.length;
  }
  if (last < text.length) parts.push(text.slice(last));
  return parts;
}

/** Pairs the emphasis markers in strings among atoms. A run of one marker may open when what
 *  comes before it is not part of a word and what follows is not a space, and may close in
 *  the mirror case; an opener and a closer pair when their runs match. */
function emphasis(pieces) {
  // The line as a flat list: atoms, text, and marker runs with what stands on each side.
  const tokens = [];
  pieces.forEach((piece, index) => {
    if (typeof piece !== 'string') return tokens.push(piece);
    const before = (at) => (at > 0 ? piece[at - 1] : edge(pieces[index - 1], -1));
    const after = (at) => (at < piece.length ? piece[at] : edge(pieces[index + 1], 0));
    let text = 0;
    for (let at = 0; at < piece.length;) {
      const marker = piece[at];
      if (!(marker in EMPHASIS)) {
        at++;
        continue;
      }
      let end = at;
      while (piece[end] === marker) end++;
      const kind = EMPHASIS[marker][end - at];
      if (kind) {
        const previous = before(at);
        const next = after(end);
        const canOpen = !isWord(previous) && next !== null && !SPACE.test(next);
        const canClose = previous !== null && !SPACE.test(previous) && !isWord(next);
        if (canOpen || canClose) {
          if (at > text) tokens.push({ type: 'text', text: piece.slice(text, at) });
          tokens.push({ marker: piece.slice(at, end), kind, canOpen, canClose });
          text = end;
        }
      }
      at = end;
    }
    if (text < piece.length) tokens.push({ type: 'text', text: piece.slice(text) });
  });

  const out = [];
  const openers = [];
  for (const token of tokens) {
    if (!token.marker) {
      out.push(token);
      continue;
    }
    const opener = token.canClose ? openers.findLastIndex((index) => out[index].marker === token.marker) : -1;
    if (opener >= 0) {
      const start = openers[opener];
      const children = out.splice(start).slice(1).map(asText);
      openers.length = opener;
      out.push({ type: token.kind, children: merge(children) });
    } else if (token.canOpen) {
      openers.push(out.length);
      out.push(token);
    } else {
      out.push(asText(token));
    }
  }
  return out.map(asText);
}

/** The character of a neighbouring piece next to a marker (its last, -1, or its first, 0).
 *  An atom counts as a character that is neither a space nor part of a word, so `*`code`*`
 *  is bold; null is the edge of the line. */
function edge(piece, at) {
  if (piece === undefined) return null;
  return typeof piece === 'string' ? piece.at(at) : '\u0000';
}

function isWord(character) {
  return character !== null && WORD.test(character);
}

function asText(token) {
  return token.marker ? { type: 'text', text: token.marker } : token;
}

function merge(nodes) {
  const result = [];
  for (const node of nodes) {
    const last = result[result.length - 1];
    if (node.type === 'text' && last && last.type === 'text') last.text += node.text;
    else if (node.type !== 'text' || node.text !== '') result.push(node);
  }
  return result;
}

/** The tree as DOM nodes: paragraphs as text with its line breaks (the body keeps white
 *  space), other blocks as elements. `me` is the reader's username: mentions of them stand
 *  out. A code block has a Copy button unless `options.copyButton` is false; `options.copy(text)`
 *  copies (navigator.clipboard's by default). */
export function render(tree, me, options = {}) {
  const nodes = [];
  for (const block of tree.children) nodes.push(...renderBlock(block, me, options));
  return nodes;
}

function renderBlock(block, me, options) {
  switch (block.type) {
    case 'paragraph': {
      const nodes = [];
      block.lines.forEach((line, index) => {
        if (index > 0) nodes.push(document.createTextNode('\n'));
        nodes.push(...renderInlines(line, me));
      });
      return nodes;
    }
    case 'code_block':
      return [codeBlockElement(block, options)];
    case 'quote':
      return [element('blockquote', { class: 'fmt-quote', dir: 'auto' }, render(block, me, options))];
    case 'list': {
      const items = block.items.map((item) => element('li', { dir: 'auto' }, renderInlines(item, me)));
      const list = element(block.ordered ? 'ol' : 'ul', { class: 'fmt-list' }, items);
      if (block.ordered && block.start !== 1) list.setAttribute('start', String(block.start));
      return [list];
    }
    default:
      return [];
  }
}

function renderInlines(nodes, me) {
  return nodes.map((node) => renderInline(node, me));
}

const TAGS = { bold: 'strong', italic: 'em', strike: 's' };

function renderInline(node, me) {
  switch (node.type) {
    case 'bold':
    case 'italic':
    case 'strike':
      return element(TAGS[node.type], {}, renderInlines(node.children, me));
    case 'code':
      return element('code', { class: 'fmt-code' }, [node.text]);
    case 'link':
      return linkElement(node);
    case 'mention':
      return element('span', { class: node.username === me ? 'mention me' : 'mention' }, ['@' + node.username]);
    default:
      return document.createTextNode(node.text);
  }
}

/** A link, if its address really is http, https or mailto; its text otherwise. */
function linkElement(node) {
  if (!['http:', 'https:', 'mailto:'].includes(protocolOf(node.href))) return document.createTextNode(node.text);
  return element('a', { href: node.href, target: '_blank', rel: 'noopener noreferrer' }, [node.text]);
}

function protocolOf(href) {
  try {
    return new URL(href).protocol;
  } catch {
    return null;
  }
}

function codeBlockElement(block, options) {
  const code = element('code', {}, [block.text]);
  let copy = null;
  if (options.copyButton !== false) {
    copy = element('button', { class: 'icon-btn fmt-copy', type: 'button', 'aria-label': 'Copy code' }, ['Copy']);
    let reset = null;
    copy.addEventListener('click', async () => {
      clearTimeout(reset);
      await copyCode(copy, code, block.text, options.copy || copyText);
      reset = setTimeout(() => {
        copy.textContent = 'Copy';
        delete copy.dataset.state;
      }, 2_000);
    });
  }
  const head = element('div', { class: 'fmt-code-head' }, [
    block.language ? element('span', { class: 'fmt-language' }, [block.language]) : null,
    copy,
  ]);
  // Code reads left to right whatever the message's direction, and scrolls sideways
  // rather than wrapping; the scroller takes the focus so the keyboard can scroll it too.
  const pre = element('pre', { class: 'fmt-pre', dir: 'ltr', tabindex: '0' }, [code]);
  if (block.language) pre.dataset.language = block.language;
  return element('div', { class: 'fmt-code-block' }, [head, pre]);
}

async function copyText(text) {
  await navigator.clipboard.writeText(text);
}

/** Copies, and says so on the button (for a moment: its caller sets it back). When the
 *  clipboard refuses, the code is selected instead, for Ctrl+C. */
async function copyCode(button, code, text, copy) {
  try {
    await copy(text);
    button.textContent = 'Copied';
    button.dataset.state = 'copied';
  } catch {
    const range = document.createRange();
    range.selectNodeContents(code);
    const selection = window.getSelection();
    selection.removeAllRanges();
    selection.addRange(range);
    button.textContent = 'Press Ctrl+C';
    button.dataset.state = 'failed';
  }
}

/** An element with attributes (set through the DOM) and children (nodes, or strings as
 *  text; null skipped). */
function element(tag, attributes, children) {
  const result = document.createElement(tag);
  for (const [name, value] of Object.entries(attributes)) {
    if (name === 'class') result.className = value;
    else if (name === 'href') result.href = value;
    else result.setAttribute(name, value);
  }
  for (const child of children) {
    if (child === null || child === undefined) continue;
    result.append(typeof child === 'string' ? document.createTextNode(child) : child);
  }
  return result;
}

/** A body as nodes, the way `dom.js`'s `richText` has always been called. */
export function formatted(text, usernames, me) {
  return render(parse(text, usernames), me);
}
