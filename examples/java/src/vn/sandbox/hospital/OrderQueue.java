package vn.sandbox.hospital;

import java.io.IOException;
import java.nio.channels.FileChannel;
import java.nio.charset.StandardCharsets;
import java.nio.file.DirectoryStream;
import java.nio.file.FileAlreadyExistsException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardCopyOption;
import java.nio.file.StandardOpenOption;
import java.security.MessageDigest;
import java.security.NoSuchAlgorithmException;
import java.time.Instant;
import java.util.ArrayList;
import java.util.Comparator;
import java.util.List;
import java.util.UUID;

/**
 * The hospital's queue on disk: one file per order and per step, written atomically, so a restart (or a
 * crash) never sends a file twice after the portal acknowledged it.
 * <pre>
 *   DIR/orders/&lt;key&gt;.order.json   the order as taken (exit 0 of `order` means this file is on disk)
 *   DIR/orders/&lt;key&gt;.signed.xml   the signed file, made once; every attempt sends these same bytes
 *   DIR/orders/&lt;key&gt;.result       "sent &lt;MaGD&gt;" or "refused &lt;reason&gt;": finished, never sent again
 *   DIR/journal.log               one line per exchange with the portal
 * </pre>
 * &lt;key&gt; is the SHA-256 of request_id, so the same order taken twice is one file (idempotent). The only
 * window for a duplicate is a crash between the portal's 200 and writing .result (a few microseconds);
 * the next start then resends the same signed bytes once.
 */
final class OrderQueue {
    static final class Queued {
        final String key;
        final TriggerOrder order;
        final Instant takenAt;

        Queued(String key, TriggerOrder order, Instant takenAt) {
            this.key = key;
            this.order = order;
            this.takenAt = takenAt;
        }
    }

    private final Path directory, orders;

    OrderQueue(Path stateDirectory) throws IOException {
        directory = stateDirectory;
        orders = stateDirectory.resolve("orders");
        Files.createDirectories(orders);
    }

    private static String keyOf(String requestId) {
        try {
            byte[] hash = MessageDigest.getInstance("SHA-256").digest(requestId.getBytes(StandardCharsets.UTF_8));
            StringBuilder hex = new StringBuilder();
            for (int i = 0; i < 16; i++) hex.append(String.format("%02x", hash[i]));
            return hex.toString();
        } catch (NoSuchAlgorithmException e) {
            throw new IllegalStateException(e);
        }
    }

    private Path pathOf(String key, String suffix) {
        return orders.resolve(key + suffix);
    }

    /** Store a validated order; false when the same request_id was taken before. */
    boolean add(TriggerOrder order, byte[] json) throws IOException {
        Path target = pathOf(keyOf(order.requestId), ".order.json");
        return !Files.exists(target) && writeAtomically(target, json);
    }

    /** Every order on disk, in the order taken. */
    private List<Queued> all() throws IOException {
        List<Queued> all = new ArrayList<>();
        try (DirectoryStream<Path> files = Files.newDirectoryStream(orders, "*.order.json")) {
            for (Path file : files) {
                String key = file.getFileName().toString().replace(".order.json", "");
                try {
                    TriggerOrder order = TriggerOrder.parse(Files.readAllBytes(file));
                    all.add(new Queued(key, order, Files.getLastModifiedTime(file).toInstant()));
                } catch (TriggerOrder.Invalid e) {
                    throw new IOException(file + " is not a valid order: " + e.getMessage(), e);
                }
            }
        }
        all.sort(Comparator.comparing((Queued q) -> q.takenAt).thenComparing(q -> q.key));
        return all;
    }

    /** Orders not finished yet, earliest issued_at first. The deadline is issued_at + 240 working minutes,
     *  which never reorders two orders, so this is earliest-deadline-first without a holiday calendar. */
    List<Queued> pending() throws IOException {
        List<Queued> pending = new ArrayList<>();
        for (Queued q : all()) {
            if (!Files.exists(pathOf(q.key, ".result"))) pending.add(q);
        }
        pending.sort(Comparator.comparing((Queued q) -> q.order.issuedAt.toInstant()));
        return pending;
    }

    byte[] signed(Queued queued) throws IOException {
        Path file = pathOf(queued.key, ".signed.xml");
        return Files.exists(file) ? Files.readAllBytes(file) : null;
    }

    void storeSigned(Queued queued, byte[] xml) throws IOException {
        writeAtomically(pathOf(queued.key, ".signed.xml"), xml);
    }

    void finish(Queued queued, String state, String detail) throws IOException {
        writeAtomically(pathOf(queued.key, ".result"), (state + " " + detail + "\n").getBytes(StandardCharsets.UTF_8));
    }

    /** Every order with its state, for `status`. */
    List<String> status() throws IOException {
        List<String> lines = new ArrayList<>();
        for (Queued q : all()) {
            Path result = pathOf(q.key, ".result");
            String state = Files.exists(result) ? Files.readString(result).trim() : "queued";
            lines.add(q.order.requestId + "\t" + q.order.kind + "\t" + q.order.code() + "\t" + state);
        }
        return lines;
    }

    void journal(Queued queued, String operation, PortalClient.Reply reply) throws IOException {
        String line = Instant.now() + "\t" + queued.order.requestId + "\t" + operation + "\t" + reply + "\n";
        Files.writeString(directory.resolve("journal.log"), line, StandardCharsets.UTF_8,
                StandardOpenOption.CREATE, StandardOpenOption.APPEND);
    }

    /** Write to a temporary file, force it to disk, then rename: a reader sees all or nothing. */
    private static boolean writeAtomically(Path target, byte[] bytes) throws IOException {
        Path temporary = target.resolveSibling(target.getFileName() + "." + UUID.randomUUID() + ".tmp");
        try (FileChannel channel = FileChannel.open(temporary, StandardOpenOption.CREATE_NEW, StandardOpenOption.WRITE)) {
            channel.write(java.nio.ByteBuffer.wrap(bytes));
            channel.force(true);
        }
        try {
            Files.move(temporary, target, StandardCopyOption.ATOMIC_MOVE);
            return true;
        } catch (FileAlreadyExistsException e) {
            Files.delete(temporary);
            return false;
        }
    }
}
