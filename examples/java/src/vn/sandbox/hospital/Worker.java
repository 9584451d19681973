package vn.sandbox.hospital;

import java.io.IOException;
import java.security.GeneralSecurityException;
import java.time.Duration;
import java.time.Instant;
import java.time.OffsetDateTime;
import java.util.HashMap;
import java.util.Map;
import java.util.concurrent.ThreadLocalRandom;
import org.w3c.dom.Document;

/** The background sender: takes the pending order with the earliest deadline, signs it once, sends it
 *  until the portal acknowledges or refuses it, backing off on transient failures. */
final class Worker {
    static final class Settings {
        String facility;
        double backoffBase = 0.2;   // seconds; delay after the n-th failure is random(0, min(cap, base * 2^(n-1)))
        double backoffCap = 5.0;
        int maxAttempts = 12;       // failures per round before the order waits and the next one goes
        double requeueAfter = 10.0; // seconds a given-up order waits before its next round
    }

    private final OrderQueue queue;
    private final PortalClient portal;
    private final Signer.Credential credential;
    private final Settings settings;
    private final Map<String, Instant> heldUntil = new HashMap<>();

    Worker(OrderQueue queue, PortalClient portal, Signer.Credential credential, Settings settings) {
        this.queue = queue;
        this.portal = portal;
        this.credential = credential;
        this.settings = settings;
    }

    /** Work forever (drain = false) or until no order is due. */
    void run(boolean drain) throws IOException, GeneralSecurityException, InterruptedException {
        while (true) {
            OrderQueue.Queued next = queue.pending().stream().filter(q -> !isHeld(q)).findFirst().orElse(null);
            if (next != null) deliver(next);
            else if (drain) return;
            else Thread.sleep(100);
        }
    }

    private boolean isHeld(OrderQueue.Queued queued) {
        Instant until = heldUntil.get(queued.key);
        return until != null && until.isAfter(Instant.now());
    }

    private void deliver(OrderQueue.Queued queued) throws IOException, GeneralSecurityException, InterruptedException {
        TriggerOrder order = queued.order;
        if (!order.facility.equals(settings.facility)) {
            queue.finish(queued, "refused", "order for facility " + order.facility + ", this is " + settings.facility);
            return;
        }
        byte[] xml = queue.signed(queued);
        if (xml == null) {
            xml = signedFile(queued);
            queue.storeSigned(queued, xml);
        }
        int failures = 0;
        boolean mayRelogin = true;
        while (true) {
            PortalClient.Reply reply = portal.hasToken() ? null : portal.takeToken();
            if (reply != null) queue.journal(queued, "token", reply);
            if (reply == null || reply.outcome == PortalClient.Outcome.ACCEPTED) {
                reply = portal.submit(order.kind, xml);
                queue.journal(queued, "submit", reply);
                switch (reply.outcome) {
                    case ACCEPTED:
                        queue.finish(queued, "sent", reply.maGD);
                        System.err.println("sent " + order.code() + ": MaGD " + reply.maGD);
                        return;
                    case REFUSED:
                    case TOO_LARGE:
                        queue.finish(queued, "refused", reply.toString());
                        System.err.println("refused " + order.code() + ": " + reply);
                        return;
                    case AUTH:
                        if (mayRelogin) { // the token was dropped: log in again and resend at once
                            mayRelogin = false;
                            continue;
                        }
                        break;
                    default:
                        break;
                }
            }
            failures++; // a transient failure, a failed login, or a second 401 in a row
            if (failures >= settings.maxAttempts) {
                heldUntil.put(queued.key, Instant.now().plusMillis((long) (settings.requeueAfter * 1000)));
                System.err.println("holding " + order.code() + " after " + failures + " failures: " + reply);
                return;
            }
            double ceiling = Math.min(settings.backoffCap, settings.backoffBase * Math.pow(2, failures - 1));
            Thread.sleep((long) (ThreadLocalRandom.current().nextDouble() * ceiling * 1000));
        }
    }

    /** SigningTime = the issue instant + the real time since the order was taken. In production that is
     *  "now"; against the sandbox, whose clock may be set to another day or run faster, it stays after the
     *  issue and never after the portal's receipt (the portal refuses a SigningTime more than 5 minutes
     *  after receipt), where the machine's own clock could be days off. */
    private byte[] signedFile(OrderQueue.Queued queued) throws GeneralSecurityException {
        Duration elapsed = Duration.between(queued.takenAt, Instant.now());
        if (elapsed.isNegative()) elapsed = Duration.ZERO;
        OffsetDateTime signingTime = queued.order.issuedAt.plus(elapsed);
        Document doc = queued.order.buildXml();
        Signer.sign(doc, credential, signingTime);
        return Xml.bytes(doc);
    }
}
