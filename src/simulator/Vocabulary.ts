/**
 * The words the simulated Drupalize.Me-style corpus is made of: a Drupal tag vocabulary with
 * topic words, topic phrases and code snippets per tag, plus the generic sentence, heading and
 * table templates every body shares.
 *
 * The search index depends on one property of this module: every word a body can contain is
 * either one of the item's own terms (its title, summary and topic words, indexed per item), a
 * token of a code snippet of one of the item's tags (indexed per tag), or a token of the generic
 * templates ({@link COMMON_TOKENS}, which match every item). {@link tokenize} is the one
 * tokenizer used both to build that set and to index and query.
 *
 * @since 0.1.0
 */

/** Languages of the code blocks (`<pre><code class="language-…">`). */
export type CodeLanguage = "php" | "yaml" | "js" | "bash" | "twig"

/** A code listing; `{module}` is replaced by the item's module machine name. */
export interface CodeSnippet {
  readonly lang: CodeLanguage
  readonly code: string
}

/** One tag of the vocabulary with what an item carrying it talks about. */
export interface TagDefinition {
  /** Machine name, as returned in `metadata.tags` and accepted by the `tags` filter. */
  readonly tag: string
  /** Distinctive single words (lower case) an item of this tag uses in its body. */
  readonly words: ReadonlyArray<string>
  /** Noun phrases used in titles, summaries and headings. */
  readonly topics: ReadonlyArray<string>
  /** Code listings an item of this tag may show. */
  readonly snippets: ReadonlyArray<CodeSnippet>
}

/**
 * Splits text into lower-case search tokens: runs of ASCII letters and digits. Underscores,
 * hyphens and punctuation separate tokens (`hook_form_alter` → `hook`, `form`, `alter`).
 */
export const tokenize = (text: string): Array<string> => {
  const out: Array<string> = []
  const re = /[a-z0-9]+/g
  const lower = text.toLowerCase()
  let m: RegExpExecArray | null
  while ((m = re.exec(lower)) !== null) out.push(m[0])
  return out
}

const php = (code: string): CodeSnippet => ({ lang: "php", code })
const yaml = (code: string): CodeSnippet => ({ lang: "yaml", code })
const js = (code: string): CodeSnippet => ({ lang: "js", code })
const bash = (code: string): CodeSnippet => ({ lang: "bash", code })
const twig = (code: string): CodeSnippet => ({ lang: "twig", code })

const FORM_ALTER = php(`<?php

use Drupal\\Core\\Form\\FormStateInterface;

/**
 * Implements hook_form_alter().
 */
function {module}_form_alter(array &$form, FormStateInterface $form_state, $form_id) {
  if ($form_id === 'node_article_form' && isset($form['title'])) {
    $form['title']['widget'][0]['value']['#description'] = t('Keep it "short" & <strong>clear</strong>.');
  }
}`)

const INFO_YML = yaml(`name: '{module}'
type: module
description: 'Example code for the "{module}" tutorial.'
core_version_requirement: ^10 || ^11
package: Custom
dependencies:
  - drupal:node`)

const COMPOSER = bash(`composer require 'drupal/{module}:^2.0'
composer install --no-dev --optimize-autoloader && echo "Done"`)

const DRUSH_EN = bash(`drush pm:install {module} -y
drush cache:rebuild`)

