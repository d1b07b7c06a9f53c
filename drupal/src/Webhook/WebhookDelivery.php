<?php

declare(strict_types=1);

namespace Drupal\drupal_accelerator\Webhook;

/**
 * One signed delivery to the gateway's POST /webhooks/drupal route.
 *
 * The gateway's format (src/invalidation/Webhook.ts):
 * - body: JSON {"event": "content.created"|"content.updated"|
 *   "content.deleted", "ids": [positive integers, at most 1000]}; unknown
 *   fields are ignored, and every delivery adds "delivery", a random ID, so
 *   that two deliveries of the same event in the same second do not carry
 *   the same signature (the gateway refuses a signature it has seen as a
 *   replay);
 * - X-Drupal-Timestamp: the unix time in whole seconds;
 * - X-Drupal-Signature: "sha256=" and the lower-case hex HMAC-SHA256 of
 *   "<timestamp>.<body bytes>" keyed with the shared secret.
 *
 * No Drupal API here (the gateway's test suite runs this class with the PHP
 * command line and posts the result to the real route).
 */
final class WebhookDelivery {

  /**
   * The events the gateway accepts.
   */
  public const EVENTS = ['content.created', 'content.updated', 'content.deleted'];

  /**
   * Most ids in one delivery (the gateway refuses more).
   */
  public const MAX_IDS = 1000;

  /**
   * @param string $body
   *   The exact body bytes to send.
   * @param array<string, string> $headers
   *   The headers to send with it.
   */
  private function __construct(
    public readonly string $body,
    public readonly array $headers,
  ) {}

  /**
   * A signed delivery of one event.
   *
   * @param string $secret
   *   The secret shared with the gateway (its WEBHOOK_SECRET).
   * @param string $event
   *   One of self::EVENTS.
   * @param int[] $ids
   *   Content ids (positive), at most self::MAX_IDS; sent sorted, once each.
   * @param int $timestamp
   *   The current unix time, in seconds.
   * @param string|null $delivery
   *   A unique delivery ID; a random one when NULL.
   *
   * @throws \InvalidArgumentException
   *   When the event, the ids or the secret are not acceptable.
   */
  public static function create(string $secret, string $event, array $ids, int $timestamp, ?string $delivery = NULL): self {
    if ($secret === '') {
      throw new \InvalidArgumentException('The webhook secret is empty.');
    }
    if (!in_array($event, self::EVENTS, TRUE)) {
      throw new \InvalidArgumentException(sprintf('Unknown event "%s".', $event));
    }
    $ids = array_values(array_unique(array_map('intval', $ids)));
    sort($ids, SORT_NUMERIC);
    if ($ids === [] || count($ids) > self::MAX_IDS || $ids[0] < 1) {
      throw new \InvalidArgumentException(sprintf('A delivery carries 1 to %d positive ids.', self::MAX_IDS));
    }
    $body = json_encode([
      'event' => $event,
      'ids' => $ids,
      'delivery' => $delivery ?? bin2hex(random_bytes(16)),
    ], JSON_THROW_ON_ERROR | JSON_UNESCAPED_SLASHES);
    return new self($body, [
      'Content-Type' => 'application/json',
      'X-Drupal-Timestamp' => (string) $timestamp,
      'X-Drupal-Signature' => self::signature($secret, $timestamp, $body),
    ]);
  }

  /**
   * The X-Drupal-Signature value of a body sent at a time.
   */
  public static function signature(string $secret, int $timestamp, string $body): string {
    return 'sha256=' . hash_hmac('sha256', $timestamp . '.' . $body, $secret);
  }

}
