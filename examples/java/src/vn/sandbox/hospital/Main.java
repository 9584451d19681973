package vn.sandbox.hospital;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.List;
import java.util.Map;

/**
 * Reference hospital client in Java: take orders, sign HSDLGCS / HSDLGBT, send them to the portal.
 * <pre>
 *   java -cp build vn.sandbox.hospital.Main order  --state-dir DIR &lt; order.json      take one order (exit 0 = taken)
 *   java -cp build vn.sandbox.hospital.Main work   --state-dir DIR --portal URL --facility CODE --username U
 *                                    --password P --p12 FILE --p12-password PW [--drain]   send queued orders
 *   java -cp build vn.sandbox.hospital.Main status --state-dir DIR                   every order and its state
 *   java -cp build vn.sandbox.hospital.Main sign   --p12 FILE --p12-password PW &lt; order.json &gt; signed.xml
 *   java -cp build vn.sandbox.hospital.Main verify FILE...                            XMLSignature.validate (exit 1 if invalid)
 * </pre>
 */
public final class Main {
    private Main() {
    }

    public static void main(String[] args) throws Exception {
        System.exit(run(args));
    }

    static int run(String[] args) throws Exception {
        if (args.length == 0) return usage();
        Map<String, String> options = new HashMap<>();
        List<String> files = new ArrayList<>();
        for (int i = 1; i < args.length; i++) {
            if (args[i].equals("--drain")) options.put("drain", "true");
            else if (args[i].startsWith("--") && i + 1 < args.length) options.put(args[i].substring(2), args[++i]);
            else files.add(args[i]);
        }
        try {
            switch (args[0]) {
                case "order": return takeOrder(options);
                case "work": return work(options);
                case "status": return status(options);
                case "sign": return sign(options);
                case "verify": return verify(files);
                default: return usage();
            }
        } catch (TriggerOrder.Invalid e) {
            System.err.println("order refused: " + e.getMessage());
            return 2;
        } catch (IllegalArgumentException e) {
            System.err.println(e.getMessage());
            return usage();
        }
    }

    private static int usage() {
        System.err.println("usage: vn.sandbox.hospital.Main order|work|status|sign|verify [options] (see Main.java)");
        return 2;
    }

    private static String need(Map<String, String> options, String name) {
        String value = options.get(name);
        if (value == null) throw new IllegalArgumentException("missing --" + name);
        return value;
    }

    private static int takeOrder(Map<String, String> options) throws Exception {
        byte[] json = System.in.readAllBytes();
        TriggerOrder order = TriggerOrder.parse(json);
        boolean added = new OrderQueue(Path.of(need(options, "state-dir"))).add(order, json);
        System.out.println((added ? "taken " : "already taken ") + order.requestId);
        return 0;
    }

    private static int work(Map<String, String> options) throws Exception {
        Worker.Settings settings = new Worker.Settings();
        settings.facility = need(options, "facility");
        if (options.containsKey("max-attempts")) settings.maxAttempts = Integer.parseInt(options.get("max-attempts"));
        if (options.containsKey("backoff-base")) settings.backoffBase = Double.parseDouble(options.get("backoff-base"));
        if (options.containsKey("backoff-cap")) settings.backoffCap = Double.parseDouble(options.get("backoff-cap"));
        if (options.containsKey("requeue-after")) settings.requeueAfter = Double.parseDouble(options.get("requeue-after"));
        Signer.Credential credential = Signer.Credential.load(need(options, "p12"), need(options, "p12-password").toCharArray());
        PortalClient portal = new PortalClient(need(options, "portal"), settings.facility, need(options, "username"), need(options, "password"));
        new Worker(new OrderQueue(Path.of(need(options, "state-dir"))), portal, credential, settings).run(options.containsKey("drain"));
        return 0;
    }

    private static int status(Map<String, String> options) throws IOException {
        for (String line : new OrderQueue(Path.of(need(options, "state-dir"))).status()) System.out.println(line);
        return 0;
    }

    /** Sign one order's document with SigningTime = its issue instant (for interop checks). */
    private static int sign(Map<String, String> options) throws Exception {
        TriggerOrder order = TriggerOrder.parse(System.in.readAllBytes());
        var doc = order.buildXml();
        Signer.sign(doc, Signer.Credential.load(need(options, "p12"), need(options, "p12-password").toCharArray()), order.issuedAt);
        System.out.write(Xml.bytes(doc));
        System.out.flush();
        return 0;
    }

    private static int verify(List<String> files) throws Exception {
        int invalid = 0;
        for (String file : files) {
            List<String> problems;
            try {
                problems = Verifier.problems(Xml.load(Files.readAllBytes(Path.of(file))));
            } catch (IOException | javax.xml.crypto.MarshalException | IllegalArgumentException e) {
                problems = List.of(e.getClass().getSimpleName() + ": " + e.getMessage());
            }
            System.out.println(file + ": " + (problems.isEmpty() ? "VALID" : "INVALID: " + String.join("; ", problems)));
            if (!problems.isEmpty()) invalid++;
        }
        return invalid == 0 ? 0 : 1;
    }
}