/** The tag vocabulary (about 35 tags, each with its own words and code). */
export const TAGS: ReadonlyArray<TagDefinition> = [
  {
    tag: "views",
    words: ["views", "display", "exposed", "contextual", "relationship", "pager", "aggregation", "listing"],
    topics: ["Views displays", "exposed filters", "contextual filters", "Views relationships", "Views pagers"],
    snippets: [
      php(`<?php

/**
 * Implements hook_views_data_alter().
 */
function {module}_views_data_alter(array &$data) {
  $data['node_field_data']['promoted_label'] = [
    'title' => t('Promoted & "featured"'),
    'field' => ['id' => 'boolean'],
  ];
}`),
      twig(`{# views-view-unformatted--articles.html.twig #}
{% for row in rows %}
  <div{{ row.attributes.addClass('article-row') }}>{{- row.content -}}</div>
{% endfor %}`)
    ]
  },
  {
    tag: "fields",
    words: ["field", "formatter", "widget", "cardinality", "fieldable", "storage"],
    topics: ["field formatters", "field widgets", "field storage", "entity reference fields", "field cardinality"],
    snippets: [
      php(`<?php

namespace Drupal\\{module}\\Plugin\\Field\\FieldFormatter;

use Drupal\\Core\\Field\\Attribute\\FieldFormatter;
use Drupal\\Core\\Field\\FieldItemListInterface;
use Drupal\\Core\\Field\\FormatterBase;
use Drupal\\Core\\StringTranslation\\TranslatableMarkup;

#[FieldFormatter(id: 'shout', label: new TranslatableMarkup('Shout'), field_types: ['string'])]
class ShoutFormatter extends FormatterBase {
  public function viewElements(FieldItemListInterface $items, $langcode) {
    $elements = [];
    foreach ($items as $delta => $item) {
      $elements[$delta] = ['#markup' => strtoupper($item->value) . ' & more'];
    }
    return $elements;
  }
}`)
    ]
  },
  {
    tag: "forms",
    words: ["form", "validation", "submit", "states", "elements", "handler"],
    topics: ["the Form API", "form validation", "form states", "submit handlers", "form elements"],
    snippets: [
      FORM_ALTER,
      php(`<?php

public function validateForm(array &$form, FormStateInterface $form_state) {
  $email = $form_state->getValue('email');
  if (strlen($email) < 5 || !str_contains($email, '@')) {
    $form_state->setErrorByName('email', $this->t('The address "@mail" is not valid.', ['@mail' => $email]));
  }
}`)
    ]
  },
  {
    tag: "twig",
    words: ["twig", "template", "suggestion", "preprocess", "variables", "autoescape"],
    topics: ["Twig templates", "template suggestions", "preprocess functions", "Twig debugging"],
    snippets: [
      twig(`{% extends "node.html.twig" %}
{% block content %}
  {% if label and not page %}<h2{{ title_attributes }}>{{ label }}</h2>{% endif %}
  {{ content|without('comment', 'links') }}
{% endblock %}`),
      php(`<?php

/**
 * Implements hook_preprocess_HOOK() for node templates.
 */
function {module}_preprocess_node(array &$variables) {
  $variables['reading_time'] = max(1, (int) (str_word_count(strip_tags($variables['content']['body'][0]['#text'] ?? '')) / 200));
}`)
    ]
  },
  {
    tag: "theming",
    words: ["theme", "subtheme", "starterkit", "breakpoint", "region", "stylesheet", "olivero", "claro"],
    topics: ["custom themes", "theme regions", "Starterkit themes", "responsive breakpoints"],
    snippets: [
      yaml(`name: '{module} theme'
type: theme
base theme: false
core_version_requirement: ^10 || ^11
libraries:
  - {module}/global-styling
regions:
  header: Header
  content: Content
  footer: 'Footer & credits'`),
      bash(`php core/scripts/drupal generate-theme {module}_theme --path themes/custom`)
    ]
  },
  {
    tag: "module-development",
    words: ["hook", "implementation", "scaffold", "namespace", "psr", "module"],
    topics: ["custom modules", "hook implementations", "module info files", "module dependencies"],
    snippets: [INFO_YML, FORM_ALTER]
  },
  {
    tag: "plugins",
    words: ["plugin", "annotation", "attribute", "derivative", "manager", "discovery"],
    topics: ["the Plugin API", "plugin derivatives", "plugin managers", "plugin attributes"],
    snippets: [
      php(`<?php

namespace Drupal\\{module}\\Plugin\\Block;

use Drupal\\Core\\Block\\Attribute\\Block;
use Drupal\\Core\\Block\\BlockBase;
use Drupal\\Core\\StringTranslation\\TranslatableMarkup;

#[Block(id: 'hello_block', admin_label: new TranslatableMarkup('Hello block'))]
class HelloBlock extends BlockBase {
  public function build() {
    return ['#markup' => $this->t('Hello <em>@name</em>!', ['@name' => 'World'])];
  }
}`)
    ]
  },
  {
    tag: "services",
    words: ["service", "container", "injection", "autowiring", "decorator", "tagged"],
    topics: ["dependency injection", "the service container", "service decorators", "tagged services"],
    snippets: [
      yaml(`services:
  {module}.greeter:
    class: Drupal\\{module}\\Greeter
    arguments: ['@current_user', '@logger.factory']
    tags:
      - { name: event_subscriber }`),
      php(`<?php

public function __construct(private readonly AccountProxyInterface $currentUser) {}

public static function create(ContainerInterface $container): static {
  return new static($container->get('current_user'));
}`)
    ]
  },
  {
    tag: "routing",
    words: ["route", "controller", "path", "upcasting", "parameter"],
    topics: ["routes and controllers", "route parameters", "parameter upcasting", "route access checks"],
    snippets: [
      yaml(`{module}.hello:
  path: '/hello/{name}'
  defaults:
    _controller: '\\Drupal\\{module}\\Controller\\HelloController::build'
    _title: 'Hello & welcome'
  requirements:
    _permission: 'access content'`),
      php(`<?php

public function build(string $name): array {
  return ['#markup' => $this->t('Hello @name, 1 < 2 is "true".', ['@name' => $name])];
}`)
    ]
  },
  {
    tag: "blocks",
    words: ["block", "placement", "visibility", "region"],
    topics: ["custom block plugins", "block placement", "block visibility", "block content types"],
    snippets: [
      php(`<?php

public function blockAccess(AccountInterface $account) {
  return AccessResult::allowedIf($account->isAuthenticated() && $this->configuration['show'] === TRUE);
}`),
      DRUSH_EN
    ]
  },
  {
    tag: "menus",
    words: ["menu", "breadcrumb", "navigation", "tasks", "link"],
    topics: ["menu links", "breadcrumbs", "local tasks", "navigation menus"],
    snippets: [
      yaml(`{module}.admin:
  title: 'Settings & tools'
  route_name: {module}.settings
  parent: system.admin_config_development
  weight: 10`)
    ]
  },
  {
    tag: "entity-api",
    words: ["entity", "bundle", "revision", "translatable", "typed", "query"],
    topics: ["content entity types", "entity queries", "entity revisions", "config entities"],
    snippets: [
      php(`<?php

$nids = \\Drupal::entityQuery('node')
  ->accessCheck(TRUE)
  ->condition('type', 'article')
  ->condition('created', strtotime('-30 days'), '>=')
  ->sort('created', 'DESC')
  ->range(0, 10)
  ->execute();
$nodes = \\Drupal::entityTypeManager()->getStorage('node')->loadMultiple($nids);`)
    ]
  },
  {
    tag: "configuration",
    words: ["config", "export", "import", "sync", "split", "override"],
    topics: ["configuration management", "config export", "Config Split", "configuration schema", "config overrides"],
    snippets: [
      bash(`drush config:export -y
git add config/sync && git commit -m "Export config"
drush config:import -y`),
      php(`<?php

// settings.php: override configuration per environment.
$config['system.site']['name'] = 'Staging & QA';
$config['system.performance']['css']['preprocess'] = FALSE;`)
    ]
  },
  {
    tag: "caching",
    words: ["cache", "tags", "contexts", "invalidation", "bigpipe", "varnish", "cacheability"],
    topics: ["cache tags", "cache contexts", "render caching", "cache invalidation", "BigPipe"],
    snippets: [
      php(`<?php

$build = [
  '#markup' => $this->t('Last updated: @time', ['@time' => date('c')]),
  '#cache' => [
    'tags' => ['node_list', 'config:system.site'],
    'contexts' => ['user.roles', 'url.query_args:page'],
    'max-age' => 3600,
  ],
];`)
    ]
  },
  {
    tag: "performance",
    words: ["performance", "profiling", "memcache", "redis", "optimization", "lazy"],
    topics: ["performance profiling", "lazy builders", "the Redis cache backend", "asset aggregation"],
    snippets: [
      php(`<?php

// settings.php
if (extension_loaded('redis') && getenv('REDIS_HOST') !== FALSE) {
  $settings['redis.connection']['host'] = getenv('REDIS_HOST');
  $settings['cache']['default'] = 'cache.backend.redis';
}`)
    ]
  },
  {
    tag: "security",
    words: ["security", "sanitization", "xss", "csrf", "escaping", "hardening"],
    topics: ["XSS protection", "CSRF tokens", "output escaping", "security updates"],
    snippets: [
      php(`<?php

use Drupal\\Component\\Utility\\Html;
use Drupal\\Component\\Utility\\Xss;

$safe = Html::escape('<script>alert("x")</script> & friends');
$filtered = Xss::filter($untrusted, ['a', 'em', 'strong']);`)
    ]
  },
  {
    tag: "users",
    words: ["user", "account", "login", "registration", "password", "profile"],
    topics: ["user accounts", "user registration", "the login flow", "user profiles"],
    snippets: [
      php(`<?php

$account = \\Drupal\\user\\Entity\\User::create([
  'name' => 'editor',
  'mail' => 'editor@example.com',
  'status' => 1,
]);
$account->setPassword(bin2hex(random_bytes(8)));
$account->save();`)
    ]
  },
  {
    tag: "permissions",
    words: ["permission", "role", "grant", "access"],
    topics: ["roles and permissions", "custom permissions", "node access grants"],
    snippets: [
      yaml(`administer {module}:
  title: 'Administer the "{module}" settings'
  description: 'Warning: give to trusted roles only & review often.'
  restrict access: true`)
    ]
  },
  {
    tag: "taxonomy",
    words: ["taxonomy", "vocabulary", "term", "hierarchy", "tagging"],
    topics: ["taxonomy vocabularies", "taxonomy terms", "term hierarchies", "free tagging"],
    snippets: [
      php(`<?php

$terms = \\Drupal::entityTypeManager()
  ->getStorage('taxonomy_term')
  ->loadTree('tags', 0, 2, TRUE);`)
    ]
  },
  {
    tag: "media",
    words: ["media", "image", "responsive", "video", "oembed", "library"],
    topics: ["the Media Library", "image styles", "responsive images", "remote video"],
    snippets: [
      yaml(`langcode: en
status: true
name: hero_wide
label: 'Hero (wide) & banner'
effects:
  1b2c:
    id: image_scale_and_crop
    data:
      width: 1600
      height: 600`)
    ]
  },
  {
    tag: "ckeditor",
    words: ["ckeditor", "editor", "toolbar", "wysiwyg", "format"],
    topics: ["CKEditor 5", "text formats", "the editor toolbar", "WYSIWYG configuration"],
    snippets: [
      yaml(`{module}_highlight:
  ckeditor5:
    plugins: [highlight.Highlight]
  drupal:
    label: 'Highlight & mark'
    elements:
      - <mark>`)
    ]
  },
  {
    tag: "layout-builder",
    words: ["layout", "builder", "section", "inline"],
    topics: ["Layout Builder", "layout sections", "per-node layout overrides", "inline blocks"],
    snippets: [
      yaml(`{module}_two_col:
  label: 'Two columns & sidebar'
  category: 'Custom layouts'
  template: layout--two-col
  regions:
    main:
      label: Main
    sidebar:
      label: Sidebar`)
    ]
  },
  {
    tag: "migrate",
    words: ["migrate", "migration", "source", "process", "destination", "rollback", "csv"],
    topics: ["migration source plugins", "process plugins", "Drupal 7 upgrades", "CSV migrations", "migration rollbacks"],
    snippets: [
      yaml(`id: {module}_articles
label: 'Articles & blog posts'
source:
  plugin: csv
  path: 'public://import/articles.csv'
  ids: [id]
process:
  title: title
  'body/value': body
destination:
  plugin: 'entity:node'
  default_bundle: article`),
      bash(`drush migrate:import {module}_articles --update
drush migrate:rollback {module}_articles`)
    ]
  },
  {
    tag: "composer",
    words: ["composer", "package", "lock", "patches", "autoload"],
    topics: ["Composer-based projects", "Composer patches", "dependency updates", "the recommended project template"],
    snippets: [COMPOSER]
  },
  {
    tag: "drush",
    words: ["drush", "command", "alias", "generate"],
    topics: ["Drush commands", "site aliases", "drush generate", "custom Drush commands"],
    snippets: [DRUSH_EN, bash(`drush @prod sql:dump --gzip > backup.sql.gz && drush @stage sql:sync @prod @self -y`)]
  },
  {
    tag: "jsonapi",
    words: ["jsonapi", "resource", "endpoint", "sparse", "fieldsets", "decoupled"],
    topics: ["JSON:API resources", "sparse fieldsets", "decoupled Drupal", "JSON:API includes"],
    snippets: [
      js(`const response = await fetch('/jsonapi/node/article?fields[node--article]=title&page[limit]=10', {
  headers: { Accept: 'application/vnd.api+json' },
});
const { data } = await response.json();
console.log(data.length > 0 && data[0].attributes.title);`)
    ]
  },
  {
    tag: "rest",
    words: ["rest", "serialization", "normalizer", "oauth", "headless"],
    topics: ["REST resources", "serialization normalizers", "OAuth authentication"],
    snippets: [
      bash(`curl -s -H "Authorization: Bearer $TOKEN" -H 'Accept: application/json' \\
  'https://example.com/node/1?_format=json' | jq '.title[0].value'`)
    ]
  },
  {
    tag: "graphql",
    words: ["graphql", "resolver", "mutation", "schema"],
    topics: ["GraphQL schemas", "GraphQL resolvers", "GraphQL mutations"],
    snippets: [
      js(`const query = \`query { article(id: "1") { title author { name } } }\`;
const res = await fetch('/graphql', { method: 'POST', body: JSON.stringify({ query }) });`)
    ]
  },
  {
    tag: "javascript",
    words: ["javascript", "behaviors", "once", "ajax", "drupalsettings"],
    topics: ["Drupal behaviors", "JavaScript libraries", "the AJAX framework", "drupalSettings"],
    snippets: [
      js(`(function (Drupal, once) {
  Drupal.behaviors['{module}'] = {
    attach(context, settings) {
      once('{module}-toggle', '.js-toggle', context).forEach((el) => {
        el.addEventListener('click', () => el.classList.toggle('is-open') && el.dataset.count < 3);
      });
    },
  };
})(Drupal, once);`)
    ]
  },
  {
    tag: "multilingual",
    words: ["multilingual", "translation", "language", "locale", "negotiation"],
    topics: ["content translation", "interface translation", "language negotiation"],
    snippets: [bash(`drush locale:check && drush locale:update
drush language:add fr`)]
  },
  {
    tag: "testing",
    words: ["testing", "phpunit", "kernel", "functional", "nightwatch", "assertion"],
    topics: ["PHPUnit tests", "kernel tests", "functional tests", "Nightwatch tests"],
    snippets: [
      php(`<?php

namespace Drupal\\Tests\\{module}\\Kernel;

use Drupal\\KernelTests\\KernelTestBase;

final class GreeterTest extends KernelTestBase {
  protected static $modules = ['system', 'user'];

  public function testGreeting(): void {
    $this->assertSame('Hello & welcome', \\Drupal::service('{module}.greeter')->greet());
  }
}`),
      bash(`vendor/bin/phpunit -c core modules/custom/{module} --testdox`)
    ]
  },
  {
    tag: "local-development",
    words: ["ddev", "lando", "docker", "xdebug", "deployment", "environment"],
    topics: ["DDEV local environments", "Xdebug step debugging", "deployment workflows"],
    snippets: [bash(`ddev config --project-type=drupal11 --docroot=web
ddev start && ddev composer install
ddev xdebug on`)]
  },
  {
    tag: "search",
    words: ["solr", "facets", "autocomplete", "indexing", "fulltext"],
    topics: ["Search API", "Solr integration", "search facets", "fulltext indexing"],
    snippets: [COMPOSER, bash(`drush search-api:index --batch-size=50 && drush search-api:status`)]
  },
  {
    tag: "webform",
    words: ["webform", "submission", "confirmation", "wizard"],
    topics: ["the Webform module", "webform submissions", "multi-step webforms"],
    snippets: [
      yaml(`contact_name:
  '#type': textfield
  '#title': 'Your name'
  '#required': true
message:
  '#type': textarea
  '#title': 'Message (no <html> please)'`)
    ]
  },
  {
    tag: "accessibility",
    words: ["accessibility", "aria", "contrast", "screen", "reader", "wcag"],
    topics: ["accessible themes", "ARIA attributes", "WCAG compliance", "screen reader testing"],
    snippets: [twig(`<button type="button" aria-expanded="false" aria-controls="{{ menu_id }}">
  {{ 'Menu'|t }} <span class="visually-hidden">{{ 'toggle & expand'|t }}</span>
</button>`)]
  },
  {
    tag: "queues",
    words: ["queue", "worker", "cron", "batch"],
    topics: ["the Queue API", "queue workers", "cron jobs", "the Batch API"],
    snippets: [
      php(`<?php

#[QueueWorker(id: '{module}_mailer', title: new TranslatableMarkup('Mailer'), cron: ['time' => 30])]
final class Mailer extends QueueWorkerBase {
  public function processItem($data) {
    if (empty($data['to']) || count($data) < 2) {
      throw new SuspendQueueException('Missing "to" & body.');
    }
  }
}`)
    ]
  },
  {
    tag: "events",
    words: ["event", "subscriber", "dispatcher", "listener"],
    topics: ["event subscribers", "the event dispatcher", "kernel events"],
    snippets: [
      php(`<?php

public static function getSubscribedEvents(): array {
  return [KernelEvents::REQUEST => ['onRequest', 100]];
}

public function onRequest(RequestEvent $event): void {
  if ($event->getRequest()->query->get('debug') === '1' && !$event->isMainRequest()) {
    return;
  }
}`)
    ]
  }
]

