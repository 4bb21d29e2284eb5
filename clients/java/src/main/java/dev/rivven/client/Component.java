package dev.rivven.client;

import java.util.Objects;

/**
 * One part of an entity: {@code [entity_type, entity_name]}. Types: user, client-id, consumer-group, default,
 * tier. A null name is the {@code <default>} entity of that type (a tier always has a name).
 *
 * @param type the entity type
 * @param name the entity name, or null for the default entity of the type
 */
public record Component(String type, String name) {
  /** Checks the type is given. */
  public Component {
    Objects.requireNonNull(type, "type");
  }

  /** {@code ["user", name]}; null: every user's default. */
  public static Component user(String name) {
    return new Component("user", name);
  }

  /** {@code ["client-id", name]}. */
  public static Component clientId(String name) {
    return new Component("client-id", name);
  }

  /** {@code ["consumer-group", name]}. */
  public static Component consumerGroup(String name) {
    return new Component("consumer-group", name);
  }

  /** {@code ["tier", name]}. */
  public static Component tier(String name) {
    return new Component("tier", name);
  }

  /** {@code ["default", null]}: the global default. */
  public static Component globalDefault() {
    return new Component("default", null);
  }
}
