// The case-type studio's document helpers, without the page: JSON pointers (RFC 6901) into the
// document, the problems' places, the YAML text (js-yaml, vendored) and where each pointer sits
// in it, and a readable diff of two documents.
const yaml = () => window.jsyaml; // static/vendor/js-yaml-*.min.js, loaded before this module

// -- pointers ------------------------------------------------------------------------------

const escapeToken = (token) => String(token).replace(/~/g, "~0").replace(/\//g, "~1");
const unescapeToken = (token) => token.replace(/~1/g, "/").replace(/~0/g, "~");

/** The pointer of a place: pointer("states", "review", "labels") -> "/states/review/labels". */
export const pointer = (...tokens) => tokens.map((token) => `/${escapeToken(token)}`).join("");

export const tokensOf = (at) => (at ? at.slice(1).split("/").map(unescapeToken) : []);

/** The value at a pointer, or undefined. */
export function getAt(document, at) {
  let value = document;
  for (const token of tokensOf(at)) {
    if (value === null || typeof value !== "object") return undefined;
    value = value[token];
  }
  return value;
}

/** Set the value at a pointer, making the objects on the way; undefined removes it, and an
 * object left empty by a removal goes too (labels without any text are no labels). */
export function setAt(document, at, value) {
  const tokens = tokensOf(at);
  const last = tokens.pop();
  let parent = document;
  const chain = [];
  for (const token of tokens) {
    if (parent[token] === null || typeof parent[token] !== "object") {
      if (value === undefined) return;
      parent[token] = {};
    }
    chain.push([parent, token]);
    parent = parent[token];
  }
  if (value !== undefined) {
    parent[last] = value;
    return;
  }
  if (Array.isArray(parent)) parent.splice(Number(last), 1);
  else delete parent[last];
  for (const [holder, token] of chain.reverse()) {
    const child = holder[token];
    if (Array.isArray(child) || Object.keys(child).length) break;
    delete holder[token];
  }
}

/** A problem's path as the server writes it (`rules[2].do[1]`, `fields.x.labels`) as a pointer. */
export function pathToPointer(path) {
  if (!path) return "";
  const tokens = [];
  for (const part of String(path).split(".")) {
    const match = part.match(/^([^[]*)((\[\d+\])*)$/);
    if (!match) {
      tokens.push(part);
      continue;
    }
    if (match[1]) tokens.push(match[1]);
    for (const index of match[2].matchAll(/\[(\d+)\]/g)) tokens.push(index[1]);
  }
  return pointer(...tokens);
}

/** A pointer as people read it: /rules/2/do/1 -> rules[2].do[1]. */
export function readablePath(at) {
  return tokensOf(at).reduce((text, token) => (/^\d+$/.test(token) ? `${text}[${token}]` : text ? `${text}.${token}` : token), "");
}

// -- YAML ----------------------------------------------------------------------------------

/** The document as YAML: block style, long texts not folded, keys in the document's order.
 * The CORE schema reads like the server (YAML 1.2 booleans, dates stay text). */
export const toYaml = (document) => yaml().dump(document, { schema: yaml().CORE_SCHEMA, lineWidth: -1, noRefs: true });

/** The document a YAML text holds: {document} or {error: {message, line}} (line from 1). */
export function fromYaml(text) {
  try {
    const document = yaml().load(text, { schema: yaml().CORE_SCHEMA });
    if (document === null || typeof document !== "object" || Array.isArray(document)) {
      return { error: { message: "the document must be a mapping (key: value lines)", line: 1 } };
    }
    return { document };
  } catch (error) {
    return { error: { message: error.reason ?? String(error.message), line: (error.mark?.line ?? 0) + 1 } };
  }
}

const KEY = /^("(?:[^"\\]|\\.)*"|'(?:[^']|'')*'|[^\s#'"{[\-?][^:#]*?|-[^\s:#][^:#]*?)\s*:(?:\s|$)/;
const unquote = (key) => (/^["']/.test(key) ? key.slice(1, -1) : key.trim());

/** Where each key and list item of a block-style YAML text starts: pointer -> line (from 1).
 * Flow style ({a: 1}, [x, y]) maps to the line of its key, which is where a problem inside it
 * is shown. */
export function yamlLines(text) {
  const lines = new Map([["", 1]]);
  const stack = [{ indent: -1, at: "", items: 0 }];
  let scalarIndent = null; // inside a block scalar (| or >) started at this indent
  text.split("\n").forEach((line, index) => {
    const content = line.trimStart();
    let indent = line.length - content.length;
    if (!content || content.startsWith("#")) return;
    if (scalarIndent !== null && indent > scalarIndent) return;
    scalarIndent = null;
    let rest = content;
    while (rest.startsWith("- ") || rest === "-") {
      while (stack.length > 1 && stack.at(-1).indent >= indent) stack.pop();
      const parent = stack.at(-1);
      const at = `${parent.at}/${parent.items++}`;
      lines.set(at, index + 1);
      stack.push({ indent, at, items: 0 });
      rest = rest.slice(2).trimStart();
      indent += 2;
    }
    const key = rest.match(KEY);
    if (!key) return;
    while (stack.length > 1 && stack.at(-1).indent >= indent) stack.pop();
    const at = `${stack.at(-1).at}/${escapeToken(unquote(key[1]))}`;
    lines.set(at, index + 1);
    stack.push({ indent, at, items: 0 });
    if (/^[|>][-+0-9]*\s*(#.*)?$/.test(rest.slice(key[0].length).trim())) scalarIndent = indent;
  });
  return lines;
}

/** The line of the nearest place a pointer (or one of its parents) has in the text. */
export function lineOf(lines, at) {
  let place = at;
  while (place && !lines.has(place)) place = place.slice(0, place.lastIndexOf("/"));
  return lines.get(place) ?? 1;
}

// -- diff ----------------------------------------------------------------------------------

const isObject = (value) => value !== null && typeof value === "object" && !Array.isArray(value);

/** What changed from `before` to `after`: [{at, kind: added|removed|changed, before, after}],
 * leaves and whole added or removed branches, in the documents' order. */
export function diff(before, after, at = "") {
  if (JSON.stringify(before) === JSON.stringify(after)) return [];
  if (before === undefined) return [{ at, kind: "added", after }];
  if (after === undefined) return [{ at, kind: "removed", before }];
  const bothObjects = isObject(before) && isObject(after);
  const bothLists = Array.isArray(before) && Array.isArray(after);
  if (!bothObjects && !bothLists) return [{ at, kind: "changed", before, after }];
  // A list of plain values that grew or shrank (a view's fields, a rule's triggers) is one
  // change, not one per place: a value added at its start would otherwise show every later
  // place as changed. Of the same length (a decision table's cells), each place is compared.
  const plain = (item) => !isObject(item) && !Array.isArray(item);
  if (bothLists && before.length !== after.length && [...before, ...after].every(plain)) {
    return [{ at, kind: "changed", before, after }];
  }
  const keys = bothLists
    ? [...Array(Math.max(before.length, after.length)).keys()]
    : [...new Set([...Object.keys(before), ...Object.keys(after)])];
  return keys.flatMap((key) => diff(before[key], after[key], `${at}/${escapeToken(key)}`));
}

/** A value on one line: texts as they are, the rest as flow YAML. */
export function inline(value) {
  if (value === undefined) return "";
  if (typeof value === "string") return value;
  return yaml().dump(value, { flowLevel: 0, lineWidth: -1, schema: yaml().CORE_SCHEMA }).trim();
}
