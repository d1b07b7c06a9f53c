import { assert, describe, it } from "@effect/vitest"
import { makeConverter } from "../../src/markdown/HtmlToMarkdown.js"
import { makeCorpus } from "../../src/simulator/Corpus.js"
import { isCommonToken, SNIPPET_TOKENS, tokenize } from "../../src/simulator/Vocabulary.js"

// The simulator's default corpus (SIM_CORPUS_SIZE, SIM_SEED, SIM_LARGE_SHARE defaults).
const corpus = makeCorpus({ size: 10_000, seed: 42, largeShare: 0.01 })
// A deterministic sample: the first 300 items that are not large (a few MB of HTML).
const sample = corpus.items.filter((i) => !i.large).slice(0, 300)
const html = sample.map((i) => corpus.bodyText(i, "html")).join("\n")
const markdown = sample.map((i) => corpus.bodyText(i, "markdown")).join("\n")

const UUID = "[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}"

describe("Simulator corpus realism", () => {
  it("the HTML bodies carry CKEditor 5 output", () => {
    for (
      const [name, pattern] of [
        ["figure.table wrapping a table, with a figcaption", /<figure class="table">\n<table>\n[^]*?<\/table>\n<figcaption>[^<]/],
        ["figure with img and figcaption", /<figure class="image"><img src="[^"]+" alt="[^"]+"[^>]*><figcaption>[^<]/],
        ["drupal-media", new RegExp(`<drupal-media data-entity-type="media" data-entity-uuid="${UUID}"`)],
        [
          "oEmbed iframe",
          /<iframe src="\/media\/oembed\?url=https%3A\/\/(www\.youtube\.com|vimeo\.com)\/[^"]*" [^>]*class="media-oembed-content"[^>]*><\/iframe>/
        ]
      ] as const
    ) {
      assert.match(html, pattern, name)
    }
  })

  it("every video item, and only those, opens with its oEmbed player", () => {
    const videos = sample.filter((i) => i.contentType === "video")
    assert.isAtLeast(videos.length, 20)
    for (const item of sample) {
      const body = corpus.bodyText(item, "html")
      const player = body.indexOf(`<iframe src="/media/oembed?url=`)
      if (item.contentType === "video") {
        assert.isAtLeast(player, 0, `item ${item.id}`)
        assert.isBelow(player, 200, `item ${item.id}: the player comes first`)
      } else {
        assert.strictEqual(player, -1, `item ${item.id}`)
      }
    }
  })

  it("the HTML bodies carry the rest of what editors write", () => {
    for (
      const [name, pattern] of [
        ["blockquote", /<blockquote><p>/],
        ["br", /<br>/],
        ["hr", /^<hr>$/m],
        ["dl/dt/dd", /<dl>\n<dt>[^<]+<\/dt>\n<dd>[^]+?<\/dd>\n/],
        ["kbd", /<kbd>[^<]+<\/kbd>\+<kbd>/],
        ["sup", /<sup>\d<\/sup>/],
        ["span", /<span class="highlight">[^<]+<\/span>/],
        ["h5", /<h5( id="[^"]+")?>[^<]+<\/h5>/],
        ["h6", /<h6( id="[^"]+")?>[^<]+<\/h6>/],
        ["comment", /<!-- [^]+? -->/],
        ["heading id", /<h[2-6] id="[a-z0-9-]+">/],
        ["heading without id", /<h2>/],
        ["link with target/rel", /<a href="https:\/\/[^"]+" target="_blank" rel="noopener noreferrer">/],
        ["link without target", /<a href="https:\/\/[^"]+">/],
        ["table caption", /<table>\n<caption>[^<]/],
        ["colspan", /<td colspan="3"><strong>/],
        ["rowspan", /<td rowspan="2">/],
        ["paragraph inside a list item", /<li><p>[^]+?<\/p><\/li>/],
        ["code inside a list item", /<li><p>[^]+?<\/p>\n<pre><code class="language-[a-z]+">[^]*?<\/code><\/pre>\n<\/li>/],
        ["empty paragraph", /^<p>&nbsp;<\/p>$/m],
        ["&#039;", /&#039;/],
        ["&rsquo;", /&rsquo;/],
        ["&mdash;", /&mdash;/],
        ["&hellip;", /&hellip;/],
        ["&ndash;", /&ndash;/],
        ["non-ASCII text", /[\u00c0-\u024f]/]
      ] as const
    ) {
      assert.match(html, pattern, name)
    }
  })

  it("some items are translated: a langcode, and title, summary and body in that language", () => {
    const counts = { en: 0, de: 0, fr: 0, es: 0 }
    for (const item of corpus.items) counts[item.langcode]++
    // About 85 / 6 / 5 / 4 %.
    assert.isAbove(counts.en, 8_000)
    for (const lang of ["de", "fr", "es"] as const) assert.isAbove(counts[lang], 250, lang)
    const words = {
      de: ["Sie", "ü"],
      fr: ["vous", "é"],
      es: ["el", "ó"]
    } as const
    for (const lang of ["de", "fr", "es"] as const) {
      const items = sample.filter((i) => i.langcode === lang)
      assert.isAtLeast(items.length, 5, lang)
      for (const item of items) {
        const body = corpus.bodyText(item, "markdown")
        for (const word of words[lang]) assert.include(body, word, `${lang} item ${item.id}`)
        assert.notInclude(body, "In this part, you will learn", `${lang} item ${item.id}`)
      }
      assert.isTrue(items.some((i) => /[^\x00-\x7f]/.test(i.title + i.summary)), `${lang} titles`)
    }
    // Deterministic: another build of the same corpus gives the same languages.
    const again = makeCorpus({ size: 10_000, seed: 42, largeShare: 0.01 })
    assert.deepStrictEqual(again.items.map((i) => i.langcode), corpus.items.map((i) => i.langcode))
  })

  it("the Markdown bodies render each of them as the converter does", () => {
    for (
      const [name, pattern] of [
        ["table with its figure caption after it", /\|\n\n_[^_\n]+_\n/],
        ["table with its caption before it", /_[^_\n]+_\n\n\| [^\n]+ \|\n\|( --- \|)+\n/],
        ["image with its caption", /!\[[^\]]+\]\(\/sites\/default\/files\/[^)]+\)\n\n_[^\n]+_\n/],
        ["drupal-media", /^\[Media: [^\]]+\]\(urn:uuid:[0-9-]{36}\)$/m],
        ["video link", /^\[Video: [^\]]+\]\(https:\/\/(www\.youtube\.com\/watch\?v=|vimeo\.com\/)[^)]+\)$/m],
        ["blockquote with a line break", /^> [^\n]+\\\n> — [^\n]+$/m],
        ["hr", /^---$/m],
        ["dl", /^\*\*[^*\n]+\*\*\\\n[^\n]+$/m],
        ["kbd", /`Ctrl`\+`/],
        ["sup", /<sup>\d<\/sup>/],
        ["h5", /^##### /m],
        ["h6", /^###### /m],
        ["group row (colspan)", /^\| \*\*[^*]+\*\* \|  \|  \|$/m],
        ["code inside a list item", /^1\. [^\n]+\n\n {3}```[a-z]+\n/m],
        ["decoded entities", /'[^]*’[^]*—[^]*…/]
      ] as const
    ) {
      assert.match(markdown, pattern, name)
    }
    assert.notMatch(markdown, /&(#039|rsquo|mdash|hellip|ndash|nbsp|amp|copy);/)
    // Outside code (whose listings hold HTML of their own), no markup of the source is left.
    const prose = markdown.replace(/^( *)```[a-z]*\n[^]*?^\1```$/gm, "").replace(/`[^`\n]+`/g, "")
    assert.notMatch(prose, /<!--|<drupal-media|<iframe|<figure|<figcaption|<dl>|<dt>|<kbd>|<span|<caption|<br>|<hr>/)
  })

  it("the converter turns each HTML body into the body's Markdown", () => {
    // Up to what the converter normalises: `&nbsp;` is a space, call-outs are paragraphs, and
    // runs of blank lines are one.
    const normal = (s: string) =>
      s.replace(/\u00a0/g, " ").replace(/^> (\*\*[^*\n]+:\*\*)/gm, "$1").replace(/\n{2,}/g, "\n\n").trim()
    for (const item of sample.slice(0, 150)) {
      const converter = makeConverter()
      const converted = converter.write(corpus.bodyText(item, "html")) + converter.end()
      assert.strictEqual(normal(converted), normal(corpus.bodyText(item, "markdown")), `item ${item.id}`)
    }
  })

  it("every word of a body, in every language, is an item word, a code word or a template word", () => {
    for (const item of sample.filter((i, n) => n < 40 || i.langcode !== "en")) {
      const own = new Set(corpus.itemTokens(item))
      const snippets = item.tagIndexes.map((t) => SNIPPET_TOKENS[t]!)
      for (const format of ["markdown", "html"] as const) {
        // Tags, attribute names and URLs of the HTML are not words of its text.
        const body = corpus.bodyText(item, format)
        const text = format === "html" ? body.replace(/<[^>]*>/g, " ") : body
        for (const token of new Set(tokenize(text))) {
          if (isCommonToken(token) || own.has(token) || snippets.some((s) => s.has(token))) continue
          assert.fail(`item ${item.id} (${item.langcode}, ${format}): "${token}" cannot be searched`)
        }
      }
    }
  })
})
