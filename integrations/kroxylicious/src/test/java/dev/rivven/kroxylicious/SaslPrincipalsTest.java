package dev.rivven.kroxylicious;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNull;

import java.nio.charset.StandardCharsets;

import org.junit.jupiter.api.Test;

class SaslPrincipalsTest {
    private static byte[] b(String s) {
        return s.getBytes(StandardCharsets.UTF_8);
    }

    @Test
    void plainTakesTheAuthcidOrTheAuthzid() {
        assertEquals("alice", SaslPrincipals.userOf("PLAIN", b("\0alice\0secret")));
        assertEquals("alice", SaslPrincipals.userOf("plain", b("alice\0alice\0secret")));
        assertEquals("admin-as", SaslPrincipals.userOf("PLAIN", b("admin-as\0alice\0secret")));
    }

    @Test
    void plainMalformedIsNoUser() {
        assertNull(SaslPrincipals.userOf("PLAIN", b("alice-secret")));
        assertNull(SaslPrincipals.userOf("PLAIN", b("\0alice")));
        assertNull(SaslPrincipals.userOf("PLAIN", b("\0\0secret")));
        assertNull(SaslPrincipals.userOf("PLAIN", new byte[0]));
        assertNull(SaslPrincipals.userOf(null, b("\0alice\0secret")));
    }

    @Test
    void scramTakesTheUserNameOfTheClientFirstMessage() {
        assertEquals("bob", SaslPrincipals.userOf("SCRAM-SHA-256", b("n,,n=bob,r=fyko+d2lbbFgONRv9qkxdawL")));
        assertEquals("a,b=c", SaslPrincipals.userOf("SCRAM-SHA-512", b("n,,n=a=2Cb=3Dc,r=abc")));
        assertEquals("carol", SaslPrincipals.userOf("SCRAM-SHA-512", b("n,a=carol,n=bob,r=abc")));
        assertNull(SaslPrincipals.userOf("SCRAM-SHA-256", b("c=biws,r=abc,p=proof")));
    }

    @Test
    void otherMechanismsAndOversizedNamesAreNoUser() {
        assertNull(SaslPrincipals.userOf("OAUTHBEARER", b("n,,\u0001auth=Bearer x\u0001\u0001")));
        String big = "x".repeat(SaslPrincipals.MAX_NAME_BYTES + 1);
        assertNull(SaslPrincipals.userOf("PLAIN", b("\0" + big + "\0pw")));
        String fits = "x".repeat(SaslPrincipals.MAX_NAME_BYTES);
        assertEquals(fits, SaslPrincipals.userOf("PLAIN", b("\0" + fits + "\0pw")));
    }
}