/** Verbs for titles (Title Case). */
export const TITLE_VERBS: ReadonlyArray<string> = [
  "Create", "Configure", "Build", "Customize", "Debug", "Override", "Extend", "Test", "Secure",
  "Optimize", "Translate", "Manage", "Install", "Upgrade", "Use", "Set Up", "Troubleshoot"
]

/** Title templates: `{Verb}`, `{Topic}`, `{Topic2}`, `{v}` (Drupal major), `{Aspect}`. */
export const TITLE_TEMPLATES: ReadonlyArray<string> = [
  "{Verb} {Topic}",
  "{Verb} {Topic} in Drupal {v}",
  "Introduction to {Topic}",
  "{Topic}: {Aspect}",
  "How to {Verb} {Topic}",
  "{Topic} for Site Builders",
  "{Topic} for Developers",
  "Understanding {Topic}",
  "{Verb} {Topic} with {Topic2}",
  "{Topic} Explained",
  "Getting Started with {Topic}"
]

/** Subtitles for `{Topic}: {Aspect}` titles. */
export const TITLE_ASPECTS: ReadonlyArray<string> = [
  "A Step-by-Step Guide", "Best Practices", "Common Pitfalls", "Hands-on Exercise", "Quick Reference",
  "Deep Dive", "Concepts and Examples"
]

