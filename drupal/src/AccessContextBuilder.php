<?php

declare(strict_types=1);

namespace Drupal\drupal_accelerator;

use Drupal\Core\Cache\Context\CacheContextsManager;
use Drupal\Core\Config\ConfigFactoryInterface;
use Drupal\Core\Extension\ModuleHandlerInterface;
use Drupal\Core\Session\AccountInterface;
use Drupal\Core\Site\Settings;

/**
 * Builds the user.access_context result for the current user.
 *
 * The result is {uid, access_level, roles, access_hash, contexts}. The hash
 * covers the values of Drupal's own cache contexts "user.permissions" and
 * "user.node_grants:view" (node access modules), "user" when access depends
 * on the individual user, any context in the "extra_contexts" setting, and
 * whatever hook_drupal_accelerator_access_context_alter() adds. Two callers
 * with equal access_level and access_hash see the same content; the gateway
 * shares its cache between them.
 */
final class AccessContextBuilder {

  public function __construct(
    private readonly CacheContextsManager $cacheContextsManager,
    private readonly ConfigFactoryInterface $configFactory,
    private readonly ModuleHandlerInterface $moduleHandler,
    private readonly AccountInterface $currentUser,
  ) {}

  /**
   * The access context of the current user.
   *
   * Cache contexts are evaluated for the current user (that is how Drupal's
   * cache context services work), so there is no account parameter.
   *
   * @return array{uid: int, access_level: string, roles: string[], access_hash: string, contexts: string[]}
   *   The method's result.
   *
   * @throws \InvalidArgumentException
   *   When the configuration or an alter hook produced an invalid level or
   *   context (the method then answers a JSON-RPC internal error, which the
   *   gateway treats as "no shared partition").
   */
  public function build(): array {
    $account = $this->currentUser;
    $settings = $this->configFactory->get('drupal_accelerator.settings');
    $has_permission = static fn(string $permission): bool => $account->hasPermission($permission);
    $roles = array_values($account->getRoles());

    $contexts = AccessPolicy::BASE_CONTEXTS;
    if (AccessPolicy::isPerUser($account->isAuthenticated(), $has_permission)) {
      $contexts[] = 'user';
    }
    foreach ($settings->get('extra_contexts') ?? [] as $extra) {
      $contexts[] = (string) $extra;
    }
    $context = [
      'access_level' => AccessPolicy::level($roles, $has_permission, $settings->get('access_levels') ?? []),
      'contexts' => $contexts,
      'site_rules' => [],
    ];
    $this->moduleHandler->alter('drupal_accelerator_access_context', $context, $account);

    $level = (string) $context['access_level'];
    if (preg_match(AccessPolicy::LEVEL_PATTERN, $level) !== 1) {
      throw new \InvalidArgumentException(sprintf('Access level "%s" must match %s.', $level, AccessPolicy::LEVEL_PATTERN));
    }
    $contexts = AccessPolicy::normalizeContexts($context['contexts']);
    // One token at a time: converting them together would fold children into
    // their parent ("user" absorbs "user.permissions"), and the hash must
    // change when the permissions change even for a per-user caller.
    $values = [];
    foreach ($contexts as $token) {
      $values[$token] = implode("\n", $this->cacheContextsManager->convertTokensToKeys([$token])->getKeys());
    }

    return [
      'uid' => (int) $account->id(),
      'access_level' => $level,
      'roles' => $roles,
      'access_hash' => AccessPolicy::hash($level, $values, (array) $context['site_rules'], Settings::getHashSalt()),
      'contexts' => $contexts,
    ];
  }

}
