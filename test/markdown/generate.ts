/**
 * Lazily generated large inputs for the memory specs: Drupal-like HTML (headings, paragraphs
 * with entities and inline markup, nested lists, tables, a code block, CKEditor 5 figures and
 * media, an oEmbed iframe, a glossary) and the same HTML inside
 * a JSON-RPC reply escaped the way Drupal's `JsonResponse` does (`\u003C`, `\u0026`, `\/`, …).
 * Every generator yields fixed-size pieces and never holds more than one piece plus one section.
 */

/** The HTML of section `i` (about 2.8 KB). */
export const section = (i: number): string =>
  `<h2 id="s${i}">Section ${i}: forms &amp; render arrays</h2>
<p>Drupal's <strong>Form API</strong> builds <em>render arrays</em>; see <a href="/tutorial/forms/${i}">part ${i}</a>
and the <a href="https://api.drupal.org/api/drupal/${i}">API docs</a>. Characters like * _ [ ] &lt; &gt; &copy; &nbsp;
and &#8212; need care. Call <code>hook_form_alter()</code> or <code>\`tick\`</code>.</p>
<ul>
  <li>Step one<ol><li>nested ${i}</li><li>nested <b>bold</b><ul><li>deep</li></ul></li></ol></li>
  <li>Step two with <img src="/files/${i}.png" alt="shot ${i}"></li>
</ul>
<table><thead><tr><th>Key</th><th>Value</th></tr></thead>
<tbody><tr><td>a|b</td><td><em>x</em></td></tr><tr><td>${i}</td><td>y</td></tr></tbody></table>
<pre><code class="language-php">&lt;?php
function example_${i}(array &amp;$form) {
  $form['#title'] = t('Example &lt;b&gt;${i}&lt;/b&gt;');
  // \`\`\` a fence-like run
  return $form;
}
</code></pre>
<blockquote><p>Quote ${i}: <em>emphasis</em> and <a href="../x">relative</a>.</p></blockquote>
<figure class="table"><table><tr><th rowspan="2">v${i}</th><th>a</th></tr><tr><td>b</td></tr></table><figcaption>Caption ${i}</figcaption></figure>
<drupal-media data-entity-type="media" data-entity-uuid="00000000-0000-4000-8000-${String(i).padStart(12, "0")}" data-caption="Media ${i}"></drupal-media>
<iframe src="/media/oembed?url=https%3A//vimeo.com/${i}&amp;max_width=0" title="Video ${i}"></iframe>
<dl><dt>Term ${i}</dt><dd>Definition with <kbd>Ctrl</kbd> and x<sup>2</sup></dd></dl>
<script>var ignored = "${i}";</script><!-- comment ${i} -->
<p>Closing paragraph ${i} with enough filler text to look like prose: Lorem ipsum dolor sit amet,
consectetur adipiscing elit, sed do eiusmod tempor incididunt ut labore et dolore magna aliqua.
Ut enim ad minim veniam, quis nostrud exercitation ullamco laboris nisi ut aliquip ex ea commodo.</p>
`

/** Yields `total` characters of HTML (ASCII) as strings of exactly `chunkSize` (last: shorter). */
export function* htmlPieces(total: number, chunkSize: number): Generator<string> {
  yield* cut(sections(total), total, chunkSize)
}

function* sections(total: number): Generator<string> {
  let produced = 0
  yield "<!DOCTYPE html><html><body><article>"
  for (let i = 0; produced < total; i++) {
    const s = section(i)
    produced += s.length
    yield s
  }
}

function* cut(source: Iterable<string>, total: number, chunkSize: number): Generator<string> {
  let buffer = ""
  let emitted = 0
  for (const piece of source) {
    buffer += piece
    while (buffer.length >= chunkSize && emitted < total) {
      yield buffer.slice(0, chunkSize)
      emitted += chunkSize
      buffer = buffer.slice(chunkSize)
    }
    if (emitted >= total) return
  }
  if (buffer.length > 0) yield buffer
}

const JSON_HEX: Record<string, string> = {
  "<": "\\u003C",
  ">": "\\u003E",
  "&": "\\u0026",
  "'": "\\u0027",
  "/": "\\/"
}

/** JSON string body (no quotes) the way PHP's json_encode with JSON_HEX_* flags writes it. */
export const drupalJsonEscape = (s: string): string =>
  JSON.stringify(s).slice(1, -1).replace(/[<>&'/]|[^\x00-\x7f]/g, (c) =>
    JSON_HEX[c] ?? `\\u${c.charCodeAt(0).toString(16).toUpperCase().padStart(4, "0")}`)

/**
 * Yields a JSON-RPC reply whose `result.content` holds about `htmlTotal` characters of HTML,
 * as UTF-8 bytes in pieces of exactly `chunkSize` bytes (last: shorter). The body is ASCII.
 */
export function* jsonRpcReplyPieces(htmlTotal: number, chunkSize: number): Generator<Uint8Array> {
  const encoder = new TextEncoder()
  function* text(): Generator<string> {
    yield `{"jsonrpc":"2.0","id":1,"result":{"id":1,"title":"A \\"huge\\" tutorial","url":"https:\\/\\/drupalize.example\\/t\\/1",`
    yield `"metadata":{"drupal_version":"10","tags":["forms","api"]},"content":"`
    for (const piece of sections(htmlTotal)) yield drupalJsonEscape(piece)
    yield `","updated":"2024-05-01"}}`
  }
  for (const piece of cut(text(), Number.POSITIVE_INFINITY, chunkSize)) yield encoder.encode(piece)
}
