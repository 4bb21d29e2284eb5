package dev.rivven.client;

import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Objects;

/**
 * One change of an AlterQuotas request: set, or (value null) remove, one key of one entity. Values: a positive
 * integer (Long), the string "unlimited", a tier name (key tier) or a block reason (key blocked).
 *
 * @param entity the entity's components, e.g. {@code [user alice, client-id app-1]}
 * @param quotaKey a rate, burst, max_in_flight, tier or blocked
 * @param quotaValue the value, or null to remove it
 * @param shadow a rate or burst that is measured and counted but never enforced
 */
public record QuotaAlteration(List<Component> entity, String quotaKey, Object quotaValue, boolean shadow) {
  /** Copies the entity and checks the value's type. */
  public QuotaAlteration {
    entity = List.copyOf(entity);
    Objects.requireNonNull(quotaKey, "quotaKey");
    if (quotaValue != null && !(quotaValue instanceof String) && !(quotaValue instanceof Long) && !(quotaValue instanceof Integer)) {
      throw new IllegalArgumentException("quotaValue must be a Long, a String or null");
    }
  }

  /** Sets {@code key} to {@code value} on the entity. */
  public static QuotaAlteration set(List<Component> entity, String key, long value) {
    return new QuotaAlteration(entity, key, value, false);
  }

  /** Sets {@code key} to "unlimited". */
  public static QuotaAlteration unlimited(List<Component> entity, String key) {
    return new QuotaAlteration(entity, key, "unlimited", false);
  }

  /** Removes {@code key}'s value from the entity. */
  public static QuotaAlteration remove(List<Component> entity, String key) {
    return new QuotaAlteration(entity, key, null, false);
  }

  /** Blocks a principal: its record calls are answered Denied with this reason. */
  public static QuotaAlteration block(List<Component> entity, String reason) {
    return new QuotaAlteration(entity, "blocked", Objects.requireNonNull(reason, "reason"), false);
  }

  /** Lifts a block. */
  public static QuotaAlteration unblock(List<Component> entity) {
    return new QuotaAlteration(entity, "blocked", null, false);
  }

  Map<String, Object> toWire() {
    Map<String, Object> m = new LinkedHashMap<>();
    m.put("entity", entity);
    m.put("quota_key", quotaKey);
    m.put("quota_value", quotaValue);
    if (shadow) m.put("shadow", true);
    return m;
  }
}
