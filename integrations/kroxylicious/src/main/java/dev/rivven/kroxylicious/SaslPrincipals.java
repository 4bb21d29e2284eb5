package dev.rivven.kroxylicious;

import java.nio.charset.StandardCharsets;
import java.util.Locale;

/**
 * Reads the user name out of the first SASL message a client sends, for the mechanisms whose first message
 * carries it. The broker still authenticates: the filter adopts the name only once the broker answers the
 * SaslAuthenticate with no error.
 */
final class SaslPrincipals {
    /** Same bound as the sidecar's names (1024 bytes of UTF-8); longer is not a name we forward. */
    static final int MAX_NAME_BYTES = 1024;

    private SaslPrincipals() {
    }

    /** The user name in {@code authBytes} for {@code mechanism}, or null when it has none or it is malformed. */
    static String userOf(String mechanism, byte[] authBytes) {
        if (mechanism == null || authBytes == null || authBytes.length == 0) {
            return null;
        }
        String m = mechanism.toUpperCase(Locale.ROOT);
        if (m.equals("PLAIN")) {
            return plain(authBytes);
        }
        if (m.startsWith("SCRAM-")) {
            return scram(authBytes);
        }
        return null;
    }

    /** RFC 4616: [authzid] NUL authcid NUL passwd; Kafka requires authzid empty or equal to authcid. */
    private static String plain(byte[] b) {
        int first = indexOf(b, 0);
        int second = first < 0 ? -1 : indexOf(b, first + 1);
        if (second < 0) {
            return null;
        }
        String authzid = new String(b, 0, first, StandardCharsets.UTF_8);
        String authcid = new String(b, first + 1, second - first - 1, StandardCharsets.UTF_8);
        return valid(authzid.isEmpty() ? authcid : authzid);
    }

    /** RFC 5802 client-first-message: gs2-header "n,," or "n,a=authzid," then "n=user,r=nonce". */
    private static String scram(byte[] b) {
        String msg = new String(b, StandardCharsets.UTF_8);
        String[] parts = msg.split(",", -1);
        if (parts.length < 4) {
            return null;
        }
        String authzid = parts[1].startsWith("a=") ? parts[1].substring(2) : null;
        String user = parts[2].startsWith("n=") ? parts[2].substring(2) : null;
        String chosen = authzid != null && !authzid.isEmpty() ? authzid : user;
        return chosen == null ? null : valid(chosen.replace("=2C", ",").replace("=3D", "="));
    }

    private static String valid(String name) {
        if (name.isEmpty() || name.getBytes(StandardCharsets.UTF_8).length > MAX_NAME_BYTES) {
            return null;
        }
        return name;
    }

    private static int indexOf(byte[] b, int from) {
        for (int i = from; i < b.length; i++) {
            if (b[i] == 0) {
                return i;
            }
        }
        return -1;
    }
}
