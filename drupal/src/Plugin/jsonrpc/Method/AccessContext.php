<?php

declare(strict_types=1);

namespace Drupal\drupal_accelerator\Plugin\jsonrpc\Method;

use Drupal\Core\Cache\CacheableMetadata;
use Drupal\Core\PageCache\ResponsePolicy\KillSwitch;
use Drupal\drupal_accelerator\AccessContextBuilder;
use Drupal\jsonrpc\Plugin\JsonRpcMethodBase;
use Symfony\Component\DependencyInjection\ContainerInterface;

/**
 * What the calling user may read, for the gateway's cache partitions.
 *
 * Declared with the annotation, which every jsonrpc 2.x release discovers
 * (later releases read the #[JsonRpcMethod] attribute and still accept the
 * annotation). The parameter and return types are left wide so the class
 * fits both the Drupal\jsonrpc\Object and the Drupal\jsonrpc\JsonRpcObject
 * namespaces of the module's versions.
 *
 * The reply varies per caller, so it must never be stored by a Drupal cache:
 * the page cache kill switch turns off the internal and dynamic page caches
 * for this HTTP response (and makes it "Cache-Control: private, no-cache"),
 * and the RPC response carries max-age 0 and the "user" cache context, which
 * the JSON-RPC controller merges into the HTTP response's cacheability.
 *
 * @JsonRpcMethod(
 *   id = "user.access_context",
 *   usage = @Translation("Describe what the calling user may read: access level, roles, and a hash of everything that decides it (cache contexts user.permissions and user.node_grants:view, and site rules)."),
 *   access = {"use jsonrpc services"},
 * )
 */
final class AccessContext extends JsonRpcMethodBase {

  /**
   * The access context builder.
   */
  private AccessContextBuilder $builder;

  /**
   * The page cache kill switch.
   */
  private KillSwitch $killSwitch;

  /**
   * {@inheritdoc}
   */
  public static function create(ContainerInterface $container, array $configuration, $plugin_id, $plugin_definition): static {
    $method = new static($configuration, $plugin_id, $plugin_definition);
    $method->builder = $container->get('drupal_accelerator.access_context');
    $method->killSwitch = $container->get('page_cache_kill_switch');
    return $method;
  }

  /**
   * Runs the method.
   *
   * @param mixed $params
   *   The (empty) parameter bag: the method has no parameters.
   *
   * @return mixed
   *   A JSON-RPC response object carrying the result and its cacheability,
   *   or the bare result on a jsonrpc version without a response class.
   */
  public function execute($params): mixed {
    $this->killSwitch->trigger();
    $result = $this->builder->build();
    $response_class = $this->responseClass();
    if ($response_class === NULL) {
      return $result;
    }
    $response = new $response_class('2.0', $this->currentRequest()->id(), $result);
    $response->addCacheableDependency(
      (new CacheableMetadata())->setCacheMaxAge(0)->setCacheContexts(['user'])
    );
    return $response;
  }

  /**
   * {@inheritdoc}
   */
  public static function outputSchema(): ?array {
    return [
      'type' => 'object',
      'required' => ['uid', 'access_level', 'roles', 'access_hash', 'contexts'],
      'properties' => [
        'uid' => ['type' => 'integer', 'minimum' => 0],
        'access_level' => ['type' => 'string', 'pattern' => '^[a-z0-9_-]{1,32}$'],
        'roles' => ['type' => 'array', 'items' => ['type' => 'string']],
        'access_hash' => ['type' => 'string', 'pattern' => '^[0-9a-f]{64}$'],
        'contexts' => [
          'type' => 'array',
          'maxItems' => 64,
          'items' => ['type' => 'string', 'pattern' => '^[A-Za-z0-9_.:,-]{1,128}$'],
        ],
      ],
    ];
  }

  /**
   * The JSON-RPC response class of the installed jsonrpc version.
   *
   * @return class-string|null
   *   The class, or NULL when neither known namespace has it.
   */
  private function responseClass(): ?string {
    foreach (['Drupal\jsonrpc\JsonRpcObject\Response', 'Drupal\jsonrpc\Object\Response'] as $class) {
      if (class_exists($class)) {
        return $class;
      }
    }
    return NULL;
  }

}
