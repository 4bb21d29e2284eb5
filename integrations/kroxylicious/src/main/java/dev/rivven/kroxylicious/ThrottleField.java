package dev.rivven.kroxylicious;

import java.lang.invoke.MethodHandle;
import java.lang.invoke.MethodHandles;
import java.lang.invoke.MethodType;

import org.apache.kafka.common.protocol.ApiMessage;
import org.apache.kafka.common.protocol.types.Schema;

/**
 * Reads and writes a response's {@code throttle_time_ms}, for any API whose schema has the field at the response's
 * version. Kafka's generated messages share no interface for it; a handle per message class is looked up once.
 */
final class ThrottleField {
    private static final String FIELD = "throttle_time_ms";

    private record Access(MethodHandle getter, MethodHandle setter, Schema[] schemas) {
    }

    private static final ClassValue<Access> ACCESS = new ClassValue<>() {
        @Override
        protected Access computeValue(Class<?> type) {
            try {
                var lookup = MethodHandles.publicLookup();
                MethodHandle get = lookup.findVirtual(type, "throttleTimeMs", MethodType.methodType(int.class));
                MethodHandle set = lookup.findVirtual(type, "setThrottleTimeMs", MethodType.methodType(type, int.class));
                Schema[] schemas = (Schema[]) type.getField("SCHEMAS").get(null);
                return new Access(get, set, schemas);
            }
            catch (ReflectiveOperationException | ClassCastException e) {
                return null;
            }
        }
    };

    private ThrottleField() {
    }

    /**
     * Raises the response's throttle_time_ms to at least {@code throttleMs}.
     *
     * @return true when the response carries the field at {@code version} (so the client will see the throttle)
     */
    static boolean raise(ApiMessage response, short version, int throttleMs) {
        Access a = ACCESS.get(response.getClass());
        if (a == null || version < 0 || version >= a.schemas.length || a.schemas[version] == null
                || a.schemas[version].get(FIELD) == null) {
            return false;
        }
        try {
            int current = (int) a.getter.invoke(response);
            if (throttleMs > current) {
                a.setter.invoke(response, throttleMs);
            }
            return true;
        }
        catch (Throwable t) {
            return false;
        }
    }
}
