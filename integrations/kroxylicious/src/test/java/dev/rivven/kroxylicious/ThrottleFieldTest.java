package dev.rivven.kroxylicious;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

import org.apache.kafka.common.message.ApiVersionsResponseData;
import org.apache.kafka.common.message.FetchResponseData;
import org.apache.kafka.common.message.ProduceResponseData;
import org.apache.kafka.common.message.SaslHandshakeResponseData;
import org.junit.jupiter.api.Test;

class ThrottleFieldTest {
    @Test
    void raisesNeverLowers() {
        var r = new ProduceResponseData().setThrottleTimeMs(50);
        assertTrue(ThrottleField.raise(r, (short) 9, 200));
        assertEquals(200, r.throttleTimeMs());
        assertTrue(ThrottleField.raise(r, (short) 9, 100));
        assertEquals(200, r.throttleTimeMs(), "the broker's own larger throttle stays");
        var f = new FetchResponseData();
        assertTrue(ThrottleField.raise(f, (short) 12, 7));
        assertEquals(7, f.throttleTimeMs());
    }

    @Test
    void onlyWhereTheVersionHasTheField() {
        var v0 = new ApiVersionsResponseData();
        assertFalse(ThrottleField.raise(v0, (short) 0, 100), "ApiVersions v0 has no throttle_time_ms");
        assertEquals(0, v0.throttleTimeMs());
        assertTrue(ThrottleField.raise(new ApiVersionsResponseData(), (short) 3, 100));
        assertFalse(ThrottleField.raise(new SaslHandshakeResponseData(), (short) 1, 100), "no such field at all");
        assertFalse(ThrottleField.raise(new ProduceResponseData(), (short) 99, 100), "unknown version");
    }
}