/** Summary templates: `{topic}`, `{topic2}`, `{verb}`, `{v}`, `{kind}`, `{n}`. */
export const SUMMARY_TEMPLATES: ReadonlyArray<string> = [
  "Learn how to {verb} {topic} in Drupal {v}, with examples that also touch on {topic2}.",
  "This {kind} walks you through {topic}, from the basic concepts to a working example you can reuse.",
  "Discover {topic} and see how it fits together with {topic2}. Includes {n} code examples.",
  "A practical guide to {topic} for Drupal {v} site builders and developers.",
  "In this {kind} we {verb} {topic} step by step and explain the decisions along the way.",
  "Everything you need to know about {topic}, including {topic2} and how to troubleshoot common problems."
]

/**
 * Body sentence templates. Slots: `{t}` an item term, `{topic}` an item topic phrase, `{code}` an
 * inline code span, `{strong}` / `{em}` an emphasised term, `{link}` an internal link, `{ext}` an
 * external link, `{v}` the Drupal major version (written `Drupal&nbsp;{v}`), `{amp}` two terms joined
 * by `&amp;`, `{copy}` a copyright sign. The words outside slots are common to every body.
 */
export const SENTENCES: ReadonlyArray<string> = [
  "In this part, you will learn how to work with {topic}.",
  "Before you begin, make sure that the {t} settings are correct on your copy of the site.",
  "{topic} is one of the most useful tools available to site builders and developers alike.",
  "Open the administration page and navigate to the {strong} area.",
  "After you save your changes, rebuild the caches so that they take effect.",
  "This approach keeps your {t} code maintainable and easy to reason about.",
  "Notice how {em} and {t} work together here.",
  "If something goes wrong, check the recent log messages for details.",
  "Next, we will look at how {topic} interacts with {topic}.",
  "You can also run {code} to inspect the current value.",
  "For more details, see {link}.",
  "The official documentation at {ext} explains this in depth.",
  "Starting with {v}, the {t} behaviour changed slightly, so double-check older examples.",
  "Think of {amp} as two sides of the same coin.",
  "Keep in mind that {strong} is evaluated on every request unless you store the result.",
  "The example below shows a minimal but complete version of the {t} code.",
  "Most sites only need the defaults, but larger projects often tune {em}.",
  "Compare the results before and after the change to confirm that {t} works as expected.",
  "We recommend writing down each step so that your team can repeat it later.",
  "At this point the {t} part is done, and we can move on.",
  "Remember that {code} must be unique across the whole project.",
  "{topic} builds on ideas you already know from earlier chapters.",
  "When you are ready, commit your work with a clear message that mentions {t}.",
  "It is worth reading {link} first if the concept of {topic} is new to you.",
  "Text on this page is {copy} its respective authors and shared for learning purposes.",
  "Press {kbd} to save the form, then reload the page.",
  "Drupal’s {t} system isn’t magic — it’s a set of conventions you can learn.",
  "Don't forget to rebuild the caches afterwards… it's the most common mistake.",
  "This needs PHP 8.1 or later{sup}, and the {t} module must be enabled.",
  "Pay attention to the {span} value, which is easy to overlook.",
  "Thanks to the contributors from Zürich, Montréal and São Paulo who tested the {t} examples."
]

