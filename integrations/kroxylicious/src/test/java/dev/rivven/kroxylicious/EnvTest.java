package dev.rivven.kroxylicious;

import static org.junit.jupiter.api.Assertions.assertTrue;

import java.net.InetAddress;
import java.net.InetSocketAddress;
import java.net.ServerSocket;

import org.junit.jupiter.api.Test;

class EnvTest {
    @Test
    void fixedPortsComeFromBelowTheEphemeralRangeAndCanBeBound() throws Exception {
        int low = Env.ephemeralLow();
        assertTrue(low >= 12_000, "the ephemeral range starts at " + low);
        for (int n = 0; n < 20; n++) {
            int base = Env.freePortRun(3);
            assertTrue(base >= 10_000 && base + 3 <= low, base + " is below " + low);
            for (int i = 0; i < 3; i++) {
                try (ServerSocket s = new ServerSocket()) {
                    s.bind(new InetSocketAddress(InetAddress.getLoopbackAddress(), base + i));
                }
            }
        }
    }
}
