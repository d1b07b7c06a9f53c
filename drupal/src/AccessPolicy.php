<?php

declare(strict_types=1);

namespace Drupal\drupal_accelerator;

/**
 * The pure rules of user.access_context: the access level and the access hash.
 *
 * No Drupal API here (the test suite of the gateway runs this class with the
 * PHP command line to check it against the gateway's expectations).
 */
final class AccessPolicy {

  /**
   * The shape of an access level, as the gateway accepts it.
   */
  public const LEVEL_PATTERN = '/^[a-z0-9_-]{1,32}$/';

  /**
   * The shape of a cache context token, as the gateway accepts it.
   */
  public const CONTEXT_PATTERN = '/^[A-Za-z0-9_.:,-]{1,128}$/';

  /**
   * Most cache contexts one reply may list (the gateway refuses more).
   */
  public const MAX_CONTEXTS = 64;

  /**
   * The cache contexts the access hash always covers.
   */
  public const BASE_CONTEXTS = ['user.permissions', 'user.node_grants:view'];

  /**
   * The caller's access level.
   *
   * A caller with the configured admin permission is "admin"; otherwise the
   * level of the first entry of the role list whose role the caller has;
   * otherwise the default level.
   *
   * @param string[] $roles
   *   The caller's role IDs (including "anonymous" or "authenticated").
   * @param callable(string): bool $has_permission
   *   Whether the caller has a permission.
   * @param array $settings
   *   The "access_levels" configuration: admin_permission, roles (a list of
   *   role/level pairs) and default_level.
   *
   * @return string
   *   The level.
   *
   * @throws \InvalidArgumentException
   *   When the configured level is not a valid level.
   */
  public static function level(array $roles, callable $has_permission, array $settings): string {
    $admin_permission = (string) ($settings['admin_permission'] ?? '');
    if ($admin_permission !== '' && $has_permission($admin_permission)) {
      return 'admin';
    }
    $level = (string) ($settings['default_level'] ?? 'anonymous');
    foreach ($settings['roles'] ?? [] as $entry) {
      if (in_array((string) ($entry['role'] ?? ''), $roles, TRUE)) {
        $level = (string) ($entry['level'] ?? '');
        break;
      }
    }
    if (preg_match(self::LEVEL_PATTERN, $level) !== 1) {
      throw new \InvalidArgumentException(sprintf('Access level "%s" must match %s.', $level, self::LEVEL_PATTERN));
    }
    return $level;
  }

  /**
   * Whether a caller's access depends on the individual user.
   *
   * As in core's node access: "view own unpublished content" makes a node's
   * view access depend on its owner, unless "bypass node access" allows all.
   *
   * @param bool $authenticated
   *   Whether the caller is signed in.
   * @param callable(string): bool $has_permission
   *   Whether the caller has a permission.
   */
  public static function isPerUser(bool $authenticated, callable $has_permission): bool {
    return $authenticated
      && $has_permission('view own unpublished content')
      && !$has_permission('bypass node access');
  }

  /**
   * The contexts a reply lists: deduplicated, sorted and checked.
   *
   * @param string[] $contexts
   *   Cache context tokens.
   *
   * @return string[]
   *   The same tokens, each once, in byte order.
   *
   * @throws \InvalidArgumentException
   *   When a token is malformed or there are too many.
   */
  public static function normalizeContexts(array $contexts): array {
    $unique = array_values(array_unique(array_map('strval', $contexts)));
    sort($unique, SORT_STRING);
    if (count($unique) > self::MAX_CONTEXTS) {
      throw new \InvalidArgumentException(sprintf('At most %d cache contexts, got %d.', self::MAX_CONTEXTS, count($unique)));
    }
    foreach ($unique as $context) {
      if (preg_match(self::CONTEXT_PATTERN, $context) !== 1) {
        throw new \InvalidArgumentException(sprintf('Cache context "%s" must match %s.', $context, self::CONTEXT_PATTERN));
      }
    }
    return $unique;
  }

  /**
   * The access hash: an HMAC-SHA256 (64 lower-case hex digits).
   *
   * It covers the level, the value of every cache context (as Drupal's cache
   * contexts manager turns it into a cache key) and the site rules. It is
   * keyed with the site's hash salt, so that the values (a user ID, a grant)
   * cannot be guessed back from it.
   *
   * @param string $level
   *   The access level.
   * @param array<string, string> $context_values
   *   Context token => its cache key(s).
   * @param array $site_rules
   *   Whatever else decides what the caller may read, from the alter hook.
   * @param string $salt
   *   The site's hash salt.
   */
  public static function hash(string $level, array $context_values, array $site_rules, string $salt): string {
    ksort($context_values, SORT_STRING);
    ksort($site_rules, SORT_STRING);
    $data = json_encode([
      'level' => $level,
      'contexts' => $context_values,
      'site_rules' => $site_rules,
    ], JSON_THROW_ON_ERROR | JSON_UNESCAPED_SLASHES | JSON_UNESCAPED_UNICODE);
    return hash_hmac('sha256', $data, $salt);
  }

}