/** Heading levels of a body. */
export type HeadingLevel = 2 | 3 | 4 | 5 | 6

/** Heading templates per level: `{topic}`, `{Topic}`, `{t}`, `{T}`, `{n}`. */
export const HEADINGS: { readonly [L in HeadingLevel]: ReadonlyArray<string> } = {
  2: [
    "Overview", "Prerequisites", "Set up {topic}", "Working with {topic}", "Step {n}: {Topic}",
    "Troubleshooting", "How {topic} works", "Putting it all together", "Goal", "Recap"
  ],
  3: ["Add the {t} code", "Verify the {t} result", "Example: {topic}", "Why {T} matters", "A closer look at {t}"],
  4: ["Note on {t}", "Tip", "Warning", "Details", "What about {T}?"],
  5: ["Example {n}", "Edge case: {t}", "Under the hood"],
  6: ["Footnote {n}", "Aside", "See also"]
}

/** Short list item templates (same slots as {@link SENTENCES}). */
export const LIST_ITEMS: ReadonlyArray<string> = [
  "Review the {t} options",
  "Enable {code} on a test copy first",
  "Read {link}",
  "Understand {topic}",
  "Check that {strong} is present",
  "Save and reload the page",
  "Compare the {t} result with the expected result",
  "Write down what changed and why"
]

/** Table header rows. */
export const TABLE_HEADERS: ReadonlyArray<ReadonlyArray<string>> = [
  ["Setting", "Default", "Description"],
  ["Name", "Required", "Notes"],
  ["Option", "Value", "Since"],
  ["Item", "Status", "Comment"]
]

/** Cell phrases for the last table column. */
export const TABLE_NOTES: ReadonlyArray<string> = [
  "Usually fine as is", "Change with care", "Recommended on production", "Only during development",
  "Set per site", "Rarely needed"
]

/** External links used by `{ext}`: `[url, text]`. */
export const EXTERNAL_LINKS: ReadonlyArray<readonly [string, string]> = [
  ["https://www.drupal.org/docs", "drupal.org/docs"],
  ["https://api.drupal.org/api/drupal", "api.drupal.org"],
  ["https://symfony.com/doc/current/index.html", "symfony.com"],
  ["https://www.php.net/manual/en/", "php.net"],
  ["https://developer.mozilla.org/en-US/docs/Web", "MDN Web Docs"]
]

