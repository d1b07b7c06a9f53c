<?php

/**
 * @file
 * Runs the module's Drupal-free classes for the specs: reads a JSON list of
 * calls on stdin, prints a JSON list of results ({"ok": ...} or
 * {"error": message}). Argument 1: the module directory.
 */

declare(strict_types=1);

use Drupal\drupal_accelerator\AccessPolicy;
use Drupal\drupal_accelerator\Webhook\WebhookDelivery;

require $argv[1] . '/src/AccessPolicy.php';
require $argv[1] . '/src/Webhook/WebhookDelivery.php';

$calls = json_decode(stream_get_contents(STDIN), TRUE, 512, JSON_THROW_ON_ERROR);
$results = [];
foreach ($calls as $call) {
  $has = static fn(string $permission): bool => in_array($permission, $call['permissions'] ?? [], TRUE);
  try {
    $results[] = ['ok' => match ($call['op']) {
      'delivery' => (static function () use ($call): array {
        $delivery = WebhookDelivery::create($call['secret'], $call['event'], $call['ids'], $call['timestamp'], $call['id'] ?? NULL);
        return ['id' => $delivery->id, 'body' => $delivery->body, 'headers' => $delivery->headers];
      })(),
      'level' => AccessPolicy::level($call['roles'], $has, $call['settings']),
      'perUser' => AccessPolicy::isPerUser($call['authenticated'], $has),
      'contexts' => AccessPolicy::normalizeContexts($call['contexts']),
      'hash' => AccessPolicy::hash($call['level'], $call['values'], $call['rules'], $call['salt']),
    }];
  }
  catch (\Throwable $e) {
    $results[] = ['error' => get_class($e) . ': ' . $e->getMessage()];
  }
}
echo json_encode($results, JSON_THROW_ON_ERROR | JSON_UNESCAPED_SLASHES);
