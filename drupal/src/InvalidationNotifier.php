<?php

declare(strict_types=1);

namespace Drupal\drupal_accelerator;

use Drupal\Component\Datetime\TimeInterface;
use Drupal\Core\Config\ConfigFactoryInterface;
use Drupal\Core\DestructableInterface;
use Drupal\Core\Entity\ContentEntityInterface;
use Drupal\Core\Entity\EntityInterface;
use Drupal\Core\Site\Settings;
use Drupal\drupal_accelerator\Webhook\WebhookDelivery;
use GuzzleHttp\ClientInterface;
use GuzzleHttp\Exception\ConnectException;
use Psr\Log\LoggerInterface;

/**
 * Sends the gateway a signed invalidation webhook for content changes.
 *
 * Entity hooks only record which ids changed; the deliveries go out once the
 * request is over: when the kernel destructs this service (after the response
 * is sent, and after the entity transaction has committed), or, where there
 * is no kernel termination (some command line runs), from a shutdown
 * function. Whichever comes first sends; the other finds nothing left.
 *
 * One delivery per event and per 1000 ids. Each is bounded by the configured
 * timeouts and never retried: a failure is logged and the gateway's TTLs bound
 * the staleness. After a connection failure the remaining deliveries of the
 * request are dropped (and counted in the log), so an unreachable gateway
 * costs one timeout, not one per delivery. Nothing here ever throws into the
 * entity save.
 */
final class InvalidationNotifier implements DestructableInterface {

  /**
   * The name of the settings.php key holding the shared secret.
   */
  public const SECRET_SETTING = 'drupal_accelerator_webhook_secret';

  /**
   * Changed ids by event, as keys.
   *
   * @var array<string, array<int, true>>
   */
  private array $pending = [];

  /**
   * Whether the shutdown function is registered.
   */
  private bool $shutdownRegistered = FALSE;

  public function __construct(
    private readonly ClientInterface $httpClient,
    private readonly ConfigFactoryInterface $configFactory,
    private readonly LoggerInterface $logger,
    private readonly TimeInterface $time,
  ) {}

  /**
   * Records a change of an entity, if it is content the gateway serves.
   *
   * @param \Drupal\Core\Entity\EntityInterface $entity
   *   The inserted, updated or deleted entity.
   * @param string $event
   *   content.created, content.updated or content.deleted.
   */
  public function entityChanged(EntityInterface $entity, string $event): void {
    if (!$entity instanceof ContentEntityInterface || !in_array($event, WebhookDelivery::EVENTS, TRUE)) {
      return;
    }
    $types = $this->configFactory->get('drupal_accelerator.settings')->get('webhook.entity_types') ?? ['node'];
    if (!in_array($entity->getEntityTypeId(), $types, TRUE)) {
      return;
    }
    $id = $entity->id();
    if (!is_numeric($id) || (int) $id < 1) {
      return;
    }
    $this->pending[$event][(int) $id] = TRUE;
    if (!$this->shutdownRegistered) {
      $this->shutdownRegistered = TRUE;
      drupal_register_shutdown_function([$this, 'flush']);
    }
  }

  /**
   * {@inheritdoc}
   */
  public function destruct(): void {
    $this->flush();
  }

  /**
   * Sends what is pending, and forgets it.
   */
  public function flush(): void {
    $pending = $this->pending;
    $this->pending = [];
    if ($pending === []) {
      return;
    }
    $settings = $this->configFactory->get('drupal_accelerator.settings');
    $url = (string) ($settings->get('webhook.url') ?? '');
    $secret = (string) (Settings::get(self::SECRET_SETTING) ?? '');
    if ($url === '' || $secret === '') {
      $this->logger->warning('Gateway invalidation webhook not configured (webhook.url and the @setting setting); @count changes not sent.', [
        '@setting' => self::SECRET_SETTING,
        '@count' => array_sum(array_map('count', $pending)),
      ]);
      return;
    }
    $options = [
      'timeout' => (float) ($settings->get('webhook.timeout') ?? 2.0),
      'connect_timeout' => (float) ($settings->get('webhook.connect_timeout') ?? 1.0),
      'allow_redirects' => FALSE,
      'http_errors' => TRUE,
    ];
    $deliveries = [];
    foreach ($pending as $event => $ids) {
      foreach (array_chunk(array_keys($ids), WebhookDelivery::MAX_IDS) as $chunk) {
        $deliveries[] = [$event, $chunk];
      }
    }
    foreach ($deliveries as $index => [$event, $ids]) {
      try {
        $delivery = WebhookDelivery::create($secret, $event, $ids, $this->time->getCurrentTime());
        $this->httpClient->request('POST', $url, $options + [
          'headers' => $delivery->headers,
          'body' => $delivery->body,
        ]);
      }
      catch (ConnectException $e) {
        $this->logger->error('Gateway invalidation webhook unreachable: @message; @dropped deliveries dropped.', [
          '@message' => $e->getMessage(),
          '@dropped' => count($deliveries) - $index,
        ]);
        return;
      }
      catch (\Throwable $e) {
        $this->logger->error('Gateway invalidation webhook failed for @event (@count ids): @message', [
          '@event' => $event,
          '@count' => count($ids),
          '@message' => $e->getMessage(),
        ]);
      }
    }
  }

}