/** Image alt templates (`{topic}`). */
export const IMAGE_ALTS: ReadonlyArray<string> = [
  "Screenshot of the {topic} page",
  "Diagram that explains {topic}",
  "The finished result after the {topic} step"
]

/** Noise a converter must drop: analytics scripts and inline styles. */
export const SCRIPTS: ReadonlyArray<string> = [
  `window.dataLayer = window.dataLayer || []; window.dataLayer.push({ "category": "tutorial_view", "nid": 0 < 1 });`,
  `document.querySelectorAll(".tutorial-callout").forEach(function (el) { el.hidden = false; });`
]

/** Inline style sheets a converter must drop. */
export const STYLES: ReadonlyArray<string> = [
  `.tutorial-callout { border-left: 4px solid #0678be; padding: 0 1em; }`,
  `.tutorial-body pre > code { font-size: 0.9rem; }`
]

/** Languages of the corpus: most items are English, some are written in German, French, Spanish. */
export type Langcode = "en" | "de" | "fr" | "es"

/**
 * The per-language templates of a body (same slots as {@link SENTENCES}, plus `{kbd}` a keyboard
 * shortcut, `{sup}` a footnote mark and `{span}` a highlighted term). Topic words and phrases,
 * code, table headers and module names stay English, as in real translated Drupal docs.
 */
export interface LanguagePack {
  readonly langcode: Langcode
  readonly sentences: ReadonlyArray<string>
  readonly headings: { readonly [L in HeadingLevel]: ReadonlyArray<string> }
  readonly listItems: ReadonlyArray<string>
  /** Steps of an ordered "do this" list whose items hold a paragraph and often a code block. */
  readonly steps: ReadonlyArray<string>
  /** Callout labels: note, tip, warning. */
  readonly noteLabels: readonly [string, string, string]
  /** Heading of the closing list of related tutorials. */
  readonly related: string
  readonly imageAlts: ReadonlyArray<string>
  /** Captions of figures (images, media) and tables: `{topic}`, `{Topic}`, `{t}`. */
  readonly captions: ReadonlyArray<string>
  /** Block quotes: `[text, attribution]`. */
  readonly quotes: ReadonlyArray<readonly [string, string]>
  /** Definitions of a glossary (`<dl>`): `{t}`, `{topic}`. */
  readonly definitions: ReadonlyArray<string>
  /** Labels of a table's group row (a cell spanning every column). */
  readonly groups: ReadonlyArray<string>
  /** Title templates (same slots as {@link TITLE_TEMPLATES} but `{Verb}`/`{Aspect}`). */
  readonly titles: ReadonlyArray<string>
  /** Summary templates: `{topic}`, `{topic2}`, `{v}`, `{n}`. */
  readonly summaries: ReadonlyArray<string>
}

/** English. */
export const EN: LanguagePack = {
  langcode: "en",
  sentences: SENTENCES,
  headings: HEADINGS,
  listItems: LIST_ITEMS,
  steps: [
    "Install the module with Composer:",
    "Enable it and rebuild the caches:",
    "Open {strong} in the administration menu.",
    "Check the {t} settings and save.",
    "Review the result on the front end."
  ],
  noteLabels: ["Note", "Tip", "Warning"],
  related: "Further your understanding",
  imageAlts: IMAGE_ALTS,
  captions: ["{Topic} at a glance", "The {t} settings after saving", "How {topic} fits together"],
  quotes: [
    ["There are only two hard things in computer science: cache invalidation and naming things.", "Phil Karlton"],
    ["Come for the code, stay for the community.", "Drupal community motto"],
    ["Make it work, make it right, make it fast.", "Kent Beck"]
  ],
  definitions: [
    "The part of {topic} that stores the {t} configuration.",
    "A plugin that changes how {t} behaves on every request.",
    "What Drupal calls {topic} in the administration pages."
  ],
  groups: ["Basics", "Advanced", "Deprecated"],
  titles: TITLE_TEMPLATES,
  summaries: SUMMARY_TEMPLATES
}

