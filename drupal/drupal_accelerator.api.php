<?php

/**
 * @file
 * Hooks of the drupal_accelerator module.
 */

declare(strict_types=1);

use Drupal\Core\Session\AccountInterface;

/**
 * @addtogroup hooks
 * @{
 */

/**
 * Alters the access context the user.access_context method reports.
 *
 * The gateway shares cached content between two callers only when their
 * access_level and access_hash are equal, so the hash must cover everything
 * that decides what a caller may read. Add here what your site's rules
 * depend on:
 * - a cache context (its value for the current user is hashed), e.g. one a
 *   group or entitlement module provides;
 * - "user" when access depends on the individual user: the gateway then
 *   gives the caller a cache partition of its own;
 * - a site rule value under 'site_rules', e.g. the caller's group IDs or an
 *   entitlement field, hashed as it is.
 *
 * @param array $context
 *   - access_level: the level from the configuration (1 to 32 characters
 *     from a-z, 0-9, "_" and "-").
 *   - contexts: cache context tokens; at least user.permissions and
 *     user.node_grants:view, and "user" when core's node access depends on
 *     the user ("view own unpublished content" without "bypass node
 *     access").
 *   - site_rules: an array of values, keyed by name, hashed with the rest.
 * @param \Drupal\Core\Session\AccountInterface $account
 *   The calling user (the current user).
 */
function hook_drupal_accelerator_access_context_alter(array &$context, AccountInterface $account): void {
  // Members of a group see the group's content.
  $context['site_rules']['groups'] = my_groups_of($account);
  // Drafts shared with a reviewer depend on who asks.
  if ($account->hasPermission('review shared drafts')) {
    $context['contexts'][] = 'user';
  }
}

/**
 * @} End of "addtogroup hooks".
 */
