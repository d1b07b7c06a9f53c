<?php

declare(strict_types=1);

namespace Drupal\drupal_accelerator\Webhook;

/**
 * One signed delivery to the gateway's POST /webhooks/drupal route.
 *
 * The format is Standard Webhooks (https://www.standardwebhooks.com/), as the
 * gateway verifies it (src/invalidation/Webhook.ts):
 * - body: JSON {"event": "content.created"|"content.updated"|
 *   "content.deleted", "ids": [positive integers, at most 1000]};
 * - webhook-id: the delivery's unique id ("msg_" and 32 random hex digits);
 *   the gateway carries out each id once and answers a repeated id 2xx
 *   without a second effect, so a retry must keep its id and a new change
 *   must get a new one;
 * - webhook-timestamp: the unix time in whole seconds;
 * - webhook-signature: "v1," and the base64 HMAC-SHA256 of
 *   "<id>.<timestamp>.<body bytes>", keyed with the bytes of the shared
 *   secret "whsec_<base64>".
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
   * Fewest secret bytes the gateway accepts.
   */
  public const MIN_SECRET_BYTES = 24;

  /**
   * @param string $id
   *   The delivery's webhook-id.
   * @param string $body
   *   The exact body bytes to send.
   * @param array<string, string> $headers
   *   The headers to send with it.
   */
  private function __construct(
    public readonly string $id,
    public readonly string $body,
    public readonly array $headers,
  ) {}

  /**
   * A signed delivery of one event.
   *
   * @param string $secret
   *   The secret shared with the gateway (its WEBHOOK_SECRET, "whsec_...").
   * @param string $event
   *   One of self::EVENTS.
   * @param int[] $ids
   *   Content ids (positive), at most self::MAX_IDS; sent sorted, once each.
   * @param int $timestamp
   *   The current unix time, in seconds.
   * @param string|null $id
   *   The delivery's id (keep it for a retry); a random one when NULL.
   *
   * @throws \InvalidArgumentException
   *   When the event, the ids, the id or the secret are not acceptable.
   */
  public static function create(string $secret, string $event, array $ids, int $timestamp, ?string $id = NULL): self {
    $key = self::key($secret);
    if (!in_array($event, self::EVENTS, TRUE)) {
      throw new \InvalidArgumentException(sprintf('Unknown event "%s".', $event));
    }
    $ids = array_values(array_unique(array_map('intval', $ids)));
    sort($ids, SORT_NUMERIC);
    if ($ids === [] || count($ids) > self::MAX_IDS || $ids[0] < 1) {
      throw new \InvalidArgumentException(sprintf('A delivery carries 1 to %d positive ids.', self::MAX_IDS));
    }
    $id ??= 'msg_' . bin2hex(random_bytes(16));
    if (preg_match('/^[A-Za-z0-9_.:-]{1,128}$/', $id) !== 1) {
      throw new \InvalidArgumentException('A webhook id is 1 to 128 of A-Z a-z 0-9 _ . : -');
    }
    $body = json_encode(['event' => $event, 'ids' => $ids], JSON_THROW_ON_ERROR | JSON_UNESCAPED_SLASHES);
    return new self($id, $body, [
      'Content-Type' => 'application/json',
      'webhook-id' => $id,
      'webhook-timestamp' => (string) $timestamp,
      'webhook-signature' => self::signature($key, $id, $timestamp, $body),
    ]);
  }

  /**
   * The key bytes of a "whsec_<base64>" secret.
   *
   * @throws \InvalidArgumentException
   *   When the secret is not of that form or too short (never shows it).
   */
  public static function key(string $secret): string {
    $secret = trim($secret);
    $key = str_starts_with($secret, 'whsec_') ? base64_decode(substr($secret, 6), TRUE) : FALSE;
    if ($key === FALSE || strlen($key) < self::MIN_SECRET_BYTES) {
      throw new \InvalidArgumentException(sprintf('The webhook secret must be whsec_ and the base64 of at least %d bytes.', self::MIN_SECRET_BYTES));
    }
    return $key;
  }

  /**
   * The webhook-signature value of a body sent as $id at a time.
   *
   * @param string $key
   *   The key bytes (see self::key()).
   */
  public static function signature(string $key, string $id, int $timestamp, string $body): string {
    return 'v1,' . base64_encode(hash_hmac('sha256', $id . '.' . $timestamp . '.' . $body, $key, TRUE));
  }

}