/** German. */
export const DE: LanguagePack = {
  langcode: "de",
  sentences: [
    "In diesem Teil lernen Sie, wie Sie mit {topic} arbeiten.",
    "Bevor Sie beginnen, prüfen Sie die {t}-Einstellungen auf Ihrer Kopie der Website.",
    "Öffnen Sie die Verwaltungsseite und navigieren Sie zum Bereich {strong}.",
    "Nachdem Sie die Änderungen gespeichert haben, leeren Sie die Caches, damit sie wirksam werden.",
    "Beachten Sie, wie {em} und {t} hier zusammenspielen.",
    "Mit {code} können Sie den aktuellen Wert prüfen.",
    "Weitere Details finden Sie unter {link}.",
    "Die offizielle Dokumentation unter {ext} erklärt das ausführlich.",
    "Seit {v} verhält sich {t} etwas anders – prüfen Sie ältere Beispiele.",
    "Drücken Sie {kbd}, um das Formular zu speichern.",
    "Für größere Projekte lohnt es sich, {em} anzupassen{sup}.",
    "Der Wert {span} wird leicht übersehen.",
    "Wenn etwas schiefgeht, prüfen Sie die letzten Protokollmeldungen… meistens steht dort die Ursache.",
    "Stellen Sie sich {amp} als zwei Seiten derselben Medaille vor.",
    "„{Topic}“ gehört zu den nützlichsten Werkzeugen für Site-Builder und Entwickler."
  ],
  headings: {
    2: ["Überblick", "Voraussetzungen", "{topic} einrichten", "Schritt {n}: {Topic}", "Fehlerbehebung", "Zusammenfassung"],
    3: ["Den {t}-Code hinzufügen", "Das Ergebnis prüfen", "Beispiel: {topic}", "Warum {T} wichtig ist"],
    4: ["Hinweis zu {t}", "Tipp", "Warnung", "Einzelheiten"],
    5: ["Beispiel {n}", "Sonderfall: {t}"],
    6: ["Fußnote {n}", "Siehe auch"]
  },
  listItems: [
    "Die {t}-Optionen prüfen",
    "{code} zuerst auf einer Testkopie aktivieren",
    "{link} lesen",
    "Prüfen, ob {strong} vorhanden ist",
    "Speichern und die Seite neu laden"
  ],
  steps: [
    "Installieren Sie das Modul mit Composer:",
    "Aktivieren Sie es und leeren Sie die Caches:",
    "Öffnen Sie {strong} im Verwaltungsmenü.",
    "Prüfen Sie das Ergebnis auf der Website."
  ],
  noteLabels: ["Hinweis", "Tipp", "Warnung"],
  related: "Weiterführende Tutorials",
  imageAlts: ["Bildschirmfoto der Seite {topic}", "Diagramm, das {topic} erklärt"],
  captions: ["{Topic} auf einen Blick", "Die {t}-Einstellungen nach dem Speichern"],
  quotes: [["Erst muss es funktionieren, dann muss es schön werden.", "Eine alte Entwicklerweisheit"]],
  definitions: ["Der Teil von {topic}, der die {t}-Konfiguration speichert.", "Ein Plugin, das das Verhalten von {t} ändert."],
  groups: ["Grundlagen", "Fortgeschritten"],
  titles: ["Einführung in {Topic}", "{Topic} in Drupal {v} verstehen", "{Topic} für Fortgeschrittene", "Erste Schritte mit {Topic}"],
  summaries: [
    "Lernen Sie {topic} in Drupal {v} kennen, mit Beispielen zu {topic2}.",
    "Eine praktische Einführung in {topic} für Site-Builder und Entwickler, mit {n} Codebeispielen."
  ]
}

/** French. */
export const FR: LanguagePack = {
  langcode: "fr",
  sentences: [
    "Dans cette partie, vous apprendrez à travailler avec {topic}.",
    "Avant de commencer, vérifiez les réglages {t} sur votre copie du site.",
    "Ouvrez la page d’administration et allez dans la section {strong}.",
    "Après l’enregistrement, videz les caches pour que les changements prennent effet.",
    "Remarquez comment {em} et {t} fonctionnent ensemble.",
    "Vous pouvez aussi lancer {code} pour voir la valeur actuelle.",
    "Pour plus de détails, consultez {link}.",
    "La documentation officielle sur {ext} l’explique en détail.",
    "Depuis {v}, le comportement de {t} a légèrement changé — vérifiez les anciens exemples.",
    "Appuyez sur {kbd} pour enregistrer le formulaire.",
    "C'est souvent la valeur {span} qu’on oublie.",
    "Les grands projets ajustent souvent {em}{sup}.",
    "En cas de problème, consultez le journal des messages récents… la cause y est presque toujours.",
    "« {Topic} » est l’un des outils les plus utiles aux développeurs."
  ],
  headings: {
    2: ["Vue d’ensemble", "Prérequis", "Configurer {topic}", "Étape {n} : {Topic}", "Dépannage", "Récapitulatif"],
    3: ["Ajouter le code {t}", "Vérifier le résultat", "Exemple : {topic}", "Pourquoi {T} est important"],
    4: ["Remarque sur {t}", "Astuce", "Attention", "Détails"],
    5: ["Exemple {n}", "Cas particulier : {t}"],
    6: ["Note {n}", "Voir aussi"]
  },
  listItems: [
    "Vérifier les options {t}",
    "Activer {code} d’abord sur une copie de test",
    "Lire {link}",
    "Vérifier que {strong} est présent",
    "Enregistrer et recharger la page"
  ],
  steps: [
    "Installez le module avec Composer :",
    "Activez-le et videz les caches :",
    "Ouvrez {strong} dans le menu d’administration.",
    "Vérifiez le résultat sur le site."
  ],
  noteLabels: ["Remarque", "Astuce", "Attention"],
  related: "Pour aller plus loin",
  imageAlts: ["Capture d’écran de la page {topic}", "Schéma qui explique {topic}"],
  captions: ["{Topic} en un coup d’œil", "Les réglages {t} après l’enregistrement"],
  quotes: [["La simplicité est la sophistication suprême.", "Léonard de Vinci"]],
  definitions: ["La partie de {topic} qui stocke la configuration {t}.", "Un plugin qui modifie le comportement de {t}."],
  groups: ["Les bases", "Avancé"],
  titles: ["Introduction à {Topic}", "Comprendre {Topic} dans Drupal {v}", "{Topic} pour les développeurs", "Premiers pas avec {Topic}"],
  summaries: [
    "Découvrez {topic} dans Drupal {v}, avec des exemples sur {topic2}.",
    "Un guide pratique de {topic} pour les intégrateurs et les développeurs, avec {n} exemples de code."
  ]
}

/** Spanish. */
export const ES: LanguagePack = {
  langcode: "es",
  sentences: [
    "En esta parte aprenderá a trabajar con {topic}.",
    "Antes de empezar, compruebe la configuración de {t} en su copia del sitio.",
    "Abra la página de administración y vaya a la sección {strong}.",
    "Después de guardar los cambios, vacíe las cachés para que surtan efecto.",
    "Observe cómo {em} y {t} funcionan juntos.",
    "También puede ejecutar {code} para ver el valor actual.",
    "Para más detalles, consulte {link}.",
    "La documentación oficial en {ext} lo explica en profundidad.",
    "Desde {v}, el comportamiento de {t} cambió un poco — revise los ejemplos antiguos.",
    "Pulse {kbd} para guardar el formulario.",
    "¿Conoce ya el valor {span}? Es fácil pasarlo por alto.",
    "Los proyectos grandes suelen ajustar {em}{sup}.",
    "Si algo sale mal, revise los mensajes recientes del registro… casi siempre está ahí la causa.",
    "¡{Topic} es una de las herramientas más útiles para los desarrolladores!"
  ],
  headings: {
    2: ["Descripción general", "Requisitos previos", "Configurar {topic}", "Paso {n}: {Topic}", "Solución de problemas", "Resumen"],
    3: ["Añadir el código de {t}", "Comprobar el resultado", "Ejemplo: {topic}", "Por qué importa {T}"],
    4: ["Nota sobre {t}", "Consejo", "Advertencia", "Detalles"],
    5: ["Ejemplo {n}", "Caso especial: {t}"],
    6: ["Nota al pie {n}", "Véase también"]
  },
  listItems: [
    "Revisar las opciones de {t}",
    "Activar {code} primero en una copia de prueba",
    "Leer {link}",
    "Comprobar que {strong} está presente",
    "Guardar y recargar la página"
  ],
  steps: [
    "Instale el módulo con Composer:",
    "Actívelo y vacíe las cachés:",
    "Abra {strong} en el menú de administración.",
    "Compruebe el resultado en el sitio."
  ],
  noteLabels: ["Nota", "Consejo", "Advertencia"],
  related: "Para saber más",
  imageAlts: ["Captura de pantalla de la página {topic}", "Diagrama que explica {topic}"],
  captions: ["{Topic} de un vistazo", "La configuración de {t} después de guardar"],
  quotes: [["Primero haz que funcione, después hazlo bien.", "Un dicho de programadores"]],
  definitions: ["La parte de {topic} que guarda la configuración de {t}.", "Un plugin que cambia el comportamiento de {t}."],
  groups: ["Lo básico", "Avanzado"],
  titles: ["Introducción a {Topic}", "Entender {Topic} en Drupal {v}", "{Topic} para desarrolladores", "Primeros pasos con {Topic}"],
  summaries: [
    "Aprenda {topic} en Drupal {v}, con ejemplos sobre {topic2}.",
    "Una guía práctica de {topic} para constructores de sitios y desarrolladores, con {n} ejemplos de código."
  ]
}

/** The language packs by langcode. */
export const LANGUAGES: { readonly [L in Langcode]: LanguagePack } = { en: EN, de: DE, fr: FR, es: ES }

/** Keyboard shortcuts of `{kbd}` (each key a `<kbd>`). */
export const SHORTCUTS: ReadonlyArray<ReadonlyArray<string>> = [
  ["Ctrl", "S"],
  ["Ctrl", "Shift", "R"],
  ["Cmd", "Enter"],
  ["Esc"]
]

/**
 * Remote videos of the video items, as Drupal's oEmbed media shows them: `[provider URL, video
 * id]`. Ids are fixed words (in {@link COMMON_TOKENS}).
 */
export const VIDEOS: ReadonlyArray<string> = [
  "https://www.youtube.com/watch?v=dQ7rX2pLk9s",
  "https://www.youtube.com/watch?v=Vw3mN8cTq4e",
  "https://www.youtube.com/watch?v=Hk5bJ1zRf6u",
  "https://vimeo.com/76979871",
  "https://vimeo.com/148751763"
]

/** Editor comments left in the HTML source. */
export const COMMENTS: ReadonlyArray<string> = [
  "TODO: refresh the screenshots for the next Drupal release",
  "Imported from the old site; check the links",
  "Do not translate the code below"
]

/** Words of the fixed parts of bodies (callout labels, footer, paths). */
export const FIXED_TEXT: ReadonlyArray<string> = [
  "Note:", "Tip:", "Warning:", "Drupalize.Me", "sites default files tutorials png Copyright", "Yes No",
  "tutorial-callout tutorial-body", "Further your understanding", "Related tutorials", "Drupal",
  "Media urn uuid Video Embedded content media oembed url max_width max_height hash inline-images"
]

const stripSlots = (template: string): string => template.replace(/\{[A-Za-z0-9]+\}/g, " ")

/**
 * Tokens of every generic template, script, style and fixed text: words any body may contain
 * whatever its terms. The search treats them (and pure numbers) as matching every item.
 */
export const COMMON_TOKENS: ReadonlySet<string> = new Set(
  [
    ...SENTENCES,
    ...Object.values(LANGUAGES).flatMap((l) => [
      ...l.sentences,
      ...Object.values(l.headings).flat(),
      ...l.listItems,
      ...l.steps,
      ...l.noteLabels,
      l.related,
      ...l.imageAlts,
      ...l.captions,
      ...l.quotes.flat(),
      ...l.definitions,
      ...l.groups
    ]),
    ...SHORTCUTS.flat(),
    ...VIDEOS,
    ...COMMENTS,
    ...TABLE_HEADERS.flat(),
    ...TABLE_NOTES,
    ...EXTERNAL_LINKS.flat(),
    ...SCRIPTS,
    ...STYLES,
    ...FIXED_TEXT,
    "nbsp amp copy quot lt gt 039 rsquo mdash ndash hellip sup"
  ].flatMap((t) => tokenize(stripSlots(t)))
)

/** Tokens of the code snippets of each tag (without the `{module}` placeholder), by tag index. */
export const SNIPPET_TOKENS: ReadonlyArray<ReadonlySet<string>> = TAGS.map((tag) =>
  new Set(tag.snippets.flatMap((s) => [s.lang, ...tokenize(s.code.replace(/\{module\}/g, " "))]))
)

/** Whether a search token matches every item (generic template word or a number). */
export const isCommonToken = (token: string): boolean => COMMON_TOKENS.has(token) || /^[0-9]+$/.test(token)
